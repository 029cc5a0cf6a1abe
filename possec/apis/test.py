"""The logic behind ``tools/test.py``: evaluation of a checkpoint, with the
predictions and the per-class metrics written to a folder."""
import os.path as osp
from typing import Optional

from mmengine.config import Config
from mmengine.runner import Runner

from ..engine.hooks import FuseConvBNHook
from ..runtime import insert_label_checks, setup_cpu_distributed, trust
from .checks import UserError, check_data, check_file, check_types
from .train import build_runner, prepare_config, run_guarded

TEST_OPT_IN = 'if you trust this file, pass --trust-checkpoint'

_PLAIN_IOU = ('IoUMetric', 'mmseg.IoUMetric')


def _route_outputs(evaluator: dict, out_dir: str) -> None:
    """Point one IoU-type evaluator config at ``out_dir``."""
    from mmseg.registry import METRICS

    from ..evaluation import PerClassIoUMetric
    kind = evaluator.get('type')
    if kind in _PLAIN_IOU:
        evaluator['type'] = 'PerClassIoUMetric'
    else:
        cls = METRICS.get(kind) if isinstance(kind, str) else kind
        if not (isinstance(cls, type) and issubclass(cls, PerClassIoUMetric)):
            raise UserError(
                f'--out needs an IoU evaluator (IoUMetric or a possec '
                f'metric derived from PerClassIoUMetric), but the config\'s '
                f'test_evaluator is {kind!r}: run without --out, or set '
                f'test_evaluator.type=IoUMetric')
    evaluator['output_dir'] = osp.join(out_dir, 'pred')
    evaluator['results_file'] = osp.join(out_dir, 'metrics.json')


def enable_visualization(cfg: Config, show_dir: str) -> None:
    """Turn on mmseg's VisualizationHook to draw predictions to a folder."""
    hooks = cfg.get('default_hooks', {})
    if 'visualization' not in hooks:
        raise UserError(
            '--show-dir needs a VisualizationHook in default_hooks (mmseg\'s '
            'default_runtime has one): add visualization=dict(type='
            '\'SegVisualizationHook\') to default_hooks')
    hooks['visualization']['draw'] = True
    hooks['visualization']['interval'] = 1
    cfg.visualizer['save_dir'] = show_dir


def test(config: str,
         checkpoint: str,
         work_dir: Optional[str] = None,
         out: Optional[str] = None,
         show_dir: Optional[str] = None,
         tta: bool = False,
         cfg_options: Optional[dict] = None,
         launcher: str = 'none',
         fuse_conv_bn: bool = False,
         trust_checkpoint: bool = False,
         partial_load: bool = False) -> dict:
    """Evaluate ``checkpoint`` on the config's test set.

    Args:
        config (str): Path of the config file.
        checkpoint (str): Path of the checkpoint to evaluate.
        work_dir (str, optional): Where logs go. Default:
            ``work_dirs/<config name>``.
        out (str, optional): Folder for ``pred/*.png`` (palette PNGs),
            ``metrics.json`` (aAcc, mIoU, mAcc and per-class IoU / Acc as
            plain floats) and ``metrics.csv``. Default: None.
        show_dir (str, optional): Folder for drawn predictions. Default: None.
        tta (bool): Use the config's test-time augmentation. Default: False.
        cfg_options (dict, optional): Overrides as ``--cfg-options``.
        launcher (str): 'none' or 'pytorch' (torchrun), 'slurm', 'mpi'.
        fuse_conv_bn (bool): Fold every BatchNorm that follows a conv into
            the conv's weights before testing (mmcv's ``fuse_conv_bn``):
            the same outputs up to float rounding, faster. Default: False.
        trust_checkpoint (bool): Unpickle ``checkpoint`` fully (it can run
            code: only for a file you trust). Default: False (safe loading,
            see :mod:`possec.runtime.checkpoint`).
        partial_load (bool): Test a checkpoint whose weights fit the model
            only in part (the rest keeps its initialisation). Default: False
            (refused with the counts of missing and unexpected keys).

    Returns:
        dict: The metrics returned by the test loop.
    """
    check_file(checkpoint, 'checkpoint',
               'pass the .pth file written by training, e.g. '
               'work_dirs/NAME/iter_N.pth')
    cfg = prepare_config(config, work_dir, cfg_options, launcher)
    cfg.load_from = checkpoint
    if trust_checkpoint:
        trust(checkpoint)
    if tta:
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise UserError('--tta needs tta_model and tta_pipeline in the '
                            'config (mmseg\'s dataset bases define them)')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    check_types(cfg, ['test_dataloader'])
    check_data(cfg, ['test_dataloader'])
    insert_label_checks(cfg, ['test_dataloader'])
    if show_dir:
        enable_visualization(cfg, show_dir)
    if out:
        evaluators = cfg.test_evaluator
        for evaluator in (evaluators if isinstance(evaluators, list) else
                          [evaluators]):
            _route_outputs(evaluator, out)
    setup_cpu_distributed(cfg, launcher)
    runner: Runner = build_runner(cfg, cfg_options)
    if fuse_conv_bn:
        runner.register_hook(FuseConvBNHook(), priority='VERY_HIGH')
    return run_guarded(cfg, cfg_options, runner.test, TEST_OPT_IN,
                       partial_load=partial_load)

