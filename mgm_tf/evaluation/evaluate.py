"""`python -m mgm_tf evaluate --run RUN`: every row of the paper's comparison measured the same way.

Rows (DESIGN.md baselines and ablations): DCGAN alone, cGAN alone, CycleGAN (class 0 ↔ 1),
SRGAN on DCGAN output, DCGAN→cGAN, DCGAN→cGAN→filter, MixGANMed. Rows that reuse the main
run's networks cost nothing to train; cGAN and CycleGAN are trained here (stages
baseline_cgan / baseline_cyclegan) when `evaluation.baselines` is on. Each row gets the same
number of synthetic images: as many as the final MixGANMed export.
"""

from __future__ import annotations

import json

import numpy as np

from mgm_tf import judge
from mgm_tf.dcgan import load_dcgan_generator, unconditional_samples
from mgm_tf.evaluation import features, label_fidelity, metrics
from mgm_tf.evaluation.measure import (exported_dataset, feature_trust, label_metrics, lean, quality_metrics,
                                       to_eval_images)
from mgm_tf.evaluation.samples import baseline_sets
from mgm_tf.evaluation.comparison_report import write_evaluation_figures
from mgm_tf.evaluation.report import stage_rows, write_run_report
from mgm_tf.evaluation.utility import utility_experiments
from mgm_tf.sampling import class_cycle, image_seed
from mgm_tf.io import read_csv, write_json
from mgm_tf.pipeline import run_pipeline
from mgm_tf.srgan import build_srgan, super_resolve

ROWS = ("DCGAN", "cGAN", "CycleGAN", "SRGAN (on DCGAN)", "DCGAN→cGAN", "DCGAN→cGAN→filter", "MixGANMed")
LOSS_STAGE = {"DCGAN": "dcgan", "cGAN": "baseline_cgan", "CycleGAN": "baseline_cyclegan",
              "SRGAN (on DCGAN)": "srgan", "MixGANMed": "cgan"}
ROW_STAGES = {"DCGAN": ("dcgan",), "cGAN": ("baseline_cgan",), "CycleGAN": ("baseline_cyclegan",),
              "SRGAN (on DCGAN)": ("dcgan", "srgan"), "DCGAN→cGAN": ("dcgan", "cgan"),
              "DCGAN→cGAN→filter": ("dcgan", "cgan"), "MixGANMed": ("dcgan", "cgan", "srgan")}


def synthetic_sets(run, prepared) -> dict:
    """{row: (uint8 images at the method's output size, labels or None)} for every row that ran."""
    final_images, final_labels = exported_dataset(run, prepared.channels)
    count, per_class = len(final_labels), max(1, len(final_labels) // prepared.num_classes)
    seeds = np.array([image_seed(run.config.seed + 7, 0, index) for index in range(count)], np.uint64)
    dcgan_generator = load_dcgan_generator(run, prepared.num_classes)
    dcgan_labels = class_cycle(prepared.num_classes, count) if len(dcgan_generator.inputs) > 1 else None
    dcgan_images = unconditional_samples(dcgan_generator, seeds, run.config.dcgan.latent_dim,
                                         labels=dcgan_labels, label="DCGAN")
    sr_generator, _ = build_srgan(run.config.srgan)
    sr_generator.load_weights(str(run.path / "srgan" / "generator.weights.h5"))
    candidates = np.load(run.path / "candidates" / "images.npy")
    rows = read_csv(run.path / "candidates" / "candidates.csv")
    labels = np.array([int(row["label"]) for row in rows])
    unfiltered = np.concatenate([np.flatnonzero(labels == label)[:per_class] for label in range(prepared.num_classes)])
    selected = [int(row["id"]) for row in read_csv(run.path / "filter" / "selected.csv")]
    sets = {"DCGAN": (dcgan_images, None),
            "SRGAN (on DCGAN)": (super_resolve(sr_generator, dcgan_images, label="SRGAN on DCGAN"), None),
            "DCGAN→cGAN": (candidates[unfiltered], labels[unfiltered].astype(np.int32)),
            "DCGAN→cGAN→filter": (candidates[selected], labels[selected].astype(np.int32)),
            "MixGANMed": (final_images, final_labels)}
    sets.update(baseline_sets(run, prepared, count))
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


def _row_costs(run, name: str) -> dict:
    by_stage = {row["stage"]: row for row in stage_rows(run, all_stages=True)}
    stages = [stage for stage in ROW_STAGES[name] if stage in by_stage]
    loss_row = by_stage.get(LOSS_STAGE.get(name, ""), {})
    return {"stages": stages, "train_seconds": float(sum(by_stage[s]["train_seconds"] for s in stages)),
            "trainable_parameters": int(sum(by_stage[s]["g_params"] + by_stage[s]["d_params"] for s in stages)),
            "final_g_loss": loss_row.get("g_loss"), "final_d_loss": loss_row.get("d_loss")}


def measure_row(name, images, labels, real, prepared, extractors, referee, ceiling, confusion=None) -> dict:
    """One row of the comparison: quality in the domain, pixel and (when available) Inception
    spaces, diversity, and label agreement for labelled rows."""
    real_train, real_test = real
    domain, inception = extractors
    evaluation_images = to_eval_images(images, prepared.channels)
    print(f"measuring {name}: {len(images)} images")
    entry = {"status": "measured", "num_images": len(images), "labelled": labels is not None,
             "output_size": int(images.shape[1]),
             "diversity": metrics.diversity(evaluation_images),
             "domain": lean(quality_metrics(domain, real_train, real_test, evaluation_images, domain.name)),
             "pixels": lean(quality_metrics(None, real_train, real_test, evaluation_images, "pixels (64x64 grey)"))}
    if labels is not None:
        entry["labels"] = label_metrics(referee, images, labels, prepared.channels, prepared.class_names, confusion)
        print(f"  referee's label agreement {label_fidelity.describe(entry['labels'])}"
              + (f" (referee on held-out real images: {label_fidelity.describe(ceiling)})" if ceiling else ""))
    if inception is not None:  # at 64 px for every row (real too), and at 256 px for the ×4 rows
        entry["inception"] = lean(quality_metrics(inception, real_train, real_test, evaluation_images,
                                                  f"{inception.name} @64px"))
        if images.shape[1] == prepared.images_hr.shape[1]:
            train, test = prepared.indices("train"), prepared.indices("test")
            entry["inception_hr"] = lean(quality_metrics(
                inception, prepared.images_hr[train], prepared.images_hr[test],
                to_eval_images(images, prepared.channels, images.shape[1]), f"{inception.name} @{images.shape[1]}px"))
    return entry


def evaluation_part(run, prepared) -> np.ndarray:
    """The held-out images nothing was calibrated on (the judge stage's evaluation part): the
    utility test's test set and the referee's reference."""
    stored = run.done_info("judge").get("evaluation_indices")
    if stored is None:  # a judge stage from before the held-out split was divided
        print(f"warning: {run.done_path('judge')} has no evaluation part (an older judge stage): the whole test "
              "split serves; delete that file and run the judge stage again to separate calibration from evaluation")
        return prepared.indices("test")
    return np.asarray(stored, np.int64)


def utility_of(sets: dict, prepared, settings, test: np.ndarray) -> dict:
    """Downstream classifiers trained with each labelled synthetic set (`utility_experiments`),
    tested on the evaluation part of the held-out images."""
    train = prepared.indices("train")
    labelled = {name: (to_eval_images(images, prepared.channels), labels) for name, (images, labels) in sets.items()
                if labels is not None and settings.utility_methods in ("all", name)}
    return utility_experiments(prepared.images_gan[train], prepared.labels[train], prepared.images_gan[test],
                               prepared.labels[test], labelled, prepared.num_classes,
                               seeds=tuple(range(settings.utility_seeds)), epochs=settings.utility_epochs,
                               reduced_fraction=settings.reduced_fraction)


def evaluate_run(run, prepared=None) -> dict:
    """Train what evaluation needs (the judge stage's referee, the baselines), measure every row,
    write report/metrics.json and the figures, and regenerate report/report.md. Label agreement
    and the domain features are the referee's: it took no part in choosing the images."""
    if not run.is_done("export"):
        raise ValueError(f"{run.path}: nothing to evaluate yet — run the pipeline through 'export' first")
    settings = run.config.evaluation
    run_pipeline(run, ["judge"] + (["baseline_cgan", "baseline_cyclegan"] if settings.baselines else []))
    prepared = prepared or run.prepared()
    train, test = prepared.indices("train"), prepared.indices("test")
    real = prepared.images_gan[train], prepared.images_gan[test]
    referee = judge.load(run, "referee", prepared.num_classes)
    domain, inception = features.domain_extractor(referee, prepared.name), resolve_inception(settings.inception)
    sets = synthetic_sets(run, prepared)
    evaluation = evaluation_part(run, prepared)
    ceiling = label_metrics(referee, prepared.images_gan[evaluation], prepared.labels[evaluation], prepared.channels,
                            prepared.class_names) if len(evaluation) else None
    confusion = run.done_info("judge")["referee"]["confusion"]
    rows = {name: ({**measure_row(name, *sets[name], real, prepared, (domain, inception), referee, ceiling, confusion),
                    **_row_costs(run, name)} if name in sets else {"status": "not run", **_row_costs(run, name)})
            for name in ROWS}
    result = {"dataset": prepared.name, "smoke": run.config.smoke, "class_names": prepared.class_names,
              "extractors": {"domain": domain.name, "inception": inception.name if inception else "not computed",
                             "standard_fid": bool(inception and inception.standard)},
              "feature_trust": {domain.name: feature_trust(domain, real[0], len(train)),
                                "pixels (64x64 grey)": feature_trust(None, real[0], None)},
              "real_diversity": metrics.diversity(real[0]), "label_referee": domain.name,
              "label_ceiling": ceiling, "label_status": judge.label_status(run, prepared.class_names),
              "referee_gate": run.done_info("judge")["referee"]["classes"],
              "num_real_train": int(len(train)), "num_real_test": int(len(test)),
              "num_utility_test": int(len(evaluation)), "rows": rows,
              "utility": utility_of(sets, prepared, settings, evaluation),
              "super_resolution": run.done_info("srgan").get("evaluation"),
              "vgg_weights": run.done_info("srgan").get("vgg_weights")}
    write_json(run.path / "report" / "metrics.json", result)
    write_evaluation_figures(run, prepared, sets, domain, referee, result["feature_trust"][domain.name])
    write_run_report(run, prepared)
    return result


def load_metrics(run_path) -> dict:
    path = run_path / "report" / "metrics.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
