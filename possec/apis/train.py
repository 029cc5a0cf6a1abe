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

from ..engine.hooks import (ResumeRNGHook, RunSummaryHook,
                            ValidationRNGHook)
from ..engine.hooks.checkpoint_provenance_hook import \
    CheckpointProvenanceHook
from ..runtime.quiet import run_reporting
from ..runtime import (atomic_checkpoint_saving, checkpoint_loading,
                       degrade_sync_bn_on_cpu, drop_closed_file_handlers,
                       insert_label_checks, remove_partial_saves,
                       setup_cpu_distributed, trust)
from .checks import (UserError, check_data, check_types,
                     load_config, resolve_resume)
from .config_keys import check_model_args, check_option_keys
from .option_types import check_option_types, previous_values
from .paths import (check_checkpoint_path, check_output_dir,
                    removed_on_failure)
from .explain import user_errors

TRAIN_OPT_IN = ('if you trust this file, pass --trust-checkpoint (or set '
                'trust_load_from=True in the config for its load_from)')


def default_work_dir(config_path: str) -> str:
    """``work_dirs/<config name>``, mmseg's default."""
    return osp.join('./work_dirs',
                    osp.splitext(osp.basename(config_path))[0])


def prepare_config(config: str,
                   work_dir: Optional[str] = None,
                   cfg_options: Optional[dict] = None,
                   launcher: str = 'none',
                   data_root: Optional[str] = None) -> Config:
    """Load ``config``, apply command-line overrides and the stack fixes.

    Args:
        config (str): Path of the config file.
        work_dir (str, optional): Overrides the config's work dir.
        cfg_options (dict, optional): Overrides as ``--cfg-options``.
        launcher (str): The job launcher. Default: 'none'.
        data_root (str, optional): Where generated data goes
            (``--data-root``). Default: None (``$POSSEC_DATA_ROOT``, else
            ``~/.cache/possec/data``).
    """
    cfg = load_config(config, data_root=data_root)
    before = set(cfg.keys())
    previous = previous_values(cfg, cfg_options)
    cfg.launcher = launcher
    if cfg_options:
        check_option_types(previous, cfg_options)
        cfg.merge_from_dict(cfg_options)
        if 'custom_imports' in cfg:
            # Config.fromfile honoured the file's custom_imports; honour
            # those added or changed by --cfg-options too.
            import_modules_from_strings(**cfg['custom_imports'])
    check_option_keys(before, cfg, cfg_options)
    check_model_args(cfg, cfg_options)
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


def build_runner(cfg: Config,
                 cfg_options: Optional[dict] = None,
                 summary: bool = True) -> Runner:
    """Build the Runner, turning failures caused by the config into
    :class:`UserError` (see :mod:`possec.apis.explain`), with a
    :class:`~possec.engine.hooks.CheckpointProvenanceHook`, a
    :class:`~possec.engine.hooks.ValidationRNGHook` (when a run validates
    does not change its training), a
    :class:`~possec.engine.hooks.ResumeRNGHook` (with it, a ``--resume``
    trains what the uninterrupted run would have) and, when ``summary``, a
    :class:`~possec.engine.hooks.RunSummaryHook`."""
    _fresh_visualizer_name(cfg)
    with user_errors(cfg, cfg_options), run_reporting(cfg):
        if 'runner_type' in cfg:
            from mmengine.registry import RUNNERS
            runner = RUNNERS.build(cfg)
        else:
            runner = Runner.from_cfg(cfg)
    if summary and not any(isinstance(h, RunSummaryHook)
                           for h in runner.hooks):
        runner.register_hook(RunSummaryHook(), 'VERY_LOW')
    if not any(isinstance(h, CheckpointProvenanceHook)
               for h in runner.hooks):
        runner.register_hook(CheckpointProvenanceHook(cfg_options),
                             'VERY_LOW')
    for hook in (ValidationRNGHook, ResumeRNGHook):
        if not any(isinstance(h, hook) for h in runner.hooks):
            runner.register_hook(hook(), 'LOWEST')
    return runner


def run_guarded(cfg: Config, cfg_options: Optional[dict], fn,
                opt_in: Optional[str] = None, partial_load: bool = False):
    """Call ``fn()`` (``runner.train`` or ``runner.test``) with safe
    checkpoint loading, atomic checkpoint saving and user errors."""
    try:
        with checkpoint_loading(opt_in, partial=partial_load), \
                atomic_checkpoint_saving(), user_errors(cfg, cfg_options):
            return fn()
    finally:
        drop_closed_file_handlers()


def train(config: str,
          work_dir: Optional[str] = None,
          resume: Optional[str] = None,
          amp: bool = False,
          cfg_options: Optional[dict] = None,
          launcher: str = 'none',
          trust_checkpoint: bool = False,
          partial_load: bool = False,
          data_root: Optional[str] = None,
          summary: bool = True) -> Runner:
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
        trust_checkpoint (bool): Unpickle the resumed or ``load_from``
            checkpoint fully (it can run code: only for a file you trust).
            Default: False (safe loading, see
            :mod:`possec.runtime.checkpoint`).
        partial_load (bool): Let ``load_from`` load a checkpoint that fits
            the model only in part. Default: False (refused).
        data_root (str, optional): Where generated data goes. Default: None
            (``$POSSEC_DATA_ROOT``, else ``~/.cache/possec/data``).
        summary (bool): Print the run summary at the end
            (:class:`~possec.engine.hooks.RunSummaryHook`); False for a
            caller that reports its own progress. Default: True.

    The work dir is checked before anything runs; a run that fails before
    its first iteration removes the folders it created.

    Returns:
        Runner: The runner after training.
    """
    if work_dir:
        check_output_dir(work_dir, '--work-dir')
    cfg = prepare_config(config, work_dir, cfg_options, launcher, data_root)
    check_output_dir(cfg.work_dir, '--work-dir')
    loaders = ['train_dataloader']
    if cfg.get('val_cfg') is not None:
        loaders.append('val_dataloader')
    check_types(cfg, loaders)
    check_data(cfg, loaders)
    if amp:
        enable_amp(cfg)
    insert_label_checks(cfg, loaders)
    if resume == 'auto':
        remove_partial_saves(cfg.work_dir)
    checkpoint = resolve_resume(resume, cfg.work_dir)
    cfg.resume = checkpoint is not None
    if checkpoint is not None:
        cfg.load_from = checkpoint
        if trust_checkpoint:
            trust(checkpoint)
    elif cfg.get('load_from'):
        if '://' not in cfg.load_from:
            check_checkpoint_path(cfg.load_from, 'load_from checkpoint')
            if trust_checkpoint or cfg.get('trust_load_from'):
                trust(cfg.load_from)
    setup_cpu_distributed(cfg, launcher)
    runner = None
    with removed_on_failure([cfg.work_dir], lambda: runner is not None
                            and runner.iter > 0) as cleanup:
        runner = build_runner(cfg, cfg_options, summary)
        cleanup.add(runner.log_dir)
        run_guarded(cfg, cfg_options, runner.train, TRAIN_OPT_IN,
                    partial_load=partial_load)
    return runner

