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
from possec.runtime import load_local_checkpoint

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


def test_fuse_conv_bn_equals_plain_model(trained, tiny_voc, tmp_path):
    """tools/test.py --fuse-conv-bn: the folded model's logits equal the
    plain model's within float32 rounding, and so do the test metrics."""
    import copy
    from types import SimpleNamespace

    from mmengine.config import Config
    from mmseg.registry import MODELS
    from torch.nn.modules.batchnorm import _BatchNorm

    from possec.engine.hooks import FuseConvBNHook
    from possec.runtime import load_model_checkpoint
    work_dir, _ = trained
    ckpt = osp.join(work_dir, 'iter_4.pth')
    plain = MODELS.build(Config.fromfile(DEMO_FCN).model)
    load_model_checkpoint(plain, ckpt)
    plain.eval()
    bns = [m for m in plain.modules() if isinstance(m, _BatchNorm)]
    # trained statistics, not the identity BN of a fresh model
    assert max(float(m.running_mean.abs().max()) for m in bns) > 1e-2
    fused = copy.deepcopy(plain)
    FuseConvBNHook().before_test(SimpleNamespace(model=fused))
    assert not [m for m in fused.modules() if isinstance(m, _BatchNorm)]
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = plain._forward(x), fused._forward(x)
    assert a.shape == (2, 21, 8, 8)
    scale = float(a.abs().max())
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-5 * scale), \
        float((a - b).abs().max())

    opts = tiny_overrides(tiny_voc, str(tmp_path / 'wd'))
    opts['model.data_preprocessor.size'] = (64, 64)
    base = test(DEMO_FCN, ckpt, out=str(tmp_path / 'plain'),
                cfg_options=opts)
    folded = test(DEMO_FCN, ckpt, out=str(tmp_path / 'fused'),
                  cfg_options=opts, fuse_conv_bn=True)
    assert folded['mIoU'] == pytest.approx(base['mIoU'], abs=1e-6)
    names = sorted(glob.glob(str(tmp_path / 'plain' / 'pred' / '*.png')))
    assert names
    for name in names:
        other = name.replace(str(tmp_path / 'plain'), str(tmp_path / 'fused'))
        assert np.array_equal(np.array(Image.open(name)),
                              np.array(Image.open(other)))


def test_position_eraser_hook_calibrates_before_the_last_checkpoint(
        tiny_voc, tmp_path):
    """With the eraser piece, the hook recomputes the statistics after the
    last iteration from two passes over the training set (a cumulative
    average of every batch), and the last checkpoint holds them."""
    work_dir = str(tmp_path)
    opts = _options(tiny_voc, work_dir, max_iters=2)
    opts.update({'model.backbone.type': 'PadResNetV1c',
                 'model.backbone.erase_position': 'mean',
                 'custom_hooks': [dict(type='PositionEraserHook')]})
    runner = train(DEMO_FCN, cfg_options=opts)
    batches = 2 * len(runner.train_dataloader)
    assert batches > 2  # more than the training saw: the hook's own passes
    erasers = runner.model.backbone.position_erasers
    assert [int(e.num_batches_tracked) for e in erasers] == [batches] * 4
    ckpt = load_local_checkpoint(osp.join(work_dir, 'iter_2.pth'),
                                 map_location='cpu')['state_dict']
    for i, eraser in enumerate(erasers):
        assert torch.equal(ckpt[f'backbone.position_erasers.{i}.running_mean'],
                           eraser.running_mean)
    with open(glob.glob(osp.join(work_dir, '*', '*.log'))[0]) as f:
        assert (f'statistics of 4 erasers recomputed on {batches} batches at '
                'iteration 2') in f.read()
