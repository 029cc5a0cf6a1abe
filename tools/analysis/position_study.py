"""Does absolute position help or hurt segmentation? The position study.

    # the study: four contrasts (help, hurt, removal, context), 77 cells,
    # 3 seeds per cell and 5 for the headline help and hurt comparisons;
    # both cores as two workers
    python tools/analysis/position_study.py --out work_dirs/position_study \\
        --workers 2 --threads 1
    # the headline help and hurt comparisons, seed 0 (4 cells)
    python tools/analysis/position_study.py --quick
    # the headline comparisons with 5 seeds
    python tools/analysis/position_study.py --contrasts help hurt \\
        --headline --workers 2 --threads 1
    # a chosen grid (head/border/pos; border: a padding mode, +coord for
    # CoordConv; pos: none, +1, -1, remove, shift)
    python tools/analysis/position_study.py --layouts shortcut-swap \\
        --variants parsenet/zeros/remove parsenet/circular+coord/none \\
        --seeds 0 1 2

Each cell trains the demo family in-process, evaluates it with
BorderIoUMetric and probes the trained backbone's position information.
Cells are claimed (possec.runtime.claims): --workers N processes, or N
invocations of the same command over one --out (a Slurm array), run each
cell once. Run the same command again to continue a killed study: finished
cells are skipped, a half-finished one is redone. Writes study.md,
study.json and study_*.png into --out.
"""
import warnings; warnings.filterwarnings('ignore', 'pkg_resources is deprecated', UserWarning)  # noqa: E702,E501 (mmengine imports it; see possec.runtime.quiet)
import argparse
import shlex
import sys

from possec.analysis.study.cells import run_study
from possec.analysis.study.grid import (BORDERS, CONTRASTS, HEADS, POSITION,
                                        QUICK, STUDY_LAYOUTS, resolve_grid)
from possec.apis.cli import run_cli


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Train the contrasts of the position study (where '
        'absolute position helps, where it hurts, removal, global context) '
        'and report paired differences with 95%% CIs, mIoU by border band '
        'and probe SPC')
    p.add_argument('--out-dir', '--out', dest='out',
                   default='work_dirs/position_study',
                   help='study folder (continue a study by reusing it); '
                   '--out is the older spelling')
    p.add_argument('--quick', action='store_true',
                   help='the headline help and hurt comparisons, seed 0: '
                   '4 cells, 2 workers of 1 thread (minutes on 2 quiet '
                   'cores, see docs/position_study.md): ' +
                   ', '.join(f'{k}={v}'
                             for k, v in QUICK['settings'].items()))
    p.add_argument('--workers', type=int,
                   help='worker processes draining the grid (default 1; 2 '
                   'with --quick); several invocations of the same command '
                   'over one --out also share the work (e.g. a Slurm '
                   'array)')
    g = p.add_argument_group(
        'grid (default: every contrast; 3 seeds, 5 for the headline '
        'comparisons)')
    g.add_argument('--contrasts', nargs='+', choices=tuple(CONTRASTS),
                   help='; '.join(f'{k}: {v["question"].split("?")[0]}?'
                                  for k, v in CONTRASTS.items()).replace(
                                      '%', '%%'))
    g.add_argument('--headline', action='store_true',
                   help='only the headline comparison of each contrast')
    g.add_argument('--layouts', nargs='+', choices=STUDY_LAYOUTS,
                   help='keep the cells of these layouts')
    g.add_argument('--seeds', nargs='+', type=int,
                   help='seeds of every variant')
    g.add_argument('--heads', nargs='+', choices=HEADS)
    g.add_argument('--paddings', nargs='+', choices=BORDERS,
                   metavar='BORDER',
                   help='padding mode, +coord for CoordConv channels: ' +
                   ', '.join(BORDERS))
    g.add_argument('--pos-heads', nargs='+', choices=tuple(POSITION),
                   help='; '.join(f'{k}: {v}' for k, v in POSITION.items()))
    g.add_argument('--variants', nargs='+', metavar='HEAD/BORDER/POS',
                   help='explicit variants instead of the contrasts, e.g. '
                   'parsenet/zeros/none parsenet/circular+coord/none')
    s = p.add_argument_group('settings (default: study.grid.'
                             'DEFAULT_SETTINGS)')
    s.add_argument('--max-iters', type=int)
    s.add_argument('--batch-size', type=int)
    s.add_argument('--optimizer', choices=('adamw', 'sgd'),
                   help='adamw (default, lr 0.002) or sgd (mmseg\'s)')
    s.add_argument('--lr', type=float)
    s.add_argument('--img-size', type=int)
    s.add_argument('--num-train', type=int)
    s.add_argument('--num-val', type=int)
    s.add_argument('--data-root', help='where the layouts are generated '
                   '(default: <out>/data)')
    s.add_argument('--num-workers', type=int)
    s.add_argument('--probe-images', type=int)
    s.add_argument('--probe-epochs', type=int)
    s.add_argument('--probe-convs', type=int,
                   help='depth of the probe\'s readout: 1 (default, the '
                   'paper\'s linear readout) or 2 (one hidden layer)')
    s.add_argument('--probe-lr', type=float,
                   help='learning rate of the probe\'s readout')
    s.add_argument('--threads', type=int,
                   help='torch threads per worker (1 is fastest on a busy '
                   'machine; --quick sets 1)')
    return p.parse_args(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    a = parse_args(argv)
    options = {k: v for k, v in vars(a).items()
               if k not in ('out', 'workers')}
    cells, settings = resolve_grid(**options)
    workers = a.workers or (QUICK['workers'] if a.quick else 1)
    command = shlex.join(['python', 'tools/analysis/position_study.py'] +
                         argv)
    print(f'study: {len(cells)} cells, {workers} worker(s), folder '
          f'{a.out}', flush=True)
    try:
        run = run_study(cells, a.out, settings, command=command,
                        workers=workers,
                        log=lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        print('\ninterrupted; rerun the same command to continue',
              file=sys.stderr, flush=True)
        sys.exit(130)
    print(f"study: {len(run['results'])} of {len(cells)} cells finished; "
          f"report in {run['files']['markdown']}", flush=True)


if __name__ == '__main__':
    run_cli(main)
