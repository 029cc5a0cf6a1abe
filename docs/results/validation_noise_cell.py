"""The driver of docs/results/validation_noise.json: how much of a study
cell's scatter from one validation to the next would more validation
images remove?

    OMP_NUM_THREADS=1 python docs/results/validation_noise_cell.py \
        --padding zeros --seed 0 --data-seed 0 --out DIR

Trains the position study's hurt-endpoint cell (ParseNet, prior-shift
P = 0.9, Q = 0.1, tilt 10, periodic; the converged recipe's constant
learning rate) for 4800 + 1200 iterations on data generated with 400
validation images: the training images and the first 100 validation
images are the study's (each sample has its own random stream), and the
validations leave the training unchanged, so the run retraces the
study's cell. Every 300 iterations from 4200 on (the study's validation
iterations) a hook scores the network on all 400 validation images,
counting each image's areas with mmseg's ``IoUMetric.intersect_and_union``
(the random states of torch, numpy and Python saved and restored
around it), and the script
writes OUT/<cell>.json: pairs mIoU of each 100-image quarter and of all
400 at each iteration, the run's own validations (BorderIoUMetric, at
4800 and 6000, for a cross-check) and the code version.

Read: the first quarter is the study's validation set, so its scores
should repeat the committed windowed run's validations of the same cell
(docs/results/position_study_windowed.json) where the training is
deterministic. The scatter over iterations of a 100-image score against
that of the 400-image score says what ``--num-val 400`` buys.
"""
import possec.bootstrap  # noqa: F401,I001  (first: the stack's warnings)
import argparse
import json
import os
import os.path as osp
import random
import time

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmseg.evaluation.metrics import IoUMetric

from possec.analysis.channels.evaluate import PAIR_CLASSES, load_batches
from possec.analysis.study.builder import cell_options, head_config
from possec.analysis.study.cells import _history, class_metrics
from possec.analysis.study.provenance import code_version
from possec.analysis.study.selection import resolve_grid
from possec.analysis.study.settings import CONVERGED
from possec.apis import train

#: Iterations scored: the study's windowed validations up to 6000.
ITERS = tuple(range(4200, 6001, 300))
QUARTERS = 4


@HOOKS.register_module(force=True)
class AreaScoreHook(Hook):
    """Per-image class areas of the validation set at chosen iterations
    (after the iteration's update, where a validation would read)."""

    priority = 'LOWEST'

    def __init__(self, iters):
        self.iters = set(int(i) for i in iters)
        self.out = {}  # {iteration: [n_images, 4, classes] int array}
        self.batches = None

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        it = runner.iter + 1
        if it not in self.iters:
            return
        states = (torch.get_rng_state(), np.random.get_state(),
                  random.getstate())
        if self.batches is None:
            self.batches = load_batches(runner.cfg, batch_size=8)
        model = getattr(runner.model, 'module', runner.model)
        model.eval()
        head = model.decode_head
        rows = []
        with torch.no_grad():
            for batch in self.batches:
                for sample in model.test_step(batch):
                    areas = IoUMetric.intersect_and_union(
                        sample.pred_sem_seg.data[0].cpu(),
                        sample.gt_sem_seg.data[0].cpu(), head.num_classes,
                        getattr(head, 'ignore_index', 255))
                    rows.append(torch.stack(areas).numpy())
        model.train()
        torch.set_rng_state(states[0])
        np.random.set_state(states[1])
        random.setstate(states[2])
        self.out[it] = np.stack(rows).round().astype(np.int64)


def pairs_miou(areas: np.ndarray) -> float:
    """Pairs mIoU (points) of summed ``[n, 4, C]`` areas (intersection,
    union, prediction, label), NaN classes left out as mmseg does."""
    inter, union = areas[:, 0].sum(0), areas[:, 1].sum(0)
    with np.errstate(divide='ignore', invalid='ignore'):
        iou = 100.0 * inter / union
    return float(np.nanmean(iou[PAIR_CLASSES]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--padding', choices=('zeros', 'circular'),
                   required=True)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--data-seed', type=int, default=0)
    p.add_argument('--out', required=True)
    p.add_argument('--dry-run', action='store_true',
                   help='tiny sizes, to check the script runs')
    args = p.parse_args(argv)
    cells, _ = resolve_grid(contrasts=['hurt'], primary=True,
                            seeds=[args.seed], data_seeds=[args.data_seed])
    (cell, ) = [c for c in cells if c.padding == args.padding]
    s = CONVERGED.replace(num_val=400, tail_iters=1200, val_every=0,
                          converge_window=1,
                          data_root=osp.join(args.out, 'data'))
    iters = ITERS
    if args.dry_run:
        s = s.replace(max_iters=4, tail_iters=2, num_val=8, num_train=8,
                      img_size=32)
        iters = (2, 4, 6)
    work_dir = osp.join(args.out, 'runs', cell.name)
    os.makedirs(work_dir, exist_ok=True)
    results_file = osp.join(work_dir, 'metrics.json')
    opts = cell_options(cell, s, work_dir, results_file)
    opts['custom_hooks'] = list(opts['custom_hooks']) + [
        dict(type='AreaScoreHook', iters=iters)]
    t0 = time.perf_counter()
    runner = train(head_config(cell.head), work_dir=work_dir,
                   cfg_options=opts, summary=False)
    seconds = time.perf_counter() - t0
    (scored, ) = [h.out for h in runner.hooks if isinstance(h, AreaScoreHook)]
    own = []
    for entry in _history(runner):
        files = [f for f in entry['files'] if f.endswith('.json')]
        numbers = class_metrics(entry['metrics'],
                                files[0] if files else None)['metrics']
        own.append(dict(iter=entry['iter'],
                        mIoU_pairs=numbers.get('mIoU_pairs')))
    quarter = s.num_val // QUARTERS
    scores = []
    for it in sorted(scored):
        areas = scored[it]
        scores.append(dict(
            iter=it, all=pairs_miou(areas),
            quarters=[pairs_miou(areas[q * quarter:(q + 1) * quarter])
                      for q in range(QUARTERS)]))
    record = dict(cell=cell._asdict(), name=cell.name,
                  settings=s.as_dict(), code=code_version(),
                  threads=torch.get_num_threads(), seconds=seconds,
                  scores=scores, own_validations=own)
    path = osp.join(args.out, cell.name + '.json')
    with open(path + '.part', 'w') as f:
        json.dump(record, f, indent=1)
    os.replace(path + '.part', path)
    print(f'{cell.name}: {len(scores)} iterations scored in {seconds:.0f} '
          f's; {path}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
