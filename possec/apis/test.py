"""The logic behind ``tools/test.py``: evaluation of a checkpoint, with the
predictions and the per-class metrics written to a folder."""
import os.path as osp
from typing import Optional

from mmengine.config import Config
from mmengine.runner import Runner

from ..engine.hooks import FuseConvBNHook
from ..runtime import insert_label_checks, setup_cpu_distributed, trust
from .checks import UserError, check_data, check_types
from .paths import (check_checkpoint_path, check_config_path,
                    check_output_dir, removed_on_failure)
from .train import build_runner, prepare_config, run_guarded

TEST_OPT_IN = 'if you trust this file, pass --trust-checkpoint'
TEST_ORDER = 'tools/test.py CONFIG CHECKPOINT'

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
         partial_load: bool = False,
         data_root: Optional[str] = None) -> dict:
    """Evaluate ``checkpoint`` on the config's test set.

    Args:
        config (str): Path of the config file.
        checkpoint (str): Path of the checkpoint to evaluate.
        work_dir (str, optional): Where logs go. Default: ``out`` when
            given, else ``work_dirs/<config name>``.
        out (str, optional): Folder for ``pred/*.png`` (palette PNGs),
            ``metrics.json`` (aAcc, mIoU, mAcc and per-class IoU / Acc as
            plain floats, and the run's ``provenance``: see
            :func:`record_provenance`) and ``metrics.csv``. Default: None.
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
        data_root (str, optional): Where generated data goes. Default: None
            (``$POSSEC_DATA_ROOT``, else ``~/.cache/possec/data``).

    Every output folder is checked before anything runs; those the run
    creates are removed again if it fails.

    Returns:
        dict: The metrics returned by the test loop.
    """
    check_config_path(config, order=TEST_ORDER)
    check_checkpoint_path(checkpoint, order=TEST_ORDER)
    for path, option in ((work_dir, '--work-dir'), (out, '--out'),
                         (show_dir, '--show-dir')):
        if path:
            check_output_dir(path, option)
    if out and not work_dir and not (cfg_options or {}).get('work_dir'):
        work_dir = out  # the run's log goes with its results
    cfg = prepare_config(config, work_dir, cfg_options, launcher, data_root)
    check_output_dir(cfg.work_dir, '--work-dir')
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
    with removed_on_failure([cfg.work_dir, out, show_dir]) as cleanup:
        runner: Runner = build_runner(cfg, cfg_options)
        cleanup.add(runner.log_dir)
        if fuse_conv_bn:
            runner.register_hook(FuseConvBNHook(), priority='VERY_HIGH')
        metrics = run_guarded(cfg, cfg_options, runner.test, TEST_OPT_IN,
                              partial_load=partial_load)
        if out:
            record_provenance(osp.join(out, 'metrics.json'), runner, config,
                              checkpoint, cfg_options)
    return metrics


def record_provenance(results_file: str, runner: Runner, config: str,
                      checkpoint: str,
                      cfg_options: Optional[dict] = None) -> None:
    """Add a ``provenance`` entry to ``metrics.json`` (main process only):
    the config file, the ``--cfg-options``, the checkpoint's path and short
    SHA-256, the model settings that differ from the checkpoint's (None
    when it records none) and possec's version.

    Args:
        results_file (str): The ``metrics.json`` the test wrote.
        runner (Runner): The runner that tested.
        config (str): The config file given.
        checkpoint (str): The checkpoint given.
        cfg_options (dict, optional): The ``--cfg-options`` given.
    """
    import json

    from mmengine.dist import is_main_process

    from ..engine.hooks.checkpoint_provenance_hook import \
        CheckpointProvenanceHook
    from ..fileio import dump_json
    from ..version import __version__
    from ..runtime.provenance import file_sha256, plain
    if not is_main_process() or not osp.isfile(results_file):
        return
    hook = next((h for h in runner.hooks
                 if isinstance(h, CheckpointProvenanceHook)), None)
    with open(results_file) as f:
        results = json.load(f)
    results['provenance'] = dict(
        config=osp.abspath(config), overrides=plain(cfg_options or {}),
        checkpoint=osp.abspath(checkpoint),
        checkpoint_sha256=file_sha256(checkpoint),
        model_differences=None if hook is None else hook.differences,
        possec_version=__version__)
    dump_json(results, results_file)

