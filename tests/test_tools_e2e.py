"""End to end: train, validate, checkpoint, resume and test on generated
VOC-format data, in-process through possec.apis (what tools/*.py call)."""
import glob
import json
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

from possec.apis import test, train

from .conftest import ROOT, tiny_overrides

DEMO_FCN = osp.join(ROOT, 'configs', 'demo',
                    'fcn_r18-d8_1xb8-160_synthetic-128x128.py')


def _options(tiny_voc, work_dir, **kwargs):
    opts = tiny_overrides(tiny_voc, work_dir, **kwargs)
    opts['custom_imports.imports'] = ['possec', 'tests._hooks']
    opts['custom_hooks'] = [dict(type='RecordStartHook')]
    opts['model.data_preprocessor.size'] = (64, 64)
    return opts


@pytest.fixture(scope='module')
def trained(tiny_voc, tmp_path_factory):
    """4 iterations with a validation and checkpoint at 2 and 4."""
    work_dir = str(tmp_path_factory.mktemp('train'))
    runner = train(DEMO_FCN, cfg_options=_options(tiny_voc, work_dir))
    return work_dir, runner


def test_train_validates_and_checkpoints(trained):
    work_dir, runner = trained
    assert runner.iter == 4
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))
    assert osp.isfile(osp.join(work_dir, 'iter_4.pth'))
    scalars = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                        'scalars.json')))
    records = [json.loads(line) for line in open(scalars[0])]
    assert any('mIoU' in r for r in records), 'validation did not run'
    losses = [r['loss'] for r in records if 'loss' in r]
    assert len(losses) == 4 and all(np.isfinite(losses))


def test_resume_continues_counter_and_optimizer(trained, tiny_voc):
    work_dir, _ = trained
    saved = torch.load(osp.join(work_dir, 'iter_4.pth'), weights_only=False)
    opts = _options(tiny_voc, work_dir, max_iters=6)
    runner = train(DEMO_FCN, resume='auto', cfg_options=opts)
    start = torch.load(osp.join(work_dir, 'start_state.pt'),
                       weights_only=False)
    # The loop starts at iteration 4, not 0, with the saved optimizer state
    # (the demo schedule's AdamW: step count and both moment estimates).
    assert start['iter'] == 4
    saved_state = saved['optimizer']['state']
    start_state = start['optimizer']['state']
    assert len(saved_state) > 0 and saved_state.keys() == start_state.keys()
    for key in saved_state:
        assert set(saved_state[key]) == {'step', 'exp_avg', 'exp_avg_sq'}
        assert saved_state[key].keys() == start_state[key].keys()
        for name, value in saved_state[key].items():
            assert torch.equal(torch.as_tensor(value),
                               torch.as_tensor(start_state[key][name]))
        assert float(saved_state[key]['step']) == 4
    assert runner.iter == 6
    assert osp.isfile(osp.join(work_dir, 'iter_6.pth'))
    # The resumed run executed iterations 5 and 6 only (0-based 4 and 5).
    assert start['iters_run'] == [4, 5]


def _iou_with_mmseg(pred_dir, tiny_voc, classes):
    """mIoU of the written PNGs by mmseg's own IoUMetric."""
    from mmseg.evaluation import IoUMetric
    metric = IoUMetric()
    metric.dataset_meta = dict(classes=classes)
    names = open(osp.join(tiny_voc, 'ImageSets', 'Segmentation',
                          'val.txt')).read().split()
    samples = []
    for name in names:
        pred = np.array(Image.open(osp.join(pred_dir, f'{name}.png')))
        gt = np.array(Image.open(osp.join(tiny_voc, 'SegmentationClass',
                                          f'{name}.png')))
        samples.append(dict(
            pred_sem_seg=dict(data=torch.from_numpy(pred.astype(np.int64))),
            gt_sem_seg=dict(data=torch.from_numpy(gt.astype(np.int64)))))
    metric.process({}, samples)
    return metric.compute_metrics(metric.results), names


def test_test_tool_writes_predictions_and_metrics(trained, tiny_voc,
                                                   tmp_path):
    work_dir, runner = trained
    out = str(tmp_path / 'out')
    opts = tiny_overrides(tiny_voc, work_dir)
    opts['model.data_preprocessor.size'] = (64, 64)
    metrics = test(DEMO_FCN, osp.join(work_dir, 'iter_4.pth'), out=out,
                   cfg_options=opts)
    with open(osp.join(out, 'metrics.json')) as f:
        written = json.load(f)
    classes = runner.train_dataloader.dataset.metainfo['classes']
    reference, names = _iou_with_mmseg(osp.join(out, 'pred'), tiny_voc,
                                       classes)
    assert written['mIoU'] == pytest.approx(float(reference['mIoU']))
    assert written['aAcc'] == pytest.approx(float(reference['aAcc']))
    assert written['mIoU'] == pytest.approx(float(metrics['mIoU']))
    assert [c['name'] for c in written['classes']] == list(classes)
    valid = [c['IoU'] for c in written['classes'] if c['IoU'] is not None]
    assert np.nanmean(valid) == pytest.approx(written['mIoU'], abs=0.01)
    assert all(isinstance(c['Acc'], (float, type(None)))
               for c in written['classes'])
    pngs = sorted(glob.glob(osp.join(out, 'pred', '*.png')))
    assert [osp.splitext(osp.basename(p))[0] for p in pngs] == sorted(names)
    assert Image.open(pngs[0]).mode == 'P'
    assert osp.isfile(osp.join(out, 'metrics.csv'))
