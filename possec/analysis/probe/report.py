"""Reports of the position probe: a markdown table, CSV, JSON and a figure.

The table follows the layout of the tables of `How Much Position Information
Do Convolutional Neural Networks Encode? <https://arxiv.org/abs/2001.08248>`_:
one row per setting (encoder, readout depth, kernel, padding, level or
encoder padding), and an SPC and an MAE column per pattern. A readout whose
training diverged is marked ``DIVERGED`` in every output (table row, CSV
column, JSON, figure title): its scores mean little.
"""
import csv
import os
import os.path as osp
import re
import textwrap
from typing import Optional

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from possec.fileio import atomic_path, dump_json
from possec.position import position_maps
from ..common import to_jsonable


DIVERGED = 'DIVERGED'


def _lr_text(row: dict) -> str:
    lr = row.get('lr')
    return '' if lr is None else f'{lr:g}'


def format_table(result: dict, title: str = '') -> str:
    """The result of :func:`.run.run_probe` as a markdown table (a
    diverged readout's row says ``DIVERGED``, and a note follows)."""
    pats = result['patterns']
    lines = [f'### {title}', ''] if title else []
    lines.append(f'| {result["column"]} | lr | ' +
                 ' | '.join(f'{p} SPC | {p} MAE' for p in pats) + ' |')
    lines.append('|---|---:|' + '---:|' * (2 * len(pats)))
    for row in result['rows']:
        cells = [f'{row["spc"][p]:.3f} | {row["mae"][p]:.3f}' for p in pats]
        setting = row['setting'] + (f' **{DIVERGED}**'
                                    if row.get('diverged') else '')
        lines.append(f'| {setting} | {_lr_text(row)} | ' +
                     ' | '.join(cells) + ' |')
    bad = [r['setting'] for r in result['rows'] if r.get('diverged')]
    if bad:
        lines += ['', f'**{DIVERGED}**: the readout of {", ".join(bad)} '
                  f'ended with a worse training loss than it started with; '
                  f'its SPC and MAE mean little (pass a smaller --lr).']
    return '\n'.join(lines)


def row_title(result: dict, row: dict, title: str = '') -> str:
    """The title of a row's figure: ``DIVERGED`` first when it diverged,
    then the run's title and the setting."""
    text = f'{title} {result["column"]}={row["setting"]}'.strip()
    if row.get('lr') is not None:
        text += f', lr {row["lr"]:g}'
    return f'{DIVERGED}: {text}' if row.get('diverged') else text


def plot_predictions(result: dict, row: dict, path: str,
                     title: str = '') -> None:
    """A PNG grid: ground truth on top, then one row per shown image (the
    image, then its predicted map of every pattern)."""
    pats, pred, show = result['patterns'], row['pred'], result['show']
    gt = position_maps(pats, tuple(pred.shape[-2:]))[0]
    rows, cols = 1 + len(pred), 1 + len(pats)
    # a bare Agg figure: no pyplot, so the user's backend stays untouched
    fig = Figure(figsize=(1.6 * cols + 0.8, 1.6 * rows + 0.3),
                 layout='constrained')
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].axis('off')
    axes[0, 0].text(0.5, 0.5, 'ground\ntruth', ha='center', va='center')
    for k, p in enumerate(pats):
        axes[0, k + 1].imshow(gt[k].numpy(), cmap='gray', vmin=0, vmax=1)
        axes[0, k + 1].set_title(p)
    for i in range(len(pred)):
        axes[i + 1, 0].imshow(show[i].permute(1, 2, 0).numpy())
        for k, p in enumerate(pats):
            im = axes[i + 1, k + 1].imshow(
                pred[i, k].numpy(), cmap='gray', vmin=0, vmax=1)
            axes[i + 1, k + 1].set_xlabel(f'SPC {row["spc"][p]:.2f}'
                                          if i == len(pred) - 1 else '')
    if title:
        # wrapped to the figure's width (about 0.55 em per character)
        size = 9
        chars = max(20, int(fig.get_figwidth() * 72 / (0.55 * size)))
        fig.suptitle(textwrap.fill(title, chars), fontsize=size,
                     color='red' if title.startswith(DIVERGED) else 'black')
    if len(pred):
        bar = fig.colorbar(im, ax=axes[:, 1:].ravel().tolist(), shrink=0.5,
                           aspect=30)
        bar.set_label('position (ground truth and prediction)', fontsize=8)
        bar.ax.tick_params(labelsize=7)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format='png', dpi=80)


def write_results(result: dict, out_dir: str, meta: Optional[dict] = None,
                  title: str = '') -> dict:
    """Write ``results.md``, ``results.csv``, ``results.json`` and one
    ``pred_<setting>.png`` per row into ``out_dir``; return their paths.

    Args:
        result (dict): From :func:`.run.run_probe`.
        out_dir (str): Folder, created if needed.
        meta (dict, optional): The run's settings, stored in the JSON.
        title (str): Title of the table and figures. Default: ''.
    """
    os.makedirs(out_dir, exist_ok=True)
    paths = dict(md=osp.join(out_dir, 'results.md'),
                 csv=osp.join(out_dir, 'results.csv'),
                 json=osp.join(out_dir, 'results.json'))
    with atomic_path(paths['md']) as tmp, open(tmp, 'w') as f:
        f.write(format_table(result, title) + '\n')
    with atomic_path(paths['csv']) as tmp, open(tmp, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow([result['column'], 'pattern', 'spc', 'mae', 'lr',
                         'diverged'])
        for row in result['rows']:
            for p in result['patterns']:
                writer.writerow([row['setting'], p, f'{row["spc"][p]:.6f}',
                                 f'{row["mae"][p]:.6f}', _lr_text(row),
                                 int(bool(row.get('diverged')))])
    summary = {k: v for k, v in result.items() if k not in ('rows', 'show')}
    summary['rows'] = [{k: v for k, v in row.items() if k != 'pred'}
                       for row in result['rows']]
    summary['meta'] = meta or {}
    dump_json(to_jsonable(summary), paths['json'])
    for row in result['rows']:
        slug = re.sub(r'[^A-Za-z0-9_.-]+', '_', row['setting']).strip('_')
        png = osp.join(out_dir, f'pred_{slug or "run"}.png')
        plot_predictions(result, row, png, row_title(result, row, title))
        paths[f'png:{row["setting"]}'] = png
    return paths
