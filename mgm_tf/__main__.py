"""Command line: `python -m mgm_tf COMMAND ...` — the same code the notebooks call.

Each command imports what it needs when it runs: `datasets`, `info` and `--help` answer without
loading TensorFlow (about 4 s), and a bad argument is reported before that wait.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mgm_tf import backend, config
from mgm_tf.data import manifests


def _manifest(args):
    if getattr(args, "data_dir", None) and not args.dataset:
        from mgm_tf.data.sources import folder_manifest

        return folder_manifest(args.data_dir)
    if not args.dataset:
        raise ValueError("give --dataset NAME (see `python -m mgm_tf datasets`) or --data-dir PATH")
    manifest = manifests.load_manifest(args.dataset)
    if getattr(args, "handle", None):
        manifest = manifest.with_handle(args.handle)
    return manifest


def command_datasets(args) -> int:
    from mgm_tf.data.sources import availability

    print(f"{'name':<34}{'ch':>3}  {'classes':<44}{'source':<58}available")
    for name in manifests.available_manifests():
        manifest = manifests.load_manifest(name)
        source = manifest.kaggle_handle or manifest.source.get("kaggle_competition") or manifest.source.get("path")
        classes = ", ".join(manifest.class_names)
        print(f"{name:<34}{manifest.channels:>3}  {classes[:43]:<44}{source[:57]:<58}{availability(manifest)}")
    return 0


def command_info(args) -> int:
    import platform

    from mgm_tf import __version__
    from mgm_tf.device import describe_device

    print(f"mgm_tf {__version__}, Python {platform.python_version()}")
    print(describe_device())
    if args.dataset:
        print(_manifest(args).summary())
    return 0


def command_prepare(args) -> int:
    from mgm_tf.data.prepare import prepare, summary_table

    manifest = _manifest(args)
    out = Path(args.out or Path("prepared") / manifest.name)
    prepared = prepare(manifest, out, data_dir=args.data_dir, force=args.force)
    print(manifest.summary())
    print(summary_table(prepared))
    for warning in prepared.report["warnings"]:
        print(f"warning: {warning}")
    for skipped in prepared.report["skipped"][:20]:
        print(f"skipped: {skipped['file']}: {skipped['reason']}")
    print(f"prepared data in {out}; previews in {out / 'previews'}")
    return 0


def run_config(args):
    """Preset (demo / smoke / paper defaults) plus explicit overrides from the command line."""
    dataset = args.dataset or ("folder" if args.data_dir else "demo")
    resolved = config.preset(dataset, smoke_test=args.smoke)
    resolved.data_dir, resolved.handle, resolved.seed = args.data_dir, args.handle, args.seed
    resolved.jit_compile = {"on": True, "off": False}.get(args.jit_compile, "auto")
    config.override(resolved, epochs=args.epochs, sr_epochs=args.sr_epochs, batch_size=args.batch_size,
                    num_images=args.num_images, precision=args.precision, vgg_weights=args.vgg_weights,
                    stages=args.stages, devices=args.devices)
    return resolved


def command_run(args) -> int:
    from mgm_tf.pipeline import run_pipeline
    from mgm_tf.run import Run

    out = Path(args.out or Path("runs") / (args.dataset or "demo"))
    backend.training_devices(args.devices)  # a bad --devices is refused before a run directory is made
    run = Run.open(out, run_config(args))
    timings = run_pipeline(run, args.stages)
    total = sum(timings.values())
    print(f"finished in {total:.1f} s: " + ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in timings.items()))
    if (run.path / "report" / "report.md").exists():
        print(f"report: {run.path / 'report' / 'report.md'}; synthetic images: {run.path / 'synthetic'}")
    return 0


def command_train(args) -> int:
    args.stages = [args.stage]
    return command_run(args)


def command_filter(args) -> int:
    """Re-select with another keep fraction; the export made from the old selection is invalidated."""
    from mgm_tf.pipeline import run_pipeline
    from mgm_tf.run import Run

    run = Run.open(args.run)
    if args.keep is not None and args.keep != run.config.filter.keep_fraction:
        run.config.filter.keep_fraction = args.keep
        run.config.save(run.path / "config.json")
        for stage in ("filter", "export"):
            run.done_path(stage).unlink(missing_ok=True)
    run_pipeline(run, ["filter"])
    print(f"selection: {run.path / 'filter' / 'selected.csv'}")
    return 0


def command_evaluate(args) -> int:
    from mgm_tf.evaluation.evaluate import evaluate_run
    from mgm_tf.run import Run

    run = Run.open(args.run)
    if args.inception:
        run.config.evaluation.inception = args.inception
    if args.no_baselines:
        run.config.evaluation.baselines = False
    evaluate_run(run)
    print(f"metrics: {run.path / 'report' / 'metrics.json'}; report: {run.path / 'report' / 'report.md'}")
    return 0


def command_compare(args) -> int:
    from mgm_tf.evaluation.compare import compare_runs, write_comparison

    table = compare_runs([Path(path) for path in args.runs])
    print(write_comparison(table, Path(args.out) if args.out else None))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mgm_tf", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("datasets", help="list dataset manifests and whether each is available offline")
    info = commands.add_parser("info", help="versions, device, precision policy (and a manifest summary)")
    info.add_argument("--dataset")
    _backend_argument(info)
    prepare = commands.add_parser("prepare", help="download/check/preprocess a dataset into a prepared folder")
    _data_arguments(prepare)
    prepare.add_argument("--out", help="prepared folder (default prepared/NAME)")
    prepare.add_argument("--force", action="store_true", help="rebuild even if the folder is complete")
    run = commands.add_parser("run", help="run the pipeline stages over a run directory (resumes)")
    _data_arguments(run)
    _run_arguments(run)
    run.add_argument("--stages", nargs="+", help="subset of: dcgan cgan synthesize filter srgan export report")
    train = commands.add_parser("train", help="train one stage (dcgan, cgan or srgan) into a run directory")
    train.add_argument("--stage", required=True, choices=["dcgan", "cgan", "srgan"])
    _data_arguments(train)
    _run_arguments(train)
    filtering = commands.add_parser("filter", help="(re)run the quality filter of a run")
    filtering.add_argument("--run", required=True)
    _backend_argument(filtering)
    filtering.add_argument("--keep", type=float, help="fraction kept per class (paper: 0.2)")
    evaluate = commands.add_parser("evaluate", help="FID/KID, precision/recall, memorisation, utility, baselines")
    evaluate.add_argument("--run", required=True)
    _backend_argument(evaluate)
    evaluate.add_argument("--inception", help="'auto', 'imagenet', 'random', 'none' or a weights file")
    evaluate.add_argument("--no-baselines", action="store_true", help="skip training the cGAN and CycleGAN baselines")
    compare = commands.add_parser("compare", help="cross-run tables (the paper's Tables 1-2 next to real metrics)")
    compare.add_argument("runs", nargs="+")
    compare.add_argument("--out", help="write compare.md and compare.json into this folder")
    return parser


def _backend_argument(parser) -> None:
    parser.add_argument("--backend", choices=["tensorflow", "jax"],
                        help="Keras backend (default: $KERAS_BACKEND, else tensorflow); jax trains without TensorFlow")


def _run_arguments(parser) -> None:
    _backend_argument(parser)
    parser.add_argument("--out", help="run directory (default runs/DATASET)")
    parser.add_argument("--smoke", action="store_true", help="tiny epochs and sizes: checks the code, not results")
    parser.add_argument("--epochs", type=int, help="epochs of the DCGAN and conditional GAN (paper: 1000)")
    parser.add_argument("--sr-epochs", type=int, help="epochs of the SRGAN (paper-scale preset: 100)")
    parser.add_argument("--batch-size", type=int, help="GAN batch size (paper: 16)")
    parser.add_argument("--num-images", type=int, help="final synthetic images per class")
    parser.add_argument("--precision", default="auto", choices=["auto", "float32", "mixed_float16", "mixed_bfloat16"])
    parser.add_argument("--jit-compile", default="auto", choices=["auto", "on", "off"],
                        help="XLA: auto = off on CPUs (measured slower), Keras decides on GPUs/TPUs")
    parser.add_argument("--devices", default="1",
                        help="data-parallel training: 1 (default), N, or 'all' local GPUs/TPU cores "
                             "(JAX: keras.distribution.DataParallel; TensorFlow: MirroredStrategy)")
    parser.add_argument("--vgg-weights", help="'imagenet', 'none', or a local VGG19 notop weights file (default auto)")
    parser.add_argument("--seed", type=int, default=0)


def _data_arguments(parser) -> None:
    parser.add_argument("--dataset", help="manifest name (python -m mgm_tf datasets) or a .toml path")
    parser.add_argument("--data-dir", help="use this folder instead of downloading (one subfolder per class)")
    parser.add_argument("--handle", help="override the manifest's Kaggle handle (owner/slug/versions/N)")


COMMANDS = {"datasets": command_datasets, "info": command_info, "prepare": command_prepare, "run": command_run,
            "train": command_train, "filter": command_filter, "evaluate": command_evaluate,
            "compare": command_compare}


LIGHT_COMMANDS = ("datasets", "compare")  # answer without loading TensorFlow


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command not in LIGHT_COMMANDS and backend.choose(getattr(args, "backend", None)) == "tensorflow":
            from mgm_tf.colab import quiet_tensorflow

            quiet_tensorflow()  # TensorFlow's C++ start-up lines (oneDNN, CUDA probing) stay out of the terminal
        return COMMANDS[args.command](args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:  # training diverged: weights were rolled back, nothing marked done
        print(f"error: {error}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
