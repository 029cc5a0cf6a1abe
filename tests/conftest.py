import os
import os.path as osp
import socket
import subprocess
import sys

import pytest

#: The repository root; test modules import it (or take the ``repo_root``
#: fixture) instead of computing it again.
ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: The small FCN demo config most end-to-end tests train and test.
DEMO_FCN = osp.join(ROOT, 'configs', 'demo',
                    'fcn_r18-d8_1xb8-160_synthetic-128x128.py')


def load_script(*parts):
    """The module of a script that is not a package module (e.g.
    ``load_script('docs', 'results', 'merge_results.py')``)."""
    import importlib.util
    path = osp.join(ROOT, *parts)
    name = osp.splitext(parts[-1])[0]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope='session')
def repo_root():
    """The repository root (tools are run and found from there)."""
    return ROOT


def tiny_overrides(data_root, work_dir, max_iters=4, interval=2,
                   input_size=None):
    """--cfg-options that shrink a demo config to seconds of CPU work.

    ``input_size`` (e.g. ``(64, 64)`` for the ``tiny_voc`` images) also sets
    ``model.data_preprocessor.size``."""
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
    if input_size is not None:
        opts['model.data_preprocessor.size'] = tuple(input_size)
    return opts


def cfg_options_args(opts):
    """The command-line words of ``--cfg-options`` for an options dict (a
    dict value becomes one ``key.sub=value`` word per entry, a list or tuple
    ``key=[a,b]``)."""
    out = []
    for key, value in opts.items():
        if isinstance(value, dict):
            out += [f'{key}.{k}={v}' for k, v in value.items()]
        elif isinstance(value, (list, tuple)):
            out.append(f'{key}=[{",".join(map(str, value))}]')
        else:
            out.append(f'{key}={value}')
    return out


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture(scope='session')
def tiny_voc(tmp_path_factory):
    """A small synthetic VOC-format tree: 8 train / 4 val images of 64²."""
    from possec.datasets.synthetic import generate_synthetic_voc
    root = str(tmp_path_factory.mktemp('voc') / 'VOC2012')
    generate_synthetic_voc(root, layout='uniform', num_train=8, num_val=4,
                           img_size=64, seed=0, progress=False)
    return root


def run_tool(args, env_extra=None, timeout=600, cfg_options=None):
    """Run a tools/ script (or torchrun) from the repository root; with
    ``cfg_options`` (a dict) ``--cfg-options ...`` ends the command line."""
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    env.update(env_extra or {})
    args = list(args)
    if cfg_options:
        args += ['--cfg-options'] + cfg_options_args(cfg_options)
    return subprocess.run([sys.executable] + args, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(autouse=True)
def _no_closed_log_files():
    """Tests share one process: a finished Runner must not leave a closed
    log file behind for the next test's init_weights to write to."""
    yield
    from possec.runtime import drop_closed_file_handlers
    drop_closed_file_handlers()
