"""tools/device_bundle.py and tools/device_study.sh: the position study on a
machine whose Python has torch but not the OpenMMLab stack (the lent GPU
machine), simulated here by refusing every site-packages module whose
distribution the device image lacks."""
import importlib.util
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

#: sitecustomize.py of the simulated device: a module found in this
#: environment's site-packages loads only when one of its distributions is
#: in $DEVICE_IMAGE (comma-separated names).
BLOCKER = '''
import importlib.machinery
import importlib.metadata as md
import os
import sys
import sysconfig

_SITE = sysconfig.get_paths()['purelib']
_ALLOWED = set(os.environ['DEVICE_IMAGE'].split(','))
_DISTS = md.packages_distributions()


class _Block:
    def find_spec(self, name, path=None, target=None):
        if '.' in name:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name)
        places = [spec.origin or ''] + list(
            spec.submodule_search_locations or ()) if spec else []
        if not any(str(p).startswith(_SITE) for p in places):
            return None
        dists = {d.lower().replace('_', '-') for d in _DISTS.get(name, ())}
        if dists and not dists & _ALLOWED:
            raise ModuleNotFoundError(name + ' (not on the device)',
                                      name=name)
        return None


sys.meta_path.insert(0, _Block())
'''


def _tool():
    spec = importlib.util.spec_from_file_location(
        'device_bundle', osp.join(REPO, 'tools', 'device_bundle.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _git(*args):
    return subprocess.run(['git', '-C', REPO] + list(args), check=True,
                          capture_output=True, text=True).stdout


@pytest.fixture(scope='module')
def device_tree(tmp_path_factory):
    """A copy of this checkout's files (no .git) with the bundle in it,
    and the environment of the simulated device."""
    if shutil.which('git') is None or not osp.isdir(osp.join(REPO, '.git')):
        pytest.skip('needs git and a git checkout')
    if not osp.isdir(osp.join(REPO, 'possec', '.mim')):
        pytest.skip('needs possec/.mim (make install makes it)')
    tool = _tool()
    root = tmp_path_factory.mktemp('device')
    tree = root / 'repo'
    for rel in _git('ls-files', '-co', '--exclude-standard').splitlines():
        src = osp.join(REPO, rel)
        if osp.isfile(src):
            os.makedirs(osp.dirname(tree / rel), exist_ok=True)
            shutil.copy2(src, tree / rel)
    shutil.copytree(osp.join(REPO, 'possec', '.mim'),
                    tree / 'possec' / '.mim', symlinks=True)
    info = tool.build(str(tree / '.device_carry'), repo=REPO)
    block = root / 'block'
    block.mkdir()
    (block / 'sitecustomize.py').write_text(BLOCKER)
    env = dict(os.environ, PYTHONPATH=str(block), OMP_NUM_THREADS='1',
               DEVICE_IMAGE=','.join(sorted(tool.DEVICE_IMAGE |
                                            set(tool.SATISFIED_BY))),
               PYTHON=sys.executable)
    env.pop('GIT_DIR', None)
    env.pop('GIT_WORK_TREE', None)
    return dict(tool=tool, tree=tree, root=root, env=env, info=info)


def test_the_simulated_device_lacks_the_stack(device_tree):
    """Without the bundle the stack does not import there (so the next
    test passes because of the bundle), and torch does."""
    code = ('import importlib\n'
            'for m in ("mmengine", "mmcv", "mmseg", "captum", "torch"):\n'
            '    try:\n        importlib.import_module(m)\n'
            '        print(m, "imports")\n'
            '    except ModuleNotFoundError as e:\n        print(m, e)\n')
    out = subprocess.run([sys.executable, '-c', code],
                         env=device_tree['env'], capture_output=True,
                         text=True, cwd=str(device_tree['root']), check=True)
    lines = dict(line.split(' ', 1) for line in out.stdout.splitlines())
    for module in ('mmengine', 'mmcv', 'mmseg', 'captum'):
        assert 'not on the device' in lines[module], lines
    assert lines['torch'] == 'imports'


def test_device_study_runs_from_the_bundle_and_names_the_commit(
        device_tree, tmp_path):
    """tools/device_study.sh trains a study cell on the simulated device
    from the bundle alone, collects it, and its record names this
    checkout's HEAD and whether tracked files differ from it (read here
    with git, not by possec)."""
    out, study = tmp_path / 'out', tmp_path / 'study'
    env = dict(device_tree['env'], OUT=str(out), STUDY_DIR=str(study),
               BUDGET='300')
    run = subprocess.run(
        ['bash', 'tools/device_study.sh', '--device', 'cpu', '--variants',
         'parsenet/zeros/none', '--layouts', 'uniform', '--seeds', '0',
         '--data-seeds', '0', '--max-iters', '2',
         '--tail-iters', '0', '--img-size', '32', '--probe-images', '4',
         '--probe-epochs', '1', '--workers', '1', '--threads', '1'],
        cwd=str(device_tree['tree']), env=env, capture_output=True,
        text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert sorted(os.listdir(out)) == [
        'bundle.json', 'cells.tar.gz', 'study.log', 'study.md',
        'study_results.json']
    log = (out / 'study.log').read_text()
    assert f"mmcv {_tool_version('mmcv')}" in log
    results = json.loads((out / 'study_results.json').read_text())
    (cell, ) = results['cells']
    head = _git('rev-parse', 'HEAD').strip()
    dirty = bool(_git('status', '--porcelain',
                      '--untracked-files=no').strip())
    assert cell['code']['commit'] == head
    assert cell['code']['dirty'] is dirty
    assert device_tree['info']['commit'] == head
    assert cell['metrics']['mIoU'] is not None


def _tool_version(name):
    import importlib.metadata as md
    return md.version(name)


def test_mmcv_stand_in_imports_and_refuses_calls(device_tree):
    """mmcv.ops imports with the stand-in (mmcv's loader asserts every op
    name exists), and calling a compiled op says why it cannot run."""
    site = device_tree['tree'] / '.device_carry' / 'site'
    assert not list((site / 'mmcv').glob('_ext*.so'))
    code = ('import mmcv.ops, mmcv._ext as ext\n'
            'try:\n    ext.nms(None)\nexcept RuntimeError as e:\n'
            '    print(e)\n')
    out = subprocess.run(
        [sys.executable, '-c', code], capture_output=True, text=True,
        env=dict(device_tree['env'], PYTHONPATH=str(site) + os.pathsep +
                 device_tree['env']['PYTHONPATH']),
        cwd=str(device_tree['root']))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "mmcv op 'nms' is not available" in out.stdout


def test_bundle_packs_what_the_image_lacks_and_nothing_it_has(device_tree):
    packed = {k.lower() for k in device_tree['info']['packed']}
    tool = device_tree['tool']
    assert {'mmcv', 'mmengine', 'mmsegmentation', 'captum'} <= packed
    assert not (packed - set(tool.ALWAYS)) & tool.DEVICE_IMAGE
    assert 'torch' not in packed and 'numpy' not in packed
    site = device_tree['tree'] / '.device_carry' / 'site'
    assert not (site / 'tests').exists()  # would shadow the repo's tests
    assert device_tree['info']['bytes'] < 48 * 2**20


def test_device_study_refuses_out_dir_and_a_missing_bundle(tmp_path):
    script = osp.join(REPO, 'tools', 'device_study.sh')
    empty = tmp_path / 'repo'
    (empty / 'tools').mkdir(parents=True)
    shutil.copy2(script, empty / 'tools')
    out = subprocess.run(['bash', 'tools/device_study.sh'], cwd=str(empty),
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert 'run python tools/device_bundle.py' in out.stderr
    (empty / '.device_carry' / 'site').mkdir(parents=True)
    out = subprocess.run(['bash', 'tools/device_study.sh', '--out-dir',
                          'x'], cwd=str(empty), capture_output=True,
                         text=True)
    assert out.returncode == 2 and 'drop --out-dir' in out.stderr
