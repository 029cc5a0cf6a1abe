"""docs/results/refresh_rows.py: a changed row of a regenerated report
replaces its quote only where the docs quote that report, never a row
with the same keys quoted from another report."""

from .conftest import load_script


rr = load_script('docs', 'results', 'refresh_rows.py')
HEAD = '| condition | arm | unit | value |\n|---|---|---|---|'
OLD_ROW = '| P=1 | zeros | s0/d0 | 90.0 |'
NEW_ROW = '| P=1 | zeros | s0/d0 | 91.5 |'
SAME = '| P=1 | zeros | s1/d0 | 88.0 |'
OLD_PRIMARY = '- help endpoint (parsenet, tilt 10, P=1): +7.7 [+3.5, +11.8]'
NEW_PRIMARY = '- help endpoint (parsenet, tilt 10, P=1): +7.2 [+3.0, +11.4]'


def _report(row, primary):
    return f'# report\n\n{primary}\n\n{HEAD}\n{row}\n{SAME}\n'


def test_changes_pairs_rows_and_primary_lines_by_their_keys():
    change = rr.changes(_report(OLD_ROW, OLD_PRIMARY),
                        _report(NEW_ROW, NEW_PRIMARY))
    assert change == {OLD_ROW: NEW_ROW, OLD_PRIMARY: NEW_PRIMARY}


def test_changes_pairs_a_row_whose_unit_count_changed():
    # the medians table names a row by its comparison alone: the count of
    # units beside it is a value, and it changes when a unit joins
    head = ('| comparison | units | Δ key, last validation (declared) |'
            ' verdict |\n|---|---|---|---|')
    old = f'{head}\n| zeros - circular (P=0.5) | 5 | -3.1 [-7.3, +1.1] | no |\n'
    new = f'{head}\n| zeros - circular (P=0.5) | 6 | -2.4 [-6.0, +1.2] | no |\n'
    assert rr.changes(old, new) == {old.splitlines()[2]: new.splitlines()[2]}


def test_changes_leaves_a_key_alone_when_it_is_not_unique():
    old = f'{HEAD}\n{OLD_ROW}\n{OLD_ROW}\n'
    new = f'{HEAD}\n{NEW_ROW}\n{OLD_ROW}\n'
    assert rr.changes(old, new) == {}


def test_refresh_touches_only_the_quotes_of_that_report():
    change = {OLD_ROW: NEW_ROW, OLD_PRIMARY: NEW_PRIMARY}
    doc = '\n'.join([
        '## Results',
        '### Run A',
        'Rows of [A](results/run_a/study.md):',
        HEAD, OLD_ROW, '',
        OLD_PRIMARY, '',
        '### Run B (continued A: the same keys)',
        'Rows of [B](results/run_b.json):',
        HEAD, OLD_ROW, '',
        OLD_PRIMARY, '',
        '### Both',
        'B just before this table: [B](results/run_b.json)',
        HEAD, OLD_ROW, '',
        'A before this one: [A](results/run_a.json)',
        HEAD, OLD_ROW, '',
        '### No links here',
        HEAD, OLD_ROW, ''])
    text, n = rr.refresh(doc, 'run_a', change, {'run_a', 'run_b'})
    lines = text.split('\n')
    assert n == 3
    a = lines.index('### Run A')
    b = lines.index('### Run B (continued A: the same keys)')
    both = lines.index('### Both')
    none = lines.index('### No links here')
    assert NEW_ROW in lines[a:b] and NEW_PRIMARY in lines[a:b]
    assert NEW_ROW not in lines[b:both] and NEW_PRIMARY not in lines[b:both]
    # in a section linking both, each table by the link just before it
    header = HEAD.split('\n')[0]
    tables = [i for i in range(both, none) if lines[i] == header]
    assert len(tables) == 2
    assert lines[tables[0] + 2] == OLD_ROW
    assert lines[tables[1] + 2] == NEW_ROW
    assert lines[none:].count(OLD_ROW) == 1


def test_refresh_leaves_text_that_quotes_nothing_as_it_was():
    doc = '# Title\n\nNo table.\n\n## Section\n\nText.\n'
    assert rr.refresh(doc, 'run_a', {OLD_ROW: NEW_ROW}, {'run_a'}) == \
        (doc, 0)
