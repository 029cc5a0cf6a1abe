"""tools/slurm_train.sh and tools/slurm_test.sh against a stand-in ``srun``
(and ``scontrol``) on PATH: the scripts pass mmseg's srun options, and the
tasks srun starts train with 2 ranks and test through ``--launcher slurm``."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from .conftest import (DEMO_FCN, ROOT, cfg_options_args, free_port,
                       tiny_overrides)

# srun: record the options, then start --ntasks copies of the command with
# the variables a real srun sets for each task.
SRUN = '''#!{python}
import json, os, subprocess, sys
args, i, opts = sys.argv[1:], 0, {{}}
while i < len(args) and args[i].startswith('-'):
    if '=' in args[i]:
        key, value = args[i].split('=', 1)
    elif args[i] == '-p':
        key, value, i = '-p', args[i + 1], i + 1
    else:
        key, value = args[i], ''
    opts[key] = value
    i += 1
with open(os.environ['SRUN_RECORD'], 'w') as f:
    json.dump(dict(opts=opts, command=args[i:]), f)
n = int(opts['--ntasks'])
procs = []
for rank in range(n):
    env = dict(os.environ, SLURM_PROCID=str(rank), SLURM_NTASKS=str(n),
               SLURM_LOCALID=str(rank), SLURM_NODELIST='fake-node[1]',
               SLURM_JOB_NAME=opts['--job-name'])
    procs.append(subprocess.Popen(args[i:], env=env))
sys.exit(max(p.wait() for p in procs))
'''
SCONTROL = '''#!/bin/sh
[ "$1 $2 $3" = "show hostnames fake-node[1]" ] && echo 127.0.0.1
'''


@pytest.fixture
def fake_slurm(tmp_path):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    (bin_dir / 'srun').write_text(SRUN.format(python=sys.executable))
    (bin_dir / 'scontrol').write_text(SCONTROL)
    for name in ('srun', 'scontrol'):
        os.chmod(bin_dir / name, 0o755)
    env = dict(os.environ)
    env.update(PATH=f'{bin_dir}{os.pathsep}{env["PATH"]}',
               PYTHON=sys.executable, OMP_NUM_THREADS='1',
               SRUN_RECORD=str(tmp_path / 'srun.json'))
    env.pop('MASTER_ADDR', None)
    env['MASTER_PORT'] = str(free_port())
    return env


def _run(script, args, env):
    return subprocess.run(['bash', osp.join('tools', script)] + args,
                          cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)


def test_slurm_scripts_need_arguments():
    for script, n in (('slurm_train.sh', 3), ('slurm_test.sh', 4)):
        proc = _run(script, ['a'], dict(os.environ))
        assert proc.returncode == 2
        assert proc.stderr.startswith(f'usage: bash tools/{script}')


def test_slurm_train_then_test(tiny_voc, tmp_path, fake_slurm):
    if torch.cuda.is_available():
        pytest.skip('checks the CPU (gloo) path of the slurm launcher')
    work_dir = str(tmp_path / 'wd')
    opts = tiny_overrides(tiny_voc, work_dir, max_iters=2, interval=2,
                          input_size=(64, 64))
    cfg_options = ['--cfg-options'] + cfg_options_args(opts)
    env = dict(fake_slurm, GPUS='2', GPUS_PER_NODE='2', CPUS_PER_TASK='1',
               SRUN_ARGS='--quotatype=auto')
    proc = _run('slurm_train.sh', ['part1', 'job1', DEMO_FCN] + cfg_options,
                env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = json.load(open(tmp_path / 'srun.json'))
    assert record['opts'] == {
        '-p': 'part1', '--job-name': 'job1', '--gres': 'gpu:2',
        '--ntasks': '2', '--ntasks-per-node': '2', '--cpus-per-task': '1',
        '--kill-on-bad-exit': '1', '--quotatype': 'auto'}
    command = record['command']
    assert command[:3] == [sys.executable, '-u',
                           osp.join('tools', 'train.py')]
    assert command[3:6] == [DEMO_FCN, '--launcher', 'slurm']
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))
    logs = [osp.join(dp, f) for dp, _, fs in os.walk(work_dir) for f in fs
            if f.endswith('.log')]
    text = ''.join(open(p).read() for p in logs)
    assert "'launcher': 'slurm'" in text or 'launcher: slurm' in text
    assert 'world_size: 2' in text or 'Distributed training: True' in text

    env = dict(fake_slurm, GPUS='1', GPUS_PER_NODE='1', CPUS_PER_TASK='1')
    out = str(tmp_path / 'out')
    proc = _run('slurm_test.sh', ['part1', 'job2', DEMO_FCN,
                                  osp.join(work_dir, 'iter_2.pth'), '--out',
                                  out] + cfg_options, env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = json.load(open(tmp_path / 'srun.json'))
    assert record['command'][3:7] == [DEMO_FCN,
                                      osp.join(work_dir, 'iter_2.pth'),
                                      '--launcher', 'slurm']
    metrics = json.load(open(osp.join(out, 'metrics.json')))
    assert 0 <= metrics['mIoU'] <= 100
