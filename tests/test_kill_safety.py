"""kill -9 while a checkpoint is written: the last complete checkpoint
survives, a partial file is never named iter_N.pth nor pointed to by
last_checkpoint, and --resume continues from the complete one."""
import os
import os.path as osp
import signal
import zipfile

import torch

from possec.apis import train

from .conftest import DEMO_FCN, run_tool, tiny_overrides


def test_sigkill_while_saving_then_resume(tiny_voc, tmp_path):
    work_dir = str(tmp_path / 'wd')
    opts = tiny_overrides(tiny_voc, work_dir, max_iters=4, interval=2,
                          input_size=(64, 64))
    # keep one checkpoint: mmengine deletes iter_2 before writing iter_4
    opts['default_hooks.checkpoint.max_keep_ckpts'] = 1
    opts['train_cfg.val_interval'] = 100
    config = tmp_path / 'kill_config.py'
    config.write_text(
        f'_base_ = [{DEMO_FCN!r}]\n'
        "custom_imports = dict(imports=['possec', 'tests._kill_hooks'], "
        'allow_failed_imports=False)\n'
        "custom_hooks = [dict(type='KillDuringSaveHook', at_iter=4)]\n")
    proc = run_tool(['tools/train.py', str(config)], cfg_options=opts,
                    env_extra={'OMP_NUM_THREADS': '1'})
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    killed_at = open(osp.join(work_dir, 'killed_at')).read()
    # killed while the iter_4 bytes were being written, under a temporary
    # name: iter_4.pth itself never existed
    assert killed_at.startswith('.iter_4.pth.') and \
        killed_at.endswith('.tmp'), killed_at
    assert not osp.exists(osp.join(work_dir, 'iter_4.pth'))
    assert osp.isfile(osp.join(work_dir, killed_at))
    # the previous checkpoint is complete and still named by last_checkpoint
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert osp.basename(f.read().strip()) == 'iter_2.pth'
    assert zipfile.is_zipfile(osp.join(work_dir, 'iter_2.pth'))

    opts['custom_imports.imports'] = ['possec', 'tests._hooks']
    opts['custom_hooks'] = [dict(type='RecordStartHook')]
    runner = train(DEMO_FCN, resume='auto', cfg_options=opts)
    start = torch.load(osp.join(work_dir, 'start_state.pt'),
                       weights_only=False)
    assert start['iter'] == 2 and start['iters_run'] == [2, 3]
    assert runner.iter == 4
    assert zipfile.is_zipfile(osp.join(work_dir, 'iter_4.pth'))
    # the killed save's temporary file was cleared on resume
    assert not [e for e in os.listdir(work_dir) if e.endswith('.tmp')]
