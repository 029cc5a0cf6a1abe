"""Extending a study cell that failed the convergence test from its saved
state (possec.analysis.study.extend, ``--keep-checkpoints`` and
``--extend`` of tools/analysis/position_study.py)."""
import json
import os
import os.path as osp
import statistics

import pytest
import torch

from possec.analysis.study import cells as study_cells
from possec.analysis.study import extend as study_extend
from possec.analysis.study import run as study
from possec.analysis.study.design import Arm, Cell
from possec.analysis.study.selection import block_cells
from possec.analysis.study.settings import StudyError, StudySettings
from possec.fileio import dump_json

from .test_study_report import _tool

SETTINGS = dict(max_iters=4, tail_iters=4, schedule='constant',
                converge_window=2, val_every=2, batch_size=2, img_size=32,
                num_train=4, num_val=2, probe_images=6, probe_epochs=1,
                threads=1, val_batch_size=2)


def _collect_dir(out):
    return osp.join(osp.dirname(out), 'collected')


def _cells():
    return block_cells(
        [Cell('position-coded', 'parsenet', 'zeros', 'none', 0).condition],
        [Arm('parsenet', 'zeros')], [0], [0])


def _mark_unconverged(out, cell):
    """The tiny cell's key metric does not move, so it passes; its record
    is marked as a failed test (what the extension acts on)."""
    path = osp.join(out, 'runs', cell.name, 'result.json')
    with open(path) as f:
        record = json.load(f)
    record['convergence']['converged'] = False
    with open(path, 'w') as f:
        json.dump(record, f)
    return record


def _adam_steps(path):
    state = torch.load(path, map_location='cpu', weights_only=False)
    steps = {float(s['step']) for s in
             state['optimizer']['state'].values()}
    return steps, state['meta']['iter']


@pytest.fixture(scope='module')
def kept(tmp_path_factory):
    """A tiny windowed study run with --keep-checkpoints (8 iterations,
    validated at 2, 4, 6, 8), its record marked unconverged."""
    out = str(tmp_path_factory.mktemp('extend') / 'study')
    cells = _cells()
    study.run_study(cells, out, dict(SETTINGS, keep_checkpoint=True),
                    log=lambda line: None)
    before = _mark_unconverged(out, cells[0])
    return out, cells, before


def test_a_kept_cell_saves_its_last_state_only(kept):
    out, cells, before = kept
    work = osp.join(out, 'runs', cells[0].name)
    assert [v['iter'] for v in before['validations']] == [2, 4, 6, 8]
    assert osp.isfile(osp.join(work, 'iter_8.pth'))
    assert not any(osp.isfile(osp.join(work, f'iter_{i}.pth'))
                   for i in range(1, 8))
    steps, it = _adam_steps(osp.join(work, 'iter_8.pth'))
    assert steps == {8.0} and it == 8


def test_a_failed_extension_leaves_the_record_and_state(kept, monkeypatch):
    out, cells, before = kept
    work = osp.join(out, 'runs', cells[0].name)

    def dies(*args, **kwargs):
        raise RuntimeError('killed')

    monkeypatch.setattr(study_cells, 'train_cell', dies)
    with pytest.raises(RuntimeError, match='killed'):
        study_extend.extend_study(cells, out, SETTINGS, 4,
                                  log=lambda line: None, stale_after=0.5,
                                  heartbeat=0.1)
    with open(osp.join(work, 'result.json')) as f:
        assert json.load(f) == before
    assert osp.isfile(osp.join(work, 'iter_8.pth'))


def test_extension_continues_the_saved_state_and_judges_again(kept):
    """Runs after the failed attempt above: its claim is stale and taken
    over. The extension trains iterations 9-12 from the state at 8 (the
    optimizer's step count goes on from 8), validates at 10 and 12, and
    the verdict compares the median of the validations at 6, 8 with that
    at 10, 12."""
    import time
    time.sleep(0.6)  # the killed attempt's claim goes stale
    out, cells, before = kept
    work = osp.join(out, 'runs', cells[0].name)
    lines = []
    run = study_extend.extend_study(cells, out, SETTINGS, 4,
                                    command='extend it', log=lines.append,
                                    stale_after=0.5, heartbeat=0.1)
    assert run['ran'] == [cells[0].name]
    r = run['results'][0]
    assert [v['iter'] for v in r['validations']] == [2, 4, 6, 8, 10, 12]
    assert r['validations'][:4] == before['validations']
    steps, it = _adam_steps(osp.join(work, 'iter_12.pth'))
    assert steps == {12.0} and it == 12
    assert not osp.isfile(osp.join(work, 'iter_8.pth'))
    key = {v['iter']: v['metrics']['mIoU_pairs'] for v in r['validations']}
    conv = r['convergence']
    a = statistics.median([key[6], key[8]])
    b = statistics.median([key[10], key[12]])
    assert conv['iters'] == [8, 12]
    assert conv['criterion'].endswith('extended from its saved state: the '
                                      'end of the run it extended (8) in '
                                      'the role of the schedule\'s end')
    assert conv['window_iters'] == [[6, 8], [10, 12]]
    assert conv['values'] == pytest.approx([a, b])
    assert conv['converged'] == (abs(b - a) < SETTINGS.get('converge_tol',
                                                           2.0))
    step = r['extensions'][0]
    assert (step['from_iter'], step['to_iter']) == (8, 12)
    assert step['previous'] == before['convergence']
    assert step['command'] == 'extend it'
    # the record's numbers are the extended model's last validation
    with open(osp.join(work, 'metrics.json')) as f:
        assert r['metrics']['mIoU'] == pytest.approx(json.load(f)['mIoU'])
    assert r['validations'][-1]['metrics']['mIoU'] == pytest.approx(
        r['metrics']['mIoU'])
    # every iteration's loss: the first 8 are the first run's
    assert r['loss_curve']['iters'] == list(range(1, 13))
    assert r['loss_curve']['loss'][:8] == pytest.approx(
        before['loss_curve']['loss'])
    assert r['time_s']['total'] > before['time_s']['total']
    # the report says which cell was extended and reads its last test
    report = open(run['files']['markdown']).read()
    assert ('Extended from their saved state' in report and
            f'{cells[0].name} (8 -> 12; before:' in report)
    assert '| 6-8 / 10-12 |' in report and '| 4 (6-12) |' in report
    # --collect quotes the command that extended a cell
    collected = study.collect_folder(out, _collect_dir(out))
    assert 'extend it' in open(collected['markdown']).read()
    # nothing left to extend, whether the extension passed or failed again
    # (a cell is extended once): one line, record and state left as they are
    path = osp.join(work, 'result.json')
    for verdict in (conv['converged'], not conv['converged']):
        record = dict(r, convergence=dict(conv, converged=verdict))
        dump_json(record, path)
        again = []
        with pytest.raises(StudyError, match='can be extended'):
            study_extend.extend_study(cells, out, SETTINGS, 4,
                                      log=again.append)
        assert any('extended once' in line for line in again) == (
            not verdict)
        with open(path) as f:
            assert json.load(f) == record
        assert osp.isfile(osp.join(work, 'iter_12.pth'))
    dump_json(r, path)


def test_extension_trains_what_one_longer_run_trains(kept, tmp_path):
    """The extended cell (8 + 4 iterations, resumed) against one run of
    12 iterations from scratch: the same weights, bit for bit (the data
    order from mmengine's replay, the dropout masks and augmentations
    from ResumeRNGHook), and the same validations."""
    out, cells, _ = kept
    ext = osp.join(out, 'runs', cells[0].name)
    if not osp.isfile(osp.join(ext, 'iter_12.pth')):
        pytest.skip('needs the extension of the test above')
    longer = str(tmp_path / 'longer')
    run = study.run_study(cells, longer, dict(SETTINGS, tail_iters=8,
                                              keep_checkpoint=True),
                          log=lambda line: None)
    a = torch.load(osp.join(ext, 'iter_12.pth'), map_location='cpu',
                   weights_only=True)['state_dict']
    b = torch.load(osp.join(longer, 'runs', cells[0].name, 'iter_12.pth'),
                   map_location='cpu', weights_only=True)['state_dict']
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    with open(osp.join(ext, 'result.json')) as f:
        extended = json.load(f)
    assert extended['validations'] == run['results'][0]['validations']


def test_keeping_the_state_changes_no_number(kept, tmp_path):
    """A cell run without --keep-checkpoints trains the same: the loss of
    every iteration and every validation equal the kept run's."""
    out, cells, before = kept
    plain = str(tmp_path / 'plain')
    r = study.run_study(cells, plain, SETTINGS,
                        log=lambda line: None)['results'][0]
    assert r['loss_curve'] == before['loss_curve']
    assert r['validations'] == before['validations']
    assert not any(name.endswith('.pth') for name in
                   os.listdir(osp.join(plain, 'runs', cells[0].name)))


def test_extension_refuses_bad_input_in_one_line(tmp_path, kept):
    out, cells, _ = kept
    s = StudySettings.from_dict(SETTINGS)
    for extra, word in ((3, 'multiple of 2'), (2, 'more than 2'),
                        (0, 'positive'), (True, 'positive')):
        with pytest.raises(StudyError, match=word) as err:
            study_extend.extend_study(cells, out, s, extra)
        assert '\n' not in str(err.value)
    # a study run without --keep-checkpoints: nothing to resume from
    plain = str(tmp_path / 'plain')
    study.run_study(cells, plain, SETTINGS, log=lambda line: None)
    record = _mark_unconverged(plain, cells[0])
    lines = []
    with pytest.raises(StudyError, match='can be extended'):
        study_extend.extend_study(cells, plain, SETTINGS, 4,
                                  log=lines.append)
    assert any('no saved state' in line for line in lines)
    with pytest.raises(StudyError, match='--keep-checkpoints'):
        study_extend.extend_cell(record, s, osp.join(plain, 'runs',
                                                     cells[0].name), 4)
    # other settings than the folder's are refused, naming the key
    with pytest.raises(StudyError, match='max_iters'):
        study_extend.extend_study(cells, out, dict(SETTINGS, max_iters=6,
                                                   tail_iters=6), 4)


def test_cli_keep_checkpoints_and_extend(repo_root, monkeypatch, capsys):
    """--keep-checkpoints is a runtime setting (a folder continues with
    or without it); --extend calls the extension with the grid."""
    tool = _tool()
    seen = {}

    def fake_extend(cells, out, settings, extra, **kwargs):
        seen.update(cells=cells, out=out, settings=settings, extra=extra)
        return dict(results=[], ran=[], files=dict(markdown='m',
                                                   results='r'))

    monkeypatch.setattr(study_extend, 'extend_study', fake_extend)
    tool.main(['--converged', '--primary', '--contrasts', 'hurt',
               '--seeds', '0', '--data-seeds', '0', '--keep-checkpoints',
               '--extend', '4800', '--out-dir', 'unused'])
    assert seen['extra'] == 4800 and seen['out'] == 'unused'
    assert seen['settings'].keep_checkpoint is True
    assert len(seen['cells']) == 2
    assert 'keep_checkpoint' not in seen['settings'].numbers_dict()
    assert '0 cell(s) extended' in capsys.readouterr().out
