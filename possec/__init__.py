"""possec: absolute position information and global context in semantic
segmentation, as an MMSegmentation 1.x extension.

Importing this package registers every possec module into mmseg's own
registries and applies the stack fixes of :mod:`possec.runtime`.
"""
from . import runtime  # noqa: F401  (must come first: stack fixes)
from . import registry  # noqa: F401  (the possec:: config scope)
from . import datasets, evaluation, models, position  # noqa: F401
from .version import __version__

__all__ = ['__version__', 'datasets', 'evaluation', 'models', 'position',
           'runtime']
