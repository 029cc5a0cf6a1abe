import math

import pytest
import torch

from possec.models.layers.l2norm import L2Norm


def _formula(x, weight, eps):
    """y_c = w_c x_c / sqrt(sum_c x_c^2 + eps), written out per position."""
    out = torch.empty_like(x)
    flat_in = x.movedim(1, -1).reshape(-1, x.size(1))
    flat_out = out.movedim(1, -1).reshape(-1, x.size(1))
    for i, vec in enumerate(flat_in):
        denom = math.sqrt(sum(float(v)**2 for v in vec) + eps)
        flat_out[i] = weight * vec / denom
    return flat_out.reshape(*x.movedim(1, -1).shape).movedim(-1, 1)


@pytest.mark.parametrize('shape', [(3, 5), (2, 4, 3, 2)])
def test_matches_formula(shape):
    torch.manual_seed(0)
    norm = L2Norm(shape[1], scale=1.0, eps=1e-3).double()
    with torch.no_grad():
        norm.weight.copy_(torch.rand(shape[1], dtype=torch.float64) + 0.5)
    x = torch.randn(*shape, dtype=torch.float64)
    torch.testing.assert_close(norm(x), _formula(x, norm.weight.detach(),
                                                 1e-3))


def test_unit_norm_before_scaling_and_initial_scale():
    norm = L2Norm(6, scale=7.5)
    assert torch.equal(norm.weight.detach(), torch.full((6, ), 7.5))
    x = torch.randn(2, 6, 5, 4, dtype=torch.float64) * 1e3
    y = norm.double()(x)
    # every position has norm 7.5 (the scale), direction unchanged
    torch.testing.assert_close(y.norm(dim=1),
                               torch.full((2, 5, 4), 7.5, dtype=y.dtype))
    cos = (x * y).sum(1) / (x.norm(dim=1) * y.norm(dim=1))
    torch.testing.assert_close(cos, torch.ones_like(cos))


def test_gradcheck_including_zero_vector():
    torch.manual_seed(0)
    norm = L2Norm(4, scale=2.0, eps=1e-6).double()
    x = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    x[0, :, 1, 1] = 0  # eps inside the sqrt keeps this point differentiable
    x.requires_grad_(True)
    weight = (torch.rand(4, dtype=torch.float64) + 0.5).requires_grad_(True)

    def func(inp, w):
        return torch.func.functional_call(norm, {'weight': w}, (inp, ))

    assert torch.autograd.gradcheck(func, (x, weight))


def test_gradient_at_zero_is_finite_and_matches_formula():
    norm = L2Norm(3, scale=2.0, eps=1e-10).double()
    x = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    norm(x).sum().backward()
    # d y_c / d x_c at x = 0 is w_c / sqrt(eps)
    torch.testing.assert_close(
        x.grad, torch.full((1, 3), 2.0 / math.sqrt(1e-10), dtype=x.dtype))


def test_scale_gradient_and_learning():
    torch.manual_seed(0)
    norm = L2Norm(4, scale=1.0).double()
    x = torch.randn(8, 4, 2, 2, dtype=torch.float64)
    x_hat = x / torch.sqrt(x.pow(2).sum(1, keepdim=True) + norm.eps)
    norm(x).sum().backward()
    # d sum(y) / d w_c = sum over positions of x_hat_c
    torch.testing.assert_close(norm.weight.grad, x_hat.sum(dim=(0, 2, 3)))

    target = 3.0 * x_hat
    opt = torch.optim.SGD(norm.parameters(), lr=2.0)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = (norm(x) - target).pow(2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
    # every channel's scale moved from 1 towards the target 3
    assert (norm.weight.detach() > 1.5).all()


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_low_precision_computed_in_float32(dtype):
    # squares of 1e-4 underflow in float16; the float32 path must not care
    x64 = torch.randn(2, 8, 3, 3, dtype=torch.float64) * 1e-4
    norm = L2Norm(8, scale=4.0)
    y = norm(x64.to(dtype))
    assert y.dtype == dtype
    expected = 4.0 * x64 / torch.sqrt(x64.pow(2).sum(1, keepdim=True) + 1e-10)
    torch.testing.assert_close(y.double(), expected, atol=2e-2, rtol=1e-2)


def test_autocast_keeps_float32():
    norm = L2Norm(8)
    x = torch.randn(2, 8, 4, 4)
    with torch.autocast(device_type='cpu', dtype=torch.bfloat16):
        y = norm(x)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, norm(x))


def test_init_weights_restores_scale():
    norm = L2Norm(5, scale=20.0)
    with torch.no_grad():
        norm.weight.normal_()
    norm.init_weights()
    assert torch.equal(norm.weight.detach(), torch.full((5, ), 20.0))


@pytest.mark.parametrize('kwargs,match', [
    (dict(num_channels=0), 'num_channels'),
    (dict(num_channels=4, eps=0.0), 'eps'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        L2Norm(**kwargs)


def test_wrong_channels_raise():
    with pytest.raises(ValueError, match=r'\(N, 4'):
        L2Norm(4)(torch.randn(2, 3, 5, 5))


def test_registered():
    from mmseg.registry import MODELS
    norm = MODELS.build(dict(type='L2Norm', num_channels=3, scale=2.5))
    assert isinstance(norm, L2Norm)
    assert torch.equal(norm.weight.detach(), torch.full((3, ), 2.5))
