"""Label fidelity: does a synthetic image show the class its label names?

Agreement is read off a classifier trained on real images: the referee of the `judge` stage
(`mgm_tf.judge`), which never saw the judge's training images and took no part in choosing
conditions or candidates. Its per-class precision on held-out real images is what its agreement
is compared with: of the images the referee calls y, that share truly are y, so an export whose
agreement for y sits far below it has labels its content does not bear out. The judge's own
agreement is reported beside it, and is high by construction (it chose the images).
"""

from __future__ import annotations

import numpy as np

from mgm_tf.card import gate_table, percent


def agreement(labels: np.ndarray, predicted: np.ndarray, class_names) -> dict:
    """Share of images whose predicted class equals their label, overall and per class."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    per_class = {}
    for label, name in enumerate(class_names):
        members = labels == label
        per_class[name] = {"n": int(members.sum()),
                           "agreement": float((predicted[members] == label).mean()) if members.any() else None}
    return {"n": int(len(labels)), "agreement": float((predicted == labels).mean()) if len(labels) else None,
            "per_class": per_class}


def describe(summary: dict) -> str:
    """'92 % (NORMAL 90 % of 20, PNEUMONIA 95 % of 20)' for an `agreement` summary."""
    per_class = ", ".join(f"{name} {percent(entry['agreement'])} of {entry['n']}"
                          for name, entry in summary["per_class"].items())
    return f"{percent(summary['agreement'])} ({per_class})"


def export_label_lines(measured: dict) -> list[str]:
    """report.md's label section for the exported dataset: the per-class gate, the referee's
    agreement next to its own held-out precision, and what each number can and cannot show."""
    if "label_status" not in measured:
        return ["The judge stage has not run: the labels are unchecked."]
    status, gates = measured["label_status"], measured["gates"]
    referee, selector = measured["referee_agreement"], measured["judge_agreement"]
    lines = ["### Labels", "", f"The judge ({gates['judge']['num_train']} real training images) chose the conditions "
             f"and candidates; the referee ({gates['referee']['num_train']} other real training images, no patient in "
             f"common) took no part. A class is checked when the judge's recall and precision on held-out real images "
             f"both have a 95 % interval starting at {gates['judge']['bar']} or more.", ""]
    lines += gate_table(gates, status) + ["", "| class | exported | referee agrees | its held-out precision | "
                                              "judge agrees (not independent) |", "|---|---|---|---|---|"]
    for name, entry in referee["per_class"].items():
        lines.append(f"| {name} | {entry['n']} | {percent(entry['agreement'])} | "
                     f"{percent(gates['referee']['classes'][name]['precision'])} | "
                     f"{percent(selector['per_class'][name]['agreement'])} |")
    lines += ["", "The referee's agreement estimates how often an exported label names what the image shows, as far as "
                  "a classifier trained on real images can tell: read it against the referee's own precision on real "
                  "images (agreement far below it means the labels are not borne out). It cannot see what the "
                  "referee itself confuses, and on few held-out images its intervals are wide. The judge's agreement "
                  "is high by construction, since it chose the images."]
    unchecked = {name: entry["reason"] for name, entry in status.items() if entry["status"] != "checked"}
    if unchecked:
        lines += ["", "**Unchecked labels** — " + "; ".join(f"{name}: {reason}" for name, reason in unchecked.items())
                  + ". These classes were synthesised as the paper does (class-blind conditions); nothing confirmed "
                    "their images show their class, and every manifest row says `unchecked`."]
    return lines


def evaluation_label_table(result: dict) -> list[str]:
    """Label agreement of every labelled row per class, by the referee, under the referee's own
    agreement with held-out real labels."""
    names = result["class_names"]
    lines = ["### Label fidelity", "",
             f"The referee (`{result.get('label_referee', '?')}`, trained on half the real training split and never "
             "used to choose images) predicts the class of every labelled synthetic image; agreement is the share "
             "whose prediction equals the label. The first row is the referee on held-out real images.", ""]
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
        cells = [percent(summary["per_class"][c]["agreement"]) + f" of {summary['per_class'][c]['n']}" for c in names]
        lines.append(f"| {name} | {summary['n']} | {percent(summary['agreement'])} | " + " | ".join(cells) + " |")
    return lines
