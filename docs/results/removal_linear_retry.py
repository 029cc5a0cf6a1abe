"""docs/results/removal_linear_retry.json: the linear probe again, with
one slower recipe, on the removal test's kept backbones.

    python docs/results/removal_linear_retry.py \
        /work/study-runs/v30-removal-s0d0 ... --lr 0.001 --epochs 40 \
        --out docs/results/removal_linear_retry.json
    python docs/results/removal_linear_retry.py \
        --table docs/results/removal_linear_retry.json \
        --figure docs/results/removal_linear_retry.png

The study's linear readout (learning rate 0.01, 10 epochs) failed to
train on every erased and shift-consistent backbone of the removal test
(its sigmoid outputs saturated; the report withholds that SPC). This
reads every kept cell of the given study folders, all four arms, with
one recipe that trains on all of them: the study's probe
(``reprobe.kept_probe``: the same images, seed, readout and loss) at
``--lr`` for ``--epochs``. The recipe was chosen after the failure was
seen: 0.001 and 0.003 (40 epochs each) were tried on three units, and
at 0.003 the shift-consistent readouts failed again.

Per cell: SPC per pattern and its mean, the last training loss against
the loss of ignoring the image (``baseline_loss``), whether the
readout failed (the study's rule) or reached its loss plateau. Then
per contrast (erase - zeros, shift - zeros, erase - circular,
shift - circular, zeros - circular) the paired difference of mean SPC
over units where both cells converged and both readouts trained: mean,
95% t-interval and two-sided t test (``study.stats.paired_contrast``,
``study.inference.difference_test``: scipy). Descriptive: a recipe
chosen after the fact, not a family of the study, no Holm adjustment.
"""
import argparse
import json
import sys
import time

from possec.analysis.common.figures import new_figure
from possec.analysis.study.cells import _mean_spc
from possec.analysis.study.inference import difference_test
from possec.analysis.study.reprobe import kept_cells, kept_probe
from possec.analysis.study.results import (converged, readout_failed,
                                           unit, unit_name)
from possec.analysis.study.stats import paired_contrast
from possec.fileio import atomic_path, dump_json

CONTRASTS = (('erase', 'none'), ('shift', 'none'), ('erase', 'circular'),
             ('shift', 'circular'), ('none', 'circular'))
NAMES = dict(none='zeros', circular='circular', erase='erase',
             shift='shift')


def arm_of(cell: dict) -> str:
    """``circular`` for circular padding, else the position mechanism."""
    return 'circular' if cell['padding'] == 'circular' else cell['pos']


def read_cells(folders, lr: float, epochs: int) -> list:
    """One linear readout per kept cell of ``folders``."""
    out = []
    cells = kept_cells(list(folders))
    for i, (folder, record, _, ckpt, config) in enumerate(cells):
        t0 = time.perf_counter()
        with kept_probe(record, config, ckpt, probe_lr=lr) as read:
            probe = read(epochs=epochs)
        out.append(dict(name=record['name'], folder=folder,
                        cell=record['cell'], unit=unit_name(unit(record)),
                        converged=converged(record),
                        recorded=record.get('probe'), probe=probe))
        print(f'[{i + 1}/{len(cells)}] {record["name"]}: mean SPC '
              f'{_mean_spc(probe)} (loss {probe["final_loss"]:.3f}, '
              f'{probe["final_loss"] / probe["baseline_loss"]:.2f} x '
              f'ignoring the image), {time.perf_counter() - t0:.0f} s',
              flush=True)
    return out


def contrasts(cells: list) -> list:
    """Paired differences of mean SPC per contrast of :data:`CONTRASTS`
    over units where both cells converged and both readouts trained."""
    by_arm = {}
    for c in cells:
        spc = _mean_spc(c['probe'])
        if c['converged'] is not False and spc is not None:
            by_arm.setdefault(arm_of(c['cell']), {})[c['unit']] = spc
    rows = []
    for a, b in CONTRASTS:
        pair = paired_contrast(by_arm.get(a, {}), by_arm.get(b, {}))
        if not pair['diffs']:
            continue
        test = difference_test(pair['diffs'])
        rows.append(dict(variant=a, reference=b, units=pair['seeds'],
                         diffs=pair['diffs'], mean=pair['mean'],
                         ci_low=pair['ci_low'], ci_high=pair['ci_high'],
                         p=test['p']))
    return rows


def table(data: dict) -> str:
    """The markdown the study page quotes."""
    lines = [f"Linear probe at lr {data['lr']:g} for {data['epochs']} "
             f'epochs on {len(data["cells"])} kept cells.', '',
             '| cell | unit | converged | mean SPC | loss / ignoring the '
             'image | failed |', '|---|---|---|---|---|---|']
    for c in sorted(data['cells'], key=lambda c: (arm_of(c['cell']),
                                                  c['unit'])):
        p = c['probe']
        spc = _mean_spc(p)
        lines.append(
            f"| {NAMES[arm_of(c['cell'])]} | {c['unit']} | "
            f"{c['converged']} | "
            f"{'n/a' if spc is None else format(spc, '.3f')} | "
            f"{p['final_loss'] / p['baseline_loss']:.2f} | "
            f"{readout_failed(p)} |")
    lines += ['', '| contrast (mean SPC) | units | mean [95% CI] | p |',
              '|---|---|---|---|']
    for r in data['contrasts']:
        ci = ('(n=1, no CI)' if r['ci_low'] is None else
              f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]")
        p = 'n/a' if r['p'] is None else f"{r['p']:.3g}"
        lines.append(f"| {NAMES[r['variant']]} - {NAMES[r['reference']]} "
                     f"| {', '.join(r['units'])} | {r['mean']:+.3f} {ci} "
                     f"| {p} |")
    return '\n'.join(lines)


ORDER = ('none', 'erase', 'shift', 'circular')


def figure(data: dict, path: str) -> None:
    """Mean SPC per arm and unit: the study's readout (left; the failed
    ones as grey crosses, their SPC withheld) and the slower one
    (right); a line per unit, hollow where the cell did not converge."""
    fig, axes = new_figure(1, 2, size=3.6)
    units = sorted({c['unit'] for c in data['cells']})
    # the default colour cycle (C0 is tab:blue, ...): any number of units
    # gets a colour, repeating after ten
    colors = {u: f'C{i % 10}' for i, u in enumerate(units)}
    panels = (('recorded', 'study readout (lr 0.01, 10 epochs)'),
              ('probe', f"slower readout (lr {data['lr']:g}, "
                        f"{data['epochs']} epochs)"))
    for ax, (key, title) in zip(axes[0], panels):
        for u in units:
            cells = {arm_of(c['cell']): c for c in data['cells']
                     if c['unit'] == u}
            xs, ys = [], []
            for x, arm in enumerate(ORDER):
                c = cells.get(arm)
                if c is None:
                    continue
                spc = c[key]['spc']
                y = sum(spc.values()) / len(spc)
                xs.append(x)
                if readout_failed(c[key]):
                    # withheld: drawn apart, and the unit's line breaks
                    ax.scatter([x], [y], marker='x', s=28, color='0.55',
                               zorder=3)
                    ys.append(float('nan'))
                    continue
                ys.append(y)
                ax.scatter([x], [y], s=30, zorder=3, linewidths=1.2,
                           color=colors[u] if c['converged'] is not False
                           else 'white', edgecolors=colors[u])
            ax.plot(xs, ys, color=colors[u], lw=0.8, alpha=0.7, zorder=2,
                    label=u if key == 'probe' else None)
        ax.axhline(0, color='k', lw=0.6)
        ax.set_xticks(range(len(ORDER)))
        ax.set_xticklabels([NAMES[a] for a in ORDER])
        ax.set_ylim(-0.3, 1.0)
        ax.set_title(title, fontsize=9)
    axes[0][0].set_ylabel('probe mean SPC (H, V, G)')
    axes[0][0].scatter([], [], marker='x', color='0.55',
                       label='failed to train (withheld)')
    axes[0][0].legend(fontsize=7, loc='upper right')
    axes[0][1].legend(fontsize=7, loc='upper right', title='unit (hollow: '
                      'not converged)', title_fontsize=7)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format='png', dpi=110)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('folders', nargs='*', help='study folders that '
                        'kept their states (--keep-checkpoints)')
    parser.add_argument('--lr', type=float, default=0.001)
    parser.add_argument('--epochs', type=int, default=40)
    parser.add_argument('--out', help='where the JSON goes')
    parser.add_argument('--table', help='print the table of a written '
                        'JSON and stop')
    parser.add_argument('--figure', help='with --table: draw the JSON '
                        'into this PNG')
    args = parser.parse_args(argv)
    if args.table:
        with open(args.table) as f:
            data = json.load(f)
        print(table(data))
        if args.figure:
            figure(data, args.figure)
        return 0
    if not args.folders or not args.out:
        parser.error('give study folders and --out, or --table JSON')
    cells = read_cells(args.folders, args.lr, args.epochs)
    data = dict(lr=args.lr, epochs=args.epochs, folders=args.folders,
                cells=cells, contrasts=contrasts(cells))
    dump_json(data, args.out)
    print(table(data))
    return 0


if __name__ == '__main__':
    sys.exit(main())
