"""CoordConv: give a convolution the row and column of every pixel."""
import torch
from torch import Tensor, nn

from .padding import convert_padding


def coord_channels(n: int, h: int, w: int, dtype=torch.float32,
                   device=None) -> Tensor:
    """Row and column coordinates, each scaled to [-1, 1], as two channels.

    Args:
        n (int): Batch size.
        h (int): Height.
        w (int): Width.
        dtype (torch.dtype): Output dtype. Default: torch.float32.
        device: Output device. Default: None.

    Returns:
        Tensor: Shape (n, 2, h, w); channel 0 is the row (-1 at the top,
        +1 at the bottom), channel 1 the column (-1 left, +1 right). A side
        of one pixel has coordinate 0.
    """
    def axis(size):
        if size == 1:
            return torch.zeros(1, dtype=dtype, device=device)
        return torch.linspace(-1, 1, size, dtype=dtype, device=device)

    rows = axis(h).view(h, 1).expand(h, w)
    cols = axis(w).view(1, w).expand(h, w)
    return torch.stack([rows, cols]).unsqueeze(0).expand(n, 2, h, w)


class CoordConv(nn.Module):
    """The coordinate half of a CoordConv layer, to be added to a conv's
    output.

    `An intriguing failing of convolutional neural networks and the
    CoordConv solution <https://arxiv.org/abs/1807.03247>`_ (Liu et al.,
    NeurIPS 2018) appends the normalised row and column
    (:func:`coord_channels`) to a convolution's input. A convolution is
    linear in its input channels, so ``conv(cat([x, coords]))`` equals
    ``conv(x) + coord(coords)`` where ``coord`` holds the weights of the two
    new channels; this module is ``coord``, with ``conv``'s geometry and
    border rule and no bias. Kept apart from ``conv``, the original conv's
    parameters (and a standard checkpoint's keys and shapes) are unchanged,
    and with the weight at zero, its initial value, the layer computes
    exactly what ``conv`` did.

    Args:
        conv (nn.Conv2d): The convolution the coordinates are appended to
            (kernel, stride, padding, dilation and output channels are
            copied; its parameters are not touched).
        padding_mode (str): Border rule of the coordinate channels, as the
            backbone's (:func:`~possec.models.layers.convert_padding`).
            Default: 'zeros'.
    """

    def __init__(self, conv: nn.Conv2d, padding_mode: str = 'zeros'):
        super().__init__()
        coord = nn.Conv2d(2, conv.out_channels, conv.kernel_size,
                          stride=conv.stride, padding=conv.padding,
                          dilation=conv.dilation, bias=False)
        nn.init.zeros_(coord.weight)
        self.conv = convert_padding(coord, padding_mode)

    def forward(self, x: Tensor) -> Tensor:
        """The coordinate term for the conv's input ``x`` (N, C, H, W)."""
        n, _, h, w = x.shape
        return self.conv(coord_channels(n, h, w, x.dtype, x.device))
