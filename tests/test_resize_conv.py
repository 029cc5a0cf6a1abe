"""resize_conv2d and PosENetHead's readout against the straightforward
formula (F.interpolate every level, concatenate, F.conv2d) in float64:
outputs and gradients of features, weight and bias."""
import pytest
import torch
import torch.nn.functional as F

from possec.models.decode_heads import PosENetHead
from possec.models.layers.resize import resize_conv2d

# levels smaller than, equal to and larger than a 12x12 grid, one of them
# non-square; two share their size (they share one resize in 'taps')
SHAPES = [(3, 5, 5), (4, 5, 5), (2, 12, 12), (3, 17, 14)]


def formula(feats, weight, bias, size, align_corners, padding):
    grid = [
        F.interpolate(f, size=size, mode='bilinear',
                      align_corners=align_corners) for f in feats
    ]
    return F.conv2d(torch.cat(grid, 1), weight, bias, padding=padding)


def grads(out, params, seed=1):
    weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(
        seed), dtype=out.dtype)
    found = torch.autograd.grad((out * weight).sum(), params,
                                allow_unused=True)
    # a detached input (grad_scale 0) has no gradient: zero
    return [torch.zeros_like(p) if g is None else g
            for p, g in zip(params, found)]


@pytest.mark.parametrize('route', ['auto', 'direct', 'taps'])
@pytest.mark.parametrize('align_corners', [False, True])
@pytest.mark.parametrize('kernel, padding', [(3, 0), (3, 1), (1, 0),
                                             (5, 2)])
def test_resize_conv2d_matches_formula(route, align_corners, kernel,
                                       padding):
    gen = torch.Generator().manual_seed(0)
    feats = [
        torch.randn(2, *s, generator=gen, dtype=torch.float64,
                    requires_grad=True) for s in SHAPES
    ]
    chans = sum(s[0] for s in SHAPES)
    weight = torch.randn(4, chans, kernel, kernel, generator=gen,
                         dtype=torch.float64, requires_grad=True)
    bias = torch.randn(4, generator=gen, dtype=torch.float64,
                       requires_grad=True)
    ref = formula(feats, weight, bias, (12, 12), align_corners, padding)
    out = resize_conv2d(feats, weight, bias, (12, 12), align_corners,
                        padding, route)
    assert out.shape == ref.shape == (2, 4, 14 - kernel + 2 * padding - 1,
                                      14 - kernel + 2 * padding - 1)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-11)
    params = feats + [weight, bias]
    for g_out, g_ref in zip(grads(out, params), grads(ref, params)):
        torch.testing.assert_close(g_out, g_ref, rtol=0, atol=1e-11)


def test_resize_conv2d_bad_input():
    x = torch.zeros(1, 3, 4, 4)
    with pytest.raises(ValueError, match='unknown route'):
        resize_conv2d([x], torch.zeros(2, 3, 3, 3), None, (6, 6),
                      route='fast')
    with pytest.raises(ValueError, match='the weight expects 5'):
        resize_conv2d([x], torch.zeros(2, 5, 3, 3), None, (6, 6))


@pytest.mark.parametrize('grad_scale', [1.0, 0.0, -1.0])
@pytest.mark.parametrize('align_corners, out_norm', [(False, False),
                                                     (True, True)])
def test_posenet_head_logits_match_formula(grad_scale, align_corners,
                                           out_norm):
    """The study's R-18-D8 at 64x64 in miniature: levels of 16x16 and
    8x8 read onto a 28x28 grid by one 3x3 convolution without padding."""
    torch.manual_seed(0)
    chans = [4, 6, 8, 10]
    head = PosENetHead(in_channels=chans, grad_scale=grad_scale,
                       align_corners=align_corners, out_norm=out_norm)
    head = head.double().train()
    torch.nn.init.normal_(head.conv_seg.weight)
    torch.nn.init.normal_(head.conv_seg.bias)
    sizes = [16, 8, 8, 8]
    feats = [
        torch.randn(2, c, s, s, dtype=torch.float64, requires_grad=True)
        for c, s in zip(chans, sizes)
    ]
    out = head.logits(feats)
    ref = formula(feats, head.conv_seg.weight, head.conv_seg.bias, (28, 28),
                  align_corners, 0)
    if out_norm:
        ref = head.out_norm(ref)
    assert out.shape == (2, 5, 26, 26)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-10)
    params = feats + [head.conv_seg.weight, head.conv_seg.bias]
    g_out = grads(out, params)
    g_ref = grads(ref, params)
    for i, (a, b) in enumerate(zip(g_out, g_ref)):
        if i < len(feats):
            # the head scales the gradient into the features; the formula
            # does not
            b = b * grad_scale
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_posenet_head_state_dict_keys_unchanged():
    head = PosENetHead(
        in_channels=[4, 6], in_index=[0, 1], out_norm=True)
    assert set(head.state_dict()) == {
        'conv_seg.weight', 'conv_seg.bias', 'out_norm.weight',
        'out_norm.bias', 'out_norm.running_mean', 'out_norm.running_var',
        'out_norm.num_batches_tracked'
    }
