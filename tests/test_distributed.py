"""2-process CPU DDP under torchrun through tools/dist_train.sh."""
import os.path as osp
import socket

import numpy as np
import torch

from .conftest import ROOT, run_tool, tiny_overrides

DEMO_FCN = osp.join('configs', 'demo',
                    'fcn_r18-d8_1xb8-160_synthetic-128x128.py')


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _cfg_options(opts):
    args = []
    for key, value in opts.items():
        if isinstance(value, dict):
            for k, v in value.items():
                args.append(f'{key}.{k}={v}')
        elif isinstance(value, (list, tuple)):
            args.append(f'{key}=[{",".join(map(str, value))}]')
        else:
            args.append(f'{key}={value}')
    return args


def test_two_process_cpu_ddp(tiny_voc, tmp_path):
    if torch.cuda.is_available():
        import pytest
        pytest.skip('this checks the CPU (gloo) recipe')
    work_dir = str(tmp_path / 'ddp')
    opts = tiny_overrides(tiny_voc, work_dir, max_iters=3, interval=3)
    opts['model.data_preprocessor.size'] = (64, 64)
    config = tmp_path / 'ddp_config.py'
    config.write_text(
        f'_base_ = [{osp.join(ROOT, DEMO_FCN)!r}]\n'
        "custom_imports = dict(imports=['possec', 'tests._hooks'], "
        'allow_failed_imports=False)\n'
        "custom_hooks = [dict(type='DumpRankHook')]\n")
    args = ['-m', 'torch.distributed.run', '--nproc_per_node=2',
            f'--master_port={_free_port()}', osp.join('tools', 'train.py'),
            str(config), '--launcher', 'pytorch', '--cfg-options',
            *_cfg_options(opts)]
    proc = run_tool(args, env_extra={'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [torch.load(osp.join(work_dir, f'rank{r}.pt'), weights_only=False)
             for r in (0, 1)]
    for rank in ranks:
        assert len(rank['losses']) == 3
        assert np.all(np.isfinite(rank['losses']))
    # Different data on each rank, yet identical parameters: DDP averaged
    # the gradients.
    assert ranks[0]['losses'] != ranks[1]['losses']
    for key, value in ranks[0]['state'].items():
        assert torch.equal(value, ranks[1]['state'][key]), key
    assert osp.isfile(osp.join(work_dir, 'iter_3.pth'))
