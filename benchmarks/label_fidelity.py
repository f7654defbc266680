"""Label agreement of each way of drawing the condition c, on the two-class fixture.

    python benchmarks/label_fidelity.py [--per-class 60] [--dcgan-steps 1200] [--cgan-steps 600] [--out DIR]

Prints the table DESIGN.md "Labels that hold" quotes and writes it, with the raw numbers, to
benchmarks/results/label_fidelity.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import mgm_tf  # noqa: F401  (CPU kernel switch before TensorFlow loads)
from mgm_tf.evaluation.conditioning_study import run_study, study_markdown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=60)
    parser.add_argument("--dcgan-steps", type=int, default=1200)
    parser.add_argument("--cgan-steps", type=int, default=600)
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--out", type=Path, default=None, help="work directory (default: a temporary one)")
    args = parser.parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="label_fidelity_"))
    result = run_study(work, args.per_class, args.dcgan_steps, args.cgan_steps, args.candidates)
    text = study_markdown(result)
    print(text)
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / "label_fidelity.md").write_text(text + "\n", encoding="utf-8")
    (results / "label_fidelity.json").write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
