"""docs/results/removal_linear_retry.json: the linear probe again, with
one slower recipe, on the removal test's kept backbones.

    python docs/results/removal_linear_retry.py \
        /work/study-runs/v30-removal-s0d0 ... --lr 0.001 --epochs 40 \
        --out docs/results/removal_linear_retry.json
    python docs/results/removal_linear_retry.py \
        --table docs/results/removal_linear_retry.json

The study's linear readout (learning rate 0.01, 10 epochs) failed to
train on every erased and shift-consistent backbone of the removal test
(its sigmoid outputs saturated; the report withholds that SPC). This
reads every kept cell of the given study folders, all four arms, with
one recipe that trains on all of them: the study's probe
(``cells.probe_backbone``: the same images, seed, readout and loss) at
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

import torch

from possec.analysis.common.models import load_segmentor
from possec.analysis.study.cells import (_mean_spc, probe_backbone,
                                         study_probe_images)
from possec.analysis.study.inference import difference_test
from possec.analysis.study.reprobe import _kept_cells
from possec.analysis.study.results import converged, unit, unit_name
from possec.analysis.study.settings import StudySettings
from possec.analysis.study.stats import paired_contrast
from possec.fileio import dump_json

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
    cells = _kept_cells(list(folders), lambda record: True)
    for i, (folder, record, _, ckpt, config) in enumerate(cells):
        t0 = time.perf_counter()
        s = StudySettings.from_dict(dict(record['settings'], probe_lr=lr))
        torch.set_num_threads(s.threads or torch.get_num_threads())
        model = load_segmentor(config, ckpt)
        prep = model.cfg.model.get('data_preprocessor', {})
        probe = probe_backbone(model.backbone, study_probe_images(s), s,
                               record['cell']['seed'], prep.get('mean'),
                               prep.get('std'), epochs=epochs)
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
            f"{p['final_loss'] / p['baseline_loss']:.2f} | {p['failed']} |")
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('folders', nargs='*', help='study folders that '
                        'kept their states (--keep-checkpoints)')
    parser.add_argument('--lr', type=float, default=0.001)
    parser.add_argument('--epochs', type=int, default=40)
    parser.add_argument('--out', help='where the JSON goes')
    parser.add_argument('--table', help='print the table of a written '
                        'JSON and stop')
    args = parser.parse_args(argv)
    if args.table:
        with open(args.table) as f:
            print(table(json.load(f)))
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
