"""The logic behind ``tools/train.py``: config merging, checks, the CPU
distributed recipe and the Runner."""
import logging
import os.path as osp
import uuid
from typing import Optional

from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.runner import Runner
from mmengine.utils import import_modules_from_strings

from ..runtime import (degrade_sync_bn_on_cpu, drop_closed_file_handlers,
                       setup_cpu_distributed)
from .checks import (UserError, check_data, check_file, check_types,
                     explain_build_error, load_config, resolve_resume)


def default_work_dir(config_path: str) -> str:
    """``work_dirs/<config name>``, mmseg's default."""
    return osp.join('./work_dirs',
                    osp.splitext(osp.basename(config_path))[0])


def prepare_config(config: str,
                   work_dir: Optional[str] = None,
                   cfg_options: Optional[dict] = None,
                   launcher: str = 'none') -> Config:
    """Load ``config``, apply command-line overrides and the stack fixes."""
    cfg = load_config(config)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
        if 'custom_imports' in cfg:
            # Config.fromfile honoured the file's custom_imports; honour
            # those added or changed by --cfg-options too.
            import_modules_from_strings(**cfg['custom_imports'])
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = default_work_dir(config)
    degrade_sync_bn_on_cpu(cfg)
    return cfg


def enable_amp(cfg: Config) -> None:
    """Switch the optimizer wrapper to mmengine's AmpOptimWrapper."""
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper == 'AmpOptimWrapper':
        print_log('AMP training is already enabled in the config.',
                  logger='current', level=logging.WARNING)
        return
    if wrapper != 'OptimWrapper':
        raise UserError(f'--amp works with optim_wrapper type OptimWrapper, '
                        f'but the config uses {wrapper!r}: remove --amp or '
                        f'set optim_wrapper.type=AmpOptimWrapper yourself')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.loss_scale = 'dynamic'


def _fresh_visualizer_name(cfg: Config) -> None:
    """Give the visualizer a new instance name when one with the config's
    name exists already (a second run in the same process would otherwise
    reuse the first run's visualizer and write into its folder)."""
    from mmengine.visualization import Visualizer
    vis = cfg.get('visualizer')
    if isinstance(vis, dict) and Visualizer.check_instance_created(
            vis.get('name', 'visualizer')):
        vis['name'] = f"{vis.get('name', 'visualizer')}_{uuid.uuid4().hex[:8]}"


def build_runner(cfg: Config) -> Runner:
    """Build the Runner, turning registry errors into :class:`UserError`."""
    _fresh_visualizer_name(cfg)
    try:
        if 'runner_type' in cfg:
            from mmengine.registry import RUNNERS
            return RUNNERS.build(cfg)
        return Runner.from_cfg(cfg)
    except (KeyError, TypeError, ValueError) as exc:
        message = explain_build_error(exc)
        if message is None:
            raise
        raise UserError(message) from exc


def train(config: str,
          work_dir: Optional[str] = None,
          resume: Optional[str] = None,
          amp: bool = False,
          cfg_options: Optional[dict] = None,
          launcher: str = 'none') -> Runner:
    """Train a model from a config, as ``tools/train.py`` does.

    Args:
        config (str): Path of the config file.
        work_dir (str, optional): Overrides the config's work dir.
            Default: ``work_dirs/<config name>``.
        resume (str, optional): ``'auto'`` to continue from the latest
            checkpoint of the work dir, or a checkpoint path. Default: None.
        amp (bool): Mixed precision (CUDA only in mmengine). Default: False.
        cfg_options (dict, optional): Overrides as ``--cfg-options``.
        launcher (str): 'none' or 'pytorch' (torchrun), 'slurm', 'mpi'.

    Returns:
        Runner: The runner after training.
    """
    cfg = prepare_config(config, work_dir, cfg_options, launcher)
    loaders = ['train_dataloader']
    if cfg.get('val_cfg') is not None:
        loaders.append('val_dataloader')
    check_types(cfg, loaders)
    check_data(cfg, loaders)
    if amp:
        enable_amp(cfg)
    checkpoint = resolve_resume(resume, cfg.work_dir)
    cfg.resume = checkpoint is not None
    if checkpoint is not None:
        cfg.load_from = checkpoint
    elif cfg.get('load_from'):
        if '://' not in cfg.load_from:
            check_file(cfg.load_from, 'load_from checkpoint',
                       'fix load_from in the config or with --cfg-options')
    setup_cpu_distributed(cfg, launcher)
    runner = build_runner(cfg)
    try:
        runner.train()
    finally:
        drop_closed_file_handlers()
    return runner

