"""Label fidelity: does a synthetic image show the class its label names?

Agreement is read off a classifier trained on real images: the referee of the `judge` stage
(`mgm_tf.judge`), which never saw the judge's training images and took no part in choosing
conditions or candidates. Raw agreement is not the share of right labels: were every label right,
the referee would agree only as often as its recall; and it agrees with some wrong labels, as
often as it calls other classes y. `estimated_accuracy` undoes both with the referee's confusion
matrix on the evaluation part of the held-out real images (two classes: q = (a − f) / (r − f)),
with an interval from posterior draws of both. The judge's own agreement
is reported beside it, and is high by construction (it chose the images).
"""

from __future__ import annotations

import numpy as np

from mgm_tf.card import describe_estimate, gate_table, percent, share
from mgm_tf.judge import wilson_interval


def agreement(labels: np.ndarray, predicted: np.ndarray, class_names) -> dict:
    """Share of images whose predicted class equals their label, overall and per class, each with
    its count of agreeing images and 95 % Wilson interval."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    per_class = {}
    for label, name in enumerate(class_names):
        members = labels == label
        right = int((predicted[members] == label).sum())
        per_class[name] = {"n": int(members.sum()), "agree": right,
                           "agreement": float(right / members.sum()) if members.any() else None,
                           "interval": list(wilson_interval(right, int(members.sum())))}
    right = int((predicted == labels).sum())
    return {"n": int(len(labels)), "agree": right, "agreement": right / len(labels) if len(labels) else None,
            "interval": list(wilson_interval(right, len(labels))), "per_class": per_class}


def describe(summary: dict) -> str:
    """'92 % (NORMAL 90 % of 20, PNEUMONIA 95 % of 20)' for an `agreement` summary."""
    per_class = ", ".join(f"{name} {percent(entry['agreement'])} of {entry['n']}"
                          for name, entry in summary["per_class"].items())
    return f"{percent(summary['agreement'])} of {summary['n']} ({per_class})"


SEPARATION = 0.1  # smallest singular value of the referee's rate matrix that lets its calls be undone


def _content_shares(rates: np.ndarray, calls: np.ndarray) -> np.ndarray | None:
    """Solve shares @ rates = calls (rates[true, called] rows of the referee's confusion on real
    images; calls the distribution of its calls on the synthetic rows) by least squares, then
    clip to [0, 1]: the estimated share of each true class among the rows. None when the referee
    cannot tell the classes apart on real images (two classes: recall − false-call rate below
    about SEPARATION), where any share would fit its calls."""
    if np.linalg.svd(rates, compute_uv=False).min() < SEPARATION:
        return None
    solution = np.linalg.lstsq(rates.T, calls, rcond=None)[0]
    return np.clip(solution, 0.0, 1.0)


def _accuracy_of(confusion: np.ndarray, calls: np.ndarray, label: int) -> float | None:
    sizes = confusion.sum(axis=1)
    known = sizes > 0
    if not known[label] or not calls.sum() or known.sum() < 2:
        return None
    rates = confusion[known][:, known] / sizes[known, None]
    shares = _content_shares(rates, calls[known] / calls.sum())
    return None if shares is None else float(shares[int(known[:label].sum())])


def estimated_accuracy(confusion, labels: np.ndarray, predicted: np.ndarray, class_names, resamples: int = 500,
                       seed: int = 0) -> dict:
    """Per class: the estimated share of rows labelled y that truly show y, from the referee's calls
    on them and its confusion matrix on real held-out images, with a 95 % interval from posterior
    draws (each confusion row and the calls drawn from a Dirichlet with the counts plus 0.5, the
    Jeffreys prior). None where the referee has no held-out image of the class or there is no row."""
    confusion = np.asarray(confusion, np.float64)
    labels, predicted = np.asarray(labels, np.int64), np.asarray(predicted, np.int64)
    num_classes, rng = len(class_names), np.random.default_rng(seed)
    sizes = confusion.sum(axis=1).astype(np.int64)
    result = {}
    for label, name in enumerate(class_names):
        calls = np.bincount(predicted[labels == label], minlength=num_classes).astype(np.float64)
        estimate = _accuracy_of(confusion, calls, label)
        if estimate is None:
            reason = ("no row" if not calls.sum() else "no held-out image of the class" if not sizes[label]
                      else "the referee cannot tell the classes apart on real images")
            result[name] = {"n": int(calls.sum()), "estimate": None, "interval": None, "reason": reason}
            continue
        draws = []
        for _ in range(resamples):  # Jeffreys-prior posterior draws: a perfect referee on 10 images is not certain
            resampled = np.array([size * rng.dirichlet(row + 0.5) if size else row for size, row in zip(sizes, confusion)])
            draws.append(_accuracy_of(resampled, calls.sum() * rng.dirichlet(calls + 0.5), label))
        # a resample in which the referee cannot separate the classes could be anything: it widens to [0, 1]
        draws = [(0.0, 1.0) if draw is None else (draw, draw) for draw in draws]
        result[name] = {"n": int(calls.sum()), "estimate": estimate,
                        "interval": [float(np.percentile([low for low, _ in draws], 2.5)),
                                     float(np.percentile([high for _, high in draws], 97.5))]}
    return result


def export_label_lines(measured: dict) -> list[str]:
    """report.md's label section for the exported dataset: rows checked per class, the per-class
    gate, the referee's agreement next to its recall and the estimated share of right labels, and
    what each number can and cannot show."""
    if "label_status" not in measured:
        return ["The judge stage has not run: the labels are unchecked."]
    from mgm_tf.card import independence_text

    status, gates = measured["label_status"], measured["gates"]
    referee, selector = measured["referee_agreement"], measured["judge_agreement"]
    estimate = measured.get("estimated_accuracy") or {}
    lines = ["### Labels", "", f"The judge ({gates['judge']['num_train']} real training images) chose the conditions "
             f"and candidates; the referee ({gates['referee']['num_train']} other real training images, "
             f"{independence_text(measured)}) took no part. A class is checked when the judge's recall and its "
             "precision at a uniform class mix, on the calibration part of the held-out images, both have a 95 % "
             f"interval starting at {gates['judge']['bar']} or more; a row is checked when, besides, every step "
             "accepted it (its condition, the candidate and the exported image: p(label) at the class's threshold, "
             "which is floored to refuse pixel mixtures of two classes).", ""]
    lines += gate_table(gates, status) + ["", "| class | exported | rows checked | referee agrees | its recall on real "
                                              "images | estimated right labels | judge agrees (not independent) |",
                                              "|---|---|---|---|---|---|---|"]
    for name, entry in referee["per_class"].items():
        rows = measured.get("rows_checked", {}).get(name, {"checked": 0, "n": entry["n"]})
        lines.append(f"| {name} | {entry['n']} | {share(rows['checked'], rows['n'])} | "
                     f"{share(entry['agree'], entry['n'])} | {percent(gates['referee']['classes'][name]['recall'])} | "
                     f"{describe_estimate(estimate.get(name))} | {percent(selector['per_class'][name]['agreement'])} |")
    lines += ["", "Raw agreement is not the share of right labels: were every label right, the referee would agree as "
                  "often as its recall on real images; it also agrees with wrong labels as often as it calls other "
                  "classes this one. The estimate undoes both with the referee's confusion matrix on the evaluation "
                  "images (95 % interval from posterior draws of both); it cannot see what the referee cannot tell apart, and on few held-out "
                  "images its interval is wide. The judge's agreement is high by construction, since it chose the images."]
    unchecked = {name: entry["reason"] for name, entry in status.items() if entry["status"] != "checked"}
    if unchecked:
        lines += ["", "**Unchecked classes** — " + "; ".join(f"{name}: {reason}" for name, reason in unchecked.items())
                  + ". These classes were synthesised as the paper does (class-blind conditions); nothing confirmed "
                    "their images show their class, and every manifest row of them says `unchecked`."]
    return lines


def evaluation_label_table(result: dict) -> list[str]:
    """Label agreement of every labelled row per class, by the referee, under the referee's own
    agreement with held-out real labels."""
    names = result["class_names"]
    lines = ["### Label fidelity", "",
             f"The referee (`{result.get('label_referee', '?')}`, trained on half the real training split and never "
             "used to choose images) predicts the class of every labelled synthetic image; agreement is the share "
             "whose prediction equals the label (k/n, 95 % interval), and below each, the share of right labels "
             "estimated from it and the referee's confusion on real images. The first row is the referee on the "
             "evaluation part of the held-out real images.", ""]
    unchecked = [name for name, entry in result.get("label_status", {}).items() if entry["status"] != "checked"]
    if unchecked:
        lines += [f"> Labels of {', '.join(unchecked)} are unchecked (see the gate in the exported-dataset section).", ""]
    header = ["set", "n", "agreement"] + list(names)
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    entries = [("held-out real images (referee)", result.get("label_ceiling"))]
    entries += [(name, row.get("labels")) for name, row in result["rows"].items() if row.get("labels")]
    for name, summary in entries:
        if not summary:
            lines.append(f"| {name} | — | no held-out images |" + " |" * len(names))
            continue
        estimate = summary.get("estimated_accuracy") or {}
        cells = [share(summary["per_class"][c]["agree"], summary["per_class"][c]["n"])
                 + (f"; right ≈ {describe_estimate(estimate[c])}" if c in estimate else "") for c in names]
        lines.append(f"| {name} | {summary['n']} | {share(summary['agree'], summary['n'])} | " + " | ".join(cells) + " |")
    return lines
