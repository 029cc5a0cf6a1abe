"""What the analysis tools and benchmarks share: config lookup, the offline
model builder, the image loader, figures, JSON conversion, logging and
progress, and the visual tools' command-line options."""
from .cli import common_kwargs, tool_parser
from .config import config_path
from .figures import draw_box, new_figure, write_outputs
from .images import load_images, read_image, to_hwc
from .jsonable import to_jsonable
from .logs import quiet_logger
from .models import (build_offline, load_segmentor, offline_cfg,
                     quiet_init_weights)
from .progress import Progress

__all__ = [
    'Progress', 'build_offline', 'common_kwargs', 'config_path', 'draw_box',
    'load_images', 'load_segmentor', 'new_figure', 'offline_cfg',
    'quiet_init_weights', 'quiet_logger', 'read_image', 'to_hwc',
    'to_jsonable', 'tool_parser', 'write_outputs'
]
