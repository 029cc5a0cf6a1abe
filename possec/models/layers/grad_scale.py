"""Gradient scaling: identity forward, gradient times a constant backward."""
import torch
from torch import Tensor


class GradScale(torch.autograd.Function):
    """Identity in the forward pass; multiplies the gradient by ``scale``.

    With a negative ``scale`` this is the gradient reversal layer of
    `Unsupervised Domain Adaptation by Backpropagation
    <https://arxiv.org/abs/1409.7495>`_: what follows it learns to minimise
    its loss while what precedes it is pushed to maximise it. ``scale == 0``
    gives a gradient of exactly zero (not ``0 * grad``, which would keep NaN
    and infinities).
    """

    @staticmethod
    def forward(ctx, x: Tensor, scale: float) -> Tensor:
        ctx.scale = float(scale)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        if ctx.scale == 0:
            return torch.zeros_like(grad), None
        return grad * ctx.scale, None


def scale_grad(x: Tensor, scale: float) -> Tensor:
    """Return ``x`` unchanged, with its gradient multiplied by ``scale``.

    ``scale == 1`` returns ``x`` itself and ``scale == 0`` returns
    ``x.detach()`` (no gradient reaches what produced ``x``, and no backward
    pass is spent on it); any other value goes through :class:`GradScale`.

    Args:
        x (Tensor): Input.
        scale (float): Gradient multiplier.

    Returns:
        Tensor: ``x``'s values.
    """
    scale = float(scale)
    if scale == 1:
        return x
    if scale == 0:
        return x.detach()
    return GradScale.apply(x, scale)
