"""Position channels of a trained segmentor, after `Global Pooling, More
than Meets the Eye <https://arxiv.org/abs/2108.07884>`_: absolute position
read out of pooled vectors on canvases, a per-channel placement score, and
the segmentor's reliance on the ranked channels (ablation by their dataset
means)."""
from .canvas import BACKGROUNDS, Canvases, cell_box, make_canvases
from .decode import SoftmaxRegression, decode, decode_all, order_free
from .evaluate import ZoneCounts, evaluate, load_batches
from .layers import ablate, default_layer, parse_layer, pooled, record_means
from .run import position_channels
from .score import channel_table, flip_score, placement_anova

__all__ = [
    'BACKGROUNDS', 'Canvases', 'SoftmaxRegression', 'ZoneCounts', 'ablate',
    'cell_box', 'channel_table', 'decode', 'decode_all', 'default_layer',
    'evaluate', 'flip_score', 'load_batches', 'make_canvases', 'order_free',
    'parse_layer', 'placement_anova', 'pooled', 'position_channels',
    'record_means'
]
