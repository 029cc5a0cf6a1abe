"""possec's configs ship inside the package, as OpenMMLab's do: ``possec::``
resolves (in a config's ``_base_``, in :func:`mmengine.hub.get_config` and
in possec's own code) both in the editable install of the development
environment and in a plain ``pip install .`` into a fresh virtual
environment, from a working directory outside the repository.

The fresh environment is built offline and fast: ``pip install --no-deps
--no-build-isolation --no-index`` of a copy of the repository, with this
environment's site-packages appended to the new one's ``sys.path`` (a plain
path line in a ``.pth`` file, so this environment's editable possec is not
activated there; the new one imports its own copy).
"""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import sysconfig

from mmengine.config import Config

from .conftest import ROOT

DEMO = 'demo/parsenet_pos_synthetic.py'
HEADLINE = 'zoo/parsenet-pos_r50-d8-zeros_4xb4-20k_voc12aug-512x512.py'

# Run by the environment under test, from a folder outside the repository;
# prints one JSON line. argv[1]: a scratch folder.
PROBE = r'''
import copy, json, os.path as osp, sys
import possec
from mmengine.config import Config
from mmengine.hub import get_config
# mmengine's root registries, which the Runner builds from
from mmengine.registry import DATASETS, HOOKS, METRICS, MODELS
from mmseg.utils import register_all_modules
from possec.analysis.common import config_path
from possec.analysis.study import builder, selection
from possec.analysis.study.settings import StudySettings
from possec.benchmarks import efficiency

register_all_modules(init_default_scope=True)
tmp = sys.argv[1]
out = dict(possec=osp.dirname(possec.__file__))
# 1. mmengine's own entry point for a package's configs
out['demo'] = get_config('possec::DEMO').to_dict()
# 2. a user's config whose _base_ is a possec config, built
leaf = osp.join(tmp, 'my_config.py')
with open(leaf, 'w') as f:
    f.write("_base_ = ['possec::DEMO']\n"
            "model = dict(backbone=dict(padding_mode='circular'))\n")
cfg = Config.fromfile(leaf)
model = MODELS.build(cfg.model)
out['leaf_padding'] = model.backbone.padding_mode
out['leaf_params'] = sum(p.numel() for p in model.parameters())
# what possec's config pieces define, mmengine tags _scope_='possec'
dataset = dict(cfg.train_dataloader.dataset, data_root=osp.join(tmp, 'syn'),
               generate=dict(layout='uniform', num_train=2, num_val=1,
                             img_size=32, seed=0, progress=False))
out['leaf_scopes'] = [dataset['_scope_'], cfg.val_evaluator['_scope_'],
                      cfg.default_hooks.checkpoint['_scope_']]
out['leaf_built'] = [type(DATASETS.build(dataset)).__name__,
                     type(METRICS.build(cfg.val_evaluator)).__name__,
                     type(HOOKS.build(cfg.default_hooks.checkpoint)).__name__]
# 3. package code: the efficiency benchmark's configs, the quick study grid
out['efficiency'] = [config_path(c) for c, _ in efficiency.MODELS.values()]
cells, settings = selection.resolve_grid(quick=True)
settings = StudySettings.from_dict(dict(settings, data_root=tmp))
heads = builder.read_heads()  # read once, as the study's runner does
base = {h: Config.fromfile(config_path(c))
        for h, c in builder.HEAD_CONFIGS.items()}
cell_cfgs = []
for cell in cells:
    cfg = copy.deepcopy(base[cell.head])
    cfg.merge_from_dict(builder.cell_options(cell, settings, tmp,
                                             heads=heads))
    cell_cfgs.append([cell.head, cell.padding, cell.pos,
                      cfg.model.backbone.padding_mode,
                      len(cfg.model.auxiliary_head)])
out['cells'] = cell_cfgs
print('RESULT ' + json.dumps(out, default=repr))
'''.replace('DEMO', DEMO).replace('HEADLINE', HEADLINE)

# Not copied into the fresh environment's build (generated or heavy).
IGNORE = shutil.ignore_patterns('.git', '.venv', 'data', 'work_dirs',
                                'build', 'dist', '*.egg-info', '.mim',
                                '__pycache__', '.pytest_cache', 'outputs',
                                '.whl', '.device_carry')


def run_probe(python, tmp_path):
    """PROBE under ``python`` from ``tmp_path`` (outside the repository),
    without PYTHONPATH: possec comes from the environment's install."""
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env['OMP_NUM_THREADS'] = '1'
    proc = subprocess.run([python, '-c', PROBE, str(tmp_path)],
                          cwd=str(tmp_path), env=env, capture_output=True,
                          text=True, timeout=600)
    lines = [ln for ln in proc.stdout.splitlines()
             if ln.startswith('RESULT ')]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][len('RESULT '):])


def check(result):
    demo = Config.fromfile(osp.join(ROOT, 'configs', DEMO),
                           import_custom_modules=False)
    assert result['demo'] == json.loads(json.dumps(demo.to_dict(),
                                                   default=repr))
    assert result['leaf_scopes'] == ['possec'] * 3
    assert result['leaf_built'] == ['SyntheticVOCDataset', 'IoUMetric',
                                    'CheckpointHook']
    assert result['leaf_padding'] == 'circular'
    from mmseg.registry import MODELS
    import possec  # noqa: F401
    model = MODELS.build(demo.model)
    assert result['leaf_params'] == sum(p.numel()
                                        for p in model.parameters())
    assert [osp.relpath(p, result['possec']) for p in result['efficiency']
            ] == [osp.join('.mim', 'configs', c) for c in (DEMO, HEADLINE)]
    cells = result['cells']
    assert len(cells) > 1
    for head, padding, pos, built_padding, num_aux in cells:
        assert built_padding == padding
        assert num_aux == (1 if pos == 'none' else 2)


def test_editable_install_resolves_possec_configs(tmp_path):
    """The development environment (``make install``: ``pip install -e``)
    reads the repository's configs through ``possec/.mim`` links."""
    mim = osp.join(ROOT, 'possec', '.mim', 'configs')
    assert osp.isdir(mim), (
        f'{mim} missing: rerun `make install` (setup.py links the configs '
        'there for an editable install)')
    result = run_probe(sys.executable, tmp_path)
    assert osp.realpath(result['possec']) == osp.realpath(
        osp.join(ROOT, 'possec'))
    check(result)


def test_pip_install_ships_configs(tmp_path):
    """``pip install .`` (not editable) copies configs/ and model-index.yml
    into site-packages/possec/.mim/; the installed possec resolves its
    configs there, with no repository in sight."""
    src = tmp_path / 'src'
    shutil.copytree(ROOT, src, ignore=IGNORE, symlinks=True)
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip',
                    str(venv)], check=True)
    python = str(venv / 'bin' / 'python')
    purelib = subprocess.run(
        [python, '-c',
         'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
        check=True, capture_output=True, text=True).stdout.strip()
    reuse = [sysconfig.get_paths()['purelib'],
             sysconfig.get_paths()['platlib']]
    with open(osp.join(purelib, '_possec_test_reuse.pth'), 'w') as f:
        f.write('\n'.join(dict.fromkeys(reuse)) + '\n')
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    proc = subprocess.run(
        [python, '-m', 'pip', 'install', '--no-deps', '--no-build-isolation',
         '--no-index', '--disable-pip-version-check', str(src)],
        cwd=str(tmp_path), env=env, capture_output=True, text=True,
        timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    installed = osp.join(purelib, 'possec')
    assert osp.isfile(osp.join(installed, '.mim', 'model-index.yml'))
    assert osp.isfile(osp.join(installed, '.mim', 'configs', DEMO))
    assert not osp.islink(osp.join(installed, '.mim', 'configs'))

    run_dir = tmp_path / 'elsewhere'
    run_dir.mkdir()
    result = run_probe(python, run_dir)
    assert result['possec'] == installed
    check(result)
