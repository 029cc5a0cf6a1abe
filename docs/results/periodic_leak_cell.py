"""The driver of docs/results/periodic_leak.json (issue 29 item 1), kept as
it ran: from a ``git archive`` of the commit recorded in that file, with
``PYTHONPATH`` at the archive, ``OMP_NUM_THREADS=1``, one cell per process,
two processes at a time under ``flock /tmp/possec-heavy.lock``::

    LEAK_CODE=<commit> python periodic_leak_cell.py --padding circular \
        --seed 0 --periodic both

It uses the study's internals of that commit (``cell_options``,
``_metrics``, ``probe_backbone``); later code may name them otherwise. The
study itself takes ``periodic`` per cell (see docs/position_study.md).
The two seed-0 cells of the first round (circular, periodic both and
none) ran before ``pair_object_accuracy`` was added; they have no
``pair_objects``.

One cell of the periodic-leak experiment: the position study's cell
(ParseNet R-18-D8, 4 x 64^2, AdamW lr 0.002, 200/100 images, the study's
probe) on position-coded data generated with --periodic MODE, trained for
ITERS iterations; writes OUT/<name>.json with pairs / others / all mIoU, the
probe's SPC (study probe images, and periodic probe images) and the
position-blind level of the validation labels.
"""
import argparse
import json
import os
import os.path as osp
import time

import numpy as np
import torch
from PIL import Image
from scipy.optimize import minimize_scalar

SRC = osp.dirname(osp.dirname(osp.abspath(__import__('possec').__file__)))


def blind_level(root):
    """Highest expected pairs mIoU (points) of a perfect segmenter that
    cannot tell a pair apart, from the pixel shares on the val labels."""
    from possec.datasets.synthetic import POSITION_PAIRS
    with open(osp.join(root, 'ImageSets/Segmentation/val.txt')) as f:
        names = f.read().split()
    counts = np.zeros(256, np.int64)
    for n in names:
        m = np.asarray(Image.open(osp.join(root, 'SegmentationClass',
                                           n + '.png')))
        counts += np.bincount(m.ravel(), minlength=256)
    levels, shares = [], []
    for a, b in POSITION_PAIRS:
        f = counts[a] / (counts[a] + counts[b])

        def neg(q):
            ia = q * f / (f + q * (1 - f)) if q > 0 else 0.0
            ib = ((1 - q) * (1 - f) / ((1 - f) + (1 - q) * f)
                  if q < 1 else 0.0)
            return -(ia + ib) / 2
        best = minimize_scalar(neg, bounds=(0, 1), method='bounded')
        grid = min(neg(q) for q in np.linspace(0, 1, 1001))
        levels.append(100 * max(-best.fun, -grid))
        shares.append(float(f))
    return float(np.mean(levels)), shares, levels


def pair_object_accuracy(runner):
    """Per pair object of the validation labels (a connected part of at
    least 12 pixels of a pair class): whether the prediction gives more of
    its pixels to its own class than to its look-alike."""
    from scipy import ndimage

    from possec.datasets.synthetic import POSITION_PAIRS
    partner = {}
    for a, b in POSITION_PAIRS:
        partner[a], partner[b] = b, a
    model = getattr(runner.model, 'module', runner.model)
    model.eval()
    right = total = ties = 0
    per_pair = {}
    with torch.no_grad():
        for data in runner.val_dataloader:
            for sample in model.test_step(data):
                gt = sample.gt_sem_seg.data[0].cpu().numpy()
                pred = sample.pred_sem_seg.data[0].cpu().numpy()
                for cls, other in partner.items():
                    parts, num = ndimage.label(gt == cls)
                    for k in range(1, num + 1):
                        pix = parts == k
                        if pix.sum() < 12:
                            continue
                        own = int((pred[pix] == cls).sum())
                        alike = int((pred[pix] == other).sum())
                        if own == alike:  # neither (e.g. background)
                            ties += 1
                            continue
                        ok = int(own > alike)
                        key = str(min(cls, other))
                        hit = per_pair.setdefault(key, [0, 0])
                        hit[0] += ok
                        hit[1] += 1
                        right += ok
                        total += 1
    return dict(right=right, total=total, ties=ties, per_pair=per_pair)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--padding', required=True)
    p.add_argument('--seed', type=int, required=True)
    p.add_argument('--periodic', default='none')
    p.add_argument('--iters', type=int, default=3000)
    p.add_argument('--out', default='/tmp/data_exp/results')
    p.add_argument('--data', default='/tmp/data_exp/data')
    args = p.parse_args()
    torch.set_num_threads(1)
    from mmengine.config import Config

    from possec.analysis.study import cells as study_cells
    from possec.analysis.study.builder import cell_options
    from possec.analysis.study.design import Cell
    from possec.analysis.study.progress import loss_curve
    from possec.apis import train
    from possec.datasets.synthetic import (generate_synthetic_voc,
                                           read_generation_meta)
    from possec.analysis.probe import probe_images

    settings = study_cells.check_settings(
        dict(max_iters=args.iters, data_root=args.data, threads=1))
    cell = Cell('position-coded', 'parsenet', args.padding, 'none',
                args.seed)
    name = f'{args.periodic}__{args.padding}__s{args.seed}__{args.iters}'
    work_dir = osp.join('/tmp/data_exp/runs', name)
    os.makedirs(args.out, exist_ok=True)
    results_file = osp.join(work_dir, 'metrics.json')
    cfg_file = osp.join(SRC, 'configs/demo/parsenet_pos_synthetic.py')
    fcn_file = osp.join(
        SRC, 'configs/demo/fcn_r18-d8_1xb8-160_synthetic-128x128.py')
    posenet = [h for h in Config.fromfile(cfg_file).model.auxiliary_head
               if h['type'] == 'PosENetHead'][0]
    heads = dict(fcn_aux=Config.fromfile(fcn_file).model.auxiliary_head
                 .to_dict(), posenet=posenet.to_dict())
    opts = cell_options(cell, settings, work_dir, results_file, heads,
                        progress_every=max(1, args.iters // 10))
    root = osp.join(args.data, f'position-coded_64px_200-100_seed0_'
                    f'periodic-{args.periodic}')
    generate = dict(layout='position-coded', num_train=200, num_val=100,
                    img_size=64, seed=0, progress=False,
                    periodic=args.periodic)
    if read_generation_meta(root) is None:
        generate_synthetic_voc(root, **generate)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts[f'{loader}.dataset.data_root'] = root
        opts[f'{loader}.dataset.generate'] = generate
    t0 = time.perf_counter()
    runner = train(cfg_file, work_dir=work_dir, cfg_options=opts)
    t1 = time.perf_counter()
    curve = loss_curve(runner)
    raw = runner.val()
    t2 = time.perf_counter()
    model = getattr(runner.model, 'module', runner.model)
    prep = runner.cfg.model.get('data_preprocessor', {})
    images = study_cells.study_probe_images(settings)
    probe = study_cells.probe_backbone(model.backbone, images, settings,
                                       cell.seed, prep.get('mean'),
                                       prep.get('std'))
    proot = osp.join(args.data, 'uniform_64px_probe_periodic')
    if read_generation_meta(proot) is None:
        generate_synthetic_voc(proot, 'uniform', 64, 1, 64, 1,
                               progress=False, periodic='both')
    pimages = probe_images(osp.join(proot, 'JPEGImages'), 64, 64)
    probe_periodic = study_cells.probe_backbone(
        model.backbone, pimages, settings, cell.seed, prep.get('mean'),
        prep.get('std'))
    objects = pair_object_accuracy(runner)
    t3 = time.perf_counter()
    level, shares, levels = blind_level(root)
    out = dict(
        name=name, cell=cell._asdict(), periodic=args.periodic,
        iters=args.iters, data_root=root,
        data_meta=read_generation_meta(root),
        settings={k: v for k, v in settings.items()},
        **study_cells._metrics(raw, results_file),
        probe=probe, probe_periodic_images=probe_periodic,
        loss_curve=curve, pair_objects=objects, blind_level=level,
        pair_shares=shares,
        pair_blind_levels=levels, code=os.environ.get('LEAK_CODE'),
        time_s=dict(train=t1 - t0, eval=t2 - t1, probe=t3 - t2))
    with open(osp.join(args.out, name + '.json'), 'w') as f:
        json.dump(out, f, indent=1, sort_keys=True, default=float)
    m = out['metrics']
    print(f"{name}: pairs {m['mIoU_pairs']:.1f} others "
          f"{m['mIoU_others']:.1f} mIoU {m['mIoU']:.1f} "
          f"V {probe['spc']['V']:.2f} (periodic probe "
          f"{probe_periodic['spc']['V']:.2f}) blind {level:.1f} "
          f"objects {objects['right']}/{objects['total']} "
          f"train {t1 - t0:.0f}s", flush=True)


if __name__ == '__main__':
    main()
