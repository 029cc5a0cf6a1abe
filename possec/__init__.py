"""possec: absolute position information and global context in semantic
segmentation, as an MMSegmentation 1.x extension.

Importing this package registers every possec module (models, datasets,
metrics, transforms, hooks) into mmseg's own registries and adds the
``possec::`` config scope to mmengine's package table
(:mod:`possec.registry`); it changes no other global state. The stack fixes
of :mod:`possec.runtime` are applied by the entry points of
:mod:`possec.apis`, for the duration of a run.
"""
from . import runtime  # noqa: F401
from . import registry  # noqa: F401  (the possec:: config scope)
from . import datasets, engine, evaluation, models, position  # noqa: F401
from .version import __version__

__all__ = ['__version__', 'datasets', 'engine', 'evaluation', 'models',
           'position', 'runtime']
