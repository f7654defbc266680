"""Does each stage earn its place? The same candidates followed through the hybrid — G1 alone
(the conditions c it drew), G1+G2 (their refinements), + filter (the kept ones), + SR (the
export) — each measured against held-out real images, and each stage's output compared with its
input, with two controls: the filter's selection against a random one of the same size, and the
SRGAN against bicubic upsampling of the same images at full resolution.

Measured in the referee's features (`judge`: a domain CNN trained on half the real training
split that took no part in choosing images), each against the test split:
- KID (unit-scaled features) and, per stage, the change in KID over paired half-size subsets of
  the same real images: its 2.5–97.5 % range. Half-size subsets spread wider than the full set
  would, so the range is conservative.
- a classifier two-sample test (Lopez-Paz & Oquab 2017): the held-out accuracy of a classifier
  separating as many synthetic as real images, 0.5 when they cannot be told apart; with its Wilson
  interval. A ridge classifier on the features and their squares, not 1-nearest-neighbour: in
  high dimensions a noisy set's images are nearer to real images than to each other, so 1-NN
  scored a set of pure noise on real blobs 0.5, "indistinguishable".
- precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020), k = 5;
  the referee's agreement with the labels; the class shares the referee sees (a collapsed G1 puts
  most of its samples in one class); the memorised share in pixel space.
A stage is "worse" when its KID change lies above zero or its two-sample accuracy interval lies above
its input's; "better" when one of them says better and neither worse; else "indistinguishable".
"""

from __future__ import annotations

import numpy as np

from mgm_tf import classifier, judge
from mgm_tf.evaluation import features, metrics
from mgm_tf.evaluation.modes import g1_samples, mode_coverage, mode_lines, shares_text
from mgm_tf.imaging import resize_all, to_channels
from mgm_tf.io import read_csv
from mgm_tf.kid import unit_scaled

MIN_REAL = 20        # held-out real images below which no stage is judged
NEIGHBOURS = 5       # k of precision/recall and density/coverage (Naeem et al.'s choice)
SUBSETS = 100


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = NEIGHBOURS) -> dict:
    """Density (how many real k-NN balls hold each synthetic sample, /k: ≈ 1 for a matching set,
    robust to outliers in the real set) and coverage (the share of real samples whose ball holds at
    least one synthetic sample), Naeem et al. 2020."""
    k = max(1, min(k, len(real) - 1))
    radii = metrics._kth_neighbour_radii(real, k)
    inside = metrics.pairwise_distances(fake, real) <= radii[None, :]
    return {"density": float(inside.sum(axis=1).mean() / k), "coverage": float(inside.any(axis=0).mean()), "k": k}


def classifier_two_sample_test(real: np.ndarray, fake: np.ndarray, folds: int = 5, ridge: float = 10.0,
                               seed: int = 0) -> dict:
    """Held-out accuracy of a classifier told to separate equal numbers of real and synthetic
    samples (the larger set subsampled): ridge regression on ±1 targets over the standardised
    features and their squares (squares let a linear rule see a set that is noisier or narrower
    than the real one, not only one that is shifted), k-fold; with the count and its Wilson
    interval. 0.5: the sets cannot be told apart; 1.0: every image is told apart."""
    size = min(len(real), len(fake))
    rng = np.random.default_rng(seed)
    real = real[rng.choice(len(real), size, replace=False)]
    fake = fake[rng.choice(len(fake), size, replace=False)]
    inputs = np.concatenate([real, fake])
    inputs = (inputs - inputs.mean(axis=0)) / np.maximum(inputs.std(axis=0), 1e-8)
    inputs = np.concatenate([inputs, inputs ** 2 - 1.0, np.ones((len(inputs), 1))], axis=1)
    targets = np.concatenate([-np.ones(size), np.ones(size)])
    fold_of = rng.permutation(2 * size) % folds
    correct = 0
    for fold in range(folds):
        train, held = fold_of != fold, fold_of == fold
        gram = inputs[train].T @ inputs[train] + ridge * np.eye(inputs.shape[1])
        weights = np.linalg.solve(gram, inputs[train].T @ targets[train])
        correct += int((np.sign(inputs[held] @ weights) == targets[held]).sum())
    low, high = judge.wilson_interval(correct, 2 * size)
    return {"accuracy": correct / (2 * size), "correct": correct, "n": 2 * size, "low": low, "high": high}


def kid_change(real: np.ndarray, before: np.ndarray, after: np.ndarray, seed: int = 0,
               subsets: int = SUBSETS) -> dict:
    """KID(after) − KID(before) on paired half-size subsets: each draw takes one real subset and
    one subset of each set (the same positions where the sets are paired image by image)."""
    rng = np.random.default_rng(seed)
    size = max(2, min(len(real), len(before), len(after)) // 2)
    paired = len(before) == len(after)
    changes = []
    for _ in range(subsets):
        real_part = real[rng.choice(len(real), size, replace=False)]
        first = rng.choice(len(before), size, replace=False)
        second = first if paired else rng.choice(len(after), size, replace=False)
        changes.append(_kid(real_part, after[second]) - _kid(real_part, before[first]))
    changes = np.array(changes)
    return {"mean": float(changes.mean()), "low": float(np.quantile(changes, 0.025)),
            "high": float(np.quantile(changes, 0.975)), "subset_size": size}


def _kid(real: np.ndarray, fake: np.ndarray) -> float:
    return metrics.kernel_inception_distance(real, fake, num_subsets=1, subset_size=len(fake))["mean"]


def verdict(change: dict, before: dict, after: dict) -> str:
    """better / indistinguishable / worse from the KID change's range and the two-sample intervals."""
    worse = change["low"] > 0 or after["low"] > before["high"]
    better = change["high"] < 0 or after["high"] < before["low"]
    return "worse" if worse else "better" if better else "indistinguishable"


def measure_set(name: str, images: np.ndarray, labels, space: dict, seed: int = 0) -> dict:
    """One row: KID, the two-sample test, precision/recall, density/coverage, label agreement, class
    shares, memorised share — of `images` (uint8 64 px) against the held-out real images."""
    real, extractor = space["real_features"], space["extractor"]
    own = space["scale"](features.extract(extractor, images))
    row = {"name": name, "n": int(len(images)), "features": own,
           "kid": metrics.kernel_inception_distance(real, own, num_subsets=SUBSETS, subset_size=len(real) // 2),
           "two_sample": classifier_two_sample_test(real, own, seed=seed),
           **metrics.precision_recall(real, own, min(NEIGHBOURS, len(real) - 1, len(own) - 1)),
           **density_coverage(real, own)}
    calls = classifier.classify(space["referee"], images, space["channels"]).argmax(axis=1)
    row["class_shares"] = (np.bincount(calls, minlength=space["num_classes"]) / max(1, len(calls))).tolist()
    if labels is not None:
        row["label_agreement"] = float(np.mean(calls == np.asarray(labels)))
    pixels = _pixels(images)
    row["memorised"] = metrics.memorisation(space["train_pixels"], pixels, space["test_pixels"])["flagged_fraction"]
    return row


def _pixels(images: np.ndarray) -> np.ndarray:
    return resize_all(to_channels(images, 1), 64).reshape(len(images), -1).astype(np.float64) / 255.0


def measurement_space(run, prepared) -> dict | None:
    """The referee's features of the held-out real images (and what else every row needs), or
    None with too few held-out images or no referee."""
    test = prepared.indices("test")
    if len(test) < MIN_REAL:
        return None
    referee = judge.load(run, "referee", prepared.num_classes)
    if referee is None:
        return None
    extractor = features.domain_extractor(referee, prepared.name)
    raw = features.extract(extractor, prepared.images_gan[test])
    scale = float(np.sqrt(np.mean(raw ** 2))) or 1.0
    return {"extractor": extractor, "referee": referee, "channels": prepared.channels,
            "num_classes": prepared.num_classes, "real_features": unit_scaled(raw)[0],
            "scale": lambda values: values / scale, "real_shares": (np.bincount(prepared.labels[test], minlength=prepared.num_classes)
                                                            / len(test)).tolist(),
            "train_pixels": _pixels(prepared.images_gan[prepared.indices("train")]),
            "test_pixels": _pixels(prepared.images_gan[test])}


def chain_sets(run, prepared) -> dict:
    """The same candidates after each stage (uint8 64 px, labels): G1's conditions, G2's
    refinements, the filter's selection and a random selection of the same size per class, the
    export viewed at 64 px; and the export at full size with the bicubic upsampling of its inputs."""
    conditions = np.load(run.path / "candidates" / "conditions.npy")
    refined = np.load(run.path / "candidates" / "images.npy")
    rows = read_csv(run.path / "filter" / "scores.csv")
    labels = np.array([int(row["label"]) for row in rows], np.int32)
    selected = np.array([int(row["selected"]) for row in rows], bool)
    chance = random_selection(labels, selected, run.config.seed)
    sets = {"G1 alone": (conditions, labels), "G1+G2": (refined, labels),
            "+ filter": (refined[selected], labels[selected]), "random 20 % (control)": (refined[chance], labels[chance])}
    if (run.path / "synthetic" / "manifest.csv").exists():
        from mgm_tf.evaluation.measure import exported_dataset

        exported, exported_labels = exported_dataset(run, prepared.channels)
        sets["+ SR (export)"] = (resize_all(exported, 64), exported_labels)
    return sets


def random_selection(labels: np.ndarray, selected: np.ndarray, seed: int) -> np.ndarray:
    """As many candidates per class as the filter kept, drawn at random: the filter's control."""
    rng = np.random.default_rng(seed + 404)
    chosen = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        chosen[rng.choice(members, int(selected[members].sum()), replace=False)] = True
    return chosen


CHAIN = (("G1+G2", "G1 alone"), ("+ filter", "G1+G2"), ("+ SR (export)", "+ filter"),
         ("+ filter", "random 20 % (control)"), ("+ SR (export)", "DCGAN alone"), ("+ SR (export)", "cGAN baseline"))


def comparison_sets(run, prepared, count: int) -> dict:
    """The rows beside the chain: DCGAN alone (G1's samples for fresh seeds, as `evaluate` draws
    them) and the cGAN baseline where it ran, `count` images each, at 64 px."""
    from mgm_tf.evaluation.samples import baseline_sets

    sets = {"DCGAN alone": g1_samples(run, prepared, count)}
    baselines = baseline_sets(run, prepared, count)
    if "cGAN" in baselines:
        sets["cGAN baseline"] = baselines["cGAN"]
    return sets


def radial_spectra(images: np.ndarray, bins: int = 48) -> np.ndarray:
    """Per image, the log power spectrum of its grey levels averaged over rings of equal spatial
    frequency (Durall et al. 2020 read GAN and upsampling artefacts off this curve): the space
    where super-resolution either adds the fine detail real images have or does not. Images are
    brought to 256 px first (area); the DC ring is left out."""
    grey = resize_all(to_channels(np.asarray(images), 1), 256)[..., 0].astype(np.float64)
    grey -= grey.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fftshift(np.fft.fft2(grey), axes=(1, 2))) ** 2
    size = grey.shape[1]
    yy, xx = np.indices((size, size)) - size // 2
    ring = np.minimum((np.hypot(yy, xx) / (size // 2) * bins).astype(int), bins)
    counts = np.bincount(ring.ravel(), minlength=bins + 1)[1:bins]
    sums = np.stack([np.bincount(ring.ravel(), weights=image.ravel(), minlength=bins + 1)[1:bins] for image in power])
    return np.log(sums / counts + 1e-6)


def super_resolution_control(run, prepared, seed: int = 0) -> dict | None:
    """The SRGAN against bicubic upsampling of the same selected candidates at 256 px, each against
    held-out real images at 256 px, in radial-spectrum features: KID, the two-sample test and the
    verdict of the SRGAN's images against bicubic's."""
    from mgm_tf.evaluation.measure import exported_dataset

    test = prepared.indices("test")
    if len(test) < MIN_REAL or not (run.path / "synthetic" / "manifest.csv").exists():
        return None
    refined = np.load(run.path / "candidates" / "images.npy")
    selected = [int(row["id"]) for row in read_csv(run.path / "filter" / "selected.csv")]
    bicubic = resize_all(refined[selected], 256, "cubic")
    exported, _ = exported_dataset(run, prepared.channels)
    return spectral_comparison(prepared.images_hr[test], bicubic, exported, seed)


def spectral_comparison(real: np.ndarray, baseline: np.ndarray, candidate: np.ndarray, seed: int = 0,
                        names: tuple[str, str] = ("bicubic ×4", "SRGAN ×4")) -> dict:
    """Two image sets against real ones in radial-spectrum features: KID and the two-sample test
    for each, and the verdict of `candidate` against `baseline`. The spectra are centred and scaled
    by all three sets together: scaled by the real ones alone (one template's slices agree to a
    fraction of a log unit) a set of upsampled images lay hundreds of units out and KID's cubic
    kernel turned that into numbers of 10^7."""
    sets = [radial_spectra(images) for images in (real, baseline, candidate)]
    center = np.concatenate(sets).mean(axis=0)
    scale = float(np.sqrt(np.mean((np.concatenate(sets) - center) ** 2))) or 1.0
    real, baseline, candidate = ((values - center) / scale for values in sets)
    rows = {}
    for name, values in zip(names, (baseline, candidate)):
        rows[name] = {"n": int(len(values)), "two_sample": classifier_two_sample_test(real, values, seed=seed),
                      "kid": metrics.kernel_inception_distance(real, values, num_subsets=SUBSETS,
                                                               subset_size=max(2, len(real) // 2))}
    change = kid_change(real, baseline, candidate, seed)
    return {"rows": rows, "kid_change": change,
            "verdict": verdict(change, rows[names[0]]["two_sample"], rows[names[1]]["two_sample"])}


def stage_value(run, prepared, extra_sets=None, seed: int = 0) -> dict:
    """Every chain set (and `extra_sets`: a dict, or a function of (run, prepared) giving one,
    called only when there is something to judge) measured; each stage against its input."""
    space = measurement_space(run, prepared)
    if space is None:
        return {"judged": False, "reason": f"fewer than {MIN_REAL} held-out real images, or no referee "
                                           f"({len(prepared.indices('test'))} test images)"}
    chain = chain_sets(run, prepared)
    extra = extra_sets(run, prepared, len(chain["+ filter"][0])) if callable(extra_sets) else extra_sets
    sets = {**chain, **(extra or {})}
    rows = {name: measure_set(name, images, labels, space, seed) for name, (images, labels) in sets.items()}
    stages = []
    for after, before in CHAIN:
        if after in rows and before in rows:
            change = kid_change(space["real_features"], rows[before]["features"], rows[after]["features"], seed)
            stages.append({"stage": after, "input": before, "kid_change": change,
                           "verdict": verdict(change, rows[before]["two_sample"], rows[after]["two_sample"])})
    for row in rows.values():
        row.pop("features")
    return {"judged": True, "rows": rows, "stages": stages, "real_shares": space["real_shares"],
            "modes": mode_coverage(run, prepared, space, seed=seed),
            "num_real": len(space["real_features"]), "space": space["extractor"].name,
            "super_resolution": super_resolution_control(run, prepared, seed)}


def _interval(entry: dict, scale: float = 100.0) -> str:
    return f"{entry['mean'] * scale:+.2f} [{entry['low'] * scale:+.2f}, {entry['high'] * scale:+.2f}]"


def stage_value_lines(result: dict, baselines=("DCGAN alone", "cGAN baseline")) -> list[str]:
    """The report's section: a row per set, a verdict per stage, and what beats the export."""
    lines = ["## Does each stage earn its place?", ""]
    if not result.get("judged"):
        return lines + [f"Not judged: {result.get('reason')}.", ""]
    lines += [f"The same candidates after each stage, against {result['num_real']} held-out real images, in "
              f"`{result['space']}` features. KID ×100 (± std over subsets); two-sample: held-out accuracy of a classifier "
              "separating equal numbers of real and synthetic images (0.5: cannot be told apart; 1.0: every image "
              "told apart), 95 % interval; P/R precision/recall, D/C density/coverage "
              "(k = 5); labels: the referee's agreement with the labels; classes: the referee's class shares "
              f"(real: {shares_text(result['real_shares'])}); memorised: share closer to a training image than held-out "
              "real images come.", "",
              "| set | n | KID ×100 | two-sample accuracy | P / R | D / C | labels | classes | memorised |",
              "|---|---|---|---|---|---|---|---|---|"]
    for name, row in result["rows"].items():
        test = row["two_sample"]
        agreement = f"{row['label_agreement']:.0%}" if "label_agreement" in row else "—"
        lines.append(f"| {name} | {row['n']} | {row['kid']['mean'] * 100:.2f} ± {row['kid']['std'] * 100:.2f} | "
                     f"{test['accuracy']:.2f} [{test['low']:.2f}, {test['high']:.2f}] | {row['precision']:.2f} / "
                     f"{row['recall']:.2f} | {row['density']:.2f} / {row['coverage']:.2f} | {agreement} | "
                     f"{shares_text(row['class_shares'])} | {row['memorised']:.0%} |")
    lines += ["", "| stage | compared with | KID ×100 change [95 % range] | verdict |", "|---|---|---|---|"]
    lines += [f"| {entry['stage']} | {entry['input']} | {_interval(entry['kid_change'])} | **{entry['verdict']}** |"
              for entry in result["stages"]]
    return (lines + [""] + mode_lines(result.get("modes")) + _super_resolution_lines(result.get("super_resolution"))
            + _baseline_lines(result, baselines))


def _super_resolution_lines(control: dict | None) -> list[str]:
    """The SRGAN against bicubic at 256 px, in radial-spectrum features."""
    if not control:
        return []
    rows = control["rows"]
    cells = "; ".join(f"{name}: KID ×100 {row['kid']['mean'] * 100:.2f}, two-sample {row['two_sample']['accuracy']:.2f} "
                      f"[{row['two_sample']['low']:.2f}, {row['two_sample']['high']:.2f}]" for name, row in rows.items())
    return [f"SR against bicubic on the same selected images at 256 px, in radial power-spectrum features (what "
            f"fine detail an image has) against held-out real images: {cells}; KID ×100 change "
            f"{_interval(control['kid_change'])}: **{control['verdict']}**.", ""]


def _baseline_lines(result: dict, baselines) -> list[str]:
    """A plain sentence per baseline: it beats the export where the table's verdict says the export
    is worse than it; point estimates that favour it inside the noise are named as such."""
    rows = result["rows"]
    final_name = "+ SR (export)" if "+ SR (export)" in rows else "+ filter"
    final = rows.get(final_name)
    verdicts = {entry["input"]: entry["verdict"] for entry in result["stages"] if entry["stage"] == final_name}
    lines = []
    for name in baselines:
        if name not in rows or final is None:
            continue
        ahead = rows[name]["kid"]["mean"] < final["kid"]["mean"] and \
            rows[name]["two_sample"]["accuracy"] < final["two_sample"]["accuracy"]
        if verdicts.get(name) == "worse":
            lines.append(f"**{name} beats the export**: on this run the hybrid does not pay for its stages.")
        elif ahead:
            lines.append(f"{name} scores better than the export on both KID and the two-sample test, within the "
                         "noise (indistinguishable): the hybrid has not shown that its stages pay.")
        else:
            lines.append(f"{name} does not beat the export.")
    return lines + ([""] if lines else [])


def stage_figure(run, prepared, path, title: str, per_row: int = 8):
    """Real held-out images above the same candidates after each stage: G1's condition, G2's
    refinement, and the export (the filter's best, super-resolved) — the picture a reader
    checks a stage table against."""
    from mgm_tf.plots import save_grid

    sets = chain_sets(run, prepared)
    test = prepared.indices("test")
    labels = sets["G1 alone"][1]
    chosen = np.concatenate([np.flatnonzero(labels == label)[:per_row // prepared.num_classes + 1]
                             for label in range(prepared.num_classes)])[:per_row]
    real = test[np.linspace(0, len(test) - 1, per_row).astype(int)] if len(test) else test
    rows = [("real (held out)", prepared.images_gan[real]), ("G1 alone", sets["G1 alone"][0][chosen]),
            ("G1+G2", sets["G1+G2"][0][chosen])]
    if "+ SR (export)" in sets:
        exported = sets["+ SR (export)"][0]
        rows.append(("export (filter + SR)", exported[np.linspace(0, len(exported) - 1, per_row).astype(int)]))
    images = np.concatenate([_three_channels(resize_all(images, 64)) for _, images in rows])
    titles = [name if column == 0 else "" for name, images in rows for column in range(len(images))]
    return save_grid(images, path, titles=titles, columns=per_row, title=title)


def _three_channels(images: np.ndarray) -> np.ndarray:
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images
