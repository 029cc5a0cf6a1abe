"""The two-layer probe again at longer budgets on kept study cells
(possec.analysis.study.reprobe, ``--reprobe`` of
tools/analysis/position_study.py)."""
import glob
import json
import os
import os.path as osp
import shutil

import pytest
from scipy import stats

from possec.analysis.study import reprobe as study_reprobe
from possec.analysis.study import run as study
from possec.analysis.study.design import Arm, Cell
from possec.analysis.study.selection import block_cells
from possec.analysis.study.settings import StudyError

from .test_study_report import _tool

SETTINGS = dict(max_iters=4, tail_iters=0, schedule='constant',
                batch_size=2, img_size=32, num_train=4, num_val=2,
                probe_images=6, probe_epochs=1, nonlinear_probe_epochs=3,
                threads=1, val_batch_size=2, keep_checkpoint=True)


def _mean(probe):
    values = list(probe['spc'].values())
    return sum(values) / len(values)


@pytest.fixture(scope='module')
def kept(tmp_path_factory):
    """A tiny study folder: zero and circular padding, seeds 0 and 1,
    each cell's last state kept, probed at training time by the linear
    readout and by a two-layer one of 3 epochs."""
    out = str(tmp_path_factory.mktemp('reprobe') / 'study')
    cells = block_cells(
        [Cell('position-coded', 'parsenet', 'zeros', 'none', 0).condition],
        [Arm('parsenet', 'zeros'), Arm('parsenet', 'circular')], [0, 1],
        [0])
    study.run_study(cells, out, SETTINGS, log=lambda line: None)
    records = {r['name']: r for r in study.folder_records(out)}
    return out, records


@pytest.fixture(scope='module')
def reprobed(kept, tmp_path_factory):
    out, records = kept
    dest = str(tmp_path_factory.mktemp('reprobe_out'))
    files = study_reprobe.reprobe_folders([out], dest, [3, 6],
                                          log=lambda line: None)
    with open(files['results']) as f:
        return dest, files, json.load(f), records


def test_the_rebuilt_backbone_is_the_one_the_record_read(reprobed):
    """The backbone rebuilt from the dumped config and the kept state
    gives the linear readout the training run's backbone gave, and the
    two-layer readout at the record's budget (3 epochs) too."""
    _, _, data, records = reprobed
    assert len(data['cells']) == 4
    for entry in data['cells']:
        record = records[entry['name']]
        assert entry['rerun']['probe']['spc'] == pytest.approx(
            record['probe']['spc'], abs=1e-9)
        assert entry['readouts']['3']['spc'] == pytest.approx(
            record['probe_nonlinear']['spc'], abs=1e-9)
        assert entry['readouts']['6']['epochs'] == 6
        assert entry['readouts']['6']['convs'] == 2
        assert entry['rerun']['linear_difference'] <= 1e-6


def test_the_rule_at_each_budget_is_the_paired_difference(reprobed):
    """The rule's numbers, from the results file by hand: the zero-padded
    cells' two-layer minus linear mean SPC, its mean against 0 and its
    t interval (scipy)."""
    dest, _, data, _ = reprobed
    zeros = [e for e in data['cells'] if e['cell']['padding'] == 'zeros']
    assert len(zeros) == 2
    rows = {r['epochs']: r for r in study_reprobe.rule_rows(data)}
    assert sorted(rows) == [3, 6]
    for budget, row in rows.items():
        diffs = [_mean(e['readouts'][str(budget)]) - _mean(e['probe'])
                 for e in zeros]
        mean = sum(diffs) / 2
        assert row['n'] == 2
        assert row['mean_difference'] == pytest.approx(mean)
        assert row['accepted'] is (mean >= 0)
        low, high = stats.t.interval(0.95, 1, loc=mean,
                                     scale=stats.sem(diffs))
        assert row['interval']['ci_low'] == pytest.approx(low)
        assert row['interval']['ci_high'] == pytest.approx(high)
        loss = [e['readouts'][str(budget)]['final_loss'] for e in zeros]
        linear = [e['probe']['final_loss'] for e in zeros]
        assert row['loss'] == pytest.approx(sum(loss) / 2)
        assert row['linear_loss'] == pytest.approx(sum(linear) / 2)
        assert row['above'] == sum(a > b for a, b in zip(loss, linear))
        text = open(osp.join(dest, 'reprobe.md')).read()
        assert (f"| {budget} | 2 | {mean:+.3f} | [{low:+.3f}, "
                f"{high:+.3f}] |") in text
        assert (f"| {sum(loss) / 2:.3f} / {sum(linear) / 2:.3f} "
                f"({row['above']} of 2) |") in text
    assert 'equals the record\'s on 4 of 4' in text
    assert osp.getsize(osp.join(dest, 'reprobe.png')) > 0


def test_a_rerun_continues_and_trains_only_what_is_missing(
        reprobed, kept, monkeypatch, tmp_path):
    out, _ = kept
    done, _, before, _ = reprobed
    dest = str(tmp_path / 'again')
    shutil.copytree(done, dest)
    calls = []
    real = study_reprobe.probe_backbone

    def counted(*args, **kwargs):
        calls.append(kwargs.get('epochs'))
        return real(*args, **kwargs)

    monkeypatch.setattr(study_reprobe, 'probe_backbone', counted)
    lines = []
    study_reprobe.reprobe_folders([out], dest, [3, 6], log=lines.append)
    assert calls == []
    assert not any('differs from the record' in line for line in lines)
    with open(osp.join(dest, 'reprobe.json')) as f:
        assert json.load(f)['cells'] == before['cells']
    study_reprobe.reprobe_folders([out], dest, [3, 4, 6],
                                  log=lambda line: None)
    assert calls == [4] * 4


def test_a_killed_run_keeps_each_finished_readout(kept, tmp_path,
                                                  monkeypatch):
    out, _ = kept
    real = study_reprobe.probe_backbone

    def dies_at_six(*args, **kwargs):
        if kwargs.get('epochs') == 6:
            raise RuntimeError('killed')
        return real(*args, **kwargs)

    monkeypatch.setattr(study_reprobe, 'probe_backbone', dies_at_six)
    dest = str(tmp_path / 'out')
    with pytest.raises(RuntimeError, match='killed'):
        study_reprobe.reprobe_folders([out], dest, [3, 6],
                                      log=lambda line: None)
    assert not osp.exists(osp.join(dest, 'reprobe.json'))
    [name] = os.listdir(osp.join(dest, 'cells'))
    with open(osp.join(dest, 'cells', name)) as f:
        assert sorted(json.load(f)['readouts']) == ['3']


def test_report_regenerates_from_the_results_file(reprobed, tmp_path):
    dest, files, _, _ = reprobed
    _tool().main(['--report', files['results'], '--out-dir',
                  str(tmp_path)])
    assert open(tmp_path / 'reprobe.md').read() == \
        open(files['markdown']).read()


def test_a_state_that_is_not_the_recorded_backbone_is_reported(
        kept, tmp_path, monkeypatch):
    """A linear probe that does not reproduce the record's (another
    backbone) is logged per cell and counted in the check line."""
    out, _ = kept
    real = study_reprobe.probe_backbone

    def shifted(*args, **kwargs):
        result = real(*args, **kwargs)
        if kwargs.get('epochs') is None:
            result['spc'] = {k: v + 0.25 for k, v in result['spc'].items()}
        return result

    monkeypatch.setattr(study_reprobe, 'probe_backbone', shifted)
    lines = []
    files = study_reprobe.reprobe_folders(
        [out], str(tmp_path / 'o'), [3], log=lines.append,
        keep=lambda record: record['cell']['padding'] == 'zeros')
    assert sum('differs from the record\'s by 0.25' in line
               for line in lines) == 2
    assert "equals the record's on 0 of 2 cell(s) (largest |SPC " \
        "difference| 0.25)" in open(files['markdown']).read()


def test_bad_input_is_refused_in_one_line(kept, tmp_path):
    out, _ = kept
    with pytest.raises(StudyError, match='not a study folder'):
        study_reprobe.reprobe_folders([str(tmp_path)], str(tmp_path / 'o'),
                                      [3])
    with pytest.raises(StudyError, match='integers >= 3'):
        study_reprobe.reprobe_folders([out], str(tmp_path / 'o'), [2])
    with pytest.raises(StudyError, match='distinct'):
        study_reprobe.reprobe_folders([out], str(tmp_path / 'o'), [3, 3])
    with pytest.raises(StudyError, match='--keep-checkpoints'):
        study_reprobe.reprobe_folders([out], str(tmp_path / 'o'), [3],
                                      keep=lambda record: False)
    bad = tmp_path / 'other.json'
    bad.write_text(json.dumps(dict(format='something else')))
    with pytest.raises(StudyError, match='not a reprobe results file'):
        study_reprobe.reprobe_report(str(bad), str(tmp_path))


def test_cli_reprobe_chooses_cells(kept, tmp_path, capsys):
    out, _ = kept
    dest = str(tmp_path / 'cli')
    _tool().main(['--reprobe', out, '--paddings', 'circular',
                  '--reprobe-epochs', '3', '--out-dir', dest])
    with open(osp.join(dest, 'reprobe.json')) as f:
        data = json.load(f)
    assert {e['cell']['padding'] for e in data['cells']} == {'circular'}
    assert len(data['cells']) == 2
    assert '--paddings circular' in data['command']
    assert 'no zero-padded' not in capsys.readouterr().err
    text = open(osp.join(dest, 'reprobe.md')).read()
    assert '| 3 | 0 | | | | | | no cell to judge |' in text


COMMITTED = sorted(glob.glob(osp.join(
    osp.dirname(osp.dirname(osp.abspath(__file__))), 'docs', 'results',
    'position_study_reprobe*.json')))


@pytest.mark.parametrize('path', COMMITTED,
                         ids=[osp.basename(p) for p in COMMITTED])
def test_committed_reprobe_report_regenerates(path, tmp_path):
    """Each committed reprobe results file regenerates its committed
    report byte for byte, and its check line holds: the linear probe read
    again from the kept state equals the record's on every cell."""
    _tool().main(['--report', path, '--out-dir', str(tmp_path)])
    committed = osp.join(osp.splitext(path)[0], 'reprobe.md')
    assert open(tmp_path / 'reprobe.md').read() == open(committed).read()
    with open(path) as f:
        data = json.load(f)
    assert all(e['rerun']['linear_difference'] <= 1e-6
               for e in data['cells'])


def test_the_rule_counts_cells_of_one_name_from_two_folders(reprobed):
    """Two folders may hold a cell of the same name trained twice (other
    code or settings: other numbers): the rule pairs each by its
    folder-qualified key, so both count; one backbone held twice (the
    same linear probe numbers, even validated otherwise and named under
    another condition) counts once and the report names it."""
    dest, _, data, _ = reprobed
    zeros = [e for e in data['cells'] if e['cell']['padding'] == 'zeros']
    other = json.loads(json.dumps(zeros[0]))
    other.update(key='other__' + zeros[0]['key'], folder='other')
    other['probe']['spc'] = {k: v + 0.01
                             for k, v in other['probe']['spc'].items()}
    rows = study_reprobe.rule_rows(dict(data, cells=zeros + [other]))
    assert all(row['n'] == 3 for row in rows)
    copy = json.loads(json.dumps(zeros[0]))
    copy.update(key='copy__' + zeros[0]['key'], folder='copy',
                convergence=dict(converged=True, values=[1.0, 2.0]))
    copy['cell'].update(layout='prior-shift', prior=0.5, val_prior=0.5)
    cells = zeros + [copy]
    assert study_reprobe.distinct(cells) == (
        zeros, {copy['key']: zeros[0]['key']})
    rows = study_reprobe.rule_rows(dict(data, cells=cells))
    assert all(row['n'] == 2 for row in rows)
    path = osp.join(dest, 'twins.json')
    with open(path, 'w') as f:
        json.dump(dict(data, cells=data['cells'] + [copy]), f)
    study_reprobe.reprobe_report(path, str(dest))
    text = open(osp.join(dest, 'reprobe.md')).read()
    assert f"{copy['key']} is {zeros[0]['key']}" in text
    study_reprobe.reprobe_report(osp.join(dest, 'reprobe.json'), str(dest))


def test_zero_minus_circular_on_each_readout(reprobed):
    """The paired padding rows, from the results file by hand: zero minus
    circular mean SPC per unit on the linear readout and on each budget,
    their mean, t interval and t test (scipy)."""
    dest, _, data, _ = reprobed
    by = {(e['cell']['padding'], e['cell']['seed']): e
          for e in data['cells']}
    rows = study_reprobe.padding_rows(data)
    assert [r['epochs'] for r in rows] == [None, 3, 6]
    text = open(osp.join(dest, 'reprobe.md')).read()
    for row in rows:
        def read(e):
            return _mean(e['probe'] if row['epochs'] is None
                         else e['readouts'][str(row['epochs'])])
        diffs = [read(by['zeros', s]) - read(by['circular', s])
                 for s in (0, 1)]
        assert row['units'] == ['s0/d0', 's1/d0']
        assert row['differences'] == pytest.approx(diffs)
        mean = sum(diffs) / 2
        low, high = stats.t.interval(0.95, 1, loc=mean,
                                     scale=stats.sem(diffs))
        assert row['interval']['ci_low'] == pytest.approx(low)
        assert row['interval']['ci_high'] == pytest.approx(high)
        assert row['p'] == pytest.approx(
            stats.ttest_1samp(diffs, 0.0).pvalue)
        assert f"| {mean:+.3f} | [{low:+.3f}, {high:+.3f}] |" in text
    positive = sum(d > 0 for r in rows if r['epochs'] == 6
                   for d in r['differences'])
    assert (f'two-layer 6: zero padding reads more in {positive} of 2 '
            f'pairs') in text


def test_kept_cells_lists_each_kept_state_with_its_dumped_config(kept):
    out, records = kept
    cells = study_reprobe.kept_cells([out])
    assert sorted(c.record['name'] for c in cells) == sorted(records)
    for c in cells:
        assert c.folder == out and osp.isfile(c.checkpoint)
        assert c.config.endswith('.py') and osp.dirname(c.config) == c.work
    assert study_reprobe.kept_cells(
        [out], keep=lambda r: r['cell']['seed'] == 1) == [
            c for c in cells if c.record['cell']['seed'] == 1]


def test_kept_probe_reads_the_record_and_applies_its_overrides(kept):
    """With the record's settings the linear readout is the record's; a
    learning-rate override reaches the readout's optimiser (at 1e-12 its
    epoch losses do not move, at the record's rate they do); the thread
    count is the record's inside and restored after; an unknown setting
    is refused in one line."""
    out, _ = kept
    torch = pytest.importorskip('torch')
    cell = study_reprobe.kept_cells([out])[0]
    threads = torch.get_num_threads()
    with study_reprobe.kept_probe(cell.record, cell.config,
                                  cell.checkpoint) as probe:
        assert torch.get_num_threads() == SETTINGS['threads']
        assert probe()['spc'] == pytest.approx(cell.record['probe']['spc'],
                                               abs=1e-9)
        moving = probe(epochs=3)['losses']
    assert torch.get_num_threads() == threads
    with study_reprobe.kept_probe(cell.record, cell.config, cell.checkpoint,
                                  probe_lr=1e-12) as probe:
        still = probe(epochs=3)['losses']
    assert len(still) == len(moving) == 3
    assert max(abs(v - still[0]) for v in still) < 1e-6 * still[0]
    assert max(abs(v - moving[0]) for v in moving) > 1e-3 * moving[0]
    with pytest.raises(StudyError, match='unknown study settings'):
        with study_reprobe.kept_probe(cell.record, cell.config,
                                      cell.checkpoint, probe_rate=0.1):
            pass
