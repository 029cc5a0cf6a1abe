"""Does absolute position help or hurt segmentation? The position study.

    # the default grid (docs/position_study.md): ParseNet with zeros and
    # circular padding, ParseNet + position head +1 and -1 (zeros), FCN
    # with zeros and circular; every synthetic layout, seeds 0 and 1: 36
    # cells of about 2 minutes each
    python tools/analysis/position_study.py --out work_dirs/position_study
    # zeros vs circular padding and the +1 head on position-coded and
    # uniform, one seed: 7.5 minutes on 2 CPU cores
    python tools/analysis/position_study.py --quick
    # a chosen grid
    python tools/analysis/position_study.py --layouts border-shift \\
        --paddings zeros reflect --pos-heads none -1 --seeds 0 1 2
    python tools/analysis/position_study.py --variants fcn/zeros/none \\
        parsenet/zeros/none parsenet/zeros/-1

Each cell trains the demo family in-process, evaluates it with
BorderIoUMetric and probes the trained backbone's position information.
Run the same command again to continue a killed study: finished cells are
skipped, a half-finished one is redone. Writes study.md, study.json and
study_*.png into --out.
"""
import argparse
import shlex
import sys

from possec.analysis.study.cells import run_study
from possec.analysis.study.grid import (HEADS, POS_HEADS, QUICK,
                                        STUDY_LAYOUTS, resolve_grid)
from possec.apis.cli import run_cli
from possec.models.layers import PADDING_MODES


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Train a grid of padding x position head x decode head '
        'x seed x layout, and report mIoU by border band and probe SPC')
    p.add_argument('--out', default='work_dirs/position_study',
                   help='study folder (continue a study by reusing it)')
    p.add_argument('--quick', action='store_true',
                   help='small preset (7.5 min on 2 cores): ' + ', '.join(
                       f'{k}={v}' for k, v in QUICK['settings'].items()))
    g = p.add_argument_group(
        'grid (default: ParseNet x {zeros, circular}, ParseNet + pos head '
        '{+1, -1} at zeros, FCN x {zeros, circular})')
    g.add_argument('--layouts', nargs='+', choices=STUDY_LAYOUTS)
    g.add_argument('--seeds', nargs='+', type=int)
    g.add_argument('--heads', nargs='+', choices=HEADS)
    g.add_argument('--paddings', nargs='+', choices=PADDING_MODES)
    g.add_argument('--pos-heads', nargs='+', choices=tuple(POS_HEADS),
                   help='position head: none, +1 (encourage), -1 '
                   '(adversary)')
    g.add_argument('--variants', nargs='+', metavar='HEAD/PADDING/POS',
                   help='explicit variants instead of a cartesian grid, '
                   'e.g. parsenet/zeros/none parsenet/circular/none')
    s = p.add_argument_group('settings (default: study_grid.'
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
    s.add_argument('--probe-lr', type=float,
                   help='learning rate of the probe\'s readout')
    s.add_argument('--threads', type=int,
                   help='torch threads (1 is fastest on a busy machine)')
    return p.parse_args(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    a = parse_args(argv)
    options = {k: v for k, v in vars(a).items() if k not in ('out', )}
    cells, settings = resolve_grid(**options)
    command = shlex.join(['python', 'tools/analysis/position_study.py'] +
                         argv)
    run = run_study(cells, a.out, settings, command=command)
    print(f"study: {len(run['results'])} cells; report in "
          f"{run['files']['markdown']}")


if __name__ == '__main__':
    run_cli(main)
