"""The README is an executable contract: every command it shows that runs
possec code runs here, at tiny sizes.

Commands are collected from README.md's ```bash blocks and its inline code
(tables and prose); ``...`` continues the previous command's program. Each
is run in this process as ``python SCRIPT ARGS`` (``runpy``, with
``sys.argv`` set) after placeholders (CONFIG, CKPT, IMG_DIR, ...) are
replaced by the demo config, a checkpoint of it and a folder of images, and
after documented size options of the tool (:data:`TINY`) are appended, so
that a run takes seconds. Commands that cannot run here are listed in
:data:`NOT_RUN` with the reason; a command of the README that is in neither
list fails the test (a new command must be run or excused).
"""
import os
import os.path as osp
import re
import runpy
import shlex
import sys
import warnings

import numpy as np
import pytest
from PIL import Image

from .conftest import ROOT, tiny_overrides

README = osp.join(ROOT, 'README.md')
DEMO = 'configs/demo/parsenet_pos_synthetic.py'

#: Commands not run, by their first words, with the reason.
NOT_RUN = {
    'make demo': 'trains the full demo (minutes); the same tools/train.py '
    'and config run here at a tiny size',
    'make test': 'is this test suite',
    'make gpu-check': 'needs CUDA: tests/test_gpu.py runs its CPU dry run',
    'make install': 'builds the environment this suite runs in',
    'python3 -m venv': 'installation',
    'pip install': 'installation (needs the network)',
    'MMSEG=': 'VOC data conversion (needs the downloaded VOC and SBD data)',
    'python $MMSEG': 'VOC data conversion (needs the downloaded data)',
    'ln -s': 'links the user\'s VOC data',
    'bash tools/dist_train.sh': 'torchrun with several processes: '
    'tests/test_distributed.py runs it',
    'bash tools/dist_test.sh': 'torchrun with several processes: '
    'tests/test_distributed.py runs it',
    'GPUS=8': 'needs Slurm (srun): tests/test_slurm.py checks the scripts',
    'bash tools/slurm_test.sh': 'needs Slurm (srun): tests/test_slurm.py',
    'sbatch': 'needs Slurm',
    'python tools/analysis/position_study.py': 'trains a grid of models '
    '(minutes even at its smallest): tests/test_study.py runs the study '
    'end to end; here its options are parsed',
    'python tools/analysis/benchmark.py': 'times models at full size: '
    'tests/test_benchmarks.py runs each benchmark small; here its options '
    'are parsed',
    'python tools/train.py CONFIG --resume': 'resumes the run above: here '
    'parsed (tests/test_tools_e2e.py resumes a run)',
    'tools/train.py CONFIG --resume X.pth --trust-checkpoint': 'parsed '
    '(trust is tested in tests/test_checkpoint_safety.py)',
    'tools/test.py CONFIG X.pth --trust-checkpoint': 'parsed (trust is '
    'tested in tests/test_checkpoint_safety.py)',
    'python tools/test.py configs/zoo/': 'a zoo model (VOC data and a '
    'checkpoint of days of training)',
    'bash tools/dist_train.sh configs/zoo/': 'a zoo model (VOC data)',
    '--cfg-options train_dataloader.dataset.datasets.0.data_root=':
    'points at the user\'s VOC data',
    '--cfg-options trust_load_from=True': 'a config key for load_from: '
    'tests/test_checkpoint_safety.py',
    'pip uninstall': 'installation',
    'python tools/analysis/position_channels.py': 'runs a trained model '
    'over hundreds of canvases and the test set (minutes): '
    'tests/test_position_channels.py runs the tool end to end; here its '
    'options are parsed',
}
#: of NOT_RUN, the commands whose options are still parsed by the tool
PARSED = ('python tools/analysis/position_study.py',
          'python tools/analysis/position_channels.py',
          'python tools/analysis/benchmark.py',
          'python tools/train.py CONFIG --resume',
          'tools/train.py CONFIG --resume X.pth --trust-checkpoint',
          'tools/test.py CONFIG X.pth --trust-checkpoint')


def _tiny_cfg(tiny_voc):
    opts = tiny_overrides(tiny_voc, 'unused', max_iters=1, interval=1)
    opts.pop('work_dir')
    opts.pop('randomness')
    opts['model.data_preprocessor.size'] = '(64,64)'
    opts['test_dataloader.dataset.indices'] = 2
    return ['--cfg-options'] + [f'{k}={v}' for k, v in opts.items()]


#: Documented options appended per tool so that it runs in seconds.
TINY = {
    'tools/analysis/position_probe.py': [
        '--input-size', '32', '--grid', '8', '--epochs', '1',
        '--batch-size', '16', '--extract-batch', '32', '--num-show', '1'],
    'tools/analysis/receptive_field.py': [
        '--image-size', '32', '32', '--patch', '8', '--no-progress'],
    'tools/analysis/occlusion.py': [
        '--image-size', '32', '32', '--occluder', '8', '--stride', '8',
        '--no-progress'],
    'tools/analysis/deconvnet.py': [
        '--image-size', '32', '32', '--num-images', '2', '--topk', '2'],
    'tools/analysis/invariance.py': [  # 64: reflect needs maps > 4 px
        '--image-size', '64', '64', '--num-images', '1', '--no-progress',
        '--transforms', 'translate', 'scale', '--shifts', '0', '8',
        '--scales', '1.5'],  # rotation: tests/test_visual_tools.py
    'tools/make_synthetic_voc.py': [
        '--num-train', '2', '--num-val', '1', '--size', '32', '--quiet'],
}


#: the visual tools: a segmentor config, images of its test set
VISUAL = tuple(f'tools/analysis/{name}.py' for name in (
    'receptive_field', 'occlusion', 'deconvnet', 'invariance'))


def readme_commands():
    """Every shell command of the README that starts a program: from
    ```bash blocks (continuations joined, comments dropped) and inline
    code; ``...`` is replaced by the previous command's program."""
    text = open(README, encoding='utf-8').read()
    commands = []
    blocks = re.findall(r'```bash\n(.*?)```', text, re.S)
    for block in blocks:
        block = block.replace('\\\n', ' ')
        for line in block.splitlines():
            line = line.split(' #')[0].strip()
            if line and not line.startswith('#'):
                commands.append(' '.join(line.split()))
    prose = re.sub(r'```.*?```', '', text, flags=re.S)
    starts = ('python ', 'python3 ', 'bash ', 'make ', '... ', 'tools/',
              '--cfg-options ', 'GPUS=', 'sbatch ', 'pip ', 'ln -s ')
    last = None
    for code in re.findall(r'`([^`]+)`', prose):
        code = ' '.join(code.split())
        if not code.startswith(starts) or code.startswith('tools/') and \
                ' CONFIG' not in code:  # a file named, not a command
            continue
        if code.startswith('... '):
            code = f'{last} {code[4:]}'
        elif code.startswith(('python ', 'tools/')):
            last = ' '.join(code.split()[:2])
        commands.append(code)
    return commands


def _excused(cmd):
    return next((k for k in NOT_RUN if cmd.startswith(k)), None)


COMMANDS = readme_commands()


def test_readme_commands_found():
    # the README's analyses table alone has over a dozen commands
    assert len(COMMANDS) > 20
    for key in NOT_RUN:
        assert any(c.startswith(key) for c in COMMANDS), \
            f'NOT_RUN lists {key!r}, which the README no longer shows'


@pytest.fixture(scope='module')
def assets(tiny_voc, tmp_path_factory):
    """A checkpoint of the demo model (random weights, as training writes
    it) and a folder of three photographs."""
    import torch

    from possec.analysis.common import load_segmentor
    root = tmp_path_factory.mktemp('readme')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = load_segmentor(osp.join(ROOT, DEMO), None, None, 0)
    ckpt = str(root / 'iter_1.pth')
    torch.save(dict(meta=dict(iter=1), state_dict=model.state_dict()), ckpt)
    images = root / 'images'
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), np.uint8)).save(
            images / f'{i}.png')
    return dict(ckpt=ckpt, images=str(images), root=root,
                cfg=_tiny_cfg(tiny_voc))


def _argv(cmd, assets, tmp_path):
    """The command as ``[script, args...]`` with placeholders filled and
    paths made absolute (the run happens in ``tmp_path``)."""
    # "[a b]" shows optional arguments: pass them
    words = [w.strip('[]') for w in shlex.split(cmd) if w.strip('[]')]
    if words[0] == 'python':
        words = words[1:]
    subst = {
        'CONFIG': DEMO, 'CFG': DEMO, 'CKPT': assets['ckpt'],
        'CHECKPOINT': assets['ckpt'], 'X.pth': assets['ckpt'],
        'IMG_DIR': assets['images'],
        'work_dirs/run1/iter_20000.pth': assets['ckpt'],
    }
    words = [subst.get(w, w) for w in words]
    words = [osp.join(ROOT, w) if w.startswith(('tools/', 'configs/'))
             else w for w in words]
    if words[0].startswith('--cfg-options'):  # "on any config"
        words = [osp.join(ROOT, 'tools/test.py'), osp.join(ROOT, DEMO),
                 assets['ckpt']] + words
    script = osp.relpath(words[0], ROOT)
    extra = list(TINY.get(script, []))
    if script == 'tools/analysis/position_probe.py':
        if '--config' in words or words[1] not in ('noise', ):
            # photographs and a segmentor's backbone: few images; noise
            # keeps the default number (200), the README's known failure
            extra += ['--num-images', '2' if 'vgg16' in words else '4']
        if 'vgg16' in words:
            # VGG16 without padding ('none' of the sweep) shrinks 196 px to 1
            extra += ['--input-size', '196']
        extra += ['--out-dir', str(tmp_path / 'probe')]
    elif script in VISUAL:
        extra += ['--out-dir', str(tmp_path / 'out')]
    voc = 'configs/parsenet_pos_voc.py' in cmd  # runs as written
    if not voc and script in VISUAL + ('tools/train.py', 'tools/test.py'):
        extra += assets['cfg']
    if script in ('tools/train.py', 'tools/test.py') and \
            '--work-dir' not in words:
        extra += ['--work-dir', str(tmp_path / 'work')]
    return words + extra


RUN = [c for c in COMMANDS if _excused(c) is None]
PARSE = [c for c in COMMANDS if _excused(c) in PARSED]


def _run(argv):
    old = sys.argv
    sys.argv = list(argv)
    try:
        runpy.run_path(argv[0], run_name='__main__')
        return 0
    except SystemExit as exc:
        return exc.code or 0
    finally:
        sys.argv = old


@pytest.mark.parametrize('cmd', RUN)
def test_readme_command_runs(cmd, assets, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = _argv(cmd, assets, tmp_path)
    voc = 'configs/parsenet_pos_voc.py' in cmd
    if voc and osp.isdir(osp.join(ROOT, 'data', 'VOCdevkit')):
        pytest.skip('VOC data is present: the headline would train for days')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        code = _run(argv)
    out, err = capsys.readouterr()
    if voc:
        # documented: a config whose data is missing stops before doing
        # anything, naming the folder it expected
        assert code == 2 and 'VOCdevkit' in err, err[-2000:]
        return
    assert code == 0, f'{cmd!r} exited with {code}:\n{err[-3000:]}'
    assert 'Traceback' not in err


@pytest.mark.parametrize('cmd', PARSE)
def test_readme_command_parses(cmd, assets, tmp_path):
    argv = _argv(cmd, assets, tmp_path)
    if argv[0].endswith('benchmark.py'):
        # its parser runs in main; --list checks every name and setting
        from possec.benchmarks import cli
        assert cli.main(argv[1:] + ['--list']) == 0
        return
    parse = runpy.run_path(argv[0], run_name='readme_parse')['parse_args']
    old = sys.argv
    sys.argv = list(argv)
    try:
        try:
            parse(argv[1:])
        except TypeError:  # parse_args() reads sys.argv
            parse()
    finally:
        sys.argv = old


def test_readme_images_exist():
    """Every image the README shows is committed and small."""
    text = open(README, encoding='utf-8').read()
    for path in re.findall(r'!\[[^\]]*\]\(([^)]+)\)', text):
        full = osp.join(ROOT, path)
        assert osp.isfile(full), path
        assert os.path.getsize(full) < 150 * 1024, path


def python_blocks():
    """The ```python blocks of the README's "Python" section."""
    text = open(README, encoding='utf-8').read()
    section = text.split('\n## Python\n', 1)[1].split('\n## ', 1)[0]
    return re.findall(r'```python\n(.*?)```', section, re.S)


@pytest.fixture(scope='module')
def demo_checkpoint(tiny_voc, tmp_path_factory):
    """A checkpoint of the demo config written by a 1-iteration training."""
    from possec.apis import train
    work_dir = str(tmp_path_factory.mktemp('demo'))
    opts = tiny_overrides(tiny_voc, work_dir, max_iters=1, interval=1,
                          input_size=(64, 64))
    opts['train_cfg.val_interval'] = 10  # no validation
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        train(osp.join(ROOT, DEMO), cfg_options=opts)
    return osp.join(work_dir, 'iter_1.pth')


def test_readme_python_section_runs(demo_checkpoint, tmp_path, monkeypatch,
                                    capsys):
    """The section runs as written (the demo's checkpoint and a photograph
    in place of the paths it names) on a checkpoint that training wrote,
    and prints the SPC that scipy computes from the maps."""
    from scipy.stats import spearmanr
    blocks = python_blocks()
    assert len(blocks) == 1
    code = blocks[0]
    names = {"'configs/demo/parsenet_pos_synthetic.py'": osp.join(ROOT, DEMO),
             "'work_dirs/parsenet_pos_synthetic/iter_160.pth'":
             demo_checkpoint, "'photo.jpg'": str(tmp_path / 'photo.jpg')}
    for name, path in names.items():
        assert name in code, name
        code = code.replace(name, repr(path))
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 56, 3), np.uint8)).save(
        tmp_path / 'photo.jpg')
    monkeypatch.chdir(tmp_path)
    scope = {}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        exec(compile(code, 'README.md (Python)', 'exec'), scope)
    assert tuple(scope['classes'].shape) == (1, 48, 56)
    maps, truth = scope['maps'], scope['truth']
    # the head's 28x28 grid less one unpadded 3x3 convolution
    assert tuple(maps.shape) == (1, 5, 26, 26)
    printed = eval(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(printed) == ['H', 'V', 'G', 'HS', 'VS']
    for k, pattern in enumerate(printed):
        expected = spearmanr(maps[0, k].flatten().numpy(),
                             truth[0, k].flatten().numpy())[0]
        expected = 0.0 if np.isnan(expected) else expected  # constant map
        assert printed[pattern] == pytest.approx(expected, abs=1e-9)
    assert os.listdir(tmp_path) == ['photo.jpg']  # nothing written here
