"""The one place where a failure of a run becomes a user error.

possec's entry points build the model, the datasets and run the loops
inside :func:`user_errors`. When something fails there, the exception (and
the exceptions it was raised from, and the frames it passed through) tell
which file, config key or module was involved; :func:`explain_failure`
turns the failures a user's input causes into one
:class:`~possec.errors.UserError` line: what was expected, what was found,
what to do. Anything else is re-raised unchanged, with its traceback: it is
a bug to report, not an input to fix.
"""
import contextlib
import copy
import re
from typing import Dict, Iterator, List, Optional

from mmengine.config import Config

from ..errors import (ConfigKeyError, DataError, ModelBuildError,
                      UserError)

__all__ = ['explain_failure', 'min_input_size', 'user_errors']

_WORKER_RE = re.compile(r'Caught \w+ in DataLoader worker process')
_IMAGE_RE = re.compile(r'failed to load image: ([^\n]+)')
_KWARG_RE = re.compile(r"(\w+)\.__init__\(\) got an unexpected keyword "
                       r"argument '(\w+)'")
_TOO_SMALL = ("Kernel size can't be greater than actual input size",
              'Output size is too small', 'smaller than kernel',
              'negative output size')


def _chain(exc: BaseException) -> List[BaseException]:
    seen = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def _frames(exc: BaseException):
    tb = exc.__traceback__
    while tb is not None:
        yield tb.tb_frame
        tb = tb.tb_next


def _failing_module(exc: BaseException):
    """The class of the innermost ``nn.Module`` whose ``__init__`` or
    ``forward`` the exception (or the one it was raised from: mmengine's
    builder re-raises with a new traceback) passed through, and which of
    the two."""
    import torch.nn as nn
    for item in reversed(_chain(exc)):
        found = None
        for frame in _frames(item):
            owner = frame.f_locals.get('self')
            if isinstance(owner, nn.Module) and frame.f_code.co_name in (
                    '__init__', 'forward', '_forward_impl'):
                found = (type(owner), frame.f_code.co_name)
        if found:
            return found
    return None


def _config_path(cfg: Optional[Config], cls) -> Optional[str]:
    """The config path (``model.backbone``) of the module of type ``cls``."""
    if cfg is None or cls is None:
        return None
    from mmseg.registry import MODELS

    def walk(node, path):
        if isinstance(node, dict):
            kind = node.get('type')
            if kind is cls or (isinstance(kind, str) and
                               kind.split('.')[-1] == cls.__name__):
                return path
            if isinstance(kind, str):
                try:
                    if MODELS.get(kind) is cls:
                        return path
                except Exception:
                    pass
            for key, child in node.items():
                hit = walk(child, f'{path}.{key}')
                if hit:
                    return hit
        elif isinstance(node, (list, tuple)):
            for i, child in enumerate(node):
                hit = walk(child, f'{path}.{i}')
                if hit:
                    return hit
        return None

    return walk(cfg.get('model'), 'model')


def _options_under(options: Optional[Dict], path: Optional[str]) -> str:
    if not options or not path:
        return ''
    given = [f'{k}={v}' for k, v in options.items()
             if k == path or k.startswith(path + '.')]
    return f' (set by --cfg-options {" ".join(given)})' if given else ''


def min_input_size(backbone_cfg: dict, limit: int = 4096) -> Optional[int]:
    """The smallest square input (pixels) the backbone's forward accepts,
    found by shape inference on the ``meta`` device (no computation).

    Args:
        backbone_cfg (dict): The backbone's config.
        limit (int): Largest size tried. Default: 4096.

    Returns:
        int | None: The size, or None when even ``limit`` fails.
    """
    import torch
    from mmseg.registry import MODELS
    cfg = copy.deepcopy(dict(backbone_cfg))
    cfg.pop('init_cfg', None)
    cfg.pop('pretrained', None)
    with torch.device('meta'):
        backbone = MODELS.build(cfg)
    backbone.eval()

    def fits(size: int) -> bool:
        try:
            with torch.no_grad():
                backbone(torch.empty(1, cfg.get('in_channels', 3), size,
                                     size, device='meta'))
            return True
        except RuntimeError:
            return False

    if not fits(limit):
        return None
    low, high = 1, limit  # fits(high), and low - 1 does not matter
    while low < high:
        mid = (low + high) // 2
        if fits(mid):
            high = mid
        else:
            low = mid + 1
    return low


def _worker_message(exc: BaseException) -> Optional[str]:
    """The one-line message of a UserError raised in a DataLoader worker
    (torch re-raises it with the worker's traceback as its text)."""
    text = str(exc)
    if not _WORKER_RE.search(text):
        return None
    last = [line for line in text.splitlines() if line.strip()][-1]
    return last.split(': ', 1)[1] if ': ' in last else last


def explain_failure(exc: BaseException, cfg: Optional[Config] = None,
                    options: Optional[Dict] = None) -> Optional[UserError]:
    """The user error behind ``exc``, or None when it is not one.

    Args:
        exc (BaseException): What was raised.
        cfg (Config, optional): The run's config.
        options (dict, optional): The ``--cfg-options`` given.
    """
    from .checks import explain_build_error
    for item in _chain(exc):
        if isinstance(item, UserError):
            message = _worker_message(item)
            return type(item)(message) if message else item
    text = '\n'.join(str(e) for e in _chain(exc))
    match = _IMAGE_RE.search(text)
    if match:
        return DataError(
            f'image {match.group(1)!r} cannot be decoded: expected a '
            f'readable image file (JPEG/PNG), found a corrupt or truncated '
            f'one; replace it, or remove its name from the split file')
    message = explain_build_error(exc)
    if message:
        return UserError(message)
    module = _failing_module(exc)
    cls, where = module if module else (None, None)
    path = _config_path(cfg, cls)
    exc = _chain(exc)[-1]  # the original, not a builder's re-raise
    if isinstance(exc, TypeError):
        match = _KWARG_RE.search(str(exc))
        if match and path:
            return ConfigKeyError(
                f'{path} ({cls.__name__}) takes no argument '
                f'{match.group(2)!r}: remove the key, or replace the base '
                f'config\'s dict with dict(_delete_=True, ...)')
    if isinstance(exc, ValueError) and where == '__init__' and path:
        reason = str(exc).strip().splitlines()[0]
        return ModelBuildError(
            f'{path} ({cls.__name__}) rejected its config: {reason}'
            f'{_options_under(options, path)}; fix the value in the '
            f'config or the --cfg-options')
    if isinstance(exc, RuntimeError) and any(s in str(exc)
                                             for s in _TOO_SMALL):
        backbone = (cfg or {}).get('model', {}).get('backbone')
        if isinstance(backbone, dict) and backbone.get(
                'padding_mode') == 'none':
            size = min_input_size(backbone)
            kind = backbone.get('type')
            depth = backbone.get('depth')
            name = f'{kind}' + (f' (depth {depth})' if depth else '')
            return ModelBuildError(
                f'model.backbone {name} with padding_mode=\'none\' needs '
                f'inputs of at least {size}x{size} pixels, but this run '
                f'feeds it smaller ones: use crops of {size} px or more '
                f'(crop_size and model.data_preprocessor.size), or another '
                f'padding_mode')
    if isinstance(exc, RuntimeError) and \
            'stack expects each tensor to be equal size' in str(exc):
        return DataError(
            f'a batch holds images or labels of different sizes '
            f'({str(exc).strip().splitlines()[-1]}): expected every label '
            f'to have its image\'s size and equal sizes within a batch; '
            f'resize or crop in the pipeline, or fix the labels')
    return None


@contextlib.contextmanager
def user_errors(cfg: Optional[Config] = None,
                options: Optional[Dict] = None) -> Iterator[None]:
    """Re-raise what :func:`explain_failure` recognises as its user error
    (chained to the original, which ``--debug`` prints)."""
    try:
        yield
    except Exception as exc:
        error = explain_failure(exc, cfg, options)
        if error is None or error is exc:
            raise
        raise error from exc
