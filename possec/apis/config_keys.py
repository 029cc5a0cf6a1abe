"""Config keys that nothing reads: misspelt ``--cfg-options`` and keys left
over from a base config.

mmengine merges any key into a config: a misspelt top-level key
(``test_evalutor.type=...``) is silently ignored, a misspelt module argument
(``model.backbone.paddng_mode=...``) ends in a TypeError deep in the build,
and a config that switches ``decode_head.type`` but inherits the base's
FCNHead keys fails with "unexpected keyword argument 'num_convs'". The
checks here run before the Runner is built and refuse such keys with the
closest valid names:

- at the top level, the keys the Runner and its loops read
  (:data:`RUNNER_KEYS`) and the keys the config itself defines;
- inside a dict with a registered ``type``, the names its constructor
  accepts (its ``__init__`` and those of the bases it passes ``**kwargs``
  to).

A key the base config does not spell out but the constructor accepts
(``model.backbone.padding_mode=reflect`` on a padding backbone) passes.
"""
import difflib
import inspect
from typing import Dict, Iterator, List, Optional, Sequence, Set, Tuple

from mmengine.config import Config

from ..errors import ConfigKeyError

__all__ = ['RUNNER_KEYS', 'accepted_args', 'check_model_args',
           'check_option_keys']

# Read by mmengine's Runner (from_cfg, __init__, setup_env, build_*), by
# possec's entry points and by mmseg's tools.
RUNNER_KEYS = frozenset({
    'activation_checkpointing', 'auto_scale_lr', 'cfg', 'compile',
    'custom_hooks', 'custom_imports', 'data_preprocessor', 'default_hooks',
    'default_scope', 'efficient_conv_bn_eval', 'env_cfg', 'experiment_name',
    'find_unused_parameters', 'launcher', 'load_from', 'log_level',
    'log_processor', 'model', 'model_wrapper_cfg', 'optim_wrapper',
    'param_scheduler', 'randomness', 'resume', 'runner_type', 'strategy',
    'test_cfg', 'test_dataloader', 'test_evaluator', 'train_cfg',
    'train_dataloader', 'trust_load_from', 'tta_model', 'tta_pipeline',
    'val_cfg', 'val_dataloader', 'val_evaluator', 'visualizer', 'work_dir'
})
_ALWAYS = {'type', '_delete_', '_scope_'}
# Keys a builder pops before calling the constructor.
_POPPED = {'optim_wrapper': {'constructor', 'paramwise_cfg'},
           'hook': {'priority'}}
# Sub-dicts of a model module that configure helpers, not modules.
_NOT_MODULES = ('_cfg', 'sampler', 'plugins', 'dcn')


def accepted_args(cls) -> Optional[Set[str]]:
    """Keyword names ``cls(...)`` accepts, following ``**kwargs`` up the
    bases; None when some ``__init__`` takes ``**kwargs`` that no base
    bounds (anything is accepted)."""
    import torch.nn as nn
    if not inspect.isclass(cls):
        return None
    names: Set[str] = set()
    for klass in cls.__mro__:
        if klass in (object, nn.Module) or '__init__' not in vars(klass):
            if klass in (object, nn.Module):
                return names
            continue
        try:
            params = inspect.signature(vars(klass)['__init__']).parameters
        except (TypeError, ValueError):
            return None
        names.update(n for n, p in params.items()
                     if n != 'self' and p.kind in (p.POSITIONAL_OR_KEYWORD,
                                                   p.KEYWORD_ONLY))
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            return names
    return None


def _closest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=4, cutoff=0.6)
    return (f'closest valid names: {", ".join(close)}' if close else
            f'valid names: {", ".join(sorted(choices)[:12])}'
            + (', ...' if len(choices) > 12 else ''))


def _resolve(registry, name):
    if not isinstance(name, str):
        return name if inspect.isclass(name) else None
    try:
        return registry.get(name)
    except Exception:
        return None


def _model_modules(node, path: str) -> Iterator[Tuple[dict, str]]:
    if isinstance(node, dict):
        if 'type' in node:
            yield node, path
        for key, child in node.items():
            if key.endswith(_NOT_MODULES):
                continue
            yield from _model_modules(child, f'{path}.{key}')
    elif isinstance(node, (list, tuple)):
        for i, child in enumerate(node):
            yield from _model_modules(child, f'{path}.{i}')


def _refuse(path: str, cls, key: str, accepted: Set[str],
            from_options: bool, extra: Sequence[str] = ()) -> None:
    keys = [key] + [k for k in extra if k != key]
    names = ', '.join(repr(k) for k in keys)
    what = f'{path} ({cls.__name__}) takes no argument {names}'
    if from_options:
        raise ConfigKeyError(
            f'--cfg-options {path}.{key}: {what}; {_closest(key, accepted)}; '
            f'fix the spelling')
    slot = path.rsplit('.', 1)[-1]
    raise ConfigKeyError(
        f'{what}: a key left over from a base config (after changing '
        f'{path}.type) or misspelt; expected only arguments of '
        f'{cls.__name__} ({_closest(key, accepted)}); replace the base\'s '
        f'dict with {slot}=dict(_delete_=True, type={cls.__name__!r}, ...) '
        f'or remove the key')


def check_model_args(cfg: Config, options: Optional[Dict] = None) -> None:
    """Refuse keys of model modules (``model.backbone``, ``decode_head``,
    losses, ...) their constructors do not accept.

    Args:
        cfg (Config): The merged config.
        options (dict, optional): The ``--cfg-options`` given, to say where
            a key came from. Default: None.
    """
    from mmseg.registry import MODELS
    import torch.nn as nn
    options = options or {}
    for node, path in _model_modules(cfg.get('model'), 'model'):
        cls = _resolve(MODELS, node.get('type'))
        if not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
            continue
        accepted = accepted_args(cls)
        if accepted is None:
            continue
        unknown = [k for k in node if k not in accepted and k not in _ALWAYS]
        if unknown:
            given = [k for k in unknown if f'{path}.{k}' in options]
            _refuse(path, cls, (given or unknown)[0], accepted, bool(given),
                    unknown)


def _registry_of(parts: List[str]):
    """The registry whose ``type`` the dict at ``parts`` names, and the kind
    of builder (for keys it pops)."""
    from mmseg import registry as reg
    top, last = parts[0], parts[-1] if parts else ''
    if top in ('train_cfg', 'val_cfg', 'test_cfg') and len(parts) == 1:
        return reg.LOOPS, 'loop'
    if top.endswith('_evaluator'):
        return reg.METRICS, 'metric'
    if top == 'optim_wrapper':
        if len(parts) == 1:
            return reg.OPTIM_WRAPPERS, 'optim_wrapper'
        if parts[1] == 'optimizer' and len(parts) == 2:
            return reg.OPTIMIZERS, 'optimizer'
        return None, ''
    if top == 'param_scheduler':
        return reg.PARAM_SCHEDULERS, 'scheduler'
    if top in ('default_hooks', 'custom_hooks'):
        return reg.HOOKS, 'hook'
    if top == 'visualizer' and len(parts) == 1:
        return reg.VISUALIZERS, 'visualizer'
    if top.endswith('_dataloader'):
        if 'pipeline' in parts or 'transforms' in parts:
            return reg.TRANSFORMS, 'transform'
        if last == 'sampler':
            return reg.DATA_SAMPLERS, 'sampler'
        if last in ('dataset', 'datasets') or parts[-2:-1] == ['datasets']:
            return reg.DATASETS, 'dataset'
    return None, ''


def _walk(cfg, parts: List[str]):
    node = cfg._cfg_dict if isinstance(cfg, Config) else cfg
    for part in parts:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, (list, tuple)) and part.isdigit() and \
                int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def check_option_keys(before: Set[str], merged: Config,
                      options: Optional[Dict]) -> None:
    """Refuse ``--cfg-options`` keys that nothing reads.

    Args:
        before (set[str]): The config's top-level keys before the options.
        merged (Config): The config with the options merged.
        options (dict): The options (dotted keys).
    """
    if not options:
        return
    top_known = set(RUNNER_KEYS) | set(before)
    for key in options:
        parts = key.split('.')
        if parts[0] not in top_known:
            raise ConfigKeyError(
                f'--cfg-options {key}: the config has no top-level key '
                f'{parts[0]!r} and neither the Runner nor its loops read '
                f'one; {_closest(parts[0], top_known)}; fix the spelling')
        if parts[0] == 'model' or len(parts) < 2:
            continue  # model keys: check_model_args
        parent = _walk(merged, parts[:-1])
        if not isinstance(parent, dict) or 'type' not in parent:
            continue
        registry, kind = _registry_of(parts[:-1])
        cls = _resolve(registry, parent['type']) \
            if registry is not None else None
        accepted = accepted_args(cls) if cls is not None else None
        if accepted is None:
            continue
        if kind == 'loop':
            accepted = accepted - {'runner', 'dataloader'}
        accepted |= _POPPED.get(kind, set())
        if parts[-1] not in accepted | _ALWAYS:
            raise ConfigKeyError(
                f'--cfg-options {key}: {".".join(parts[:-1])} '
                f'({cls.__name__}) takes no argument {parts[-1]!r}; '
                f'{_closest(parts[-1], accepted)}; fix the spelling')
