"""possec's CUDA paths (marked ``gpu``; ``make gpu-check`` runs them).

Without CUDA they are skipped, unless ``POSSEC_GPU_DRY_RUN=1`` (set by
``make gpu-check DRY_RUN=1``), which runs the same code on CPU at the same
tiny sizes. The last test (not marked) runs the GPU check's own dry run.
"""
import json
import os
import os.path as osp

import pytest
import torch
import torch.nn.functional as F

from possec.benchmarks.gpu_check import DRY_RUN_ENV

from .conftest import ROOT, tiny_overrides

DEMO_FCN = osp.join(ROOT, 'configs', 'demo',
                    'fcn_r18-d8_1xb8-160_synthetic-128x128.py')


@pytest.fixture
def device():
    if torch.cuda.is_available():
        return torch.device('cuda')
    if os.environ.get(DRY_RUN_ENV) == '1':
        return torch.device('cpu')
    pytest.skip(f'needs CUDA (set {DRY_RUN_ENV}=1 for the CPU dry run)')


def _headline(device, size=64):
    """The headline config's model on device, with the SyncBN of its
    norm_cfg on CUDA; off CUDA its SyncBN becomes BN (SyncBN refuses CPU
    tensors once a process group exists; DESIGN.md trap 2).

    Built from the config with mmseg's builder, not through
    ``build_offline``, which turns every SyncBN into BN; only the
    pretrained checkpoint is dropped (no network).
    """
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmseg.registry import MODELS

    from possec.analysis.common import config_path
    from possec.benchmarks.models import HEADLINE_CONFIG
    cfg = Config.fromfile(config_path(HEADLINE_CONFIG)).model
    cfg.pretrained = None
    cfg.backbone.init_cfg = None
    cfg.data_preprocessor.size = (size, size)
    assert cfg.backbone.norm_cfg.type == 'SyncBN', cfg.backbone.norm_cfg
    model = MODELS.build(cfg).to(device).train()
    if device.type != 'cuda':
        model = revert_sync_batchnorm(model)
    return model


@pytest.mark.gpu
def test_training_step_syncbn(device):
    """One step of the headline model: its SyncBN layers, on one GPU
    without a process group, normalise with the batch statistics as BN;
    the loss is finite and every trained parameter gets a gradient."""
    from possec.benchmarks.runner import random_batch
    torch.manual_seed(0)
    model = _headline(device)
    syncbn = [m for m in model.modules()
              if isinstance(m, torch.nn.SyncBatchNorm)]
    assert bool(syncbn) == (device.type == 'cuda')
    inputs, samples = random_batch(2, 64, model.decode_head.num_classes,
                                   device)
    loss, _ = model.parse_losses(model.loss(inputs, samples))
    loss.backward()
    assert torch.isfinite(loss)
    missing = [n for n, p in model.named_parameters()
               if p.requires_grad and p.grad is None]
    assert not missing, missing[:5]
    if syncbn:  # what BN would compute on the same input
        bn = syncbn[0]
        x = torch.randn(2, bn.num_features, 5, 5, device=device)
        ref = F.batch_norm(x, None, None, bn.weight, bn.bias, True, 0., bn.eps)
        torch.testing.assert_close(bn(x), ref, rtol=1e-4, atol=1e-4)


@pytest.mark.gpu
def test_amp_training_step(device):
    """Autocast (float16 with a GradScaler on CUDA, bfloat16 on CPU): the
    forward agrees with fp32 to half precision and a step runs."""
    from possec.benchmarks.runner import random_batch
    torch.manual_seed(0)
    model = _headline(device).eval()
    inputs, samples = random_batch(1, 64, model.decode_head.num_classes,
                                   device)
    dtype = torch.float16 if device.type == 'cuda' else torch.bfloat16
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    seen = []
    conv.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    with torch.no_grad():
        ref = model._forward(inputs)
        with torch.autocast(device.type, dtype=dtype):
            half = model._forward(inputs)
    assert seen == [torch.float32, dtype]  # the convolutions ran in half
    err = float((half.float() - ref).abs().max() / ref.abs().max())
    assert err < 0.05, err
    model.train()
    optim = torch.optim.SGD(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == 'cuda')
    with torch.autocast(device.type, dtype=dtype):
        loss, _ = model.parse_losses(model.loss(inputs, samples))
    scaler.scale(loss).backward()
    scaler.step(optim)
    scaler.update()
    assert torch.isfinite(loss)


@pytest.mark.gpu
def test_position_head_on_device(device):
    """PosENetHead's logits and gradients on the device equal the formula
    (resize every level, concatenate, convolve) computed on CPU."""
    from possec.models.decode_heads import PosENetHead
    torch.manual_seed(0)
    chans = [8, 16, 16, 32]
    head = PosENetHead(in_channels=chans).train()
    feats = [torch.randn(2, c, s, s) for c, s in zip(chans, (16, 8, 8, 8))]
    ref_feats = [f.clone().requires_grad_() for f in feats]
    # copies: moving the head to the device below must not move the
    # reference's weights out of its CPU graph
    weight = head.conv_seg.weight.detach().clone()
    bias = head.conv_seg.bias.detach().clone()
    ref = F.conv2d(torch.cat([F.interpolate(f, (28, 28), mode='bilinear')
                              for f in ref_feats], 1), weight, bias)
    head = head.to(device)
    dev_feats = [f.to(device).requires_grad_() for f in feats]
    out = head.logits(dev_feats)
    torch.testing.assert_close(out.cpu(), ref.detach(), rtol=1e-4,
                               atol=1e-4)
    out.sum().backward()
    ref.sum().backward()
    for a, b in zip(dev_feats, ref_feats):
        torch.testing.assert_close(a.grad.cpu(), b.grad, rtol=1e-4,
                                   atol=1e-4)


@pytest.mark.gpu
def test_position_probe_on_device(device):
    """The cached probe on the device reads H out of a random VGG as well
    as the naive loop does (the probe benchmark's own check)."""
    from possec.benchmarks import probe
    res = probe.run(num_images=6, input_size=32, grid=8, epochs=2,
                    batch_size=4, repeats=1, device=str(device))
    assert res['max_spc_diff'] < 0.02
    assert res['times']['cached']['median_s'] > 0


@pytest.mark.gpu
def test_test_tool_on_device(device, tiny_voc, tmp_path):
    """Train 2 iterations, then tools/test.py's code (possec.apis.test)
    with --fuse-conv-bn: mmengine puts the model on the GPU when there is
    one; the metrics equal those of the unfused model. TF32 is off (cuDNN
    uses it for fp32 convolutions by default), so that both models compute
    in fp32 and differ by rounding only."""
    saved = (torch.backends.cudnn.allow_tf32,
             torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        _train_and_test_fused(device, tiny_voc, tmp_path)
    finally:
        (torch.backends.cudnn.allow_tf32,
         torch.backends.cuda.matmul.allow_tf32) = saved


def _train_and_test_fused(device, tiny_voc, tmp_path):
    from possec.apis import test, train
    work_dir = str(tmp_path / 'wd')
    opts = tiny_overrides(tiny_voc, work_dir, max_iters=2, interval=2)
    opts['model.data_preprocessor.size'] = (64, 64)
    runner = train(DEMO_FCN, cfg_options=opts)
    assert next(runner.model.parameters()).device.type == device.type
    ckpt = osp.join(work_dir, 'iter_2.pth')
    plain = test(DEMO_FCN, ckpt, out=str(tmp_path / 'plain'),
                 cfg_options=opts)
    fused = test(DEMO_FCN, ckpt, out=str(tmp_path / 'fused'),
                 cfg_options=opts, fuse_conv_bn=True)
    assert fused['mIoU'] == pytest.approx(plain['mIoU'], abs=1e-4)


def test_gpu_check_dry_run(tmp_path):
    """``tools/gpu_check.py --dry-run`` without its test part (the tests
    above are that part): every variant and suite benchmark runs on CPU
    at tiny sizes and the summary files are written."""
    from possec.benchmarks.gpu_check import run_gpu_check
    summary = run_gpu_check(str(tmp_path), dry_run=True, progress=False)
    assert summary['variants_error'] is None, summary['variants_error']
    assert [r['status'] for r in summary['suite']] == ['ok'] * 3, [
        r['error'] for r in summary['suite']]
    rows = summary['variants']['rows']
    for kind in ('cudnn.benchmark', 'channels_last', 'AMP'):
        assert sum(kind in k for k in rows) == 4, kind  # 2 models x 2
    assert sum('BN folded' in k for k in rows) == 2
    assert all(r['gflops_per_s'] > 0 and r['forward_flops'] > 0
               for r in rows.values())
    with open(tmp_path / 'gpu_check.json') as f:
        assert json.load(f)['ok'] is True
    md = (tmp_path / 'gpu_check.md').read_text()
    assert 'CPU dry run' in md and '| train headline, AMP' in md
