"""Values of ``--cfg-options`` whose type cannot be what the config means.

mmengine's ``DictAction`` turns ``train_cfg.max_iters=abc`` into the text
``'abc'`` and merges it; the run then fails far from the option (a
``TypeError`` inside a loop or a scheduler) without naming it. Here every
option that replaces a value of the config is compared with the value it
replaces: text where the config has a number, a switch, a list or a dict is
refused with one line naming the key, before anything is built. A list of
dicts may replace a dict: mmseg and mmengine take one module or a list of
them at the same key (``model.auxiliary_head``, ``loss_decode``,
``param_scheduler``, the evaluators).
"""
from typing import Dict, Optional

from ..errors import UserError

__all__ = ['check_option_types', 'config_value', 'previous_values']

_MISSING = object()


def config_value(cfg, key: str):
    """The value of the dotted ``key`` in ``cfg`` (list items by number,
    as ``--cfg-options`` addresses them), or a sentinel when absent."""
    from mmengine.config import Config
    node = cfg._cfg_dict if isinstance(cfg, Config) else cfg
    for part in key.split('.'):
        if isinstance(node, (list, tuple)) and part.isdigit() and \
                int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return _MISSING
    return node


def _expected(old, new) -> Optional[str]:
    """What ``new`` should have been to replace ``old``, or None if fine."""
    if new is None or old is None or old is _MISSING:
        return None
    if isinstance(old, bool):
        return None if isinstance(new, bool) else 'True or False'
    if isinstance(old, (int, float)):
        return None if isinstance(new, (int, float)) and not isinstance(
            new, bool) else 'a number'
    if isinstance(old, (list, tuple)) and isinstance(new, str):
        return 'a list such as [a,b] or a tuple such as "(a,b)"'
    if isinstance(old, dict) and not isinstance(new, dict) and not (
            isinstance(new, (list, tuple))
            and all(isinstance(item, dict) for item in new)):
        return ('a dict (set its entries one by one: KEY.NAME=VALUE) or a '
                'list of dicts')
    return None


def _kind(value) -> str:
    if isinstance(value, str):
        return f'the text {value!r}'
    return f'{type(value).__name__} {value!r}'


def check_option_types(previous: Dict[str, object],
                       options: Optional[Dict]) -> None:
    """Raise :class:`UserError` for the first option whose value cannot
    replace the config's.

    Args:
        previous (dict): ``{key: config_value(cfg, key)}`` read before the
            options were merged.
        options (dict, optional): The ``--cfg-options``.
    """
    for key, new in (options or {}).items():
        old = previous.get(key, _MISSING)
        expected = _expected(old, new)
        if expected is not None:
            raise UserError(
                f'--cfg-options {key}: expected {expected} (the config has '
                f'{old!r}), found {_kind(new)}; fix the value (text is '
                f'meant only where the config has text)')


def previous_values(cfg, options: Optional[Dict]) -> Dict[str, object]:
    """The config's values at the keys of ``options``, before merging."""
    return {key: config_value(cfg, key) for key in (options or {})}
