"""2-process CPU DDP under torchrun through tools/dist_train.sh."""
import os.path as osp

import numpy as np
import torch

from .conftest import DEMO_FCN, free_port, run_tool, tiny_overrides


def test_two_process_cpu_ddp(tiny_voc, tmp_path):
    if torch.cuda.is_available():
        import pytest
        pytest.skip('this checks the CPU (gloo) recipe')
    work_dir = str(tmp_path / 'ddp')
    opts = tiny_overrides(tiny_voc, work_dir, max_iters=3, interval=3,
                          input_size=(64, 64))
    config = tmp_path / 'ddp_config.py'
    config.write_text(
        f'_base_ = [{DEMO_FCN!r}]\n'
        "custom_imports = dict(imports=['possec', 'tests._hooks'], "
        'allow_failed_imports=False)\n'
        "custom_hooks = [dict(type='DumpRankHook')]\n")
    args = ['-m', 'torch.distributed.run', '--nproc_per_node=2',
            f'--master_port={free_port()}', osp.join('tools', 'train.py'),
            str(config), '--launcher', 'pytorch']
    proc = run_tool(args, cfg_options=opts,
                    env_extra={'OMP_NUM_THREADS': '1'})
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
