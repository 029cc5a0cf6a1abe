"""Tests of the padding-variant backbones (ResNet family and VGG).

References: mmseg's own ResNet classes (state dicts, zero-padding outputs),
a hand-built torchvision-layout VGG16, explicit F.conv2d re-computations of
residual blocks, and the output-size formulas written out here.
"""
import glob
import os.path as osp

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmengine.config import Config, ConfigDict
from mmengine.structures import PixelData
from mmseg.models.backbones import ResNet, ResNetV1c, ResNetV1d
from mmseg.models.backbones.resnet import BasicBlock, Bottleneck
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from possec.models.backbones.padding_resnet import (PadResNet, PadResNetV1c,
                                                    PadResNetV1d,
                                                    crop_residuals)
from possec.models.backbones.vgg import PadVGG
from possec.models.layers.padding import PADDING_MODES, convert_padding

CONFIG_DIR = osp.join(osp.dirname(__file__), '..', 'configs', '_base_',
                      'padding')
D8 = dict(strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4))
TINY = dict(depth=18, stem_channels=16, base_channels=16, **D8)
VGG16_CFG = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512,
             'M', 512, 512, 512]


def randomise(model, seed=0):
    """Random weights and running statistics, float64, eval mode."""
    gen = torch.Generator().manual_seed(seed)
    model.double()
    model.eval()  # mmseg's ResNet.train returns None: no chaining
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen,
                                           dtype=torch.float64) *
                               (2 / fan_in)**0.5)
            elif isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(0.5 + torch.rand(c, generator=gen))
                m.bias.copy_(0.1 * torch.randn(c, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(c, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(c, generator=gen))
    return model


def conv_out(size, k, s=1, d=1, p=0):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def none_sizes(size, depth, strides, dilations, deep_stem=True,
               contract_dilation=False, style='pytorch'):
    """Per-level sizes of a 'none' ResNet, written from the docstring."""
    if deep_stem:
        size = conv_out(size, 3, 2) - 4
    else:
        size = conv_out(size, 7, 2)
    size = conv_out(size, 3, 2)
    blocks = {18: (2, 2, 2, 2), 50: (3, 4, 6, 3)}[depth]
    sizes = []
    for n, s, d in zip(blocks, strides, dilations):
        d1 = d // 2 if contract_dilation and d > 1 else d
        if style == 'caffe' and depth == 50:
            sizes.append((size - 1) // s + 1 - 2 * d1 - 2 * (n - 1) * d)
            size = sizes[-1]
            continue
        size = (size - 2 * d1 - 1) // s + 1
        if depth == 18:
            size -= 2 + (n - 1) * (2 * d + 2)
        else:
            size -= 2 * (n - 1) * d
        sizes.append(size)
    return sizes


def test_unknown_mode_raises():
    for build in (lambda: PadResNetV1c(depth=18, padding_mode='zero'),
                  lambda: PadResNet(depth=18, padding_mode='Reflect'),
                  lambda: PadVGG(num_stages=1, out_indices=(0, ),
                                 strides=(1, ), dilations=(1, ),
                                 padding_mode='valid')):
        with pytest.raises(ValueError) as err:
            build()
        assert 'unknown padding_mode' in str(err.value)
        for mode in PADDING_MODES:
            assert repr(mode) in str(err.value)


@pytest.mark.parametrize('cls,ref_cls,depth', [(PadResNet, ResNet, 18),
                                               (PadResNetV1c, ResNetV1c, 50),
                                               (PadResNetV1d, ResNetV1d, 18)])
def test_state_dict_equals_mmseg(cls, ref_cls, depth):
    ref_sd = ref_cls(depth=depth).state_dict()
    for mode in PADDING_MODES:
        model = cls(depth=depth, padding_mode=mode)
        sd = model.state_dict()
        assert list(sd) == list(ref_sd), mode
        assert all(sd[k].shape == ref_sd[k].shape for k in sd), mode
        model.load_state_dict(ref_sd, strict=True)
        assert model.padding_mode == mode


def test_zeros_is_mmseg_and_pretrained_loads(tmp_path):
    torch.manual_seed(0)
    ref = randomise(ResNetV1c(**TINY))
    ckpt = str(tmp_path / 'r18.pth')
    torch.save(ref.state_dict(), ckpt)
    x = torch.randn(1, 3, 64, 48, dtype=torch.float64)
    model = PadResNetV1c(**TINY).double().eval()
    model.load_state_dict(ref.state_dict(), strict=True)
    for out, expected in zip(model(x), ref(x)):
        torch.testing.assert_close(out, expected, rtol=0, atol=0)
    # init_cfg=Pretrained fills the converted modules too
    for mode in ('partial', 'none'):
        model = PadResNetV1c(**TINY, padding_mode=mode,
                             init_cfg=dict(type='Pretrained',
                                           checkpoint=ckpt))
        model.init_weights()
        sd = model.state_dict()
        for key, value in ref.state_dict().items():
            torch.testing.assert_close(sd[key], value.to(sd[key].dtype),
                                       rtol=0, atol=0)


@pytest.mark.parametrize('mode', ['zeros', 'reflect', 'replicate',
                                  'circular', 'none'])
def test_constant_image_resnet(mode):
    size = 360 if mode == 'none' else 64
    model = randomise(PadResNetV1c(**TINY, padding_mode=mode))
    x = torch.ones(1, 3, size, size, dtype=torch.float64) * 0.3
    x[:, 1] = -0.7
    with torch.no_grad():
        outs = model(x)
    spreads = [(o - o[..., :1, :1]).abs().amax().item() for o in outs]
    if mode == 'zeros':  # the border is visible: the position signal
        assert min(spreads) > 1e-3
    else:
        assert max(spreads) < 1e-9, spreads
        assert min(o.shape[-1] for o in outs) >= 1


@pytest.mark.parametrize('mode', ['zeros', 'reflect', 'replicate',
                                  'circular', 'none'])
def test_constant_image_vgg(mode):
    model = randomise(PadVGG(num_stages=3, strides=(1, 2, 2),
                             dilations=(1, 1, 2), out_indices=(0, 1, 2),
                             padding_mode=mode))
    size = 80 if mode == 'none' else 32
    x = torch.full((1, 3, size, size), 0.4, dtype=torch.float64)
    with torch.no_grad():
        outs = model(x)
    spreads = [(o - o[..., :1, :1]).abs().amax().item() for o in outs]
    if mode == 'zeros':
        assert min(spreads) > 1e-3
    else:
        assert max(spreads) < 1e-9, spreads


@pytest.mark.parametrize('build', [
    lambda mode: PadResNetV1c(**TINY, padding_mode=mode),
    lambda mode: PadResNetV1d(**TINY, padding_mode=mode),
    lambda mode: PadVGG(num_stages=3, strides=(1, 2, 2), dilations=(1, 1, 2),
                        out_indices=(0, 1, 2), padding_mode=mode),
])
def test_circular_mode_is_shift_equivariant(build):
    torch.manual_seed(0)
    circular = randomise(build('circular'))
    zeros = randomise(build('zeros'))
    x = torch.randn(1, 3, 32, 48, dtype=torch.float64)
    shift = (8, 16)  # a multiple of the output strides (8, 8 and 4)
    shifted = torch.roll(x, shift, dims=(2, 3))
    with torch.no_grad():
        outs, outs_shifted = circular(x), circular(shifted)
        zero_outs, zero_shifted = zeros(x), zeros(shifted)
    for out, out_s in zip(outs, outs_shifted):
        stride = x.shape[-1] // out.shape[-1]
        expected = torch.roll(out, (shift[0] // stride, shift[1] // stride),
                              dims=(2, 3))
        torch.testing.assert_close(out_s, expected, rtol=0, atol=1e-5)
    # zero padding breaks the equivariance near the border
    out, out_s = zero_outs[-1], zero_shifted[-1]
    stride = x.shape[-1] // out.shape[-1]
    expected = torch.roll(out, (shift[0] // stride, shift[1] // stride),
                          dims=(2, 3))
    assert (out_s - expected).abs().max() > 1e-3


@pytest.mark.parametrize('kwargs,deep_stem,size', [
    (dict(cls=PadResNetV1c, **TINY), True, (361, 374)),
    (dict(cls=PadResNetV1c, **TINY, contract_dilation=True), True,
     (352, 341)),
    (dict(cls=PadResNet, depth=18, stem_channels=8, base_channels=8),
     False, (470, 459)),
    (dict(cls=PadResNetV1d, depth=50, stem_channels=8, base_channels=4,
          **D8, contract_dilation=True), True, (500, 487)),
    (dict(cls=PadResNetV1c, depth=50, stem_channels=8, base_channels=4,
          **D8, style='caffe'), True, (493, 510)),
])
def test_none_output_sizes(kwargs, deep_stem, size):
    kwargs = dict(kwargs)
    cls = kwargs.pop('cls')
    model = cls(**kwargs, padding_mode='none').eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, *size))
    strides = kwargs.get('strides', (1, 2, 2, 2))
    dilations = kwargs.get('dilations', (1, 1, 1, 1))
    for axis, length in enumerate(size):
        expected = none_sizes(length, kwargs['depth'], strides, dilations,
                              deep_stem,
                              kwargs.get('contract_dilation', False),
                              kwargs.get('style', 'pytorch'))
        assert [o.shape[2 + axis] for o in outs] == expected


def _bn(x, norm):
    return F.batch_norm(x, norm.running_mean, norm.running_var, norm.weight,
                        norm.bias, False, 0., norm.eps)


@pytest.mark.parametrize('block_cls,stride,dilation', [(Bottleneck, 2, 1),
                                                       (Bottleneck, 1, 2),
                                                       (BasicBlock, 2, 1)])
def test_none_residual_crop_is_centred(block_cls, stride, dilation):
    inplanes, planes = 8, 4
    out_ch = planes * block_cls.expansion
    downsample = nn.Sequential(
        nn.Conv2d(inplanes, out_ch, 1, stride=stride, bias=False),
        nn.BatchNorm2d(out_ch))
    block = block_cls(inplanes, planes, stride=stride, dilation=dilation,
                      downsample=downsample)
    holder = randomise(nn.Sequential(block))
    crop_residuals(holder)
    convert_padding(holder, 'none')
    x = torch.randn(2, inplanes, 15, 14, dtype=torch.float64)
    # the conv branch, unpadded, written out
    if block_cls is Bottleneck:
        out = F.relu(_bn(F.conv2d(x, block.conv1.weight), block.norm1))
        out = F.relu(_bn(F.conv2d(out, block.conv2.weight, stride=stride,
                                  dilation=dilation), block.norm2))
        out = _bn(F.conv2d(out, block.conv3.weight), block.norm3)
        margin = dilation
    else:
        out = F.relu(_bn(F.conv2d(x, block.conv1.weight, stride=stride,
                                  dilation=dilation), block.norm1))
        out = _bn(F.conv2d(out, block.conv2.weight), block.norm2)
        margin = dilation + stride
    # identity: the input pixels at the centres of the receptive fields
    cropped = x[..., margin:x.shape[-2] - margin, margin:x.shape[-1] - margin]
    identity = _bn(F.conv2d(cropped, downsample[0].weight, stride=stride),
                   downsample[1])
    expected = F.relu(out + identity)
    with torch.no_grad():
        torch.testing.assert_close(holder(x), expected, rtol=1e-10,
                                   atol=1e-10)


def _encoder_decoder(mode):
    norm_cfg = dict(type='BN', requires_grad=True)
    return MODELS.build(
        dict(
            type='EncoderDecoder',
            backbone=dict(
                type='PadResNetV1c', **TINY, padding_mode=mode,
                norm_cfg=norm_cfg),
            decode_head=dict(
                type='FCNHead', in_channels=128, in_index=3, channels=16,
                num_convs=1, concat_input=False, num_classes=3,
                norm_cfg=norm_cfg),
            auxiliary_head=dict(
                type='FCNHead', in_channels=64, in_index=2, channels=8,
                num_convs=1, concat_input=False, num_classes=3,
                norm_cfg=norm_cfg, loss_decode=dict(
                    type='CrossEntropyLoss', loss_weight=0.4)),
            train_cfg=dict(),
            test_cfg=ConfigDict(mode='whole')))


@pytest.mark.parametrize('mode', PADDING_MODES)
def test_encoder_decoder_loss_and_predict(mode):
    torch.manual_seed(0)
    height, width = (360, 368) if mode == 'none' else (64, 64)
    model = _encoder_decoder(mode)
    model.init_weights()
    inputs = torch.randn(2, 3, height, width)
    samples = []
    for _ in range(2):
        sample = SegDataSample(metainfo=dict(
            img_shape=(height, width), ori_shape=(height, width),
            pad_shape=(height, width)))
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, 3, (1, height, width)))
        samples.append(sample)
    model.train()
    losses = model.loss(inputs, samples)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    grad = model.backbone.stem[0].weight.grad
    assert grad is not None and grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        results = model.predict(inputs, samples)
    for result in results:
        assert result.seg_logits.data.shape == (3, height, width)
        assert result.pred_sem_seg.data.shape == (1, height, width)
    if mode == 'none':  # the features really did shrink
        with torch.no_grad():
            feats = model.extract_feat(inputs)
        assert feats[-1].shape[-2:] == tuple(
            none_sizes(s, 18, D8['strides'], D8['dilations'])[-1]
            for s in (height, width))


def torchvision_vgg16_features(with_bn=False):
    """torchvision's vgg16(_bn).features layout, written out."""
    layers, in_ch = [], 3
    for v in VGG16_CFG + ['M']:
        if v == 'M':
            layers.append(nn.MaxPool2d(2, 2))
            continue
        layers.append(nn.Conv2d(in_ch, v, 3, padding=1))
        if with_bn:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU(inplace=True))
        in_ch = v
    holder = nn.Module()
    holder.features = nn.Sequential(*layers)
    return holder


def test_vgg_loads_torchvision_layout_and_returns_pre_pool_relus(tmp_path):
    torch.manual_seed(0)
    tv = randomise(torchvision_vgg16_features()).float()
    sd = tv.state_dict()  # float32, so the float64 copies below are exact
    tv = tv.double()
    assert 'features.28.bias' in sd and len(sd) == 26
    for mode in PADDING_MODES:
        PadVGG(padding_mode=mode).load_state_dict(sd, strict=True)
    tv_bn = torchvision_vgg16_features(with_bn=True)
    for mode in ('zeros', 'partial'):
        PadVGG(with_bn=True, padding_mode=mode).load_state_dict(
            tv_bn.state_dict(), strict=True)
    from mmcv.cnn import VGG
    PadVGG().load_state_dict(VGG(16).state_dict(), strict=True)

    ckpt = str(tmp_path / 'vgg16.pth')
    torch.save(sd, ckpt)
    model = PadVGG(init_cfg=dict(type='Pretrained', checkpoint=ckpt))
    model.init_weights()
    model = model.double().eval()
    x = torch.randn(1, 3, 32, 32, dtype=torch.float64)
    expected, out = [], x
    with torch.no_grad():
        for layer in tv.features:
            if isinstance(layer, nn.MaxPool2d):
                expected.append(out)  # relu1_2, relu2_2, ... relu5_3
            out = layer(out)
        outs = model(x)
    assert len(outs) == 5
    for out, exp in zip(outs, expected):
        torch.testing.assert_close(out, exp, rtol=0, atol=0)


def test_vgg_stride8_none_sizes_and_freezing():
    model = PadVGG(strides=(1, 2, 2, 2, 1), dilations=(1, 1, 1, 1, 2),
                   num_stages=5).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 40, 48))
    assert [tuple(o.shape[1:]) for o in outs] == [
        (64, 40, 48), (128, 20, 24), (256, 10, 12), (512, 5, 6), (512, 5, 6)]
    model = PadVGG(num_stages=3, strides=(1, 2, 2), dilations=(1, 1, 2),
                   out_indices=(0, 1, 2), padding_mode='none').eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 81, 80))
    # stage i: H -> P_i(H) - 2 d_i n_i, n = (2, 2, 3)
    for axis, length in enumerate((81, 80)):
        s0 = length - 4
        s1 = s0 // 2 - 4
        s2 = s1 // 2 - 12
        assert [o.shape[2 + axis] for o in outs] == [s0, s1, s2]

    model = PadVGG(num_stages=2, strides=(1, 2), dilations=(1, 1),
                   out_indices=(0, 1), with_bn=True, frozen_stages=1,
                   norm_eval=True)
    assert model.train() is model
    first = model.features[:model.range_sub_modules[0][1]]
    second = model.features[model.range_sub_modules[1][0]:]
    assert all(not p.requires_grad for p in first.parameters())
    assert all(p.requires_grad for p in second.parameters())
    assert all(not m.training for m in model.modules()
               if isinstance(m, nn.BatchNorm2d))
    for bad in (dict(strides=(2, 2, 2, 2, 2)), dict(strides=(1, 2, 3, 2, 2)),
                dict(dilations=(1, 1)), dict(out_indices=(5, )),
                dict(depth=15)):
        with pytest.raises(ValueError):
            PadVGG(**bad)


def test_padding_configs_switch_with_one_key():
    files = sorted(glob.glob(osp.join(CONFIG_DIR, '*.py')))
    assert len(files) > 0
    for path in files:
        cfg = Config.fromfile(path)
        assert cfg.custom_imports == dict(
            imports=['possec'], allow_failed_imports=False)
        assert cfg.model.backbone.padding_mode == 'zeros'
        cfg.merge_from_dict({'model.backbone.padding_mode': 'circular'})
        cfg.model.pretrained = None
        cfg.model.backbone.init_cfg = None
        model = MODELS.build(cfg.model)
        assert type(model.backbone).__name__.startswith('Pad'), path
        assert model.backbone.padding_mode == 'circular', path
        convs = [m for m in model.backbone.modules()
                 if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
        assert convs and all(m.padding_mode == 'circular' for m in convs)
