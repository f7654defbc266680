"""Input pipeline, quality filter and prepare throughput."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from common import timed

from mgm_tf import quality_filter
from mgm_tf.data import manifests, sources, tfdata
from mgm_tf.data.decode import read_image
from mgm_tf.data.fixtures import synthetic_image
from mgm_tf.data.prepare import decode_all, prepare


def write_folder(root: Path, count: int, make_image, extension: str = ".png", params=()) -> list[Path]:
    """count images from make_image(rng, label) in two class folders; returns the files."""
    rng = np.random.default_rng(0)
    files = []
    for index in range(count):
        folder = root / ("normal" if index % 2 else "pneumonia")
        folder.mkdir(parents=True, exist_ok=True)
        files.append(folder / f"img{index:05d}{extension}")
        cv2.imwrite(str(files[-1]), make_image(rng, index % 2), list(params))
    return files


def input_pipeline(count: int, batch: int = 16) -> dict:
    """prepare (decode + CLAHE + resize, once) on a folder, then tf.data epochs from memory."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "images"
        write_folder(root, count, lambda rng, label: synthetic_image(rng, label, 1, (96, 112)))
        manifest = sources.folder_manifest(root, channels=1)
        start = time.perf_counter()
        prepared = prepare(manifest, Path(scratch) / "prepared")
        decode_rate = count / (time.perf_counter() - start)
    dataset = tfdata.gan_dataset(prepared, None, batch, seed=0)

    def epoch():  # consumed in graph mode, as Model.fit does (a Python loop adds ~0.4 ms per batch)
        dataset.reduce(np.int64(0), lambda count, batch: count + 1).numpy()

    start = time.perf_counter()
    epoch()
    first = count / (time.perf_counter() - start)
    cached = count / timed(epoch, repeats=3, warmup=0)
    return {"images": count, "prepare (decode+preprocess) images/s": decode_rate,
            "first tf.data epoch images/s": first, "cached epoch images/s": cached}


def filter_speed(count: int) -> dict:
    images = np.random.default_rng(1).integers(0, 256, (count, 64, 64, 3), dtype=np.uint8)
    batched = count / timed(lambda: quality_filter.scores(images), repeats=3, warmup=1)
    loop = count / timed(lambda: quality_filter.scores_opencv(images), repeats=1, warmup=0)
    agree = bool(np.allclose(quality_filter.scores(images[:200]), quality_filter.scores_opencv(images[:200]), rtol=1e-4, atol=1e-3))
    return {"images": count, "batched images/s": batched, "OpenCV loop images/s": loop,
            "ratio (batched/loop)": batched / loop, "scores agree": agree}


def xray_like(rng: np.random.Generator, label: int, size=(1200, 1500)) -> np.ndarray:
    """A smooth body-like blob with film grain correlated over ~2 px. Saved at JPEG quality 90 a
    1,500×1,200 image is ~210 KB, near the ~200 KB average of the Kermany chest X-ray files;
    per-pixel white noise would make ~800 KB files whose entropy decoding alone sets the rate."""
    height, width = size
    yy, xx = np.mgrid[0:height:8, 0:width:8].astype(np.float32)
    centre = rng.uniform(0.35, 0.65, 2) * (height, width)
    radius = (0.18 + 0.08 * label) * min(size) * rng.uniform(0.85, 1.15)
    blob = np.exp(-(((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) / (2 * radius ** 2)))
    base = cv2.resize((40 + 150 * blob + 12 * label).astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    grain = cv2.resize(rng.normal(0, 4, (height // 2, width // 2)).astype(np.float32), (width, height),
                       interpolation=cv2.INTER_LINEAR)
    return np.clip(base + grain, 0, 255).astype(np.uint8)


def prepare_speed(count: int) -> dict:
    """Full-size X-ray-like JPEGs (1,500×1,200): `prepare` end to end (scan, hash, decode, CLAHE,
    resize, arrays, previews), its decode phase alone, and single-thread decoders for reference."""
    with tempfile.TemporaryDirectory() as scratch:
        files = write_folder(Path(scratch) / "xrays", count, xray_like, ".jpeg", (cv2.IMWRITE_JPEG_QUALITY, 90))
        mean_kb = float(np.mean([path.stat().st_size for path in files])) / 1024

        def plain():
            for path in files:
                cv2.resize(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), (256, 256), interpolation=cv2.INTER_AREA)

        def reduced():
            for path in files:
                read_image(path, 1, min_side=256)

        plain_rate = count / timed(plain, repeats=1, warmup=0)
        reduced_rate = count / timed(reduced, repeats=1, warmup=0)
        manifest = manifests.dataclasses.replace(sources.folder_manifest(Path(scratch) / "xrays", channels=1),
                                                 preprocessing=("clahe",))
        records, _ = sources.scan(manifest, Path(scratch) / "xrays")
        start = time.perf_counter()
        decode_all(manifest, records)
        decode_rate = count / (time.perf_counter() - start)
        start = time.perf_counter()
        prepare(manifest, Path(scratch) / "prepared")
        prepare_rate = count / (time.perf_counter() - start)
    return {"images": count, "mean file KB": mean_kb, "prepare images/s (end to end)": prepare_rate,
            "decode phase images/s (threads, reduced decode, CLAHE, resize)": decode_rate,
            "reduced decode only images/s (1 thread)": reduced_rate, "plain decode+resize images/s (1 thread)": plain_rate}
