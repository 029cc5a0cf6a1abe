"""Figures and result files of the visual tools."""
import os.path as osp

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from possec.fileio import atomic_path, dump_json
from .jsonable import to_jsonable


def new_figure(rows: int, cols: int, size: float = 3.2):
    """A matplotlib figure (no pyplot, no display needed) and its axes.

    Args:
        rows (int): Rows of panels.
        cols (int): Columns of panels.
        size (float): Side of one panel in inches. Default: 3.2.

    Returns:
        tuple[Figure, np.ndarray]: The figure and a ``(rows, cols)`` array
        of axes.
    """
    fig = Figure(figsize=(cols * size, rows * size), layout='constrained')
    axes = np.array(fig.subplots(rows, cols, squeeze=False))
    return fig, axes


def draw_box(ax, box, **kwargs) -> None:
    """Draw an inclusive pixel box ``(y0, x0, y1, x1)`` on ``ax``."""
    y0, x0, y1, x1 = box
    kwargs.setdefault('fill', False)
    ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1,
                           **kwargs))


def write_outputs(out_dir: str, name: str, fig: Figure,
                  results: dict) -> dict:
    """Write ``<name>.png`` and ``<name>.json`` into ``out_dir`` atomically.

    Args:
        out_dir (str): Output folder (created if missing).
        name (str): Base name of both files.
        fig (Figure): The figure.
        results (dict): The numbers (see :func:`to_jsonable`).

    Returns:
        dict: The paths, ``png`` and ``json``.
    """
    png = osp.join(out_dir, f'{name}.png')
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format='png', dpi=110)
    path = osp.join(out_dir, f'{name}.json')
    dump_json(to_jsonable(results), path)
    return dict(png=png, json=path)
