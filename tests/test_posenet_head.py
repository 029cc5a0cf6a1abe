"""PosENetHead: shapes, gradient routing, learning, validation, segmentor and
config integration."""
import os.path as osp
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config, ConfigDict
from mmengine.model import BaseModel, revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from scipy import stats
from torch import nn

import possec  # noqa: F401  (registers the heads)
from possec.models.decode_heads.posenet_head import PosENetHead
from possec.models.layers.grad_scale import GradScale, scale_grad

from .conftest import ROOT
CHANNELS = [4, 6, 8]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one thread is faster, and the machine is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def feats(n=2, sizes=(16, 8, 4), requires_grad=False, dtype=torch.float32):
    gen = torch.Generator().manual_seed(0)
    return [
        torch.randn(n, c, s, s, generator=gen,
                    dtype=dtype).requires_grad_(requires_grad)
        for c, s in zip(CHANNELS, sizes)
    ]


def head(**kwargs):
    cfg = dict(in_channels=CHANNELS, in_index=[0, 1, 2], channels=5,
               grid_size=10)
    cfg.update(kwargs)
    torch.manual_seed(0)
    return PosENetHead(**cfg)


def formula(name, h, w):
    """The reference maps, written out for the patterns the tests use."""
    i, j = np.meshgrid(np.arange(h), np.arange(w), indexing='ij')
    return {'H': j / (w - 1), 'V': i / (h - 1)}[name]


@pytest.mark.parametrize('patterns,num_convs,kernel_size,conv_padding', [
    (['H'], 1, 3, 0),
    (['H', 'V'], 2, 3, 0),
    (['G', 'HS', 'VS'], 3, 3, 1),
    (['H', 'V', 'G', 'HS'], 1, 5, 0),
    (['H', 'V', 'G', 'HS', 'VS'], 3, 1, 0),
])
def test_output_shape(patterns, num_convs, kernel_size, conv_padding):
    h = head(patterns=patterns, num_convs=num_convs, kernel_size=kernel_size,
             conv_padding=conv_padding)
    out = h(feats())
    side = 10 - num_convs * (kernel_size - 1 - 2 * conv_padding)
    assert out.shape == (2, len(patterns), side, side)
    assert out.min() > 0 and out.max() < 1  # sigmoid
    convs = [m for m in h.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == num_convs
    norms = [m for m in h.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == num_convs - 1  # BN between convs, not after last


def test_non_square_grid_and_registry():
    h = MODELS.build(
        dict(type='PosENetHead', in_channels=[6, 8], in_index=[1, -1],
             grid_size=(7, 12), patterns=['VS']))
    assert h(feats()).shape == (2, 1, 5, 10)


def test_forward_matches_written_out_head():
    """Resize each level bilinearly to the grid (also the one already on
    it, which the head skips), concatenate, convolve, sigmoid: written out
    with torch's functional ops, in float64."""
    h = head(patterns=['H', 'V']).double()
    xs = feats(sizes=(16, 10, 4), dtype=torch.float64)  # level 1 on grid
    ref = torch.cat([
        F.interpolate(x, size=(10, 10), mode='bilinear',
                      align_corners=False) for x in xs
    ], dim=1)
    ref = torch.sigmoid(F.conv2d(ref, h.conv_seg.weight, h.conv_seg.bias))
    torch.testing.assert_close(h(xs), ref, rtol=0, atol=1e-12)
    # a single level on the grid: the readout of the probe's cache
    one = head(in_channels=[6], in_index=[0], patterns=['G']).double()
    x = xs[1].requires_grad_()
    out = one([x])
    torch.testing.assert_close(
        out, torch.sigmoid(F.conv2d(x, one.conv_seg.weight,
                                    one.conv_seg.bias)))
    out.sum().backward()  # gradient still reaches the level
    assert x.grad is not None and x.grad.abs().sum() > 0


def run_grad(h, xs):
    loss = h.loss(xs)['loss_pos']
    return torch.autograd.grad(loss, xs + list(h.parameters()),
                               allow_unused=True)


def test_grad_scale_routes_gradient():
    h = head(num_convs=2, patterns=['H', 'G']).double()
    xs = feats(requires_grad=True, dtype=torch.float64)
    grads = {}
    for scale in (1.0, 0.0, -1.0, 0.5):
        h.grad_scale = scale
        grads[scale] = run_grad(h, xs)
    num = len(xs)
    for k in range(num):
        plus = grads[1.0][k]
        assert plus is not None and plus.abs().sum() > 0
        zero = grads[0.0][k]  # detached: no gradient at all, i.e. zero
        assert zero is None or (zero == 0).all()
        assert torch.equal(grads[-1.0][k], -plus)  # exact negation
        torch.testing.assert_close(grads[0.5][k], plus / 2)
    # the head itself learns the same thing whatever the scale
    for scale in (0.0, -1.0):
        for a, b in zip(grads[1.0][num:], grads[scale][num:]):
            assert torch.equal(a, b)


def test_grad_scale_function():
    x = torch.randn(3, 4, requires_grad=True)
    upstream = torch.tensor([[float('nan'), float('inf'), 1., -2.]] * 3)
    y = GradScale.apply(x, 0.0)
    assert torch.equal(y, x)
    (g, ) = torch.autograd.grad(y, x, upstream)
    assert torch.equal(g, torch.zeros(3, 4))  # exactly zero, even from NaN
    (g, ) = torch.autograd.grad(GradScale.apply(x, -3.0), x, upstream)
    torch.testing.assert_close(g, upstream * -3.0, equal_nan=True,
                               rtol=0, atol=0)
    assert scale_grad(x, 1.0) is x
    assert not scale_grad(x, 0.0).requires_grad


def test_loss_and_log_keys():
    h = head(patterns=['H', 'V'], loss_weight=0.7)
    xs = feats()
    out = h(xs)
    losses = h.loss_by_feat(out)
    assert sorted(losses) == [
        'loss_pos', 'pos_mae_H', 'pos_mae_V', 'pos_spc_H', 'pos_spc_V'
    ]
    pred = out.detach().double().numpy()
    n, _, hh, ww = pred.shape
    target = np.stack([formula('H', hh, ww), formula('V', hh, ww)])
    # default loss: binary cross-entropy against the soft maps
    want = -0.7 * (target * np.log(pred) +
                   (1 - target) * np.log(1 - pred)).mean()
    assert losses['loss_pos'].item() == pytest.approx(want, rel=1e-5)
    # the same from logits (what loss() uses), and the MSE option
    logit_losses = h.loss_by_feat(h.logits(xs), logits=True)
    assert logit_losses['loss_pos'].item() == pytest.approx(want, rel=1e-5)
    for key in losses:
        if key != 'loss_pos':
            torch.testing.assert_close(logit_losses[key], losses[key])
    mse = head(patterns=['H', 'V'], loss_weight=0.7, loss_type='mse')
    assert mse.loss(xs)['loss_pos'].item() == pytest.approx(
        0.7 * ((pred - target)**2).mean(), rel=1e-5)
    for k, name in enumerate('HV'):
        spc = np.mean([
            stats.spearmanr(pred[a, k].ravel(), target[k].ravel()).statistic
            for a in range(n)
        ])
        assert losses[f'pos_spc_{name}'].item() == pytest.approx(
            spc, abs=1e-5)
        assert losses[f'pos_mae_{name}'].item() == pytest.approx(
            np.abs(pred[:, k] - target[k]).mean(), rel=1e-5)
        assert not losses[f'pos_spc_{name}'].requires_grad
    # mmengine sums only keys containing 'loss' into the total
    total, log_vars = BaseModel.parse_losses(None, losses)
    assert torch.equal(total, losses['loss_pos'])
    assert log_vars['pos_spc_H'] == losses['pos_spc_H']


class TinyCNN(nn.Module):
    """Four 3x3 convs, two of them with stride 2; four output levels."""

    def __init__(self, padding):
        super().__init__()
        self.convs = nn.ModuleList([
            nn.Conv2d(3, 8, 3, padding=padding),
            nn.Conv2d(8, 16, 3, stride=2, padding=padding),
            nn.Conv2d(16, 16, 3, stride=2, padding=padding),
            nn.Conv2d(16, 16, 3, padding=padding),
        ])

    def forward(self, x):
        outs = []
        for conv in self.convs:
            x = F.relu(conv(x))
            outs.append(x)
        return tuple(outs)


def train_probe(padding, steps=120):
    torch.manual_seed(0)
    net = TinyCNN(padding)
    h = PosENetHead(in_channels=[8, 16, 16, 16], in_index=[0, 1, 2, 3],
                    patterns=['H'], grid_size=16)
    opt = torch.optim.Adam(
        list(net.parameters()) + list(h.parameters()), lr=3e-3)
    for _ in range(steps):
        loss = h.loss(net(torch.rand(8, 3, 32, 32)))['loss_pos']
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        xs = net(torch.rand(16, 3, 32, 32))
        return h.loss(xs)['pos_spc_H'].item(), h(xs).double().numpy()


def test_learning_reads_position_through_zero_padding():
    spc_h, pred = train_probe(padding=1)
    assert spc_h > 0.8
    # the logged value is Spearman's rho, checked here against scipy
    target = formula('H', *pred.shape[-2:]).ravel()
    rho = np.mean(
        [stats.spearmanr(p[0].ravel(), target).statistic for p in pred])
    assert spc_h == pytest.approx(rho, abs=1e-5)
    # without padding the same network has no position to read
    spc_none, _ = train_probe(padding=0)
    assert abs(spc_none) < 0.5


class WideCNN(nn.Module):
    """A zero-padded CNN of 16 channels on 16x16 images whose four levels
    (16, 8, 4, 4 pixels) are widened by 1x1 convs to the demo's widths
    (R-18: 64, 128, 256, 512), so that 960 channels reach the head."""

    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList([
            nn.Conv2d(3, 16, 3, padding=1),
            nn.Conv2d(16, 16, 3, stride=2, padding=1),
            nn.Conv2d(16, 16, 3, stride=2, padding=1),
            nn.Conv2d(16, 16, 3, padding=1),
        ])
        self.norms = nn.ModuleList([nn.BatchNorm2d(16) for _ in range(4)])
        self.wide = nn.ModuleList(
            [nn.Conv2d(16, c, 1) for c in (64, 128, 256, 512)])
        self.wide_norms = nn.ModuleList(
            [nn.BatchNorm2d(c) for c in (64, 128, 256, 512)])

    def forward(self, x):
        outs = []
        for conv, norm, wide, wide_norm in zip(self.convs, self.norms,
                                               self.wide, self.wide_norms):
            x = F.relu(norm(conv(x)))
            outs.append(F.relu(wide_norm(wide(x))))
        return tuple(outs)


def train_all_patterns(optimizer, steps=100, **head_kwargs):
    """Backbone and head trained together, as in the demo; the SPC of each
    pattern on fresh images, in eval mode."""
    torch.manual_seed(0)
    net = WideCNN()
    h = PosENetHead(in_channels=[64, 128, 256, 512], in_index=[0, 1, 2, 3],
                    grid_size=12, **head_kwargs)
    params = list(net.parameters()) + list(h.parameters())
    if optimizer == 'adamw':  # the demo's: schedule_demo.py
        opt = torch.optim.AdamW(params, lr=2e-3, betas=(0.9, 0.999),
                                weight_decay=0.01)
    else:
        opt = torch.optim.SGD(params, lr=0.05, momentum=0.9,
                              weight_decay=5e-4)
    for _ in range(steps):
        loss = h.loss(net(torch.rand(8, 3, 16, 16)))['loss_pos']
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval(), h.eval()
    with torch.no_grad():
        losses = h.loss(net(torch.rand(16, 3, 16, 16)))
    return {p: losses[f'pos_spc_{p}'].item() for p in h.patterns}


@pytest.mark.parametrize('optimizer,kwargs', [
    ('adamw', dict()),
    ('sgd', dict()),
    ('adamw', dict(loss_type='mse', out_norm=True, align_corners=True)),
])
def test_head_learns_every_pattern(optimizer, kwargs):
    """Every pattern is learnt at the demo's optimiser settings: with MSE
    on a bare sigmoid (the head before the fix) 3-4 of the 5 outputs
    saturate and stay there under AdamW (MAE 0.5, SPC near 0); BCE with
    logits (the default) and the reference's BatchNorm before the sigmoid
    (third case) both learn all five."""
    spc = train_all_patterns(optimizer, **kwargs)
    assert min(spc.values()) > 0.8, spc


def test_out_norm_and_align_corners():
    h = head(patterns=['H', 'V'], out_norm=True, align_corners=True).double()
    norms = [m for m in h.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms == [h.out_norm] and h.out_norm.num_features == 2
    h.eval()
    xs = feats(sizes=(16, 10, 4), dtype=torch.float64)
    ref = torch.cat([
        F.interpolate(x, size=(10, 10), mode='bilinear', align_corners=True)
        for x in xs
    ], dim=1)
    ref = F.conv2d(ref, h.conv_seg.weight, h.conv_seg.bias)
    bn = h.out_norm
    ref = (ref - bn.running_mean.view(1, -1, 1, 1)) / torch.sqrt(
        bn.running_var.view(1, -1, 1, 1) + bn.eps)
    ref = ref * bn.weight.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(h(xs), torch.sigmoid(ref), rtol=0,
                               atol=1e-12)


@pytest.mark.parametrize('kwargs,match', [
    (dict(loss_type='l1'), "loss_type 'l1'.*'bce', 'mse'"),
    (dict(patterns=['H', 'Q']), "'Q'.*'H', 'V', 'G', 'HS', 'VS'"),
    (dict(patterns=[]), 'HS'),
    (dict(grid_size=0), 'grid_size'),
    (dict(grid_size=-4), 'grid_size'),
    (dict(grid_size=(8, 0)), 'grid_size'),
    (dict(grid_size=3, num_convs=2), 'at least 2x2'),
    (dict(in_index=[0, 1]), 'same length'),
    (dict(num_convs=0), 'num_convs'),
])
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        head(**kwargs)


def test_in_index_outside_backbone_raises_at_forward():
    h = head(in_channels=[4, 6, 8], in_index=[0, 1, 3])
    with pytest.raises(ValueError, match=r'valid indices are 0\.\.2'):
        h(feats())
    h = head(in_channels=[4, 6, 7])
    with pytest.raises(ValueError, match='expects 7 channels'):
        h(feats())


def tiny_segmentor():
    init_default_scope('mmseg')
    norm_cfg = dict(type='BN', requires_grad=True)
    return MODELS.build(
        ConfigDict(
            type='EncoderDecoder',
            data_preprocessor=dict(type='SegDataPreProcessor'),
            backbone=dict(
                type='ResNetV1c', depth=18, stem_channels=8,
                base_channels=8, strides=(1, 2, 1, 1),
                dilations=(1, 1, 2, 4), out_indices=(0, 1, 2, 3),
                norm_cfg=norm_cfg, init_cfg=None),
            decode_head=dict(
                type='ParseNetHead', in_channels=64, in_index=3,
                num_classes=3, norm_cfg=norm_cfg, init_cfg=None),
            auxiliary_head=[
                dict(type='FCNHead', in_channels=32, in_index=2, channels=8,
                     num_convs=1, concat_input=False, num_classes=3,
                     norm_cfg=norm_cfg,
                     loss_decode=dict(type='CrossEntropyLoss',
                                      loss_weight=0.4)),
                dict(type='PosENetHead', in_channels=[8, 16, 32, 64],
                     in_index=[0, 1, 2, 3], grid_size=8, patterns=['H', 'V'])
            ],
            train_cfg=dict(),
            test_cfg=dict(mode='whole')))


def samples(n, size):
    out = []
    for _ in range(n):
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=torch.randint(0, 3, (1, *size)))
        s.set_metainfo(dict(img_shape=size, ori_shape=size, pad_shape=size))
        out.append(s)
    return out


def test_encoder_decoder_loss_predict_tensor():
    model = tiny_segmentor()
    assert [type(m).__name__ for m in model.auxiliary_head
            ] == ['FCNHead', 'PosENetHead']
    x = torch.rand(2, 3, 32, 32)
    losses = model(x, samples(2, (32, 32)), mode='loss')
    for key in ('decode.loss_ce', 'aux_0.loss_ce', 'aux_1.loss_pos',
                'aux_1.pos_spc_H', 'aux_1.pos_spc_V', 'aux_1.pos_mae_H'):
        assert key in losses
    total, _ = model.parse_losses(losses)
    want = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.equal(total, want)
    total.backward()
    assert model.auxiliary_head[1].conv_seg.weight.grad.abs().sum() > 0

    model.eval()
    with torch.no_grad():
        preds = model(x, samples(2, (32, 32)), mode='predict')
        logits = model(x, mode='tensor')
    assert len(preds) == 2
    assert preds[0].pred_sem_seg.data.shape == (1, 32, 32)
    assert preds[0].seg_logits.data.shape == (3, 32, 32)
    assert logits.shape[:2] == (2, 3)


def test_encoder_decoder_bad_in_index():
    model = tiny_segmentor()
    model.auxiliary_head[1].in_index = [0, 1, 2, 4]
    with pytest.raises(ValueError, match=r'4 outputs; valid indices'):
        model(torch.rand(1, 3, 32, 32), samples(1, (32, 32)), mode='loss')


def leaf_config(tmp_path, piece):
    leaf = tmp_path / f'leaf_{piece}.py'
    base = osp.join(ROOT, 'configs', 'parsenet',
                    'parsenet_r50-d8_4xb4-20k_voc12aug-512x512.py')
    part = osp.join(ROOT, 'configs', '_base_', 'models', f'{piece}.py')
    leaf.write_text(
        f'_base_ = [{base!r}, {part!r}]\n'
        'model = dict(auxiliary_head=[{{_base_.model.auxiliary_head}},\n'
        '                             {{_base_.posenet_head}}])\n')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return Config.fromfile(str(leaf))


@pytest.mark.parametrize('piece,scale', [('posenet_aux', 1.0),
                                         ('posenet_probe', 0.0),
                                         ('posenet_adversary', -1.0)])
def test_config_pieces_load(tmp_path, piece, scale):
    cfg = leaf_config(tmp_path, piece)
    fcn, pos = cfg.model.auxiliary_head
    assert fcn.type == 'FCNHead' and fcn.num_classes == 21
    assert pos.type == 'PosENetHead' and pos.grad_scale == scale
    assert cfg.model.decode_head.type == 'ParseNetHead'


def test_config_piece_builds_and_trains(tmp_path):
    cfg = leaf_config(tmp_path, 'posenet_adversary')
    cfg.model.pretrained = None
    cfg.model.data_preprocessor.size = (64, 64)
    init_default_scope('mmseg')
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    losses = model(torch.rand(1, 3, 64, 64), samples(1, (64, 64)),
                   mode='loss')
    assert model.auxiliary_head[1].grad_scale == -1.0
    assert sorted(k for k in losses if k.startswith('aux_1.pos_spc')) == [
        f'aux_1.pos_spc_{p}' for p in sorted(['H', 'V', 'G', 'HS', 'VS'])
    ]
    assert losses['aux_1.pos_spc_H'].shape == ()
