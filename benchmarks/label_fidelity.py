"""Which labels are checked, and are they right? Per way of drawing the condition c, on a blob
fixture whose class the pixels tell (three classes, one pair easy to confuse, by default; or two),
and per acceptance rule on a mixture fixture (pure blobs and two-class pixel mixtures): per class
the rows checked, the pixel oracle's agreement on checked and on unchecked rows, the referee's raw
agreement and the estimated share of right labels.

    python benchmarks/label_fidelity.py [--classes 3] [--per-class 100] [--dcgan-steps 1500] [--cgan-steps 1200]
                                        [--export] [--paper-networks] [--out DIR]

Prints the tables DESIGN.md "Labels a reader can audit" quotes and writes them, with the raw numbers, to
benchmarks/results/label_fidelity_<classes>class.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import mgm_tf  # noqa: F401  (CPU kernel switch before TensorFlow loads)
from mgm_tf.data import fixtures
from mgm_tf.evaluation.conditioning_study import VARIANTS, run_study, study_markdown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, choices=(2, 3), default=3)
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--dcgan-steps", type=int, default=1500)
    parser.add_argument("--cgan-steps", type=int, default=1200)
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--export", action="store_true", help="measure the exported PNGs (adds the SRGAN and export)")
    parser.add_argument("--paper-networks", action="store_true", help="G1/D1/G2/D2 at the paper's widths")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=None, help="work directory (default: a temporary one)")
    args = parser.parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="label_fidelity_"))
    names = fixtures.THREE_CLASS_NAMES if args.classes == 3 else fixtures.TWO_CLASS_NAMES
    result = run_study(work, names, args.per_class, args.dcgan_steps, args.cgan_steps, args.candidates,
                       variants=tuple(args.variants), through_export=args.export,
                       small_networks=not args.paper_networks)
    text = study_markdown(result)
    print(text)
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / f"label_fidelity_{args.classes}class.md").write_text(text + "\n", encoding="utf-8")
    (results / f"label_fidelity_{args.classes}class.json").write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
