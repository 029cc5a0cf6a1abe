"""bilinear_resize against torch's own bilinear F.interpolate: values and
gradients, up- and down-sampling, both align_corners settings."""
import pytest
import torch
import torch.nn.functional as F

from possec.models.layers import bilinear_resize, interp_matrix


@pytest.mark.parametrize('in_hw, out_hw', [
    ((16, 16), (28, 28)),  # up, as the position head resizes deep levels
    ((32, 30), (28, 28)),  # down, non-square input
    ((7, 5), (13, 3)),  # up along one axis, down along the other
    ((1, 4), (3, 4)),  # a single row
])
@pytest.mark.parametrize('align_corners', [False, True])
def test_matches_interpolate_values_and_gradients(in_hw, out_hw,
                                                  align_corners):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, *in_hw, generator=gen, dtype=torch.float64,
                    requires_grad=True)
    ref = F.interpolate(x, size=out_hw, mode='bilinear',
                        align_corners=align_corners)
    out = bilinear_resize(x, out_hw, align_corners)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    weight = torch.randn(ref.shape, generator=gen, dtype=torch.float64)
    g_ref, = torch.autograd.grad((ref * weight).sum(), x)
    g_out, = torch.autograd.grad((out * weight).sum(), x)
    torch.testing.assert_close(g_out, g_ref, rtol=0, atol=1e-12)


def test_matrix_rows_are_linear_interpolation_weights():
    """Written out for 4 -> 6 without align_corners: source coordinate
    (i + 0.5) * 4 / 6 - 0.5, clamped at 0, between its two neighbours."""
    a = interp_matrix(4, 6, dtype=torch.float64)
    ref = torch.zeros(6, 4, dtype=torch.float64)
    for i in range(6):
        src = max((i + 0.5) * 4 / 6 - 0.5, 0.)
        lo = int(src)
        hi = min(lo + 1, 3)
        ref[i, lo] += 1 - (src - lo)
        ref[i, hi] += src - lo
    torch.testing.assert_close(a, ref)
    torch.testing.assert_close(a.sum(1), torch.ones(6, dtype=torch.float64))


def test_refuses_non_4d_input():
    with pytest.raises(ValueError, match=r'expects \(N, C, H, W\)'):
        bilinear_resize(torch.zeros(3, 4, 4), (2, 2))
