"""Safe loading of checkpoints: ``weights_only=True`` plus a short allowlist.

A ``.pth`` file is a pickle, and unpickling can run any code the file's
author chose. torch >= 2.6 therefore loads with ``weights_only=True``, whose
unpickler builds only tensors, containers and the globals allowlisted for
the call. mmengine 0.10.7 calls ``torch.load`` without arguments, and its
checkpoints hold a few Python objects, so possec loads local files itself:

- with ``weights_only=True`` and :data:`ALLOWED` (below), exactly what
  mmengine/mmseg checkpoints written by possec's runs contain; anything else
  is refused with :class:`~possec.errors.UntrustedCheckpointError`, one line
  naming the offending global and the per-file opt-in;
- with ``weights_only=False`` only for a file the user trusts explicitly:
  :func:`trust` (``--trust-checkpoint`` of ``tools/test.py`` and
  ``tools/train.py``, ``trust_load_from=True`` in a config for its
  ``load_from``). The opt-in applies to that file only.

possec's own runs write checkpoints that need no allowlist at all: the
message hub's state (mmengine's ``HistoryBuffer`` objects and numpy arrays
and scalars) is written in plain types by :func:`to_plain_checkpoint`
(called by :class:`possec.engine.hooks.CheckpointProvenanceHook` before each
save), so torch's default ``torch.load(path)`` and mmseg's ``init_model``
read them; :func:`load_local_checkpoint` turns the plain form back
(:func:`from_plain_checkpoint`), so a resume restores the same objects.
The allowlist below remains for checkpoints written before that.

Importing possec changes nothing: mmengine's loaders stay as they are.
possec's entry points run inside
:func:`possec.runtime.weights.checkpoint_loading`, which routes
mmengine's *local-file* loader through :func:`load_local_checkpoint` for
the duration of the run, and makes the Runner's ``load_from`` / resume
refuse weights that do not fit the model unless a partial load is asked
for. Remote URLs (``http://``, ``torchvision://``, ...) keep mmengine's
loaders and torch's safe default. Library code outside a run (analysis
tools) calls :func:`possec.runtime.weights.load_model_checkpoint` or
:func:`load_local_checkpoint`.

The allowlist (found by saving real checkpoints of the demo configs and
listing their globals with ``torch.serialization.
get_unsafe_globals_in_checkpoint``):

- ``mmengine.logging.history_buffer.HistoryBuffer`` (the message hub's
  logged scalars): a plain data class; loading creates it with
  ``__new__`` and sets its ``__dict__``, no method of it runs.
- ``numpy.ndarray``, ``numpy.core/_core.multiarray._reconstruct``,
  ``numpy.dtype``, ``numpy.core/_core.multiarray.scalar``: numpy arrays and
  scalars rebuilt from raw bytes of a dtype.
- numpy's numeric and boolean dtype classes (``numpy.dtypes.Float64DType``,
  ...): needed to set the state of a dtype; object and void dtypes are not
  admitted, so no array can hold Python objects.

- the name ``builtins.getattr``, which protocol-2 pickles use for the four
  functions a ``HistoryBuffer`` keeps in its statistics table
  (``getattr(HistoryBuffer, 'mean')``), resolves to
  :func:`history_buffer_method`, which returns ``HistoryBuffer.min``,
  ``max``, ``current`` or ``mean`` and refuses anything else. The real
  ``getattr`` is never admitted: with it a pickle reaches any attribute of
  an admitted class, e.g. a method's ``__globals__`` and from there
  ``eval``.
"""
import os.path as osp
import pickle
import re
import zipfile
from typing import List, Optional, Set

import torch

from ..errors import CheckpointError, UntrustedCheckpointError

__all__ = [
    'allowed_globals', 'from_plain_checkpoint', 'history_buffer_method',
    'is_trusted', 'load_local_checkpoint', 'to_plain_checkpoint', 'trust'
]

DEFAULT_OPT_IN = ('if you trust this file, load it with --trust-checkpoint '
                  '(tools/test.py, tools/train.py), trust_load_from=True in '
                  'the config (load_from), or possec.runtime.checkpoint.'
                  'trust(path) in Python')

_TRUSTED: Set[str] = set()
_OPT_IN: List[str] = [DEFAULT_OPT_IN]


def _key(path: str) -> str:
    return osp.realpath(osp.expanduser(path))


def trust(path: str) -> None:
    """Allow full unpickling (``weights_only=False``) of this one file.

    Use only for a file you wrote or trust: unpickling it can run code.

    Args:
        path (str): A local checkpoint path.
    """
    _TRUSTED.add(_key(path))


def is_trusted(path: str) -> bool:
    """Whether :func:`trust` was called for ``path``."""
    return _key(path) in _TRUSTED


_HISTORY_STATISTICS = ('min', 'max', 'current', 'mean')


def history_buffer_method(owner, name: str):
    """What ``builtins.getattr`` means inside a safely loaded checkpoint:
    ``getattr(HistoryBuffer, name)`` for the four statistics methods that
    mmengine's ``HistoryBuffer`` pickles by reference; anything else is
    refused.

    Args:
        owner: Must be ``mmengine.logging.history_buffer.HistoryBuffer``.
        name (str): 'min', 'max', 'current' or 'mean'.
    """
    from mmengine.logging.history_buffer import HistoryBuffer
    if owner is HistoryBuffer and name in _HISTORY_STATISTICS:
        return vars(HistoryBuffer)[name]
    raise pickle.UnpicklingError(
        f'builtins.getattr({getattr(owner, "__name__", type(owner).__name__)}'
        f', {name!r}) was not an allowed global: only '
        f'getattr(HistoryBuffer, one of {_HISTORY_STATISTICS}) is')


def allowed_globals() -> list:
    """The allowlist as ``torch.serialization.safe_globals`` takes it:
    objects, and ``(object, 'module.name')`` pairs for names under which
    older numpy versions pickled the same object."""
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    names = []
    for mod in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        names += [(multiarray._reconstruct, f'{mod}._reconstruct'),
                  (multiarray.scalar, f'{mod}.scalar')]
    dtypes = [type(np.dtype(code)) for code in '?bBhHiIlLqQefdgFDG']
    names.append((history_buffer_method, 'builtins.getattr'))
    return [HistoryBuffer, np.ndarray, np.dtype] + names + sorted(
        set(dtypes), key=lambda t: t.__name__)


def _allowed_names() -> Set[str]:
    names = set()
    for item in allowed_globals():
        if isinstance(item, tuple):
            names.add(item[1])
        else:
            names.add(f'{item.__module__}.{item.__qualname__}')
    return names


def _unsafe_globals(filename: str) -> List[str]:
    """Globals of a zip checkpoint outside torch's and possec's lists."""
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
    except Exception:
        return []
    allowed = _allowed_names()
    return [name for name in found if name not in allowed]


def _corrupt(filename: str, exc) -> CheckpointError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else \
        type(exc).__name__
    return CheckpointError(
        f'checkpoint {filename!r} cannot be read ({reason}): expected a '
        f'complete file written by torch.save; it is truncated or not a '
        f'checkpoint, so copy it again or pick another one (a work dir\'s '
        f'last_checkpoint names its newest complete checkpoint)')


def _untrusted(filename: str, exc: BaseException) -> UntrustedCheckpointError:
    names = _unsafe_globals(filename)
    if not names:
        match = re.search(r'GLOBAL (\S+) (?:was not an allowed global|'
                          r'whose module)|(builtins\.getattr\([^)]*\))',
                          str(exc))
        names = [match.group(1) or match.group(2)] if match else []
    what = (f'the global {names[0]}' if len(names) == 1 else
            f'the globals {", ".join(names[:4])}' if names else
            'an object outside the allowlist')
    return UntrustedCheckpointError(
        f'checkpoint {filename!r} was not loaded: it holds {what}, which '
        f'possec\'s safe loader does not allow (unpickling it could run '
        f'code); {_OPT_IN[-1]}')


#: The key that marks a value written in plain types by :func:`to_plain`.
PLAIN_TAG = '__possec_plain__'
#: numpy kinds written as plain lists: bool, signed, unsigned, float.
_PLAIN_KINDS = 'biuf'
#: The parts of a checkpoint written in plain types.
_PLAIN_PARTS = ('meta', 'message_hub')


def to_plain(obj):
    """``obj`` with every ``HistoryBuffer``, numeric numpy array and numpy
    scalar replaced by a tagged dict of Python lists and numbers, which
    torch's ``weights_only`` unpickler reads without an allowlist.

    Containers keep their type (dict, OrderedDict, list, tuple); anything
    else is returned as it is. :func:`from_plain` is the inverse.

    Args:
        obj: A value of a checkpoint.

    Returns:
        The value in plain types.
    """
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer
    if isinstance(obj, HistoryBuffer):
        return {PLAIN_TAG: 'HistoryBuffer', 'max_length': int(obj.max_length),
                'log_history': to_plain(obj._log_history),
                'count_history': to_plain(obj._count_history)}
    if isinstance(obj, np.ndarray) and obj.dtype.kind in _PLAIN_KINDS:
        return {PLAIN_TAG: 'ndarray', 'dtype': obj.dtype.str,
                'shape': list(obj.shape), 'data': obj.ravel().tolist()}
    if isinstance(obj, np.generic) and obj.dtype.kind in _PLAIN_KINDS:
        return {PLAIN_TAG: 'scalar', 'dtype': obj.dtype.str,
                'value': obj.item()}
    if isinstance(obj, dict):
        return type(obj)((k, to_plain(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)) and type(obj) in (list, tuple):
        return type(obj)(to_plain(v) for v in obj)
    return obj


def from_plain(obj):
    """The inverse of :func:`to_plain`: tagged dicts become the
    ``HistoryBuffer``, numpy array or scalar they were, with their dtype.

    Args:
        obj: A value of a loaded checkpoint.

    Returns:
        The value with its original types.
    """
    import numpy as np
    if isinstance(obj, dict):
        kind = obj.get(PLAIN_TAG)
        if kind == 'ndarray':
            return np.asarray(obj['data'], dtype=np.dtype(
                obj['dtype'])).reshape(obj['shape'])
        if kind == 'scalar':
            return np.dtype(obj['dtype']).type(obj['value'])
        if kind == 'HistoryBuffer':
            from mmengine.logging.history_buffer import HistoryBuffer
            buffer = HistoryBuffer.__new__(HistoryBuffer)
            buffer._set_default_statistics()
            buffer.max_length = obj['max_length']
            buffer._log_history = from_plain(obj['log_history'])
            buffer._count_history = from_plain(obj['count_history'])
            return buffer
        return type(obj)((k, from_plain(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)) and type(obj) in (list, tuple):
        return type(obj)(from_plain(v) for v in obj)
    return obj


def to_plain_checkpoint(checkpoint: dict) -> dict:
    """Write the ``meta`` and ``message_hub`` of an mmengine checkpoint in
    plain types (:func:`to_plain`), in place; the weights, optimizer and
    scheduler states are tensors and numbers already.

    Args:
        checkpoint (dict): The checkpoint ``Runner.save_checkpoint`` is
            about to save.

    Returns:
        dict: ``checkpoint``.
    """
    for part in _PLAIN_PARTS:
        if part in checkpoint:
            checkpoint[part] = to_plain(checkpoint[part])
    return checkpoint


def from_plain_checkpoint(checkpoint):
    """Undo :func:`to_plain_checkpoint` in place (a checkpoint without the
    plain form is returned unchanged).

    Args:
        checkpoint (dict): A loaded checkpoint.

    Returns:
        dict: ``checkpoint``.
    """
    if isinstance(checkpoint, dict):
        for part in _PLAIN_PARTS:
            if part in checkpoint:
                checkpoint[part] = from_plain(checkpoint[part])
    return checkpoint


# What torch's weights-only unpickler says when it meets a type or call
# outside the allowlist (as opposed to bytes that are no pickle at all).
_REFUSALS = ('allowed global', 'allowlisted', 'unrecognized function',
             'unsupported GLOBAL', 'Unsupported global', 'Can only build',
             'Can only create new')


def _wo_reason(exc: BaseException) -> str:
    """The reason inside torch's long "Weights only load failed" text."""
    match = re.search(r'WeightsUnpickler error:\s*(.+)', str(exc))
    return match.group(1).strip().splitlines()[0] if match else exc


def load_local_checkpoint(filename: str, map_location=None,
                          trusted: Optional[bool] = None):
    """Load a local checkpoint safely (see the module docstring).

    Args:
        filename (str): Local checkpoint path (``~`` is expanded).
        map_location (str | torch.device | callable, optional): As in
            :func:`torch.load`. Default: None.
        trusted (bool, optional): Full unpickling for this call. Default:
            None (whether :func:`trust` was called for the file).

    Returns:
        dict: The loaded checkpoint, its plain-typed parts restored
        (:func:`from_plain_checkpoint`).
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise CheckpointError(
            f'checkpoint {filename!r} not found: expected a local .pth file '
            f'written by a possec/mmseg run (e.g. work_dirs/NAME/iter_N.pth)')
    if trusted is None:
        trusted = is_trusted(filename)
    try:
        if trusted:
            loaded = torch.load(filename, map_location=map_location,
                                weights_only=False)
        else:
            with torch.serialization.safe_globals(allowed_globals()):
                loaded = torch.load(filename, map_location=map_location,
                                    weights_only=True)
    except pickle.UnpicklingError as exc:
        if not trusted and any(m in str(exc) for m in _REFUSALS):
            raise _untrusted(filename, exc) from exc
        raise _corrupt(filename, _wo_reason(exc)) from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError,
            OSError) as exc:
        raise _corrupt(filename, exc) from exc
    return from_plain_checkpoint(loaded)
