"""After a report is regenerated, the docs' quotes of it made current.

A row of the old report (``OLD_MD``, the ``study.md`` before the merge)
that the new one (``docs/results/NAME/study.md``) holds under the same
table header and first three cells (condition, arm, unit; or
comparison, primary, family) but with other values is replaced, in the
docs, by the new row; so is a primary line (``- help ...``/``- hurt
...``, paired by the text before its first ``:``). Only where the quote
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
import os.path as osp
import re
from typing import Dict, List, Tuple

RESULTS = osp.dirname(osp.abspath(__file__))
LINK = re.compile(r'results/(\w+)(?:/|\.json)')
SECTION = re.compile(r'\n(?=#{2,4} )')


def _is_header(lines: List[str], i: int) -> bool:
    return (lines[i].startswith('|') and i + 1 < len(lines) and
            lines[i + 1].startswith('|---'))


def _key(header: str, row: str) -> Tuple[str, tuple]:
    cells = tuple(c.strip() for c in row.strip().strip('|').split('|'))
    return header, cells[:3]


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


def refresh(text: str, name: str, change: Dict[str, str]) -> Tuple[str, int]:
    """``text`` with the quotes of report ``name`` in ``change`` replaced,
    and how many were."""
    parts = SECTION.split(text)
    done = 0
    for p, part in enumerate(parts):
        section_links = set(LINK.findall(part))
        lines = part.split('\n')
        before: List[str] = []
        i = 0
        while i < len(lines):
            if not _is_header(lines, i):
                line = lines[i]
                if _primary(line) and line in change and \
                        name in section_links:
                    lines[i] = change[line]
                    done += 1
                before.append(line)
                i += 1
                continue
            links = set(LINK.findall('\n'.join(before))) or section_links
            i += 2
            while i < len(lines) and lines[i].startswith('|'):
                if name in links and lines[i] in change:
                    lines[i] = change[lines[i]]
                    done += 1
                i += 1
            before = []
        parts[p] = '\n'.join(lines)
    return '\n'.join(parts), done


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
    for doc in a.docs:
        with open(doc, encoding='utf-8') as f:
            text, n = refresh(f.read(), a.name, change)
        with open(doc, 'w', encoding='utf-8') as f:
            f.write(text)
        print(f'{doc}: {n} quotes refreshed')


if __name__ == '__main__':
    main()
