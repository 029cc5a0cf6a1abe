"""Models for the analysis tools and benchmarks, built offline.

Nothing here downloads: every build clears ``pretrained`` and the
backbone's ``init_cfg`` and turns SyncBN into BN (these tools run in one
process, often on the CPU), and initialises the weights without mmengine
logging one line per parameter.
"""
import copy
import inspect
import sys
import warnings
from typing import Optional, Union

import torch
from mmengine.config import Config, ConfigDict
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from torch import nn

from possec.apis.paths import check_checkpoint_path
from possec.runtime.provenance import (checkpoint_model_settings,
                                    difference_lines, model_differences)
from possec.errors import UserError
from possec.runtime import load_model_checkpoint, replace_sync_bn
from possec.runtime.quiet import silence_stack_warnings
from .config import load_tool_config
from .logs import quiet_logger


def offline_cfg(model_cfg: dict) -> dict:
    """Make a segmentor or backbone config buildable offline, in place.

    ``pretrained`` (of the segmentor and of the backbone) and the
    backbone's ``init_cfg`` become None, so that no weights are fetched,
    and every SyncBN becomes BN.

    Args:
        model_cfg (dict): A segmentor config (with a ``backbone``) or a
            backbone config.

    Returns:
        dict: ``model_cfg`` itself.
    """
    replace_sync_bn(model_cfg)
    backbone = model_cfg.get('backbone')
    backbone = backbone if isinstance(backbone, dict) else model_cfg
    for part in (model_cfg, backbone):
        if 'pretrained' in part:
            part['pretrained'] = None
    backbone['init_cfg'] = None
    return model_cfg


def quiet_init_weights(module: nn.Module) -> None:
    """``module.init_weights()`` (if it has one), without mmengine logging
    every parameter's initialisation."""
    if hasattr(module, 'init_weights'):
        with quiet_logger():
            module.init_weights()


def build_offline(model_cfg: dict, seed: Optional[int] = None,
                  init_weights: bool = True) -> nn.Module:
    """Build a model from a copy of ``model_cfg`` made offline.

    Args:
        model_cfg (dict): A segmentor or backbone config of mmseg's
            ``MODELS`` (see :func:`offline_cfg`).
        seed (int, optional): Seed of the random weights, drawn without
            touching the caller's random state. Default: None (the current
            random state).
        init_weights (bool): Run the model's ``init_weights`` (its own
            initialisation rules) after building. Default: True.

    Returns:
        nn.Module: The model, in training mode as built.
    """
    cfg = offline_cfg(copy.deepcopy(model_cfg))
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        with warnings.catch_warnings():  # mmseg's own API deprecations
            silence_stack_warnings()
            model = MODELS.build(cfg)
        if init_weights:
            quiet_init_weights(model)
    return model


def load_segmentor(config: Union[str, Config],
                   checkpoint: Optional[str] = None,
                   cfg_options: Optional[dict] = None,
                   seed: int = 0) -> nn.Module:
    """Build a segmentor from a config, in eval mode on the CPU, frozen.

    Does what mmseg's ``init_model`` does, through :func:`build_offline`;
    the checkpoint is loaded safely and must fit the model
    (:func:`possec.runtime.load_model_checkpoint`).
    Without a checkpoint the model keeps its own (mmseg) initialisation,
    drawn with ``seed``, and a warning says that the pictures show an
    untrained model; one change: a backbone's ``zero_init_residual``
    (mmseg's ResNets set the last norm of every residual branch to zero, so
    that at init only the shortcuts carry signal) is turned off, so that
    the pictures of an untrained model reflect the whole architecture.

    Args:
        config (str | Config): Config file (or ``possec::<path>``) or a
            loaded config.
        checkpoint (str, optional): Local checkpoint of a model built from
            the same config. Default: None (random init).
        cfg_options (dict, optional): Overrides merged into the config.
            Default: None.
        seed (int): Seed of the random initialisation. Default: 0.

    Returns:
        nn.Module: The segmentor, with ``cfg`` set to the merged config,
        ``dataset_meta`` to the checkpoint's, if it has one, and
        ``model_differences`` to the settings that differ from the
        checkpoint's (one line printed for each). mmseg's default scope is
        set, so that ``mmseg.apis.inference_model`` runs on it.
    """
    if isinstance(config, str):
        cfg = load_tool_config(config, cfg_options)
    else:
        cfg = copy.deepcopy(config)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
    if not isinstance(cfg.get('model'), dict):
        raise UserError('the config has no model: give an mmseg model '
                        'config, e.g. configs/demo/parsenet_pos_synthetic.py')
    offline_cfg(cfg.model)
    cfg.model.train_cfg = None
    if checkpoint is not None:
        check_checkpoint_path(checkpoint, '--checkpoint')
    elif _takes(cfg.model.get('backbone'), 'zero_init_residual'):
        cfg.model.backbone.zero_init_residual = False
    model = build_offline(cfg.model, seed, init_weights=checkpoint is None)
    if checkpoint is None:
        warnings.warn(
            f'no checkpoint given: the model has random weights (seed '
            f'{seed}); the figures show the architecture, not what a '
            f'trained model learned')
    else:
        loaded = load_model_checkpoint(model, checkpoint)
        meta = loaded.get('meta', {})
        if 'dataset_meta' in meta:
            model.dataset_meta = meta['dataset_meta']
        report_differences(model, loaded, cfg.model, checkpoint)
    model.cfg = cfg
    model.eval().requires_grad_(False)
    # mmseg's init_model does the same: inference_model and the test
    # pipeline's transforms are looked up in mmseg's registries
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    return model


def report_differences(model: nn.Module, checkpoint: dict, model_cfg: dict,
                       path: str) -> None:
    """Print one line per model setting that differs from the checkpoint's
    (:func:`possec.runtime.provenance.model_differences`) and keep the list in
    ``model.model_differences`` (None when the checkpoint records none).

    Args:
        model (nn.Module): The segmentor just loaded.
        checkpoint (dict): The loaded checkpoint.
        model_cfg (dict): The config the model was built from.
        path (str): The checkpoint's path, for the lines.
    """
    recorded = checkpoint_model_settings(checkpoint)
    differences = None
    if recorded is not None:
        differences = model_differences(recorded, model_cfg)
        for line in difference_lines(differences, path):
            print(line, file=sys.stderr, flush=True)
    model.model_differences = differences


def _takes(module_cfg, arg: str) -> bool:
    """Whether the registered class of ``module_cfg`` takes ``arg``."""
    if not isinstance(module_cfg, (dict, ConfigDict)):
        return False
    cls = module_cfg.get('type')
    cls = MODELS.get(cls) if isinstance(cls, str) else cls
    if cls is None:
        return False
    return any(arg in inspect.signature(c.__init__).parameters
               for c in cls.__mro__ if '__init__' in vars(c))
