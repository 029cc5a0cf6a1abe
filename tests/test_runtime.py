"""The stack fixes of possec.runtime."""
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader, load_checkpoint

import possec  # noqa: F401
from possec.errors import CheckpointError
from possec.runtime import (checkpoint_loading, replace_sync_bn,
                            setup_cpu_distributed, slurm_environment)


def test_local_checkpoint_with_python_objects_loads(tmp_path):
    path = str(tmp_path / 'ckpt.pth')
    buffer = HistoryBuffer()
    buffer.update(1.5)
    torch.save({'meta': {'hub': buffer}, 'state_dict': {
        'w': torch.ones(2)}}, path)
    # torch's own default refuses it: this is the failure being fixed.
    with pytest.raises(Exception, match='HistoryBuffer'):
        torch.load(path)
    # outside a possec run, mmengine's loader is untouched (torch's default)
    with pytest.raises(Exception, match='HistoryBuffer'):
        CheckpointLoader.load_checkpoint(path, map_location='cpu')
    with checkpoint_loading():
        ckpt = CheckpointLoader.load_checkpoint(path, map_location='cpu')
        assert ckpt['meta']['hub'].current() == 1.5
        model = torch.nn.Linear(2, 1)
        model.register_buffer('w', torch.zeros(2))
        load_checkpoint(model, path, strict=False)
    assert torch.equal(model.w, torch.ones(2))


def test_remote_schemes_keep_mmengine_loaders():
    from mmengine.runner.checkpoint import load_from_http, load_from_local
    with checkpoint_loading():
        assert CheckpointLoader._get_checkpoint_loader('https://x/y.pth') \
            is load_from_http
        assert CheckpointLoader._get_checkpoint_loader('/tmp/y.pth') is not \
            load_from_local
    assert CheckpointLoader._get_checkpoint_loader('/tmp/y.pth') is \
        load_from_local


def test_missing_local_checkpoint_message(tmp_path):
    with pytest.raises(CheckpointError, match='not found: expected'):
        with checkpoint_loading():
            CheckpointLoader.load_checkpoint(str(tmp_path / 'nope.pth'))


def test_slurm_environment(monkeypatch):
    for key in ('MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv('PATH', '/nonexistent')  # no scontrol
    monkeypatch.setenv('SLURM_PROCID', '3')
    monkeypatch.setenv('SLURM_NTASKS', '4')
    monkeypatch.setenv('SLURM_LOCALID', '1')
    monkeypatch.setenv('SLURM_NODELIST', 'nodeA,nodeB')
    for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK'):
        monkeypatch.delenv(key, raising=False)
    slurm_environment()
    assert [os.environ[k] for k in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK',
                                    'MASTER_ADDR', 'MASTER_PORT')] == \
        ['3', '4', '1', 'nodeA', '29500']
    monkeypatch.delenv('SLURM_NTASKS')
    with pytest.raises(RuntimeError, match='SLURM_NTASKS is not set'):
        slurm_environment()


def test_replace_sync_bn_everywhere():
    cfg = Config(dict(model=dict(
        backbone=dict(norm_cfg=dict(type='SyncBN', requires_grad=True)),
        decode_head=[dict(norm_cfg=dict(type='SyncBN')),
                     dict(norm_cfg=dict(type='GN', num_groups=2))])))
    assert replace_sync_bn(cfg.model) == 2
    assert cfg.model.backbone.norm_cfg.type == 'BN'
    assert cfg.model.decode_head[0].norm_cfg.type == 'BN'
    assert cfg.model.decode_head[1].norm_cfg.type == 'GN'


def test_cpu_distributed_needs_torchrun_env(monkeypatch):
    for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(key, raising=False)
    if torch.cuda.is_available():
        pytest.skip('the CPU recipe applies only without CUDA')
    with pytest.raises(RuntimeError, match='dist_train.sh'):
        setup_cpu_distributed(Config(dict(model=dict())), 'pytorch')
    assert not setup_cpu_distributed(Config(dict()), 'none')


def test_drop_closed_file_handlers(tmp_path):
    import logging

    from mmengine.logging import MMLogger

    from possec.runtime import drop_closed_file_handlers
    logger = MMLogger.get_instance('possec-closed-handler',
                                   log_file=str(tmp_path / 'x.log'))
    handlers = [h for h in logger.handlers
                if isinstance(h, logging.FileHandler)]
    assert handlers
    handlers[0].close()
    assert drop_closed_file_handlers() >= 1
    assert not any(isinstance(h, logging.FileHandler) and h.stream is None
                   for h in logger.handlers)
    # init_weights logs its table to the current logger's file handlers.
    from mmengine.model import BaseModule
    BaseModule(init_cfg=dict(type='Constant', val=1, layer='Linear')
               ).init_weights()
