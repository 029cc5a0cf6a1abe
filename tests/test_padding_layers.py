"""Tests of the padding layers against independent references.

References: numpy's ``np.pad`` for the border rules (``reflect``, ``edge``,
``wrap``), an explicit loop over kernel taps for the partial-conv formula,
and autograd's numerical gradient check.
"""
import itertools

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from possec.models.layers.circular_pad import CircularConv2d, circular_pad
from possec.models.layers.padding import (PADDING_MODES, PaddedMaxPool2d,
                                          convert_padding,
                                          resolve_padding_mode)
from possec.models.layers.partial_conv import PartialConv2d

NP_PAD = dict(reflect='reflect', replicate='edge', circular='wrap')


def np_pad(x, ph, pw, mode):
    return torch.from_numpy(
        np.pad(x.detach().numpy(), ((0, 0), (0, 0), (ph, ph), (pw, pw)),
               mode=NP_PAD[mode]))


def partial_conv_loops(x, weight, bias, stride, padding, dilation):
    """Partial-conv padding by explicit loops over windows and taps."""
    x, w = x.numpy(), weight.detach().numpy()
    n, _, h, wd = x.shape
    c_out, _, kh, kw = w.shape
    h_out = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    w_out = (wd + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    out = np.zeros((n, c_out, h_out, w_out))
    for i, j in itertools.product(range(h_out), range(w_out)):
        acc = np.zeros((n, c_out))
        valid = 0
        for a, b in itertools.product(range(kh), range(kw)):
            y = i * stride - padding + a * dilation
            z = j * stride - padding + b * dilation
            if 0 <= y < h and 0 <= z < wd:
                valid += 1
                acc += x[:, :, y, z] @ w[:, :, a, b].T
        out[:, :, i, j] = acc * (kh * kw) / valid
    if bias is not None:
        out += bias.detach().numpy()[None, :, None, None]
    return torch.from_numpy(out)


def test_resolve_padding_mode():
    for mode in PADDING_MODES:
        assert resolve_padding_mode(mode) == mode
    for bad in ('zero', 'Reflect', '', None, 0):
        with pytest.raises(ValueError) as err:
            resolve_padding_mode(bad)
        for mode in PADDING_MODES:
            assert repr(mode) in str(err.value)
        assert repr(bad) in str(err.value)


@pytest.mark.parametrize('stride,dilation,bias', [(1, 1, True), (2, 1, False),
                                                  (1, 2, True), (2, 3, True)])
def test_partial_conv_matches_loops(stride, dilation, bias):
    torch.manual_seed(0)
    conv = PartialConv2d(2, 3, 3, stride=stride, padding=dilation,
                         dilation=dilation, bias=bias).double()
    x = torch.randn(2, 2, 7, 6, dtype=torch.float64)
    expected = partial_conv_loops(x, conv.weight, conv.bias, stride,
                                  dilation, dilation)
    torch.testing.assert_close(conv(x), expected, rtol=1e-10, atol=1e-10)


def test_partial_conv_constant_image_border_equals_interior():
    # Exact for kernels constant over their taps (random across channels):
    # the re-weighting restores the mass the zero padding removed. For a
    # general kernel it is not exact (the valid taps' mean differs from the
    # full kernel's mean), which the second half shows.
    torch.manual_seed(0)
    x = torch.full((1, 3, 9, 9), 0.7, dtype=torch.float64)
    partial = PartialConv2d(3, 4, 3, padding=1).double()
    with torch.no_grad():
        partial.weight.copy_(torch.randn(4, 3, 1, 1).expand(4, 3, 3, 3))
    out = partial(x)
    torch.testing.assert_close(out, out[:, :, 4:5, 4:5].expand_as(out),
                               rtol=0, atol=1e-12)
    expected = 0.7 * 9 * partial.weight[:, :, 0, 0].sum(1) + partial.bias
    torch.testing.assert_close(out[0, :, 0, 0], expected)
    # the same weights with zero padding do see the border
    zeros = F.conv2d(x, partial.weight, partial.bias, padding=1)
    assert (zeros - zeros[:, :, 4:5, 4:5]).abs().max() > 1e-3
    # a general kernel: border differs from interior even after re-weighting
    with torch.no_grad():
        partial.weight.normal_()
    out = partial(x)
    assert (out - out[:, :, 4:5, 4:5]).abs().max() > 1e-3


def test_partial_conv_gradients():
    torch.manual_seed(0)
    conv = PartialConv2d(2, 2, 3, stride=2, padding=1).double()
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)

    def call(inp, weight, bias):
        return torch.func.functional_call(conv, dict(weight=weight,
                                                     bias=bias), (inp, ))

    assert torch.autograd.gradcheck(call, (x, conv.weight, conv.bias),
                                    fast_mode=True)


def test_partial_conv_state_dict_and_cache():
    conv = nn.Conv2d(3, 5, 3, padding=1)
    partial = PartialConv2d.from_conv(conv)
    assert partial.weight is conv.weight and partial.bias is conv.bias
    assert list(partial.state_dict()) == list(conv.state_dict())
    fresh = PartialConv2d(3, 5, 3, padding=1)
    fresh.load_state_dict(conv.state_dict(), strict=True)

    s1 = partial.border_scale(8, 8, torch.device('cpu'), torch.float32)
    s2 = partial.border_scale(8, 8, torch.device('cpu'), torch.float32)
    assert s1 is s2
    partial.border_scale(8, 8, torch.device('cpu'), torch.float64)
    partial.border_scale(6, 8, torch.device('cpu'), torch.float32)
    assert len(partial.cached_shapes) == 3
    for size in range(20):
        partial.border_scale(size + 1, 4, torch.device('cpu'), torch.float32)
    assert len(partial.cached_shapes) == PartialConv2d.max_cached_shapes
    with pytest.raises(ValueError, match='zeros'):
        PartialConv2d(3, 5, 3, padding=1, padding_mode='reflect')


@pytest.mark.parametrize('shape,ph,pw', [((2, 3, 5, 4), 2, 1),
                                         ((1, 2, 4, 4), 4, 4),
                                         ((2, 1, 6, 3), 0, 2),
                                         ((1, 1, 3, 5), 3, 0)])
def test_circular_pad_matches_np_wrap(shape, ph, pw):
    torch.manual_seed(0)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    out = circular_pad(x, ph, pw)
    torch.testing.assert_close(out, np_pad(x, ph, pw, 'circular'), rtol=0,
                               atol=0)
    # backward: against numerical gradients, and against torch's own pad
    assert torch.autograd.gradcheck(lambda t: circular_pad(t, ph, pw), (x, ),
                                    fast_mode=True)
    grad = torch.randn_like(out)
    expected, = torch.autograd.grad(
        F.pad(x, (pw, pw, ph, ph), mode='circular'), x, grad)
    torch.testing.assert_close(
        torch.autograd.grad(out, x, grad)[0], expected)


def test_circular_pad_rejects_too_much_padding():
    with pytest.raises(ValueError, match='4x3'):
        circular_pad(torch.zeros(1, 1, 4, 3), 1, 4)
    with pytest.raises(ValueError, match='padding_mode'):
        CircularConv2d(1, 1, 3, padding=1, padding_mode='zeros')


def make_net():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1, bias=False),
        nn.ReLU(),
        nn.Conv2d(3, 3, 3, padding=2, dilation=2),
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.Conv2d(3, 2, 1),
    ).double()


def reference_forward(net, x, mode):
    """The net's function under ``mode``, rebuilt from np.pad and unpadded
    torch ops."""
    conv0, relu, conv2, pool, conv4 = net
    out = F.conv2d(np_pad(x, 1, 1, mode), conv0.weight)
    out = relu(out)
    out = F.conv2d(np_pad(out, 2, 2, mode), conv2.weight, conv2.bias,
                   dilation=2)
    out = F.max_pool2d(np_pad(out, 1, 1, mode), 3, 2)
    return F.conv2d(out, conv4.weight, conv4.bias)


@pytest.mark.parametrize('mode', ['reflect', 'replicate', 'circular'])
def test_convert_torch_modes_match_np_pad(mode):
    net = make_net()
    x = torch.randn(2, 2, 9, 8, dtype=torch.float64)
    expected = reference_forward(net, x, mode)
    net = convert_padding(net, mode)
    assert isinstance(net[3], PaddedMaxPool2d)
    assert net[0].padding_mode == mode
    assert isinstance(net[0], CircularConv2d) == (mode == 'circular')
    torch.testing.assert_close(net(x), expected, rtol=1e-10, atol=1e-10)


def test_convert_zeros_is_identity_and_none_shrinks():
    net = make_net()
    x = torch.randn(1, 2, 11, 10, dtype=torch.float64)
    before = net(x)
    assert convert_padding(net, 'zeros') is net
    assert type(net[3]) is nn.MaxPool2d and net[3].padding == 1
    torch.testing.assert_close(net(x), before, rtol=0, atol=0)
    # zero padding vs -inf padding in a max-pool after a ReLU: identical
    relu_out = torch.relu(x)
    torch.testing.assert_close(
        F.max_pool2d(F.pad(relu_out, (1, 1, 1, 1)), 3, 2),
        F.max_pool2d(relu_out, 3, 2, 1), rtol=0, atol=0)

    convert_padding(net, 'none')
    conv0, relu, conv2, pool, conv4 = net
    expected = F.conv2d(x, conv0.weight)
    expected = F.conv2d(relu(expected), conv2.weight, conv2.bias, dilation=2)
    expected = F.conv2d(F.max_pool2d(expected, 3, 2), conv4.weight,
                        conv4.bias)
    out = net(x)
    # sizes: 11 -> 9 -> 5 -> 2 rows, 10 -> 8 -> 4 -> 1 column
    assert out.shape == (1, 2, 2, 1)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)


def test_convert_partial():
    net = make_net()
    x = torch.randn(1, 2, 7, 7, dtype=torch.float64)
    params = dict(net.named_parameters())
    convert_padding(net, 'partial')
    assert isinstance(net[0], PartialConv2d)
    assert isinstance(net[2], PartialConv2d)
    assert type(net[3]) is nn.MaxPool2d and net[3].padding == 1
    assert type(net[4]) is nn.Conv2d  # 1x1, unpadded: untouched
    for name, param in net.named_parameters():
        assert param is params[name]
    out = partial_conv_loops(x, net[0].weight, None, 1, 1, 1)
    out = partial_conv_loops(torch.relu(out), net[2].weight, net[2].bias, 1,
                             2, 2)
    expected = F.conv2d(F.max_pool2d(out, 3, 2, 1), net[4].weight,
                        net[4].bias)
    torch.testing.assert_close(net(x), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('mode', PADDING_MODES)
def test_convert_keeps_state_dict(mode):
    reference = make_net()
    net = make_net()
    net[0].weight.requires_grad_(False)
    convert_padding(net, mode)
    ref_sd, sd = reference.state_dict(), net.state_dict()
    assert list(sd) == list(ref_sd)
    assert all(sd[k].shape == ref_sd[k].shape for k in sd)
    net.load_state_dict(ref_sd, strict=True)
    assert not net[0].weight.requires_grad


def test_convert_rejects_what_it_cannot_convert():
    with pytest.raises(ValueError, match='unknown padding_mode'):
        convert_padding(make_net(), 'zero')
    net = nn.Sequential(nn.Conv2d(1, 1, 1), nn.AvgPool2d(3, 1, padding=1))
    with pytest.raises(TypeError, match='AvgPool2d'):
        convert_padding(net, 'reflect')
    net = nn.Sequential(nn.Conv2d(1, 1, 1), nn.AvgPool2d(2, 2))
    assert convert_padding(net, 'reflect') is net  # unpadded: fine
