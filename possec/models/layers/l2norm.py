"""Per-position L2 normalisation across channels with a learnable scale."""
import torch
import torch.nn as nn
from mmseg.registry import MODELS
from torch import Tensor

_LOW_PRECISION = (torch.float16, torch.bfloat16)


@MODELS.register_module()
class L2Norm(nn.Module):
    """L2 normalisation across channels with a learnable per-channel scale.

    The layer ParseNet uses to fuse features whose magnitudes differ by
    orders of magnitude (`ParseNet <https://arxiv.org/abs/1506.04579>`_). At
    every position (every sample of an ``(N, C)`` input, every pixel of an
    ``(N, C, H, W)`` input) the channel vector is divided by its L2 norm and
    then multiplied by a learnable weight ``gamma`` (one value per channel):

    .. math::

        y_c = \\gamma_c \\, x_c / \\sqrt{\\textstyle\\sum_{c'} x_{c'}^2
        + \\epsilon}

    ``eps`` sits *inside* the square root, as in the original Caffe
    ``Normalize`` layer, not as a lower bound on the norm (which is what
    :func:`torch.nn.functional.normalize` does). Inside the root, the
    function is smooth everywhere: at ``x = 0`` the output is 0 and the
    gradient is ``gamma / sqrt(eps)``, finite, whereas ``sqrt`` alone has an
    infinite derivative at 0 and a clamp has a kink. For any feature vector
    with ``sum x^2 >> eps`` the two forms agree.

    ``gamma`` is set to ``scale`` when the layer is built and again by
    :meth:`reset_parameters` / :meth:`init_weights` (mmengine calls the
    latter), so no code path leaves it uninitialised. Half-precision inputs
    (also under autocast) are normalised in float32 and cast back: squares
    of small float16 activations underflow to zero and ``eps = 1e-10`` is
    not representable in float16.

    Args:
        num_channels (int): Number of channels ``C`` (dimension 1).
        scale (float): Initial value of every entry of ``gamma``. ParseNet
            uses about 10, SSD 20. Default: 10.0.
        eps (float): Added to the sum of squares inside the square root;
            must be positive. Default: 1e-10.

    Example:
        >>> norm = L2Norm(4, scale=2.0)
        >>> x = torch.randn(2, 4, 3, 3)
        >>> y = norm(x)
        >>> torch.allclose(y.norm(dim=1), torch.full((2, 3, 3), 2.0))
        True
    """

    def __init__(self,
                 num_channels: int,
                 scale: float = 10.0,
                 eps: float = 1e-10) -> None:
        super().__init__()
        if not isinstance(num_channels, int) or num_channels < 1:
            raise ValueError(f'num_channels must be a positive int, got '
                             f'{num_channels!r}')
        if not eps > 0:
            raise ValueError(f'eps must be > 0 (it keeps the gradient at '
                             f'x = 0 finite), got {eps!r}')
        self.num_channels = num_channels
        self.scale = float(scale)
        self.eps = float(eps)
        self.weight = nn.Parameter(torch.empty(num_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Set every entry of the per-channel scale to ``scale``."""
        with torch.no_grad():
            self.weight.fill_(self.scale)

    def init_weights(self) -> None:
        """Called by mmengine's ``BaseModule.init_weights``; same as
        :meth:`reset_parameters`."""
        self.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        """Normalise ``x`` of shape ``(N, C, *)`` across dimension 1."""
        if x.dim() < 2 or x.size(1) != self.num_channels:
            raise ValueError(f'L2Norm expects an input of shape (N, '
                             f'{self.num_channels}, ...), got '
                             f'{tuple(x.shape)}')
        in_dtype = x.dtype
        compute_dtype = torch.float32 if in_dtype in _LOW_PRECISION \
            else in_dtype
        with torch.autocast(device_type=x.device.type, enabled=False):
            x = x.to(compute_dtype)
            norm = torch.sqrt(x.pow(2).sum(dim=1, keepdim=True) + self.eps)
            weight = self.weight.to(compute_dtype).view(
                1, -1, *([1] * (x.dim() - 2)))
            out = x / norm * weight
        return out.to(in_dtype)

    def extra_repr(self) -> str:
        return f'{self.num_channels}, scale={self.scale}, eps={self.eps}'
