"""Stage 3 (§3.4): the non-trainable quality filter.

Per image: variance of the Laplacian (sharpness), Shannon entropy of the grey-level histogram
(detail) and mean Sobel gradient magnitude (edges). Scores are rank-normalised within each
class, averaged, and the best `keep_fraction` of every class is kept. Batched numpy is the
default (batched OpenCV filters over stacked images, ~17,600 images/s at 64×64 on 2 CPU
cores); `scores_opencv` is the per-image OpenCV loop (~9,500 images/s) it must agree with.
"""

from __future__ import annotations

import cv2
import numpy as np

from mgm_tf import classifier, judge
from mgm_tf.plots import histograms, save_figure, save_grid
from mgm_tf.imaging import to_grey
from mgm_tf.io import read_csv, write_csv

SCORE_NAMES = ("sharpness", "entropy", "edges")
REALISM = "realism"
# "inside": the realism score capped at 1, so every candidate inside some real image's
# neighbourhood ties and the quota is filled in candidate order (their seeds' draw), the rest by
# realism: it drops what lies outside the real class and keeps the variety of what lies inside,
# where the uncapped score crowds the selection into the densest real region.
INSIDE = "inside"
FILTER_SCORES = {"paper": SCORE_NAMES, "realism": (REALISM,), "paper+realism": SCORE_NAMES + (REALISM,),
                 INSIDE: (INSIDE,)}
NEIGHBOURS = 3


def grey_images(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 1|3) → uint8 (N, H, W): the filter scores grey levels."""
    return to_grey(images)[..., 0]


def _scores_chunk(grey: np.ndarray) -> np.ndarray:
    """Each image is reflect-padded by one pixel (OpenCV's BORDER_REFLECT_101), the batch is
    stacked into one tall image and filtered by OpenCV in a single call (SIMD, threaded); the
    padding rows, where neighbouring images meet, are discarded. ~1.8× the per-image loop."""
    count, height, width = grey.shape
    padded = np.pad(grey, ((0, 0), (1, 1), (1, 1)), mode="reflect")
    tall = padded.reshape(count * (height + 2), width + 2)

    def interior(filtered):
        return filtered.reshape(count, height + 2, width + 2)[:, 1:-1, 1:-1].reshape(count, -1)

    sharpness = interior(cv2.Laplacian(tall, cv2.CV_32F, ksize=1)).var(axis=1, dtype=np.float64)
    magnitude = cv2.magnitude(cv2.Sobel(tall, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(tall, cv2.CV_32F, 0, 1, ksize=3))
    edges = interior(magnitude).mean(axis=1, dtype=np.float64)
    offsets = (np.arange(count, dtype=np.int64) * 256)[:, None]
    histogram = np.bincount((grey.reshape(count, -1) + offsets).ravel(), minlength=count * 256).reshape(count, 256)
    probability = histogram / histogram.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(probability > 0, probability * np.log2(probability), 0.0).sum(axis=1)
    return np.stack([sharpness, entropy, edges], axis=1)


def scores(images: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """(N, 3) float array: sharpness, entropy (bits), edges — vectorised over the batch."""
    grey = grey_images(images)
    return np.concatenate([_scores_chunk(grey[start:start + chunk]) for start in range(0, len(grey), chunk)]
                          or [np.zeros((0, 3))]).astype(np.float64)


def scores_opencv(images: np.ndarray) -> np.ndarray:
    """The same three scores with a per-image OpenCV loop (the reference implementation)."""
    rows = []
    for grey in grey_images(images):
        laplacian = cv2.Laplacian(grey, cv2.CV_64F, ksize=1)
        gradient_x = cv2.Sobel(grey, cv2.CV_64F, 1, 0, ksize=3)
        gradient_y = cv2.Sobel(grey, cv2.CV_64F, 0, 1, ksize=3)
        histogram = cv2.calcHist([grey], [0], None, [256], [0, 256]).ravel()
        probability = histogram[histogram > 0] / histogram.sum()
        rows.append([laplacian.var(), float(-(probability * np.log2(probability)).sum()),
                     float(np.sqrt(gradient_x ** 2 + gradient_y ** 2).mean())])
    return np.array(rows, np.float64).reshape(-1, 3)


def rank_normalise(values: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Ranks scaled to [0, 1] (best = 1); ties broken by id so the result is deterministic.
    Values are rounded to 6 decimals first: SIMD filters can give identical images scores that
    differ in the last float32 bit, which must still count as a tie."""
    values = np.round(values, 6)
    order = np.lexsort((-ids, values))  # equal values: the lower id ranks higher
    ranks = np.empty(len(values), np.float64)
    ranks[order] = np.arange(len(values))
    return ranks / max(1, len(values) - 1)


def realism_scores(candidate_features: np.ndarray, candidate_labels: np.ndarray, real_features: np.ndarray,
                   real_labels: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
    """Realism score (Kynkäänniemi et al. 2019, §5) of each candidate among the real images of its
    own class: max over real r of radius_k(r) / ‖φ(candidate) − φ(r)‖, where radius_k(r) is r's
    distance to its k-th nearest real neighbour. ≥ 1 inside the real class's manifold, larger
    where real images are dense; a candidate far from every real image of its class scores near
    0. The §3.4 scores reward high-frequency energy whatever it depicts; this one rewards
    looking like the class's real images."""
    scores = np.zeros(len(candidate_features))
    for label in np.unique(candidate_labels):
        real = real_features[real_labels == label]
        members = candidate_labels == label
        if len(real) < 2:
            continue
        radii = np.sort(_distances(real, real), axis=1)[:, min(k, len(real) - 1)]
        distances = _distances(candidate_features[members], real)
        scores[members] = (radii[None, :] / np.maximum(distances, 1e-12)).max(axis=1)
    return scores


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances len(a) × len(b) without an (a × b × features) intermediate."""
    squared = (a ** 2).sum(axis=1)[:, None] + (b ** 2).sum(axis=1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.clip(squared, 0, None))


def select(score_table: np.ndarray, labels: np.ndarray, keep_fraction: float = 0.2,
           ids: np.ndarray | None = None, eligible: np.ndarray | None = None,
           preferred: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Combined score per image (mean of the within-class ranks of every column) and a boolean mask of
    the kept images: round(keep_fraction × n) per class (at least one), best first, ties by id.
    Only `eligible` images are kept (all by default); a class with fewer eligible images than
    its quota keeps all of them, so a quota is never filled with ineligible ones. `preferred`
    images (all by default) come before the rest whatever their score: a row whose label can be
    checked is worth more than a better-scored one whose label cannot."""
    if not 0.0 < keep_fraction <= 1.0:
        raise ValueError(f"keep_fraction must be in (0, 1], got {keep_fraction}")
    labels = np.asarray(labels)
    ids = np.arange(len(labels)) if ids is None else np.asarray(ids)
    combined = np.zeros(len(labels))
    keep = np.zeros(len(labels), bool)
    eligible = np.ones(len(labels), bool) if eligible is None else np.asarray(eligible, bool)
    preferred = np.ones(len(labels), bool) if preferred is None else np.asarray(preferred, bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        ranks = [rank_normalise(score_table[members, column], ids[members]) for column in range(score_table.shape[1])]
        combined[members] = np.mean(ranks, axis=0)
        count = max(1, int(np.floor(keep_fraction * len(members) + 0.5)))
        best_first = members[np.lexsort((ids[members], -combined[members], ~preferred[members]))]
        keep[best_first[eligible[best_first]][:count]] = True
    return combined, keep


def label_eligible(rows: list[dict], label_check: str, thresholds: dict) -> np.ndarray:
    """Candidates the filter may select: all ("keep"), or ("drop") those of a checked class that
    the judge accepted (`judge.judge_images`: p(y) at its threshold, floored to refuse
    images between classes); a class without a threshold (unchecked) keeps all its candidates eligible, and its
    rows say 'unchecked'."""
    if label_check not in ("drop", "keep"):
        raise ValueError(f"synthesis.label_check must be 'drop' or 'keep', got {label_check!r}")
    if label_check == "keep":
        return np.ones(len(rows), bool)
    return np.array([thresholds.get(row["class"]) is None or int(row["label_accepted"]) == 1 for row in rows])


def check_every_class(names: dict, labels: np.ndarray, keep: np.ndarray, thresholds: dict,
                      conditioning: str = "") -> None:
    """Every class of the dataset must reach the selection; otherwise stop, naming the class and why.
    A class-conditional G1 learns the classes later than §3.2's G1 learns the images (on a 240-blob
    fixture at 1,500 steps it drew none of one class): the message offers that G1 back."""
    for label, name in names.items():
        members = labels == label
        if not members.any():
            raise ValueError(f"class {name!r} has no candidates: synthesis made none for it "
                             "(filter.candidates_per_class must be at least 1)")
        if not keep[members].any():
            raise ValueError(
                f"class {name!r}: the label judge accepted none of its {int(members.sum())} candidates (p({name}) below "
                f"its threshold {thresholds.get(name)}, or the image outside the real class): G1/G2 do not draw this class in a way the judge recognises. "
                "Train the GANs longer, synthesise more candidates (--num-images), "
                + ("train §3.2's unconditional G1 (synthesis.conditioning 'class_aware'), which learns from fewer steps, "
                   if conditioning == "conditional_g1" else "")
                + "or set synthesis.label_check 'keep' (its labels then stay unchecked)")


def stage_filter(run, prepared=None, strategy=None) -> dict:
    """§3.4: score every candidate, keep the best fraction per class → filter/*.csv. With
    synthesis.label_check "drop", a candidate of a checked class below its acceptance threshold is
    never kept. Every class must reach the selection."""
    stage_dir = run.stage_dir("filter")
    images = np.load(run.path / "candidates" / "images.npy")
    rows = read_csv(run.path / "candidates" / "candidates.csv")
    labels = np.array([int(row["label"]) for row in rows])
    ids = np.array([int(row["id"]) for row in rows])
    names = {int(row["label"]): row["class"] for row in rows}
    if prepared is not None:
        names = dict(enumerate(prepared.class_names))
    status = judge.label_status(run, list(names.values()))
    thresholds = {name: entry["threshold"] for name, entry in status.items()}
    eligible = label_eligible(rows, run.config.synthesis.label_check, thresholds)
    table = np.concatenate([scores(images), realism_column(run, prepared, images, labels)[:, None]], axis=1)
    checkable = np.array([not row.get("condition_reason") for row in rows])  # a refused condition leaves the row unchecked
    combined, keep = select(score_columns(table, run.config.filter.score), labels, run.config.filter.keep_fraction, ids,
                            eligible, eligible & checkable)
    check_every_class(names, labels, keep, thresholds, run.config.synthesis.conditioning)
    scored = [{**row, **dict(zip((*SCORE_NAMES, REALISM), map(float, table[index]))),
               "quality_score": float(combined[index]), "label_eligible": int(eligible[index]),
               "selected": int(keep[index])} for index, row in enumerate(rows)]
    columns = (*(rows[0].keys() if rows else ()), *SCORE_NAMES, REALISM, "quality_score", "label_eligible", "selected")
    write_csv(stage_dir / "scores.csv", scored, columns)
    write_csv(stage_dir / "selected.csv", [row for row in scored if row["selected"]], columns)
    write_filter_figures(stage_dir, images, table, combined, ids, [names[label] for label in labels])
    return {"num_scored": len(rows), "num_selected": int(keep.sum()), "label_check": run.config.synthesis.label_check,
            **per_class_counts(run, names, labels, eligible, keep)}


def filter_columns(setting: str) -> tuple:
    if setting not in FILTER_SCORES:
        raise ValueError(f"filter.score must be one of {tuple(FILTER_SCORES)}, got {setting!r}")
    return FILTER_SCORES[setting]


def score_columns(table: np.ndarray, setting: str) -> np.ndarray:
    """The columns of the score table (sharpness, entropy, edges, realism) a filter setting ranks."""
    names = (*SCORE_NAMES, REALISM)
    return np.stack([np.minimum(table[:, names.index(REALISM)], 1.0) if name == INSIDE else table[:, names.index(name)]
                     for name in filter_columns(setting)], axis=1)


def realism_column(run, prepared, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each candidate's realism score in the judge's features among its class's real training
    images (NaN without a judge or prepared data: then only the §3.4 scores can be used)."""
    selector = judge.load(run, "judge", prepared.num_classes) if prepared is not None else None
    if selector is None:
        if {REALISM, INSIDE} & set(filter_columns(run.config.filter.score)):
            raise ValueError("filter.score uses the realism term, which needs the judge stage's classifier; run the "
                             "judge stage first or set filter.score 'paper'")
        return np.full(len(images), np.nan)
    train = prepared.indices("train")
    real = classifier.pooled_features(selector, prepared.images_gan[train], prepared.channels)
    own = classifier.pooled_features(selector, images, prepared.channels)
    return realism_scores(own, labels, real, prepared.labels[train])


def write_filter_figures(stage_dir, images, table, combined, ids, class_names) -> None:
    """The score histograms, and the eight best and eight worst candidates titled by class and
    combined score."""
    save_figure(histograms({name: table[:, column] for column, name in enumerate((*SCORE_NAMES, REALISM))
                            if np.isfinite(table[:, column]).all()}
                           | {"combined rank score": combined}, title="quality filter scores (all candidates)"),
                stage_dir / "scores.png")
    order = np.lexsort((ids, -combined))
    shown = np.concatenate([order[:8], order[-8:]])
    titles = [f"{'best' if rank < 8 else 'worst'}: {class_names[index]}\n{combined[index]:.2f}"
              for rank, index in enumerate(shown)]
    save_grid(images[shown], stage_dir / "best_and_worst.png", titles=titles,
              title="top row: the highest combined scores; bottom row: the lowest (class, score)")


def per_class_counts(run, names: dict, labels, eligible, keep) -> dict:
    """Selected and ineligible candidates per class; a quota not filled is said (the filter never
    fills it with candidates the judge did not accept)."""
    counts = {names[label]: int(keep[labels == label].sum()) for label in sorted(names)}
    dropped = {names[label]: int((~eligible[labels == label]).sum()) for label in sorted(names)}
    quota = {names[label]: max(1, int(np.floor(run.config.filter.keep_fraction * (labels == label).sum() + 0.5)))
             for label in sorted(names)}
    short = {name: f"{counts[name]} of {quota[name]}" for name in counts if counts[name] < quota[name]}
    if short:
        print(f"warning: the label judge accepted too few candidates to fill the quota: {short}; train longer, "
              "synthesise more candidates, or set synthesis.label_check 'keep'")
    return {"selected_per_class": counts, "ineligible_per_class": dropped}
