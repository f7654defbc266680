"""Pictures people look at: image grids, curves, histograms (matplotlib, Agg backend)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from mgm_tf.imaging import from_model_range


def _pyplot():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg",) and "inline" not in matplotlib.get_backend():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def image_grid(images, titles=None, columns: int = 8, title: str = "", cell: float = 1.4):
    """A matplotlib Figure with images in a grid; grey images use a grey colour map."""
    plt = _pyplot()
    images = from_model_range(images)
    count = len(images)
    columns = max(1, min(columns, count))
    rows = max(1, -(-count // columns))
    # constrained layout makes room for the suptitle and every (wrapped) title; tight_layout let
    # the suptitle overlap the first row's titles
    title_lines = len(textwrap.wrap(title, width=max(20, int(cell * columns * 12)))) if title else 0
    figure, axes = plt.subplots(rows, columns, figsize=(cell * columns, cell * rows + 0.2 * title_lines),
                                squeeze=False, layout="constrained")
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index >= count:
            continue
        image = images[index]
        if image.shape[-1] == 1:
            axis.imshow(image[:, :, 0], cmap="gray", vmin=0, vmax=255)
        else:
            axis.imshow(image)
        if titles is not None:  # wrapped to the cell's width, so neighbouring titles never overlap
            lines = [textwrap.fill(part, width=max(8, int(cell * 11)), break_long_words=True)
                     for part in str(titles[index]).split("\n")]
            axis.set_title("\n".join(lines), fontsize=7)
    if title:  # wrapped to the figure's width: a grid of two cells is narrower than most titles
        figure.suptitle(textwrap.fill(title, width=max(20, int(cell * columns * 12))), fontsize=9)
    return figure


def save_figure(figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    _pyplot().close(figure)
    return path


def save_grid(images, path, titles=None, columns: int = 8, title: str = "", cell: float = 1.4) -> Path:
    return save_figure(image_grid(images, titles, columns, title, cell), path)


def curves(table: dict[str, list[float]], x=None, xlabel: str = "epoch", title: str = ""):
    """Line plot of several named series (loss curves, KID against time)."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 3.2))
    for name, values in table.items():
        axis.plot(x if x is not None else range(1, len(values) + 1), values, label=name)
    axis.set_xlabel(xlabel)
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    if title:
        axis.set_title(title, fontsize=9)
    figure.tight_layout()
    return figure


def histograms(table: dict[str, np.ndarray], title: str = "", bins: int = 30):
    """One panel per named array (quality-filter scores, nearest-neighbour distances)."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(table), figsize=(3.2 * len(table), 2.8), squeeze=False)
    for axis, (name, values) in zip(axes.flat, table.items()):
        axis.hist(np.asarray(values, dtype=np.float64), bins=bins, color="tab:blue", alpha=0.8)
        axis.set_title(name, fontsize=8)
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return figure
