"""Command line: `python -m mgm_tf COMMAND ...` — the same code the notebooks call."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _manifest(args):
    from mgm_tf import manifests

    if getattr(args, "data_dir", None) and not args.dataset:
        return manifests.folder_manifest(args.data_dir)
    if not args.dataset:
        raise ValueError("give --dataset NAME (see `python -m mgm_tf datasets`) or --data-dir PATH")
    manifest = manifests.load_manifest(args.dataset)
    if getattr(args, "handle", None):
        manifest = manifest.with_handle(args.handle)
    return manifest


def command_datasets(args) -> int:
    from mgm_tf import manifests
    from mgm_tf.data import availability

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
    from mgm_tf.precision import describe_device

    print(f"mgm_tf {__version__}, Python {platform.python_version()}")
    print(describe_device())
    if args.dataset:
        print(_manifest(args).summary())
    return 0


def command_prepare(args) -> int:
    from mgm_tf.prepare import prepare, summary_table

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mgm_tf", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("datasets", help="list dataset manifests and whether each is available offline")
    info = commands.add_parser("info", help="versions, device, precision policy (and a manifest summary)")
    info.add_argument("--dataset")
    prepare = commands.add_parser("prepare", help="download/check/preprocess a dataset into a prepared folder")
    _data_arguments(prepare)
    prepare.add_argument("--out", help="prepared folder (default prepared/NAME)")
    prepare.add_argument("--force", action="store_true", help="rebuild even if the folder is complete")
    return parser


def _data_arguments(parser) -> None:
    parser.add_argument("--dataset", help="manifest name (python -m mgm_tf datasets) or a .toml path")
    parser.add_argument("--data-dir", help="use this folder instead of downloading (one subfolder per class)")
    parser.add_argument("--handle", help="override the manifest's Kaggle handle (owner/slug/versions/N)")


COMMANDS = {"datasets": command_datasets, "info": command_info, "prepare": command_prepare}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
