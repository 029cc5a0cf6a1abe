"""Plots of the position study: mIoU by distance to the border, the
probe's SPC against mIoU, the contrasts, the dose-response curves and the
training losses (matplotlib, Agg backend, small PNGs without a software
stamp, so that the same numbers give the same bytes).

Cells that did not converge are left out of every mean and difference
and marked: ``(k not converged, left out)`` in the legend, and as grey
crosses where a figure shows cells or doses."""
from typing import Dict, List, Optional

from possec.fileio import atomic_path
from .aggregate import mean_sd
from .design import variant_name


def _nc_label(key: tuple, excluded: Optional[dict]) -> str:
    """The variant's name, with ``(k not converged, left out)``."""
    k = len((excluded or {}).get(key, ()))
    return variant_name(key) + (f' ({k} not converged, left out)'
                                if k else '')


def plot_bands(grouped: dict, band_names: List[str], path: str,
               excluded: Optional[dict] = None) -> None:
    """mIoU by border band, a line per variant, a panel per condition;
    ``excluded`` is :func:`.aggregate.not_converged`."""
    fig, axes = _panels(len(grouped))
    x = list(range(len(band_names)))
    for ax, layout in zip(axes, grouped):
        nc = (excluded or {}).get(layout)
        for key, seeds in grouped[layout].items():
            stats = [mean_sd([s.get(f'band{i}') for s in seeds.values()])
                     for i in x]
            means = [m if m is not None else float('nan') for m, _ in stats]
            errs = [sd or 0. for _, sd in stats]
            style = _style(key)
            ax.errorbar(x, means, yerr=errs, label=_nc_label(key, nc),
                        color=style['color'], linestyle=style['linestyle'],
                        marker=style['marker'], capsize=2, linewidth=1.2,
                        markersize=4)
        ax.set_xticks(x)
        ax.set_xticklabels(band_names, fontsize=7)
    _finish(fig, axes, list(grouped),
            'distance to border (share of short side)', path)


def plot_spc(grouped: dict, path: str,
             excluded_points: Optional[Dict[str, list]] = None) -> None:
    """Probe SPC (mean over patterns) against mIoU, a point per cell;
    ``excluded_points`` (condition -> ``[(spc, mIoU), ...]``) are the
    cells that did not converge, drawn as grey crosses."""
    fig, axes = _panels(len(grouped))
    for ax, layout in zip(axes, grouped):
        for key, seeds in grouped[layout].items():
            style = _style(key)
            xs = [s['spc'] for s in seeds.values()]
            ys = [s['mIoU'] for s in seeds.values()]
            ax.scatter(xs, ys, label=variant_name(key),
                       marker=style['marker'], s=30,
                       facecolors='none' if style['hollow'] else
                       style['color'], edgecolors=style['color'])
        points = (excluded_points or {}).get(layout) or []
        if points:
            ax.scatter([p[0] for p in points], [p[1] for p in points],
                       marker='x', s=30, color='gray',
                       label='not converged (left out of effects)')
    _finish(fig, axes, list(grouped),
            'probe SPC of the trained backbone (mean of patterns)', path)


def _panels(num: int):
    """A figure with one mIoU panel per layout, side by side."""
    # pyplot only when a figure is drawn: it selects the Agg backend for
    # the whole process (and takes ~0.5 s to import), which importing
    # possec.analysis must not do
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    num = max(1, num)  # an empty panel when every cell is left out
    fig, axes = plt.subplots(1, num, figsize=(4.6 * num, 3.6),
                             squeeze=False)
    return fig, list(axes[0])


def _finish(fig, axes, layouts: List[str], xlabel: str, path: str) -> None:
    """Label every panel (x label, mIoU, the layout), add the shared
    legend and write the PNG."""
    for ax, layout in zip(axes, layouts):
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel('mIoU (%)', fontsize=8)
        ax.set_title(layout, fontsize=9)
        ax.grid(alpha=0.3)
    _legend(fig, axes)
    _save(fig, path)


_COLORS = dict(zeros='tab:blue', circular='tab:orange', reflect='tab:green',
               replicate='tab:purple', partial='tab:brown', none='tab:gray',
               full='tab:red')
_COORD_COLORS = dict(circular='tab:olive', zeros='tab:cyan')
_MARKERS = {'none': 'o', '+1': '^', '-1': 'v', 'remove': 'X', 'shift': 'P',
            'erase': 'D'}
_LINES = {'none': '-', '+1': '--', '-1': ':', 'remove': (0, (5, 1, 1, 1)),
          'shift': (0, (1, 1)), 'erase': (0, (3, 1))}


def _style(key: tuple) -> dict:
    """Colour from the border (padding, +coord), marker and line from the
    position factor; FCN's lines are dash-dotted, its markers hollow."""
    head, padding, pos = key
    if padding.endswith('+coord'):
        color = _COORD_COLORS.get(padding[:-len('+coord')], 'tab:pink')
    else:
        color = _COLORS.get(padding, 'black')
    fcn = head != 'parsenet'
    return dict(color=color, marker=_MARKERS.get(pos, 'D'),
                linestyle='-.' if fcn and pos == 'none' else _LINES.get(
                    pos, '-'), hollow=fcn)


def _legend(fig, axes) -> None:
    """One legend below the panels with every variant of any panel."""
    handles = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    # as many columns as fit the figure's width (a label is ~2.2 inches)
    ncol = max(1, min(3, len(handles), int(fig.get_figwidth() // 2.2)))
    rows = -(-len(handles) // ncol)
    fig.tight_layout(rect=(0, min(0.6, 0.05 + 0.045 * rows), 1, 1))
    fig.legend(list(handles.values()), list(handles), loc='lower center',
               ncol=ncol, fontsize=7, frameon=False)


def _save(fig, path: str) -> None:
    import matplotlib.pyplot as plt
    with atomic_path(path) as tmp:
        # no 'Software' stamp: the bytes depend on the numbers only
        fig.savefig(tmp, format='png', dpi=90, metadata={'Software': None})
    plt.close(fig)


_COLUMN_NAMES = dict(mIoU='mIoU', mIoU_pairs='pairs mIoU', spc='probe SPC')


def plot_contrasts(rows: List[dict], path: str) -> None:
    """The paired differences of the named contrasts with their 95%
    confidence intervals as error bars, one row per comparison, each on
    its own key column (the first column it is judged on: pairs mIoU,
    or mIoU on a layout without pairs), named in its label with the
    number of non-converged cells left out. Filled: the verdict is
    "differs"; hollow: it is not, or there is no interval; grey dots:
    the units."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    items = []
    for r in rows:
        column = r['judged'][0][0] if r.get('judged') else 'mIoU_pairs'
        st = r['stats'].get(column, {})
        if st.get('mean') is not None:
            verdict = r.get('verdicts', {}).get(column, {}).get('verdict')
            items.append((r, column, st, verdict))
    labels = [f"{r['contrast']}: {r['label']} "
              f"[Δ {_COLUMN_NAMES.get(c, c)}]" +
              (f" ({len(r['not_converged'])} not converged, left out)"
               if r.get('not_converged') else '')
              for r, c, _, _ in items]
    # room for the longest comparison label (~0.06 inch per character)
    width = 5 + 0.055 * max([len(t) for t in labels] or [0])
    fig, ax = plt.subplots(figsize=(width, 1.0 + 0.3 * max(1, len(items))))
    for i, (row, column, st, verdict) in enumerate(items):
        y = len(items) - 1 - i
        lo, hi = st.get('ci_low'), st.get('ci_high')
        err = None if lo is None else [[st['mean'] - lo], [hi - st['mean']]]
        color = 'tab:red' if st['mean'] < 0 else 'tab:blue'
        ax.errorbar([st['mean']], [y], xerr=err, fmt='o', color=color,
                    mfc=color if verdict == 'differs' else 'white',
                    capsize=3, markersize=5)
        ax.scatter(st.get('diffs', []), [y] * len(st.get('diffs', [])),
                   s=8, color='gray', alpha=0.6, zorder=3)
    ax.axvline(0, color='black', linewidth=0.8)
    ax.set_yticks(range(len(items)))
    ax.set_yticklabels(list(reversed(labels)), fontsize=7)
    ax.set_xlabel('Δ of the row\'s key column (variant - reference),\n'
                  'mean and 95% t-interval; filled: differs; grey: units',
                  fontsize=8)
    ax.grid(alpha=0.3, axis='x')
    # explicit margins: the labels' width is known, tight_layout clips them
    height = fig.get_figheight()
    fig.subplots_adjust(left=(width - 5 + 0.2) / width, right=0.97,
                        bottom=min(0.5, 0.75 / height),
                        top=1 - min(0.3, 0.15 / height))
    _save(fig, path)


def plot_dose_response(curves: List[dict], path: str) -> None:
    """Dose-response curves: each curve's difference (variant -
    reference, e.g. circular - zeros for help) against the prior P with
    its 95% interval, help solid and hurt dashed, a row per column (the
    curve's key column, then probe SPC), a panel per cue strength (tilt).
    Filled markers: the dose's verdict is "differs"; the shaded band is
    the equivalence margin; grey crosses on the zero line count the
    non-converged cells left out at that dose ("k nc").

    Args:
        curves (list[dict]): :func:`.comparisons.dose_curves` of judged
            rows.
        path (str): The PNG to write.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from .verdict import margin_of
    tilts = sorted({c['tilt'] for c in curves},
                   key=lambda t: -1 if t is None else t)
    keys = list(dict.fromkeys(c['key'] for c in curves)) + ['spc']
    fig, axes = plt.subplots(len(keys), len(tilts),
                             figsize=(max(6.4, 4.6 * len(tilts)),
                                      3.2 * len(keys)),
                             squeeze=False)
    colors = {'parsenet': 'tab:blue', 'parsenet-noglobal': 'tab:orange',
              'fcn': 'tab:green'}
    for j, tilt in enumerate(tilts):
        for i, column in enumerate(keys):
            ax = axes[i][j]
            margin = margin_of(column)
            ax.axhspan(-margin, margin, color='0.9', zorder=0)
            ax.axhline(0, color='black', linewidth=0.8)
            for curve in [c for c in curves if c['tilt'] == tilt and
                          column in (c['key'], 'spc')]:
                color = colors.get(curve['head'], 'tab:purple')
                style = '--' if curve['contrast'] == 'hurt' else '-'
                marker = 's' if curve['contrast'] == 'hurt' else 'o'
                pts = [p for p in curve['points']
                       if p['stats'][column]['mean'] is not None]
                xs = [p['dose'] for p in pts]
                ys = [p['stats'][column]['mean'] for p in pts]
                lo = [p['stats'][column]['ci_low'] for p in pts]
                hi = [p['stats'][column]['ci_high'] for p in pts]
                err = [[y - (a if a is not None else y)
                        for y, a in zip(ys, lo)],
                       [(b if b is not None else y) - y
                        for y, b in zip(ys, hi)]]
                # the panel names the tilt: one legend entry per curve kind
                label = curve['label'] if tilt is None else curve[
                    'label'].replace(f', tilt {tilt:g}', '')
                ax.errorbar(xs, ys, yerr=err, color=color, linestyle=style,
                            capsize=2, linewidth=1.2, label=label)
                for p, x, y in zip(pts, xs, ys):
                    v = p.get('verdicts', {}).get(column, {})
                    ax.plot([x], [y], marker=marker, color=color,
                            markersize=5, mfc=color if v.get('verdict') ==
                            'differs' else 'white')
                for p in curve['points']:
                    if p['not_converged']:
                        ax.plot([p['dose']], [0], marker='x', color='gray',
                                markersize=7)
                        ax.annotate(f"{len(p['not_converged'])} nc",
                                    (p['dose'], 0), fontsize=6,
                                    color='gray', xytext=(3, 3),
                                    textcoords='offset points')
            ax.set_xlabel('prior P (training)', fontsize=8)
            ax.set_ylabel(f'Δ {_COLUMN_NAMES.get(column, column)}',
                          fontsize=8)
            ax.set_title('no tilt' if tilt is None else f'tilt {tilt:g}',
                         fontsize=9)
            ax.grid(alpha=0.3)
    handles = {}
    for ax in [ax for row in axes for ax in row]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    # one curve per line: the labels are long
    fig.tight_layout(rect=(0, min(0.5, 0.03 + 0.03 * len(handles)), 1, 1))
    fig.legend(list(handles.values()), list(handles), loc='lower center',
               ncol=1, fontsize=7, frameon=False)
    _save(fig, path)


def plot_loss_curves(curves: dict, path: str,
                     excluded: Optional[dict] = None) -> None:
    """Training loss per variant (mean over all its cells, converged or
    not, at each logged window), a panel per condition; ``curves`` is
    ``{condition: {key: [(iters, loss), ...]}}``, ``excluded``
    :func:`.aggregate.not_converged` (named in the legend)."""
    fig, axes = _panels(len(curves))
    for ax, layout in zip(axes, curves):
        nc = (excluded or {}).get(layout)
        for key, runs in curves[layout].items():
            style = _style(key)
            n = min(len(loss) for _, loss in runs)
            iters = runs[0][0][:n]
            mean = [sum(loss[i] for _, loss in runs) / len(runs)
                    for i in range(n)]
            ax.plot(iters, mean, label=_nc_label(key, nc),
                    color=style['color'], linestyle=style['linestyle'],
                    linewidth=1.2)
        ax.set_yscale('log')
        ax.set_xlabel('iteration', fontsize=8)
        ax.set_ylabel('training loss (all heads, mean of seeds)',
                      fontsize=8)
        ax.set_title(layout, fontsize=9)
        ax.grid(alpha=0.3)
    _legend(fig, axes)
    _save(fig, path)
