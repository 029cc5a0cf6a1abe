"""The ``possec`` scope: ``possec::`` config paths, as ``mmseg::``.

possec ships its configs inside the package (``possec/.mim/configs``, put
there by setup.py: copied into a wheel, linked for an editable install), the
folder where mmengine resolves ``pkg::path`` in a config's ``_base_`` and in
:func:`mmengine.hub.get_config`. Two things make that resolution work:

- mmengine resolves only the packages of its ``MODULE2PACKAGE`` table;
  importing possec (this module) adds possec to it, so a config with
  ``possec::`` bases loads in any process that imported possec first.
  possec is mapped to its module ``possec.version`` rather than to the
  distribution ``possec``: mmengine looks a distribution up through
  ``pkg_resources``, whose location for an editable (PEP 660) install is
  site-packages, where no ``possec/`` folder exists; a name that is no
  distribution makes it fall back to :func:`importlib.util.find_spec`,
  which finds possec where Python imports it from, installed or editable.
- mmengine tags the dicts of a ``possec::`` base with ``_scope_='possec'``
  (as it tags ``mmseg::`` bases with ``'mmseg'``) and, building one,
  imports ``possec.registry`` and looks for registries of that scope. possec
  registers its modules into mmseg's own registries, so mmseg's tools and
  ``default_scope='mmseg'`` find them; the children below hold nothing
  themselves, and a look-up in one falls through to its mmseg parent.
"""
from mmengine.config.utils import MODULE2PACKAGE
from mmengine.registry import Registry
from mmseg import registry as mmseg

__all__ = [
    'SCOPE', 'RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'DATASETS',
    'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS', 'MODEL_WRAPPERS',
    'WEIGHT_INITIALIZERS', 'OPTIMIZERS', 'OPTIM_WRAPPERS',
    'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS', 'METRICS', 'EVALUATOR',
    'TASK_UTILS', 'VISUALIZERS', 'VISBACKENDS', 'LOG_PROCESSORS',
    'INFERENCERS'
]

SCOPE = 'possec'
MODULE2PACKAGE.setdefault(SCOPE, 'possec.version')


def _child(parent: Registry) -> Registry:
    # locations: importing possec registers everything (into mmseg's
    # registries); without it mmengine would look for possec.utils.
    return Registry(
        parent.name, parent=parent, scope=SCOPE, locations=['possec'])


RUNNERS = _child(mmseg.RUNNERS)
RUNNER_CONSTRUCTORS = _child(mmseg.RUNNER_CONSTRUCTORS)
LOOPS = _child(mmseg.LOOPS)
HOOKS = _child(mmseg.HOOKS)
DATASETS = _child(mmseg.DATASETS)
DATA_SAMPLERS = _child(mmseg.DATA_SAMPLERS)
TRANSFORMS = _child(mmseg.TRANSFORMS)
MODELS = _child(mmseg.MODELS)
MODEL_WRAPPERS = _child(mmseg.MODEL_WRAPPERS)
WEIGHT_INITIALIZERS = _child(mmseg.WEIGHT_INITIALIZERS)
OPTIMIZERS = _child(mmseg.OPTIMIZERS)
OPTIM_WRAPPERS = _child(mmseg.OPTIM_WRAPPERS)
OPTIM_WRAPPER_CONSTRUCTORS = _child(mmseg.OPTIM_WRAPPER_CONSTRUCTORS)
PARAM_SCHEDULERS = _child(mmseg.PARAM_SCHEDULERS)
METRICS = _child(mmseg.METRICS)
EVALUATOR = _child(mmseg.EVALUATOR)
TASK_UTILS = _child(mmseg.TASK_UTILS)
VISUALIZERS = _child(mmseg.VISUALIZERS)
VISBACKENDS = _child(mmseg.VISBACKENDS)
LOG_PROCESSORS = _child(mmseg.LOG_PROCESSORS)
INFERENCERS = _child(mmseg.INFERENCERS)
