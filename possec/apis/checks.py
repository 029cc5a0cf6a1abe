"""Checks run before a Runner is built, so that bad input gets one clear
message (what was expected, what was found, what to do) and nothing is
written to disk."""
import difflib
import os.path as osp
import re
from typing import Iterator, List, Optional, Tuple

from mmengine.config import Config
from mmengine.registry import Registry

# UserError lives in possec.errors; re-exported here for the modules that
# import it from possec.apis.checks.
from ..errors import UserError  # noqa: F401
from ..runtime.atomic_save import latest_checkpoint

DEMO_HINT = ('or try the demo, which makes its own data: '
             'python tools/train.py configs/demo/parsenet_pos_synthetic.py')


def check_file(path: str, what: str, hint: str) -> str:
    """Raise :class:`UserError` unless ``path`` is an existing file."""
    if not osp.isfile(path):
        found = 'a folder' if osp.isdir(path) else 'nothing'
        raise UserError(f'{what} {path!r} not found (found {found} there): '
                        f'{hint}')
    return path


def load_config(path: str, order: Optional[str] = None,
                data_root: Optional[str] = None) -> Config:
    """Load a config file with one-line errors that name the file
    (:func:`possec.apis.config_files.load_config`).

    Args:
        path (str): The config file.
        order (str, optional): The tool's usage, named when a checkpoint is
            given as the config.
        data_root (str, optional): Where generated data goes.
    """
    from .config_files import load_config as load
    return load(path, order, data_root)


def _iter_datasets(node, where: str) -> Iterator[Tuple[dict, str]]:
    """Yield every dataset config (a dict with ``type``) below ``node``,
    following wrappers such as ConcatDataset and RepeatDataset."""
    if not isinstance(node, dict):
        return
    children = node.get('datasets')
    if isinstance(children, (list, tuple)):
        for i, child in enumerate(children):
            yield from _iter_datasets(child, f'{where}.datasets[{i}]')
    if isinstance(node.get('dataset'), dict):
        yield from _iter_datasets(node['dataset'], f'{where}.dataset')
    if 'data_root' in node or 'ann_file' in node:
        yield node, where


def check_data(cfg: Config, loaders: List[str]) -> None:
    """Check that the data roots and split files of ``loaders`` exist.

    Datasets that make their own data (possec's synthetic dataset with a
    ``generate`` argument) are skipped when their root is absent.
    """
    for loader in loaders:
        if cfg.get(loader) is None or cfg.get(loader).get('dataset') is None:
            continue
        for dataset, where in _iter_datasets(cfg[loader]['dataset'],
                                             f'{loader}.dataset'):
            if dataset.get('generate'):
                continue
            root = dataset.get('data_root') or ''
            if root and not osp.isdir(root):
                raise UserError(
                    f'data root {root!r} ({where}.data_root) not found: '
                    f'download the dataset as README § Data describes, or '
                    f'point the config at it with --cfg-options '
                    f'{where}.data_root=PATH; {DEMO_HINT}')
            ann = dataset.get('ann_file') or ''
            ann_path = osp.join(root, ann) if ann else ''
            if ann and not osp.isfile(ann_path):
                hint = ''
                if 'aug' in osp.basename(ann):
                    hint = (' (the SBD-augmented split is made by mmseg\'s '
                            'voc_aug converter, see README § Data)')
                raise UserError(
                    f'split file {ann_path!r} ({where}.ann_file) not found '
                    f'in data root {root!r}{hint}; {DEMO_HINT}')


def _registry_for(key: Optional[str], section: str):
    from mmseg import registry as reg
    if section == 'model':
        if key == 'init_cfg':
            return reg.WEIGHT_INITIALIZERS
        if key == 'sampler':
            return reg.TASK_UTILS
        return reg.MODELS
    if section == 'evaluator':
        return reg.METRICS
    if key in ('pipeline', 'transforms'):
        return reg.TRANSFORMS
    return reg.DATASETS


def _iter_types(node, section: str, key: Optional[str] = None):
    """Yield (type name, registry, config path) for every string ``type``."""
    if isinstance(node, dict):
        if isinstance(node.get('type'), str):
            yield node['type'], _registry_for(key, section)
        for child_key, child in node.items():
            if child_key == 'type':
                continue
            if section == 'data' and child_key not in (
                    'dataset', 'datasets', 'pipeline', 'transforms'):
                continue
            yield from _iter_types(child, section, child_key)
    elif isinstance(node, (list, tuple)):
        for child in node:
            yield from _iter_types(child, section, key)


def registry_names(registry: Registry) -> List[str]:
    """All names ``registry.get`` can resolve without a scope prefix."""
    registry.import_from_location()
    names = set()
    current = registry
    while current is not None:
        names.update(current.module_dict)
        current = current.parent
    return sorted(names)


def unknown_type_message(name: str, registry: Registry) -> str:
    close = difflib.get_close_matches(
        name, registry_names(registry), n=5, cutoff=0.5)
    hint = (f'closest registered names: {", ".join(close)}'
            if close else 'no registered name is close to it')
    return (f'unknown type {name!r}: it is not in the '
            f'{registry.scope}::{registry.name} registry; {hint}. Check the '
            f'spelling, and that the config imports the package that '
            f"registers it (custom_imports = dict(imports=['possec'], "
            f'allow_failed_imports=False))')


def check_types(cfg: Config, loaders: List[str]) -> None:
    """Check that every ``type`` in the model, the datasets and pipelines of
    ``loaders`` and the evaluators is registered."""
    sections = [('model', cfg.get('model'))]
    for loader in loaders:
        if cfg.get(loader):
            sections.append(('data', cfg[loader].get('dataset')))
    for evaluator in ('val_evaluator', 'test_evaluator'):
        if cfg.get(evaluator):
            sections.append(('evaluator', cfg[evaluator]))
    for section, node in sections:
        for name, registry in _iter_types(node, section):
            if registry.get(name) is None:
                raise UserError(unknown_type_message(name, registry))


_UNKNOWN_RE = re.compile(r"([\w.]+) is not in the ([\w.]+)::([\w ]+) registry")


def explain_build_error(exc: BaseException) -> Optional[str]:
    """A user-facing message for a registry error raised while building,
    or None when ``exc`` is not one."""
    match = _UNKNOWN_RE.search(str(exc))
    if match is None:
        return None
    name, scope, registry_name = match.groups()
    from mmengine import registry as engine_reg
    from mmseg import registry as seg_reg
    for module in (seg_reg, engine_reg):
        for value in vars(module).values():
            if isinstance(value, Registry) and value.scope == scope and \
                    value.name == registry_name:
                return unknown_type_message(name, value)
    return None


def resolve_resume(resume: Optional[str], work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` refers to, checked to exist.

    Args:
        resume (str, optional): None (no resume), ``'auto'`` (the latest
            checkpoint of ``work_dir``) or a checkpoint path.
        work_dir (str): The run's work dir.
    """
    if resume is None:
        return None
    if resume != 'auto':
        from .paths import check_checkpoint_path
        return check_checkpoint_path(resume, '--resume checkpoint')
    latest = latest_checkpoint(work_dir)
    if not latest:
        raise UserError(
            f'--resume: no checkpoint to resume from in work dir '
            f'{work_dir!r} (expected a last_checkpoint file naming an '
            f'existing iter_N.pth, or a complete iter_N.pth): train without '
            f'--resume first, check --work-dir, or pass a checkpoint path: '
            f'--resume PATH')
    return latest
