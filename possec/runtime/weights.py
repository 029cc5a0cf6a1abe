"""Loading weights into a model: they must fit, unless asked otherwise.

mmengine loads a checkpoint into a model with ``strict=False`` and only
logs the keys that did not match, so a checkpoint of another model (the
ParseNet demo's given to the FCN config) gives a half-random model and a
result. Here missing, unexpected or differently shaped weights stop the run
with :class:`~possec.errors.WeightsMismatchError` (counts and a few names)
unless a partial load is asked for (``--partial-load``).

:func:`checkpoint_loading` is the run-scoped switch possec's entry points
use: inside it mmengine's local-file loader is
:func:`possec.runtime.checkpoint.load_local_checkpoint` (safe loading) and
the Runner's ``load_from``/resume check the fit; everything is restored on
exit, so importing possec changes nothing.
"""
import contextlib
import re
from typing import Iterator, List, Optional

import torch

from ..errors import WeightsMismatchError
from .checkpoint import DEFAULT_OPT_IN, _OPT_IN, load_local_checkpoint

__all__ = ['check_weights_fit', 'checkpoint_loading', 'load_model_checkpoint']


def _state_dict(checkpoint) -> dict:
    if isinstance(checkpoint, dict) and 'state_dict' in checkpoint:
        return checkpoint['state_dict']
    return checkpoint


def _revise(state_dict: dict, revise_keys) -> dict:
    for pattern, repl in revise_keys or []:
        state_dict = {re.sub(pattern, repl, k): v
                      for k, v in state_dict.items()}
    return state_dict


def _takes_saved_shape(model: torch.nn.Module, key: str, saved,
                       own: torch.Tensor) -> bool:
    """Whether the module holding ``key`` takes the saved tensor's shape
    when it loads (it names the buffer in ``SHAPED_ON_LOAD``, e.g.
    :class:`~possec.models.layers.PositionEraser`'s statistics, whose grid
    is the feature map's, unknown until data is seen), and the saved
    tensor differs only there: same rank, same leading (channel) size."""
    prefix, _, name = key.rpartition('.')
    try:
        module = model.get_submodule(prefix) if prefix else model
    except AttributeError:
        return False
    return (name in getattr(module, 'SHAPED_ON_LOAD', ())
            and len(saved.shape) == own.dim() and own.dim() > 0
            and saved.shape[0] == own.shape[0])


def check_weights_fit(model: torch.nn.Module, state_dict: dict,
                      source: str,
                      opt_in: str = 'pass --partial-load to load only the '
                      'weights that fit') -> None:
    """Raise :class:`~possec.errors.WeightsMismatchError` unless every key
    of ``model`` is in ``state_dict`` with its shape, and nothing else is.

    BatchNorm's ``num_batches_tracked`` counters are ignored, as mmengine
    does; a buffer whose module takes the saved shape on load
    (``SHAPED_ON_LOAD``) need only agree in rank and channels.

    Args:
        model (nn.Module): The model (a DDP wrapper is unwrapped).
        state_dict (dict): The weights, keys already revised.
        source (str): The checkpoint path, for the message.
        opt_in (str): How to ask for a partial load, for the message.
    """
    from mmengine.model import is_model_wrapper
    if is_model_wrapper(model):
        model = model.module
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict
               and not k.endswith('num_batches_tracked')]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [k for k in own if k in state_dict
              and hasattr(state_dict[k], 'shape')
              and tuple(state_dict[k].shape) != tuple(own[k].shape)
              and not _takes_saved_shape(model, k, state_dict[k], own[k])]
    if not (missing or unexpected or shapes):
        return
    parts = []
    for what, keys in (('missing from it', missing),
                       ('unexpected in it', unexpected),
                       ('of another shape', shapes)):
        if keys:
            few = ', '.join(keys[:3]) + (', ...' if len(keys) > 3 else '')
            parts.append(f'{len(keys)} {what} ({few})')
    raise WeightsMismatchError(
        f'checkpoint {source!r} does not fit the model ({len(own)} weights): '
        f'{"; ".join(parts)}; expected a checkpoint of this config\'s model: '
        f'check the config/checkpoint pair, or {opt_in}')


def load_model_checkpoint(model: torch.nn.Module, filename: str,
                          map_location='cpu', partial: bool = False,
                          revise_keys=((r'^module\.', ''), )):
    """Load a local checkpoint into ``model``; a drop-in for mmengine's
    ``load_checkpoint`` that loads safely and refuses weights that do not
    fit unless ``partial``.

    Args:
        model (nn.Module): The model.
        filename (str): Local checkpoint path.
        map_location (str): As in :func:`torch.load`. Default: 'cpu'.
        partial (bool): Load the fitting weights and skip the rest (with
            mmengine's logged warning). Default: False.
        revise_keys (list): (pattern, replacement) pairs applied to the
            keys. Default: strip ``module.``.

    Returns:
        dict: The checkpoint.
    """
    from mmengine.runner.checkpoint import _load_checkpoint_to_model
    checkpoint = load_local_checkpoint(filename, map_location)
    if not partial:
        check_weights_fit(model, _revise(dict(_state_dict(checkpoint)),
                                         revise_keys), filename)
    return _load_checkpoint_to_model(model, checkpoint, strict=False,
                                     revise_keys=list(revise_keys))


@contextlib.contextmanager
def checkpoint_loading(opt_in: Optional[str] = None,
                       partial: bool = False) -> Iterator[None]:
    """Inside, mmengine loads local checkpoints through
    :func:`load_local_checkpoint` and the Runner's ``load_from``/resume
    refuse weights that do not fit (unless ``partial``); everything is
    restored on exit.

    Args:
        opt_in (str, optional): How this tool's user trusts a file, for the
            refusal message. Default: all the ways.
        partial (bool): Let the Runner load a checkpoint that fits the model
            only in part. Default: False.
    """
    from mmengine.runner import runner as runner_module
    from mmengine.runner.checkpoint import CheckpointLoader
    schemes = CheckpointLoader._schemes
    previous = schemes.get('')
    original = runner_module._load_checkpoint_to_model

    def to_model(model, checkpoint, strict=False, logger='current',
                 revise_keys=[(r'^module\.', '')]):
        if not partial:
            check_weights_fit(
                model, _revise(dict(_state_dict(checkpoint)), revise_keys),
                _LOADING[-1] if _LOADING else 'the checkpoint')
        return original(model, checkpoint, strict, logger, revise_keys)

    def local(filename, map_location=None):
        _LOADING.append(filename)
        return load_local_checkpoint(filename, map_location)

    schemes[''] = local
    runner_module._load_checkpoint_to_model = to_model
    _OPT_IN.append(opt_in or DEFAULT_OPT_IN)
    try:
        yield
    finally:
        _OPT_IN.pop()
        runner_module._load_checkpoint_to_model = original
        if previous is None:
            schemes.pop('', None)
        else:
            schemes[''] = previous
        _LOADING.clear()


_LOADING: List[str] = []

