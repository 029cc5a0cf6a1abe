"""Figures of the study's comparisons: the differences of each row's key
column with their 95% intervals, and the dose-response curves (matplotlib,
Agg backend; saved without a software stamp by :func:`.plots._save`)."""
import textwrap
from typing import List

from .plots import _save

_COLUMN_NAMES = dict(mIoU='mIoU', mIoU_pairs='pairs mIoU',
                     spc='probe SPC')
# a comparison's label wraps at this many characters; the plot is this
# many inches wide beside the labels
_LABEL_CHARS = 56
_PLOT_WIDTH = 5.5


def plot_contrasts(rows: List[dict], path: str) -> None:
    """The paired differences of the named contrasts with their 95%
    confidence intervals as error bars, one row per comparison, each on
    its own key column (the first column it is judged on: pairs mIoU,
    or mIoU on a layout without pairs), named in its label with the
    number of non-converged cells left out (wrapped to lines of at most
    ``_LABEL_CHARS`` characters, so that the plot keeps most of the
    width). Filled: the verdict is "differs"; hollow: it is not, or
    there is no interval; grey dots: the units, where there are at least
    two (one unit is the mean)."""
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
    # the key column's name stays on one line (no-break spaces)
    labels = [f"{r['contrast']}: {r['label']} " +
              f"[Δ {_COLUMN_NAMES.get(c, c)}]".replace(' ', '\u00a0') +
              (f" ({len(r['not_converged'])} not converged, left out)"
               if r.get('not_converged') else '')
              for r, c, _, _ in items]
    # long labels wrap to a few lines, so that the plot, not the labels,
    # takes most of the figure (~0.055 inch per character at size 7)
    labels = [textwrap.fill(t, _LABEL_CHARS, break_on_hyphens=False)
              for t in labels]
    label_width = 0.055 * max([len(line) for t in labels
                               for line in t.split('\n')] or [0])
    lines = max([t.count('\n') + 1 for t in labels] or [1])
    width = label_width + _PLOT_WIDTH
    fig, ax = plt.subplots(figsize=(
        width, 1.0 + (0.15 + 0.13 * lines) * max(1, len(items))))
    for i, (row, column, st, verdict) in enumerate(items):
        y = len(items) - 1 - i
        lo, hi = st.get('ci_low'), st.get('ci_high')
        err = None if lo is None else [[st['mean'] - lo], [hi - st['mean']]]
        color = 'tab:red' if st['mean'] < 0 else 'tab:blue'
        ax.errorbar([st['mean']], [y], xerr=err, fmt='o', color=color,
                    mfc=color if verdict == 'differs' else 'white',
                    capsize=3, markersize=5)
        diffs = st.get('diffs', [])
        if len(diffs) > 1:
            # one unit is the mean itself: its dot would fill the hollow
            # marker grey and read as a verdict
            ax.scatter(diffs, [y] * len(diffs), s=8, color='gray',
                       alpha=0.6, zorder=3)
    ax.axvline(0, color='black', linewidth=0.8)
    ax.set_yticks(range(len(items)))
    ax.set_yticklabels(list(reversed(labels)), fontsize=7)
    ax.set_xlabel('Δ of the row\'s key column (variant - reference),\n'
                  'mean and 95% t-interval; filled: differs, hollow: '
                  'not shown or no interval; grey: units',
                  fontsize=8)
    ax.grid(alpha=0.3, axis='x')
    # explicit margins: the labels' width is known, tight_layout clips them
    height = fig.get_figheight()
    fig.subplots_adjust(left=(label_width + 0.2) / width, right=0.97,
                        bottom=min(0.5, 0.75 / height),
                        top=1 - min(0.3, 0.15 / height))
    _save(fig, path)


def plot_dose_response(curves: List[dict], path: str) -> None:
    """Dose-response curves: each curve's difference (variant -
    reference, e.g. circular - zeros for help) against the prior P with
    its 95% interval, help solid and hurt dashed, a row per column (the
    curve's key column, then probe SPC), a panel per cue strength (tilt).
    Filled markers: the dose's verdict is "differs"; the shaded band is
    the equivalence margin; grey crosses at the foot of the panel (not
    on the zero line: they are no difference) count the units left out
    at that dose as not converged ("k nc").

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
            # a dose's left-out units are counted at the panel's foot,
            # not on the zero line, where a cross would read as a 0
            foot = ax.get_xaxis_transform()
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
                                markersize=7, transform=foot,
                                clip_on=False)
                        ax.annotate(f"{len(p['not_converged'])} nc",
                                    (p['dose'], 0), xycoords=foot,
                                    fontsize=6, color='gray',
                                    xytext=(3, 3),
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
