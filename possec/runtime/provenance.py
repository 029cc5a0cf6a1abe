"""Where a result came from: the settings a checkpoint was trained with,
compared with the config it is evaluated under, and the provenance record
of ``metrics.json``.

Training records in every checkpoint's ``meta['possec']`` the model
settings of its run (``cfg.model`` with the user's overrides, in plain
types), the config file, the ``--cfg-options`` and possec's version
(:func:`provenance_record`, written by
:class:`possec.engine.hooks.CheckpointProvenanceHook`). ``tools/test.py``
and the analysis tools compare those settings with the model they build
(:func:`model_differences`) and print one line per difference: evaluating
a zero-padded checkpoint under circular padding is a legitimate
experiment, but never a silent one. Checkpoints written before the record
existed are read through the config text mmengine stores in
``meta['cfg']``.
"""
import hashlib
import os.path as osp
from typing import Dict, List, Optional

__all__ = [
    'checkpoint_model_settings', 'difference_lines', 'file_sha256',
    'model_differences', 'model_settings', 'plain', 'provenance_record'
]

#: Parts of a segmentor config that do not change what a trained model
#: computes from its weights: how it was initialised or trained, and how
#: the test loop tiles its inputs.
IGNORED_KEYS = ('data_preprocessor', 'train_cfg', 'test_cfg', 'init_cfg',
                'pretrained', 'loss_decode')
#: Norm types that hold the same weights and compute the same in eval mode
#: (possec's CPU runs turn SyncBN into BN).
_SAME_NORM = {'SyncBN': 'BN', 'MMSyncBN': 'BN'}
_MISSING = object()


def plain(value):
    """``value`` as JSON-like Python (dicts, lists, str, numbers, None)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def model_settings(model_cfg) -> dict:
    """The model config as plain, comparable Python (the segmentor inside a
    test-time-augmentation wrapper).

    Args:
        model_cfg (dict): A segmentor config (``cfg.model``).

    Returns:
        dict: The settings, with tuples as lists.
    """
    settings = plain(model_cfg or {})
    if isinstance(settings.get('module'), dict) and \
            str(settings.get('type', '')).endswith('TTAModel'):
        settings = settings['module']
    return settings


def provenance_record(cfg, cfg_options: Optional[dict] = None) -> dict:
    """What a checkpoint records of its run (``meta['possec']``).

    Args:
        cfg (Config): The run's config, overrides merged.
        cfg_options (dict, optional): The ``--cfg-options`` of the run.

    Returns:
        dict: ``model`` (:func:`model_settings`), ``config`` (the config
        file), ``overrides`` and ``possec_version``.
    """
    from ..version import __version__
    return dict(model=model_settings(cfg.get('model')),
                config=getattr(cfg, 'filename', None),
                overrides=plain(cfg_options or {}),
                possec_version=__version__)


def checkpoint_model_settings(checkpoint: dict) -> Optional[dict]:
    """The model settings a checkpoint was trained with: its possec record,
    else the model of the config text mmengine saved in ``meta['cfg']``;
    None when it holds neither (e.g. a bare ``state_dict``).

    Args:
        checkpoint (dict): A loaded checkpoint.
    """
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    if not isinstance(meta, dict):
        return None
    record = meta.get('possec')
    if isinstance(record, dict) and isinstance(record.get('model'), dict):
        return record['model']
    text = meta.get('cfg')
    if not isinstance(text, str) or 'model' not in text:
        return None
    try:
        from mmengine.config import Config
        return model_settings(Config.fromstring(text, '.py').get('model'))
    except Exception:  # a config text this stack cannot parse
        return None


def _flatten(node, prefix: str, out: Dict[str, object]) -> Dict:
    if isinstance(node, dict):
        for key, value in node.items():
            if key not in IGNORED_KEYS:
                _flatten(value, f'{prefix}.{key}', out)
    elif isinstance(node, list) and any(isinstance(v, dict) for v in node):
        for i, value in enumerate(node):
            _flatten(value, f'{prefix}[{i}]', out)
    else:
        if prefix.endswith('norm_cfg.type'):
            node = _SAME_NORM.get(node, node)
        out[prefix] = node
    return out


def model_differences(recorded: dict, current: dict) -> List[dict]:
    """Every model setting that differs between a checkpoint's record and
    the config a run builds (:data:`IGNORED_KEYS` left out).

    Args:
        recorded (dict): :func:`checkpoint_model_settings`.
        current (dict): :func:`model_settings` of the run's model.

    Returns:
        list[dict]: ``key`` (e.g. ``model.backbone.padding_mode``),
        ``checkpoint`` and ``config`` (the two values; None where a side
        does not set the key), sorted by key.
    """
    old = _flatten(model_settings(recorded), 'model', {})
    new = _flatten(model_settings(current), 'model', {})
    found = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, _MISSING), new.get(key, _MISSING)
        if a != b:
            found.append(dict(key=key,
                              checkpoint=None if a is _MISSING else a,
                              config=None if b is _MISSING else b))
    return found


def difference_lines(differences: List[dict], checkpoint: str) -> List[str]:
    """One line per difference of :func:`model_differences`."""
    name = osp.basename(checkpoint)
    return [f'note: {d["key"]} is {d["config"]!r} in this run but was '
            f'{d["checkpoint"]!r} when {name} was trained (allowed; the '
            f'result describes the trained weights under this setting)'
            for d in differences]


def file_sha256(path: str, length: int = 12) -> str:
    """The first ``length`` hex digits of the file's SHA-256."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()[:length]
