"""Runs write where they are told: generated data under one setting
(--data-root, $POSSEC_DATA_ROOT, else ~/.cache/possec/data), never the
working directory; the logs of a run given --work-dir / --out stay there."""
import glob
import os
import os.path as osp

from possec.apis import test, train
from possec.apis.config_files import data_home
from possec.apis.train import prepare_config

from .conftest import DEMO_FCN, tiny_overrides


def _roots(cfg):
    return {cfg[f'{loader}_dataloader'].dataset.data_root
            for loader in ('train', 'val', 'test')}


def test_generated_data_root_is_one_setting(tmp_path, monkeypatch):
    monkeypatch.delenv('POSSEC_DATA_ROOT', raising=False)
    home = osp.expanduser('~/.cache/possec/data')
    assert data_home() == home
    assert _roots(prepare_config(DEMO_FCN)) == {
        '~/.cache/possec/data/synthetic/uniform'}
    monkeypatch.setenv('POSSEC_DATA_ROOT', str(tmp_path / 'env'))
    assert _roots(prepare_config(DEMO_FCN)) == {
        str(tmp_path / 'env' / 'synthetic' / 'uniform')}
    # --data-root wins over the environment, and only for that call
    cfg = prepare_config(DEMO_FCN, data_root=str(tmp_path / 'opt'))
    assert _roots(cfg) == {str(tmp_path / 'opt' / 'synthetic' / 'uniform')}
    assert os.environ['POSSEC_DATA_ROOT'] == str(tmp_path / 'env')


def test_runs_leave_the_working_directory_empty(tiny_voc, tmp_path,
                                                monkeypatch, capsys):
    """Training with --work-dir and testing with --out, started in an empty
    folder, write nothing there (the test's log goes to --out). The
    console has one line for the environment (the block is in the log
    file), and the next commands name the config dumped in the work dir,
    which holds the run's overrides."""
    cwd = tmp_path / 'cwd'
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    work_dir = str(tmp_path / 'wd')
    opts = tiny_overrides(tiny_voc, work_dir, max_iters=1, interval=1,
                          input_size=(64, 64))
    opts.pop('work_dir')
    train(DEMO_FCN, work_dir=work_dir, cfg_options=opts)
    console = capsys.readouterr().out
    dumped = osp.join(work_dir, osp.basename(DEMO_FCN))
    assert f'next:       python tools/test.py {dumped} ' in console
    assert str(tiny_voc) in open(dumped).read()  # the overrides
    env = [line for line in console.splitlines() if 'environment' in line]
    assert len(env) == 1 and 'environment: cpu (' in env[0], env
    (log, ) = glob.glob(osp.join(work_dir, '*', '*.log'))
    with open(log) as f:
        assert 'System environment:' in f.read()
    out = str(tmp_path / 'out')
    test(DEMO_FCN, osp.join(work_dir, 'iter_1.pth'), out=out,
         cfg_options=opts)
    assert os.listdir(cwd) == []
    logs = [f for _, _, files in os.walk(out) for f in files
            if f.endswith('.log')]
    assert len(logs) == 1


def test_analysis_tools_take_data_root(tmp_path, monkeypatch):
    """A visual tool's --data-root reaches the configs it loads."""
    from possec.analysis.common.cli import common_kwargs, tool_parser
    from possec.analysis.common.config import load_tool_config
    # set here so that the test's end restores the variable
    monkeypatch.setenv('POSSEC_DATA_ROOT', str(tmp_path / 'env'))
    parser = tool_parser('test', out_dir=str(tmp_path / 'out'))
    common_kwargs(parser.parse_args(
        [DEMO_FCN, '--data-root', str(tmp_path / 'data')]))
    assert _roots(load_tool_config(DEMO_FCN)) == {
        str(tmp_path / 'data' / 'synthetic' / 'uniform')}
