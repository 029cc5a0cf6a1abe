"""After a report is regenerated, the docs' quotes of it made current.

A row of the old report (``OLD_MD``, the ``study.md`` before the merge)
that the new one (``docs/results/NAME/study.md``) holds under the same
table header and the same naming cells (the columns in ``KEY_COLUMNS``:
condition, arm, unit and key; comparison, primary and family; never a
count such as ``units``, which changes when a unit joins) but with other
values is replaced, in the docs, by the new row; so is a primary line
(``- help ...``/``- hurt ...``, paired by the text before its first
``:``). Only where the quote
is of that report: a table whose text just before it links
``results/NAME`` (its ``.json`` or its folder), or, when that text links
no report, whose section does; a primary line whose section does. The
same keys recur in the reports of runs that continued others, so a
refresh that looked at keys alone would write one report's row into a
section that quotes another (tests/test_study_results_docs.py checks
each table against the reports linked before it). Rows that are new in
the report are not added anywhere: quoting them is the writer's choice.
::

    cp docs/results/position_study_help_windowed/study.md /tmp/old.md
    # ... merge, --report, pixel hashes ...
    python docs/results/refresh_rows.py position_study_help_windowed \\
        /tmp/old.md README.md docs/position_study.md \\
        docs/position_study_runs.md
"""
import argparse
import os
import os.path as osp
import re
from typing import Dict, Iterator, List, Set, Tuple

RESULTS = osp.dirname(osp.abspath(__file__))
LINK = re.compile(r'results/(\w+)(?:/|\.json)')


def _is_header(lines: List[str], i: int) -> bool:
    return (lines[i].startswith('|') and i + 1 < len(lines) and
            lines[i + 1].startswith('|---'))


# the columns of a report's tables that name a row rather than measure it
KEY_COLUMNS = frozenset([
    'arm', 'cell', 'comparison', 'condition', 'data', 'endpoint', 'family',
    'key', 'primary', 'readout', 'unit', 'variant',
    'variant (head / border / position)', 'vs reference'
])


def _cells(row: str) -> List[str]:
    return [c.strip() for c in row.strip().strip('|').split('|')]


def _key(header: str, row: str) -> Tuple[str, tuple]:
    names = _cells(header)
    return header, tuple(c for n, c in zip(names, _cells(row))
                         if n in KEY_COLUMNS)


def _primary(line: str) -> bool:
    return line.startswith(('- help ', '- hurt ')) and \
        '(parsenet, tilt' in line


def changes(old: str, new: str) -> Dict[str, str]:
    """``{old line: new line}`` for the rows and primary lines of a
    report that changed value, each paired by a key that is unique in
    both reports (ambiguous keys are left alone)."""
    def keyed(text):
        out: Dict[tuple, List[str]] = {}
        lines = text.splitlines()
        header = None
        for i, line in enumerate(lines):
            if _is_header(lines, i):
                header = line
            elif line.startswith('|---'):
                continue
            elif line.startswith('|') and header is not None:
                out.setdefault(_key(header, line), []).append(line)
            elif _primary(line):
                out.setdefault(('primary', line.split(':', 1)[0]),
                               []).append(line)
            else:
                header = None
        return out

    before, after = keyed(old), keyed(new)
    return {rows[0]: after[k][0] for k, rows in before.items()
            if len(rows) == 1 and len(after.get(k, ())) == 1 and
            rows[0] != after[k][0]}


def quotes(lines: List[str],
           reports: Set[str]) -> Iterator[Tuple[int, str, Set[str]]]:
    """``(index, heading, names)`` for each table row and primary line
    of a page's ``lines``: the names of ``reports`` it quotes, by the
    links to them of the text just before its table (since its section's
    heading or the table before), else of its section; for a primary
    line, of its section. Sections start at ``##`` to ``####``
    headings. The rule tests/test_study_results_docs.py holds the pages
    to."""
    starts = [0] + [i for i, line in enumerate(lines)
                    if re.match(r'#{2,4} ', line)] + [len(lines)]
    for a, b in zip(starts, starts[1:]):
        if a == b:
            continue
        section = set(LINK.findall('\n'.join(lines[a:b]))) & reports
        before: List[str] = []
        i = a
        while i < b:
            if not _is_header(lines, i):
                if _primary(lines[i]):
                    yield i, lines[a], section
                before.append(lines[i])
                i += 1
                continue
            linked = set(LINK.findall('\n'.join(before))) & reports or \
                section
            i += 2
            while i < b and lines[i].startswith('|'):
                yield i, lines[a], linked
                i += 1
            before = []


def committed_reports() -> Set[str]:
    """The names of the reports of docs/results (folders with a
    ``study.md``)."""
    return {n for n in os.listdir(RESULTS)
            if osp.isfile(osp.join(RESULTS, n, 'study.md'))}


def refresh(text: str, name: str, change: Dict[str, str],
            reports: Set[str]) -> Tuple[str, int]:
    """``text`` with the quotes of report ``name`` in ``change`` replaced,
    and how many were; ``reports``: every report a page may link."""
    lines = text.split('\n')
    done = 0
    for i, _, linked in list(quotes(lines, reports)):
        if name in linked and lines[i] in change:
            lines[i] = change[lines[i]]
            done += 1
    return '\n'.join(lines), done


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('name', help='the report, e.g. position_study_9600')
    p.add_argument('old', help='its study.md before it was regenerated')
    p.add_argument('docs', nargs='+', help='the pages that quote it')
    a = p.parse_args(argv)
    new_path = osp.join(RESULTS, a.name, 'study.md')
    if not osp.isfile(new_path):
        raise SystemExit(f'no report {new_path}: expected the name of a '
                         f'folder of docs/results')
    with open(a.old, encoding='utf-8') as f:
        old = f.read()
    with open(new_path, encoding='utf-8') as f:
        change = changes(old, f.read())
    print(f'{len(change)} rows or primary lines of {a.name} changed')
    reports = committed_reports()
    for doc in a.docs:
        with open(doc, encoding='utf-8') as f:
            text, n = refresh(f.read(), a.name, change, reports)
        with open(doc, 'w', encoding='utf-8') as f:
            f.write(text)
        print(f'{doc}: {n} quotes refreshed')


if __name__ == '__main__':
    main()
