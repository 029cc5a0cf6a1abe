"""FCN head whose convolutions pad by a chosen border rule."""
from mmseg.models.decode_heads import FCNHead
from mmseg.registry import MODELS

from ..layers.padding import convert_padding, resolve_padding_mode

#: Border rules that keep a convolution's output the size of its input
#: (``'none'`` shrinks it and ``'full'`` grows it, which FCNHead's
#: concatenation of input and output cannot take).
SAME_SIZE_MODES = ('zeros', 'reflect', 'replicate', 'circular', 'partial')


@MODELS.register_module()
class PadFCNHead(FCNHead):
    """mmseg's FCN head with its padded convolutions switched to
    ``padding_mode``.

    `Fully Convolutional Networks <https://arxiv.org/abs/1411.4038>`_ as
    mmseg builds it (``num_convs`` k x k ConvModules, optionally
    concatenated with the input), then converted in place by
    :func:`possec.models.layers.convert_padding`, the function that gives
    possec's backbones their border rule. A zero-padded head reads the
    image border even on a circularly padded backbone; with the head
    following the backbone's rule, a circular network has no border
    anywhere. The parameters and state dict are FCNHead's, and
    ``padding_mode='zeros'`` computes exactly what FCNHead computes.

    Args:
        padding_mode (str): One of :data:`SAME_SIZE_MODES`.
            Default: 'zeros'.
        **kwargs: FCNHead's arguments.
    """

    def __init__(self, padding_mode: str = 'zeros', **kwargs):
        mode = resolve_padding_mode(padding_mode)
        if mode not in SAME_SIZE_MODES:
            raise ValueError(
                f'PadFCNHead cannot use padding_mode {mode!r}: it changes '
                f'the feature size; expected one of '
                f'{", ".join(map(repr, SAME_SIZE_MODES))}')
        super().__init__(**kwargs)
        self.padding_mode = mode
        convert_padding(self.convs, mode)
        if self.concat_input:
            convert_padding(self.conv_cat, mode)
