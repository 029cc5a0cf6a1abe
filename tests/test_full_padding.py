"""``padding_mode='full'``: full convolutions (Kayhan & van Gemert, 2020)
against scipy's full correlation, the per-block crop written out with
F.conv2d, output sizes equal to zero padding's, and loading of standard
state dicts."""
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.models.backbones import ResNetV1c
from mmseg.models.backbones.resnet import BasicBlock, Bottleneck
from scipy import signal

from possec.models.backbones.padding_resnet import (PadResNet, PadResNetV1c,
                                                    crop_full_blocks)
from possec.models.layers import FullConv2d, convert_padding

from .test_padding_backbones import D8, TINY, randomise


def dilate(kernel, d):
    """A kernel with d - 1 zeros between its taps."""
    k = kernel.shape[0]
    out = np.zeros((d * (k - 1) + 1, ) * 2)
    out[::d, ::d] = kernel
    return out


@pytest.mark.parametrize('k,d', [(3, 1), (3, 2), (5, 1), (1, 1)])
def test_full_conv_matches_scipy_full_correlation(k, d):
    conv = nn.Conv2d(1, 1, k, padding=d * (k // 2), dilation=d, bias=False)
    full = FullConv2d.from_conv(conv).double()
    assert full.weight is conv.weight  # parameters shared, not copied
    x = torch.randn(1, 1, 7, 9, dtype=torch.float64)
    with torch.no_grad():
        got = full(x)[0, 0].numpy()
    w = dilate(conv.weight.detach().double()[0, 0].numpy(), d)
    want = signal.correlate2d(x[0, 0].numpy(), w, mode='full')
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert got.shape == (7 + d * (k - 1), 9 + d * (k - 1))


def test_full_conv_stride_and_crop():
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1).double()
    x = torch.randn(1, 2, 8, 7, dtype=torch.float64)
    full = FullConv2d.from_conv(conv)
    want = F.conv2d(F.pad(x, (2, 2, 2, 2)), conv.weight, conv.bias, 2)
    torch.testing.assert_close(full(x), want, rtol=0, atol=0)
    full.crop = (1, 0, 0, 2)
    torch.testing.assert_close(full(x), want[..., 1:, :-2])
    with pytest.raises(ValueError, match='four non-negative ints'):
        FullConv2d(1, 1, 3, crop=(1, 1))


def test_convert_full_grows_plain_networks():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1),
                        nn.Conv2d(4, 4, 3, padding=2, dilation=2),
                        nn.Conv2d(4, 4, 1), nn.MaxPool2d(3, 2, 1))
    keys = {k: v.shape for k, v in net.state_dict().items()}
    convert_padding(net, 'full')
    assert [type(m).__name__ for m in net] == [
        'FullConv2d', 'FullConv2d', 'Conv2d', 'MaxPool2d']
    assert {k: v.shape for k, v in net.state_dict().items()} == keys
    out = net[:3](torch.rand(1, 3, 10, 10))
    assert out.shape[-2:] == (10 + 2 + 4, ) * 2


def _block(block_cls, stride, dilation):
    inplanes, planes = 8, 4 if block_cls is Bottleneck else 8
    downsample = None
    out = planes * block_cls.expansion
    if stride != 1 or inplanes != out:
        downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride,
                                             bias=False), nn.BatchNorm2d(out))
    block = block_cls(inplanes, planes, stride=stride, dilation=dilation,
                      downsample=downsample)
    holder = nn.Module()
    holder.block = block
    return randomise(holder)


def test_basic_block_full_written_out():
    """BasicBlock, stride 1: conv1 on the zero-padded (2 px) input, BN,
    ReLU; conv2 on that, zero-padded again; the centre crop of 2 pixels;
    BN; identity; ReLU."""
    zeros = _block(BasicBlock, 1, 1)
    full = _block(BasicBlock, 1, 1)
    convert_padding(full, 'full')
    crop_full_blocks(full)
    b = full.block
    assert b.conv1.crop == (0, 0, 0, 0) and b.conv2.crop == (2, 2, 2, 2)
    x = torch.randn(2, 8, 9, 10, dtype=torch.float64)

    def bn(m, y):
        return F.batch_norm(y, m.running_mean, m.running_var, m.weight,
                            m.bias, False, 0., m.eps)

    y = F.relu(bn(b.norm1, F.conv2d(x, b.conv1.weight, padding=2)))
    y = F.conv2d(y, b.conv2.weight, padding=2)[..., 2:-2, 2:-2]
    want = F.relu(bn(b.norm2, y) + x)
    with torch.no_grad():
        got, ref = full.block(x), zeros.block(x)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    # the ring conv1 computes reaches only conv2's border outputs
    torch.testing.assert_close(got[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1])
    assert (got - ref).abs().amax() > 1e-3


@pytest.mark.parametrize('stride,dilation', [(1, 2), (2, 1)])
def test_bottleneck_full_equals_zeros_in_eval(stride, dilation):
    """One spatial conv per block, cropped before its norm: at stride 1 a
    full conv cropped to the centre is the 'same' conv; at stride 2 the
    crop is off by one input pixel, as documented (sizes still equal)."""
    zeros = _block(Bottleneck, stride, dilation)
    full = _block(Bottleneck, stride, dilation)
    convert_padding(full, 'full')
    crop_full_blocks(full)
    x = torch.randn(1, 8, 10, 11, dtype=torch.float64)
    with torch.no_grad():
        got, ref = full.block(x), zeros.block(x)
    assert got.shape == ref.shape
    if stride == 1:
        torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)
        assert full.block.conv2.crop == (dilation, ) * 4
    else:
        assert full.block.conv2.crop == (0, 1, 0, 1)


@pytest.mark.parametrize('cls,kwargs', [
    (PadResNetV1c, dict(TINY)),
    (PadResNetV1c, dict(TINY, contract_dilation=True)),
    (PadResNet, dict(TINY)),
    (PadResNetV1c, dict(depth=50, stem_channels=8, base_channels=4, **D8)),
])
@pytest.mark.parametrize('size', [(64, 64), (57, 70)])
def test_full_output_sizes_equal_zeros(cls, kwargs, size):
    zeros = cls(**kwargs).eval()
    full = cls(**kwargs, padding_mode='full').eval()
    full.load_state_dict(zeros.state_dict())  # same keys and shapes
    x = torch.rand(1, 3, *size)
    with torch.no_grad():
        got = full(x)
        ref = zeros(x)
    assert [o.shape for o in got] == [o.shape for o in ref]
    assert any((a - b).abs().amax() > 1e-4 for a, b in zip(got, ref))


def test_full_loads_mmseg_state_dict():
    ref = randomise(ResNetV1c(**TINY))
    full = PadResNetV1c(**TINY, padding_mode='full')
    missing = full.load_state_dict(ref.state_dict(), strict=True)
    assert not missing.missing_keys and not missing.unexpected_keys
    assert full.stem[6].crop == (2, 3, 2, 3)  # growth 1 + 2 + 2
