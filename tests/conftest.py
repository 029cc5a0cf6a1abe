import os
import os.path as osp
import subprocess
import sys

import pytest

#: The repository root; test modules import it (or take the ``repo_root``
#: fixture) instead of computing it again.
ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(scope='session')
def repo_root():
    """The repository root (tools are run and found from there)."""
    return ROOT


def tiny_overrides(data_root, work_dir, max_iters=4, interval=2):
    """--cfg-options that shrink a demo config to seconds of CPU work."""
    opts = {
        'work_dir': work_dir,
        'train_cfg.max_iters': max_iters,
        'train_cfg.val_interval': interval,
        'default_hooks.checkpoint.interval': interval,
        'default_hooks.checkpoint.max_keep_ckpts': -1,
        'default_hooks.logger.interval': 1,
        'param_scheduler.0.end': max_iters,
        'randomness': dict(seed=0),
    }
    for loader, batch in (('train_dataloader', 2), ('val_dataloader', 1),
                          ('test_dataloader', 1)):
        opts.update({
            f'{loader}.batch_size': batch,
            f'{loader}.num_workers': 0,
            f'{loader}.persistent_workers': False,
            f'{loader}.dataset.data_root': data_root,
            f'{loader}.dataset.generate': None,
        })
    return opts


@pytest.fixture(scope='session')
def tiny_voc(tmp_path_factory):
    """A small synthetic VOC-format tree: 8 train / 4 val images of 64²."""
    from possec.datasets.synthetic import generate_synthetic_voc
    root = str(tmp_path_factory.mktemp('voc') / 'VOC2012')
    generate_synthetic_voc(root, layout='uniform', num_train=8, num_val=4,
                           img_size=64, seed=0, progress=False)
    return root


def run_tool(args, env_extra=None, timeout=600):
    """Run a tools/ script (or torchrun) from the repository root."""
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    env.update(env_extra or {})
    return subprocess.run([sys.executable] + list(args), cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(autouse=True)
def _no_closed_log_files():
    """Tests share one process: a finished Runner must not leave a closed
    log file behind for the next test's init_weights to write to."""
    yield
    from possec.runtime import drop_closed_file_handlers
    drop_closed_file_handlers()
