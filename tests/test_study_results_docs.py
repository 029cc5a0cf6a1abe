"""The study's committed results re-derive the docs: ``--report`` on each
committed results file (docs/results/position_study*.json) regenerates its
committed report (``study.md`` byte for byte, its figures pixel for
pixel), and every table row of the results section of
docs/position_study.md and of docs/position_study_runs.md is a row of
one of those reports: of one linked just before its table or in its
section.

After a new study run or a deliberate change of the report, regenerate
each with ``python tools/analysis/position_study.py --report
docs/results/NAME.json --out-dir docs/results/NAME`` and its pixel hashes
with ``python -m tests.test_study_results_docs docs/results/NAME``; then
bring the pages' quotes of it up to date with ``python
docs/results/refresh_rows.py NAME OLD_STUDY_MD README.md docs/*.md``.
"""
import json
import os.path as osp
import sys

import pytest

from tests.conftest import load_script
from tests.test_study_report import PNGS, _tool, pixel_hashes

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
RESULTS = osp.join(REPO, 'docs', 'results')
#: The committed runs: results file name -> report folder name.
RUNS = ('position_study', 'position_study_1200', 'position_study_9600',
        'position_study_windowed', 'position_study_help_windowed',
        'position_study_hurt_declared', 'position_study_removal',
        'position_study_help_rerun')
#: The pages whose results section quotes the reports, and whether it
#: must quote a primary line: the study page (the comparison tables) and
#: its runs page (every run's rows and its quoted primary lines).
PAGES = (('position_study.md', False), ('position_study_runs.md', True))
SECTION = '## Results at convergence'
refresh_rows = load_script('docs', 'results', 'refresh_rows.py')


@pytest.fixture(scope='module')
def regenerated(tmp_path_factory):
    """Run name -> folder of its report regenerated from its results."""
    out = {}
    tool = _tool()
    for name in RUNS:
        folder = str(tmp_path_factory.mktemp(name))
        tool.main(['--report', osp.join(RESULTS, f'{name}.json'),
                   '--out-dir', folder])
        out[name] = folder
    return out


@pytest.mark.parametrize('name', RUNS)
def test_committed_report_regenerates_from_its_results_file(
        regenerated, name):
    with open(osp.join(RESULTS, name, 'study.md'), 'rb') as f:
        expected = f.read()
    with open(osp.join(regenerated[name], 'study.md'), 'rb') as f:
        assert f.read() == expected


@pytest.mark.parametrize('name', RUNS)
def test_committed_figures_regenerate(regenerated, name):
    import matplotlib
    committed = osp.join(RESULTS, name)
    with open(osp.join(committed, 'pixels.json')) as f:
        recorded = json.load(f)
    names = [n for n in PNGS if osp.isfile(osp.join(regenerated[name], n))]
    assert names and set(names) == set(recorded['sha256'])
    if recorded['matplotlib'] != matplotlib.__version__:
        pytest.skip(f"pixel hashes recorded with matplotlib "
                    f"{recorded['matplotlib']}, this is "
                    f"{matplotlib.__version__}")
    assert pixel_hashes(regenerated[name], names) == recorded['sha256']
    assert pixel_hashes(committed, names) == recorded['sha256']


@pytest.mark.parametrize('page_name, quotes_primary', PAGES)
def test_docs_tables_are_rows_of_the_reports(regenerated, page_name,
                                             quotes_primary):
    page = open(osp.join(REPO, 'docs', page_name), encoding='utf-8').read()
    assert SECTION in page
    lines = page.split(SECTION, 1)[1].split('\n## ', 1)[0].splitlines()
    report_rows = set()
    for folder in regenerated.values():
        with open(osp.join(folder, 'study.md'), encoding='utf-8') as f:
            report_rows.update(f.read().splitlines())
    rows = [line for line in lines
            if line.startswith('| ') and not line.startswith('| ---')]
    assert rows, 'the results section has no table'
    assert [r for r in rows if r not in report_rows] == []
    # and no table is a header without rows (a quote that lost its rows)
    empty = [line for line, after in zip(lines, lines[1:] + [''])
             if line.startswith('|---') and not after.startswith('| ')]
    assert empty == [], f'{page_name}: a table with no rows'
    # so is every primary comparison's line it quotes
    primary = [line for line in lines
               if line.startswith(('- help ', '- hurt ')) and
               '(parsenet, tilt' in line]
    if quotes_primary:
        assert primary, f'{page_name} quotes no primary comparison'
    assert [p for p in primary if p not in report_rows] == []
    # every figure it shows is a committed report's
    for line in lines:
        if line.startswith('![') and 'results/' in line:
            path = line.split('](', 1)[1].rstrip(')')
            assert osp.isfile(osp.join(REPO, 'docs', path)), path


@pytest.mark.parametrize('page_name', [name for name, _ in PAGES])
def test_each_table_quotes_the_reports_it_links(regenerated, page_name):
    """A table is checked against the reports linked in the text just
    before it (since its section's heading or the table before), else
    against those its section links; a primary line against those its
    section links (docs/results/refresh_rows.py's rule). Not against all
    of them: reports of runs that continued others share a row's first
    cells (condition, arm, unit), so a row refreshed from the wrong report
    would still be a row of *some* report."""
    page = open(osp.join(REPO, 'docs', page_name), encoding='utf-8').read()
    lines = page.split(SECTION, 1)[1].split('\n## ', 1)[0].split('\n')
    reports = {}
    for name, folder in regenerated.items():
        with open(osp.join(folder, 'study.md'), encoding='utf-8') as f:
            reports[name] = set(f.read().splitlines())
    wrong = []
    for i, heading, linked in refresh_rows.quotes(lines, set(reports)):
        names = sorted(linked)
        if not names:
            wrong.append((heading, 'links no report (link '
                          'results/NAME.json before the table)',
                          lines[i][:80]))
        elif not any(lines[i] in reports[name] for name in names):
            wrong.append((heading, names, lines[i][:80]))
    assert wrong == []


@pytest.mark.parametrize('name', RUNS)
def test_every_committed_cell_names_its_code_and_convergence(name):
    with open(osp.join(RESULTS, f'{name}.json')) as f:
        data = json.load(f)
    assert data['cells']
    for record in data['cells']:
        assert len(record['code']['commit']) == 40
        assert record['code']['dirty'] is False
        assert record['convergence']['converged'] in (True, False)


if __name__ == '__main__':
    import matplotlib
    folder = sys.argv[1]
    names = [n for n in PNGS if osp.isfile(osp.join(folder, n))]
    with open(osp.join(folder, 'pixels.json'), 'w') as f:
        json.dump(dict(matplotlib=matplotlib.__version__,
                       sha256=pixel_hashes(folder, names)), f, indent=1,
                  sort_keys=True)
        f.write('\n')
