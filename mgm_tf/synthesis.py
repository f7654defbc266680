"""The `synthesize` stage: candidate images x = G2(z2, c, y) for every class, one recorded seed
per image. For a class the judge can check (`judge.label_status`), c = G1(z1) is redrawn until
the judge's p(y | c) reaches the class's acceptance threshold (rejection sampling); for a class
it cannot check, c is the paper's class-blind draw. Every candidate is then judged
(`judge.judge_images`: p(y) against the class's threshold, and its place among real class-y
images in the judge's features), which the filter decides on, and scored by the referee (its
prediction, reported, never used to choose). Each row's label status is its own
(`judge.row_status`), not its class's.
"""

from __future__ import annotations

import numpy as np

from mgm_tf import classifier, judge
from mgm_tf.dcgan import load_dcgan_generator
from mgm_tf.sampling import draw_conditions, image_seed, progress, refine
from mgm_tf.imaging import from_model_range
from mgm_tf.io import save_array, write_csv
from mgm_tf.plots import save_grid
from mgm_tf.refinement import build_conditional

CONDITIONINGS = ("class_aware", "class_blind", "conditional_g1")
REDRAWN = ("class_aware", "conditional_g1")  # c redrawn until the judge accepts it, for checked classes


def load_generators(run, class_names):
    """G1 and G2 with their trained weights, plus per-class fine-tuned G2s where present."""
    dcgan_generator = load_dcgan_generator(run, len(class_names))
    conditional_generator, _ = build_conditional(run.config.cgan, len(class_names), run.grey_output())
    conditional_generator.load_weights(str(run.path / "cgan" / "generator.weights.h5"))
    per_class = {}
    for label, class_name in enumerate(class_names):
        weights = run.path / "cgan" / "finetune" / class_name / "generator.weights.h5"
        if weights.exists():
            per_class[label], _ = build_conditional(run.config.cgan, len(class_names), run.grey_output())
            per_class[label].load_weights(str(weights))
    return dcgan_generator, conditional_generator, per_class


def class_aware_conditions(dcgan_generator, selector, labels: np.ndarray, seeds: np.ndarray, thresholds: np.ndarray,
                           latent_dim: int, channels: int, max_attempts: int = 20,
                           label: str = "class-aware conditions") -> dict:
    """Rejection sampling of c: for every image, draw c = G1(z1) until the judge's p(y | c)
    reaches the image's class threshold (batched: each round redraws only the images still
    pending). An image whose `max_attempts` draws all fail keeps the draw with the highest p(y)
    and is marked not accepted. Returns per image: the kept attempt, the number of draws made,
    whether it was accepted, p(y | c) of the kept condition, and the kept conditions themselves
    (model range) — kept, not recomputed, so what was accepted is what G2 refines."""
    if max_attempts < 1:
        raise ValueError(f"synthesis.condition_attempts must be at least 1, got {max_attempts}")
    labels, seeds = np.asarray(labels, np.int32), np.asarray(seeds)
    count = len(labels)
    result = {"attempts": np.zeros(count, np.int32), "draws": np.zeros(count, np.int32),
              "accepted": np.zeros(count, bool), "probability": np.full(count, -1.0),
              "conditions": np.zeros((count, 64, 64, 3), np.float32)}
    pending = np.arange(count)
    bar = progress(count, label, unit="condition")
    for attempt in range(max_attempts):
        if not len(pending):
            break
        conditions = draw_conditions(dcgan_generator, labels[pending], seeds[pending], np.full(len(pending), attempt),
                                     latent_dim)
        own = classifier.classify(selector, from_model_range(conditions), channels)[np.arange(len(pending)), labels[pending]]
        accepted = own >= thresholds[labels[pending]]
        better = accepted | (own > result["probability"][pending])  # an accepted draw wins over a likelier rejected one
        kept = pending[better]
        result["attempts"][kept], result["probability"][kept] = attempt, own[better]
        result["conditions"][kept] = conditions[better]
        result["draws"][pending] += 1
        result["accepted"][pending[accepted]] = True
        pending = pending[~accepted]
        bar.update(count - len(pending))
    bar.update(count, finalize=True)
    return result


def candidate_plan(num_classes: int, per_class: int, seed: int):
    """Labels and per-image seeds for `per_class` candidates of every class."""
    labels = np.repeat(np.arange(num_classes, dtype=np.int32), per_class)
    indices = np.tile(np.arange(per_class), num_classes)
    seeds = np.array([image_seed(seed, int(label), int(index)) for label, index in zip(labels, indices)], np.uint64)
    return labels, seeds


CANDIDATE_COLUMNS = ("id", "class", "label", "seed", "lineage", "label_status", "label_reason", "label_accepted",
                     "condition_reason", "candidate_reason", "condition_attempt", "condition_draws", "judge_probability", "judge_class",
                     "referee_class", "referee_probability")


def synthesis_conditions(run, prepared, dcgan_generator, selector, labels, seeds) -> dict:
    """Per candidate, its condition c and how it was drawn: for checked classes, redrawn until
    the judge accepts it as y (rejection sampling: c = G1(z1) for 'class_aware', c = G1(z1, y) for a
    class-conditional G1, whose first draw is usually accepted once it has learned the classes,
    and whose labels on a 240-blob fixture at 1,500 steps were otherwise 0-70 % right); else one
    draw (unchecked classes; every class under 'class_blind', the paper's reading)."""
    settings = run.config.synthesis
    if settings.conditioning not in CONDITIONINGS:
        raise ValueError(f"synthesis.conditioning must be one of {CONDITIONINGS}, got {settings.conditioning!r}")
    if settings.condition_attempts < 1:
        raise ValueError(f"synthesis.condition_attempts must be at least 1, got {settings.condition_attempts}")
    latent_dim, status = run.config.cgan.latent_dim, judge.label_status(run, prepared.class_names)
    thresholds = np.array([status[name]["threshold"] if status[name]["threshold"] is not None else np.inf
                           for name in prepared.class_names])
    aware = np.isfinite(thresholds[labels]) if settings.conditioning in REDRAWN else np.zeros(len(labels), bool)
    drawn = {"attempts": np.zeros(len(labels), np.int32), "draws": np.ones(len(labels), np.int32),
             "accepted": np.zeros(len(labels), bool), "aware": aware,
             "conditions": draw_conditions(dcgan_generator, labels, seeds, np.zeros(len(labels), np.int32), latent_dim)}
    if aware.any():
        drawn_from = "G1(z1, y)" if settings.conditioning == "conditional_g1" else "G1(z1)"
        found = class_aware_conditions(dcgan_generator, selector, labels[aware], seeds[aware], thresholds, latent_dim,
                                       prepared.channels, settings.condition_attempts,
                                       label=f"class-aware conditions: c = {drawn_from} the judge accepts as y")
        for key in ("attempts", "draws", "accepted", "conditions"):
            drawn[key][aware] = found[key]
    return drawn


def lineage(conditioning: str, aware: bool, accepted: bool, finetuned: bool) -> str:
    """How a candidate was made, e.g. 'dcgan(class_aware)>cgan'."""
    if conditioning == "class_aware" and not aware:
        drawn = "class_blind"
    else:
        drawn = conditioning + ("" if accepted or not aware else ", no draw accepted")
    return f"dcgan({drawn})>cgan" + (">finetuned" if finetuned else "")


def candidate_rows(run, prepared, labels, seeds, drawn, judged, refereed, finetuned: bool) -> list[dict]:
    """One row per candidate: how it was made, the judge's verdict on it, the referee's call, and
    its own label status and reason so far (the export judges the exported image again)."""
    status, settings = judge.label_status(run, prepared.class_names), run.config.synthesis
    rows = []
    for index, (label, seed) in enumerate(zip(labels, seeds)):
        name, refereed_as = prepared.class_names[label], int(refereed[index].argmax())
        aware, accepted = bool(drawn["aware"][index]), bool(drawn["accepted"][index])
        condition = judge.condition_reason(settings.conditioning, aware, accepted)
        candidate = f"candidate: {judged['reasons'][index]}" if status[name]["status"] == "checked" \
            and judged["reasons"][index] else ""
        row_status, reason = judge.row_status(status[name], settings.label_check, condition, candidate)
        rows.append({"id": index, "class": name, "label": int(label), "seed": int(seed),
                     "lineage": lineage(settings.conditioning, aware, accepted, finetuned),
                     "label_status": row_status, "label_reason": reason,
                     "label_accepted": int(judged["accepted"][index]), "condition_reason": condition,
                     "candidate_reason": candidate,
                     "condition_attempt": int(drawn["attempts"][index]), "condition_draws": int(drawn["draws"][index]),
                     "judge_probability": round(float(judged["probability"][index]), 4),
                     "judge_class": prepared.class_names[int(judged["probabilities"][index].argmax())],
                     "referee_class": prepared.class_names[refereed_as],
                     "referee_probability": round(float(refereed[index, refereed_as]), 4)})
    return rows


def save_g1_then_g2(path, conditions: np.ndarray, refined: np.ndarray, labels: np.ndarray, class_names) -> None:
    """Eight candidates, as many of each class as fit: G1's sample c above G2's refinement of it,
    each titled by row and class."""
    per_class = max(1, 8 // len(class_names))
    chosen = np.concatenate([np.flatnonzero(labels == label)[:per_class] for label in range(len(class_names))])[:8]
    names = [class_names[int(labels[index])] for index in chosen]
    save_grid(np.concatenate([conditions[chosen], refined[chosen]]), path, columns=len(chosen),
              titles=[f"G1: c for {name}" for name in names] + [f"G2: {name}" for name in names],
              title="top row: G1's samples c; bottom row: G2's refinements of the same c", cell=1.4 * 8 / len(chosen))


def stage_synthesize(run, prepared, strategy=None) -> dict:
    """MixGANMed synthesis: c drawn for class y (see `synthesis_conditions`), then x = G2(z2, c, y)
    for every class → candidates/, each scored by the judge and the referee."""
    stage_dir = run.stage_dir("candidates")
    labels, seeds = candidate_plan(prepared.num_classes, run.config.filter.candidates_per_class, run.config.seed)
    dcgan_generator, conditional_generator, per_class = load_generators(run, prepared.class_names)
    selector, referee = (judge.load(run, name, prepared.num_classes) for name in judge.NETWORKS)
    drawn = synthesis_conditions(run, prepared, dcgan_generator, selector, labels, seeds)
    refined = refine(conditional_generator, drawn["conditions"], labels, seeds, run.config.cgan.latent_dim,
                     label="synthesis: G2(z2, c, y)", class_generators=per_class)
    save_array(stage_dir / "images.npy", refined)
    save_array(stage_dir / "conditions.npy", from_model_range(drawn["conditions"]))
    thresholds = [entry["threshold"] for entry in judge.label_status(run, prepared.class_names).values()]
    judged = judge.judge_images(selector, refined, labels, prepared.channels, thresholds)
    refereed = classifier.classify(referee, refined, prepared.channels)
    rows = candidate_rows(run, prepared, labels, seeds, drawn, judged, refereed, bool(per_class))
    write_csv(stage_dir / "candidates.csv", rows, CANDIDATE_COLUMNS)
    save_g1_then_g2(stage_dir / "g1_then_g2.png", from_model_range(drawn["conditions"]), refined, labels,
                    prepared.class_names)
    aware = drawn["aware"]
    return {"num_candidates": len(rows), "directory": "candidates", "conditioning": run.config.synthesis.conditioning,
            "class_aware_classes": sorted({prepared.class_names[label] for label in labels[aware]}),
            "conditions_accepted": float(drawn["accepted"][aware].mean()) if aware.any() else None,
            "mean_condition_draws": float(drawn["draws"][aware].mean()) if aware.any() else None}
