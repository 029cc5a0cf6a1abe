"""possec: absolute position information and global context in semantic
segmentation, as an MMSegmentation 1.x extension.

Importing this package registers every possec module (models, datasets,
metrics, transforms, hooks) into mmseg's own registries and adds the
``possec::`` config scope to mmengine's package table
(:mod:`possec.registry`); it changes no other global state. The stack fixes
of :mod:`possec.runtime` are applied by the entry points of
:mod:`possec.apis`, for the duration of a run.

Two more modules are loaded on first use (``possec.apis``, or ``from
possec import apis``), as they pull in mmengine's Runner and the analyses'
dependencies:

- :mod:`possec.apis`: training and testing (what ``tools/train.py`` and
  ``tools/test.py`` call), the provenance of checkpoints;
- :mod:`possec.analysis`: the position probe, the position study and the
  visual tools' library code (``possec.analysis.load_segmentor``).
"""
from . import runtime  # noqa: F401
from . import registry  # noqa: F401  (the possec:: config scope)
from . import datasets, engine, evaluation, models, position  # noqa: F401
from .version import __version__

__all__ = ['__version__', 'analysis', 'apis', 'datasets', 'engine',
           'evaluation', 'models', 'position', 'runtime']


def __getattr__(name: str):
    """``possec.apis`` and ``possec.analysis``, imported on first use."""
    if name in ('apis', 'analysis'):
        import importlib
        return importlib.import_module(f'{__name__}.{name}')
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
