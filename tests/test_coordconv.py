"""CoordConv (Liu et al., 2018): coordinate channels against their formula,
the separate coordinate weights against a conv over the concatenated
input, and a backbone with zero coordinate weights against the plain one."""
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.models.backbones import ResNetV1c

from possec.models.backbones.padding_resnet import PadResNet, PadResNetV1c
from possec.models.layers import CoordConv, coord_channels

from .test_padding_backbones import TINY, randomise


def test_coord_channels_formula():
    c = coord_channels(2, 3, 5, dtype=torch.float64)
    assert c.shape == (2, 2, 3, 5)
    rows, cols = np.meshgrid(np.linspace(-1, 1, 3), np.linspace(-1, 1, 5),
                             indexing='ij')
    np.testing.assert_allclose(c[1, 0].numpy(), rows, atol=1e-15)
    np.testing.assert_allclose(c[0, 1].numpy(), cols, atol=1e-15)
    assert (coord_channels(1, 1, 4)[0, 0] == 0).all()


@pytest.mark.parametrize('mode', ['zeros', 'circular'])
def test_coord_conv_equals_conv_over_concatenated_channels(mode):
    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=True).double()
    coord = CoordConv(conv, mode).double()
    assert (coord.conv.weight == 0).all() and coord.conv.bias is None
    with torch.no_grad():
        coord.conv.weight.normal_()
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64)
    if mode == 'circular':
        conv.padding_mode = 'circular'
    with torch.no_grad():
        got = conv(x) + coord(x)
    xc = torch.cat([x, coord_channels(2, 9, 8, torch.float64)], dim=1)
    if mode == 'circular':
        xc = F.pad(xc, (1, 1, 1, 1), mode='circular')
        pad = 0
    else:
        pad = 1
    w = torch.cat([conv.weight, coord.conv.weight], dim=1)
    want = F.conv2d(xc, w, conv.bias, stride=2, padding=pad)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize('cls,where,mode', [
    (PadResNetV1c, 'stem', 'zeros'),
    (PadResNetV1c, 'all', 'circular'),
    (PadResNetV1c, 'all', 'full'),
    (PadResNet, 'stem', 'full'),
    (PadResNetV1c, 'stem', 'none'),
])
def test_zero_coordinates_equal_plain_backbone(cls, where, mode):
    """A standard checkpoint loads (only the coordinate weights are
    missing) and the network computes what the plain one does; with
    non-zero coordinate weights it no longer does."""
    size = 360 if mode == 'none' else 48
    plain = randomise(cls(**TINY, padding_mode=mode))
    coord = cls(**TINY, padding_mode=mode, coord_conv=where).double().eval()
    result = coord.load_state_dict(plain.state_dict(), strict=False)
    assert not result.unexpected_keys
    want = {'coord_stem.conv.weight'}
    if where == 'all':
        want |= {f'coord_stages.{i}.conv.weight' for i in range(4)}
    assert set(result.missing_keys) == want
    x = torch.rand(1, 3, size, size, dtype=torch.float64)
    with torch.no_grad():
        ref = plain(x)
        got = coord(x)
        for a, b in zip(got, ref):  # equal up to float64 rounding
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
        for name in want:
            coord.get_parameter(name).normal_()
        moved = coord(x)
    assert all(a.shape == b.shape for a, b in zip(moved, ref))
    assert (moved[-1] - ref[-1]).abs().amax() > 1e-3


def test_coordinates_give_position_to_circular_padding():
    """On a constant image a circular-padding network's output is constant
    over space (nothing tells positions apart); with coordinates it is
    not."""
    net = randomise(PadResNetV1c(**TINY, padding_mode='circular',
                                 coord_conv='stem'))
    x = torch.full((1, 3, 32, 32), 0.5, dtype=torch.float64)
    with torch.no_grad():
        net.coord_stem.conv.weight.zero_()
        flat = net(x)[-1]
        net.coord_stem.conv.weight.normal_()
        coord = net(x)[-1]
    assert (flat - flat[..., :1, :1]).abs().amax() < 1e-9
    assert (coord - coord[..., :1, :1]).abs().amax() > 1e-3


def test_bad_coord_conv_raises():
    with pytest.raises(ValueError, match="coord_conv 'rows'.*'stem', 'all'"):
        PadResNetV1c(**TINY, coord_conv='rows')


def test_plain_mmseg_checkpoint_keys_unchanged():
    ref = ResNetV1c(**TINY)
    coord = PadResNetV1c(**TINY, coord_conv='stem')
    extra = set(coord.state_dict()) - set(ref.state_dict())
    assert extra == {'coord_stem.conv.weight'}
