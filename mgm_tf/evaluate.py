"""`python -m mgm_tf evaluate --run RUN`: every row of the paper's comparison measured the same way.

Rows (DESIGN.md baselines and ablations): DCGAN alone, cGAN alone, CycleGAN (class 0 ↔ 1),
SRGAN on DCGAN output, DCGAN→cGAN, DCGAN→cGAN→filter, MixGANMed. Rows that reuse the main
run's networks cost nothing to train; cGAN and CycleGAN are trained here (stages
baseline_cgan / baseline_cyclegan) when `evaluation.baselines` is on. Each row gets the same
number of synthetic images: as many as the final MixGANMed export.
"""

from __future__ import annotations

import json

import cv2
import numpy as np

from mgm_tf import features, label_fidelity, metrics, synthesis
from mgm_tf.data import write_json

ROWS = ("DCGAN", "cGAN", "CycleGAN", "SRGAN (on DCGAN)", "DCGAN→cGAN", "DCGAN→cGAN→filter", "MixGANMed")
LOSS_STAGE = {"DCGAN": "dcgan", "cGAN": "baseline_cgan", "CycleGAN": "baseline_cyclegan",
              "SRGAN (on DCGAN)": "srgan", "MixGANMed": "cgan"}
ROW_STAGES = {"DCGAN": ("dcgan",), "cGAN": ("baseline_cgan",), "CycleGAN": ("baseline_cyclegan",),
              "SRGAN (on DCGAN)": ("dcgan", "srgan"), "DCGAN→cGAN": ("dcgan", "cgan"),
              "DCGAN→cGAN→filter": ("dcgan", "cgan"), "MixGANMed": ("dcgan", "cgan", "srgan")}


def to_eval_images(images: np.ndarray, channels: int, size: int = 64) -> np.ndarray:
    """Any synthetic set → uint8 size×size with the dataset's channels (area resize; grey = mean)."""
    images = np.asarray(images)
    if channels == 1 and images.shape[-1] == 3:
        images = np.round(images.astype(np.float32).mean(axis=-1, keepdims=True)).astype(np.uint8)
    if images.shape[1] != size:
        images = np.stack([cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA).reshape(size, size, -1)
                           for image in images])
    return images


def pixel_features(images: np.ndarray) -> np.ndarray:
    """Grey 64×64 pixels in [0, 1], flattened: the space where a copied image is obvious."""
    return to_eval_images(images, 1).reshape(len(images), -1).astype(np.float64) / 255.0


def _exported(run, channels: int):
    """The final exported dataset, read back from its PNGs (what users actually get)."""
    from mgm_tf.decode import read_image
    from mgm_tf.export import read_manifest_rows

    rows = read_manifest_rows(run.path / "synthetic" / "manifest.csv")
    images = np.stack([read_image(run.path / "synthetic" / row["file"], channels) for row in rows])
    return images, np.array([int(row["label"]) for row in rows], np.int32)


def measure_export(run, prepared) -> dict:
    """What a user needs to know about the exported dataset before trusting it, measured in
    the report stage of every run: label agreement next to the judge's held-out accuracy,
    diversity next to the real images', pixel-space precision/recall (equal sample sizes) and
    the memorised share. Pixel space needs no trained network, so it works on the 16-image demo."""
    images, labels = _exported(run, prepared.channels)
    train, test = prepared.indices("train"), prepared.indices("test")
    real_train, real_test = prepared.images_gan[train], prepared.images_gan[test]
    evaluation_images = to_eval_images(images, prepared.channels)
    result = {"num_images": int(len(images)), "diversity": metrics.diversity(evaluation_images),
              "real_diversity": metrics.diversity(real_train),
              "pixels": _lean(quality_metrics(None, real_train, real_test, evaluation_images, "pixels (64x64 grey)"))}
    judge = label_fidelity.load_judge(run, prepared.num_classes)
    if judge is not None:
        result["judge"] = label_fidelity.judge_verdict(run, prepared.num_classes)
        result["labels"] = label_metrics(judge, images, labels, prepared.channels, prepared.class_names)
        if len(test):
            result["label_ceiling"] = label_metrics(judge, real_test, prepared.labels[test], prepared.channels,
                                                    prepared.class_names)
    return result


def synthetic_sets(run, prepared) -> dict:
    """{row: (uint8 images at the method's output size, labels or None)} for every row that ran."""
    from mgm_tf.outputs import read_csv
    from mgm_tf.monitoring import class_cycle
    from mgm_tf.stages import build_srgan, load_dcgan_generator

    final_images, final_labels = _exported(run, prepared.channels)
    count, per_class = len(final_labels), max(1, len(final_labels) // prepared.num_classes)
    seeds = np.array([synthesis.image_seed(run.config.seed + 7, 0, index) for index in range(count)])
    dcgan_generator = load_dcgan_generator(run, prepared.num_classes)
    dcgan_labels = class_cycle(prepared.num_classes, count) if len(dcgan_generator.inputs) > 1 else None
    dcgan_images = synthesis.unconditional_samples(dcgan_generator, seeds, run.config.dcgan.latent_dim,
                                                   labels=dcgan_labels, label="DCGAN")
    sr_generator, _ = build_srgan(run.config.srgan)
    sr_generator.load_weights(str(run.path / "srgan" / "generator.weights.h5"))
    candidates = np.load(run.path / "candidates" / "images.npy")
    rows = read_csv(run.path / "candidates" / "candidates.csv")
    labels = np.array([int(row["label"]) for row in rows])
    unfiltered = np.concatenate([np.flatnonzero(labels == label)[:per_class] for label in range(prepared.num_classes)])
    selected = [int(row["id"]) for row in read_csv(run.path / "filter" / "selected.csv")]
    sets = {"DCGAN": (dcgan_images, None),
            "SRGAN (on DCGAN)": (synthesis.super_resolve(sr_generator, dcgan_images, label="SRGAN on DCGAN"), None),
            "DCGAN→cGAN": (candidates[unfiltered], labels[unfiltered].astype(np.int32)),
            "DCGAN→cGAN→filter": (candidates[selected], labels[selected].astype(np.int32)),
            "MixGANMed": (final_images, final_labels)}
    sets.update(_baseline_sets(run, prepared, count))
    return sets


def _baseline_sets(run, prepared, count: int) -> dict:
    from mgm_tf.baselines import build_cyclegan, cycle_domains
    from mgm_tf.monitoring import class_cycle
    from mgm_tf.stages import build_dcgan

    sets = {}
    if run.is_done("baseline_cgan"):
        generator, _ = build_dcgan(run.config.dcgan, prepared.num_classes)
        generator.load_weights(str(run.path / "baseline_cgan" / "generator.weights.h5"))
        labels = class_cycle(prepared.num_classes, count)
        seeds = np.array([synthesis.image_seed(run.config.seed + 11, int(label), index) for index, label in enumerate(labels)])
        sets["cGAN"] = (synthesis.unconditional_samples(generator, seeds, run.config.dcgan.latent_dim, labels=labels,
                                                        label="cGAN baseline"), labels)
    if run.is_done("baseline_cyclegan"):
        networks = build_cyclegan()
        for network, name in zip(networks[:2], ("generator_ab", "generator_ba")):
            network.load_weights(str(run.path / "baseline_cyclegan" / f"{name}.weights.h5"))
        first, second = cycle_domains(prepared)
        half = max(1, count // 2)
        to_second = synthesis.to_uint8(networks[0](first[:half], training=False))
        to_first = synthesis.to_uint8(networks[1](second[:half], training=False))
        sets["CycleGAN"] = (np.concatenate([to_first, to_second]),
                            np.array([0] * len(to_first) + [1] * len(to_second), np.int32))
    return sets


def resolve_inception(setting):
    """'auto' → ImageNet InceptionV3 when obtainable, else None (row columns say 'not computed')."""
    if setting in (None, "none"):
        return None
    if setting == "random":
        return features.build_inception(None)
    if setting != "auto":
        return features.build_inception(setting)
    try:
        return features.build_inception("imagenet")
    except Exception as error:  # offline: the download fails in one of many ways
        print(f"note: InceptionV3 ImageNet weights unavailable ({type(error).__name__}); standard FID not computed")
        return None


def quality_metrics(extractor, real_train, real_test, images, space: str) -> dict:
    """FID, KID, precision/recall and memorisation of one synthetic set in one feature space,
    real and synthetic images at the same resolution. Precision/recall compare equal sample
    sizes (`metrics.balanced_precision_recall`). No FID in pixel space: a 4,096-d covariance
    needs far more samples than any test set has (and ~50 s of eigen-decompositions per row);
    KID, being unbiased, is kept."""
    if extractor is None:
        real, held_out, fake = pixel_features(real_train), pixel_features(real_test), pixel_features(images)
    else:
        real, held_out, fake = (features.extract(extractor, x) for x in (real_train, real_test, images))
        if not extractor.standard:
            real, held_out, fake = unit_scaled(real, held_out, fake)
    result = {"space": space, "num_real": len(real), "num_synthetic": len(fake),
              "fid": metrics.frechet_distance(real, fake) if extractor is not None else None,
              "kid": metrics.kernel_inception_distance(real, fake, num_subsets=50),
              **metrics.balanced_precision_recall(real, fake)}
    if len(held_out):
        result["memorisation"] = metrics.memorisation(real, fake, held_out)
    return result


def unit_scaled(real: np.ndarray, *others: np.ndarray) -> tuple:
    """Domain-CNN features divided by the real features' RMS per dimension. KID's cubic kernel
    (x·y/d + 1)³ assumes features of unit scale, as InceptionV3's roughly are; a domain CNN's
    scale is arbitrary (its pooled BatchNorm-ReLU features gave KID×100 in the hundreds of
    thousands on the two-class fixture), which made its KID incomparable between runs.
    Precision/recall and memorisation ratios do not change; FID scales by the same factor²."""
    scale = float(np.sqrt(np.mean(real ** 2))) or 1.0
    return (real / scale, *(other / scale for other in others))


def feature_trust(extractor, real_train: np.ndarray, num_training_images: int | None) -> dict:
    """Can this feature space judge variety? (`metrics.feature_trust` on the real training images.)"""
    real = pixel_features(real_train) if extractor is None else features.extract(extractor, real_train)
    return metrics.feature_trust(real, num_training_images)


def label_metrics(judge, images, labels, channels: int, class_names) -> dict:
    """Agreement of each image's label with the judge's prediction, overall and per class."""
    scores = label_fidelity.probabilities(judge, images, channels)
    predicted = scores.argmax(axis=1)
    return {**label_fidelity.agreement(labels, predicted, class_names),
            "mean_label_probability": float(scores[np.arange(len(labels)), labels].mean()) if len(labels) else None}


def _lean(result: dict) -> dict:
    """metrics.json keeps summaries; per-image distance lists stay out (figures show them)."""
    memorised = result.get("memorisation")
    if memorised:
        result = {**result, "memorisation": {key: value for key, value in memorised.items()
                                             if key not in ("nearest_train", "synthetic_nearest", "held_out_nearest")}}
    return result


def _row_costs(run, name: str) -> dict:
    from mgm_tf.report import stage_rows

    by_stage = {row["stage"]: row for row in stage_rows(run, all_stages=True)}
    stages = [stage for stage in ROW_STAGES[name] if stage in by_stage]
    loss_row = by_stage.get(LOSS_STAGE.get(name, ""), {})
    return {"stages": stages, "train_seconds": float(sum(by_stage[s]["train_seconds"] for s in stages)),
            "trainable_parameters": int(sum(by_stage[s]["g_params"] + by_stage[s]["d_params"] for s in stages)),
            "final_g_loss": loss_row.get("g_loss"), "final_d_loss": loss_row.get("d_loss")}


def evaluate_run(run, prepared=None) -> dict:
    """Train what evaluation needs (domain extractor, baselines), measure every row, write
    report/metrics.json and the figures, and regenerate report/report.md."""
    from mgm_tf.pipeline import run_pipeline
    from mgm_tf.utility import utility_experiments

    if not run.is_done("export"):
        raise ValueError(f"{run.path}: nothing to evaluate yet — run the pipeline through 'export' first")
    settings = run.config.evaluation
    run_pipeline(run, ["extractor"] + (["baseline_cgan", "baseline_cyclegan"] if settings.baselines else []))
    prepared = prepared or run.prepared()
    train, test = prepared.indices("train"), prepared.indices("test")
    real_train, real_test = prepared.images_gan[train], prepared.images_gan[test]
    judge = label_fidelity.load_judge(run, prepared.num_classes)  # the domain CNN, whole: its features and its classes
    domain, inception = features.domain_extractor(judge, prepared.name), resolve_inception(settings.inception)
    sets = synthetic_sets(run, prepared)
    trust = {domain.name: feature_trust(domain, real_train, len(train)),
             "pixels (64x64 grey)": feature_trust(None, real_train, None)}
    real_diversity = metrics.diversity(real_train)
    ceiling = label_metrics(judge, real_test, prepared.labels[test], prepared.channels, prepared.class_names) \
        if len(test) else None
    rows = {}
    for name in ROWS:
        if name not in sets:
            rows[name] = {"status": "not run", **_row_costs(run, name)}
            continue
        images, labels = sets[name]
        evaluation_images = to_eval_images(images, prepared.channels)
        print(f"measuring {name}: {len(images)} images")
        entry = {"status": "measured", "num_images": len(images), "labelled": labels is not None,
                 "output_size": int(images.shape[1]), **_row_costs(run, name),
                 "diversity": metrics.diversity(evaluation_images),
                 "domain": _lean(quality_metrics(domain, real_train, real_test, evaluation_images, domain.name)),
                 "pixels": _lean(quality_metrics(None, real_train, real_test, evaluation_images, "pixels (64x64 grey)"))}
        if labels is not None:
            entry["labels"] = label_metrics(judge, images, labels, prepared.channels, prepared.class_names)
            print(f"  label agreement {label_fidelity.describe(entry['labels'])}"
                  + (f" (judge on held-out real images: {label_fidelity.describe(ceiling)})" if ceiling else ""))
        if inception is not None:  # at 64 px for every row (real too), and at 256 px for the ×4 rows
            entry["inception"] = _lean(quality_metrics(inception, real_train, real_test, evaluation_images,
                                                       f"{inception.name} @64px"))
            if images.shape[1] == prepared.images_hr.shape[1]:
                entry["inception_hr"] = _lean(quality_metrics(
                    inception, prepared.images_hr[train], prepared.images_hr[test],
                    to_eval_images(images, prepared.channels, images.shape[1]), f"{inception.name} @{images.shape[1]}px"))
        rows[name] = entry
    labelled = {name: (to_eval_images(images, prepared.channels), labels) for name, (images, labels) in sets.items()
                if labels is not None and settings.utility_methods in ("all", name)}
    utility = utility_experiments(real_train, prepared.labels[train], real_test, prepared.labels[test], labelled,
                                  prepared.num_classes, seeds=tuple(range(settings.utility_seeds)),
                                  epochs=settings.utility_epochs, reduced_fraction=settings.reduced_fraction)
    result = {"dataset": prepared.name, "smoke": run.config.smoke, "class_names": prepared.class_names,
              "extractors": {"domain": domain.name, "inception": inception.name if inception else "not computed",
                             "standard_fid": bool(inception and inception.standard)},
              "feature_trust": trust, "real_diversity": real_diversity, "label_judge": domain.name,
              "label_ceiling": ceiling, "judge_verdict": label_fidelity.judge_verdict(run, prepared.num_classes),
              "num_real_train": int(len(train)), "num_real_test": int(len(test)), "rows": rows, "utility": utility,
              "super_resolution": run.done_info("srgan").get("evaluation"),
              "vgg_weights": run.done_info("srgan").get("vgg_weights")}
    report_dir = run.path / "report"
    write_json(report_dir / "metrics.json", result)
    from mgm_tf.evaluation_report import write_evaluation_figures

    write_evaluation_figures(run, prepared, sets, domain, judge)
    from mgm_tf.report import write_run_report

    write_run_report(run, prepared)
    return result


def load_metrics(run_path) -> dict:
    path = run_path / "report" / "metrics.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
