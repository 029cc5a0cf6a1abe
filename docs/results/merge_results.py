"""A committed results file plus the finished cells of a study folder
that continued it elsewhere, as one report and results file.

The folder must hold the same settings (checked equal) and no cell the
file already holds; the records are taken as they are, and the commands
quoted are the file's followed by those that ran (or extended) the
folder's cells.
Used when the cells of training seed 2 of the help rerun ran on a fresh
machine after the first folder was gone::

    python docs/results/merge_results.py \
        docs/results/position_study_help_windowed.json FOLDER OUT_DIR

With ``--extended`` a cell the file already holds may be in the folder
too, when the folder's record is that cell run again and then extended
(``--keep-checkpoints``, then ``--extend``): its validations up to the
extension's start must equal the committed record's, value for value,
and the verdict the extension replaced must be the committed one. The
folder's record then replaces the committed one. Used for the help
endpoint's failed circular cells, which ran before cells kept their
state::

    python docs/results/merge_results.py --extended \
        --only 'position-prior-p1-t10-per__parsenet__*' \
        docs/results/position_study_help_windowed.json FOLDER OUT_DIR

``--only PATTERN`` keeps only the committed records whose name matches
the shell-style pattern (fnmatch) before the folder's join them.
"""
import argparse
import fnmatch
import json
import os.path as osp
import sys
from typing import List, Sequence

from possec.analysis.study.report import write_report
from possec.analysis.study.results import (_plain, code_versions,
                                           load_results)
from possec.analysis.study.run import (SETTINGS_FILE, folder_records,
                                       folder_commands)


def _same(a, b) -> bool:
    """Equal as the results file writes them (NaN as null)."""
    return (json.dumps(_plain(a), sort_keys=True) ==
            json.dumps(_plain(b), sort_keys=True))


def replace_extended(old: Sequence[dict], new: Sequence[dict]) -> List[dict]:
    """``old`` with each record of ``new`` that extends one of them in
    its place; a record of ``new`` that no record of ``old`` holds is
    added at the end.

    Raises:
        SystemExit: One line, when a record of ``new`` has the name of
            one in ``old`` but is not its extension (no extension, other
            cell, other validations before the extension, or another
            verdict before it).
    """
    by_name = {r['name']: r for r in new}
    out = []
    for r in old:
        n = by_name.pop(r['name'], None)
        if n is None:
            out.append(r)
            continue
        steps = n.get('extensions') or []
        if not steps:
            sys.exit(f'{r["name"]} is in both and the folder\'s record '
                     f'was not extended: it cannot replace the committed '
                     f'one')
        start = steps[0]['from_iter']
        before = [v for v in n['validations'] if v['iter'] <= start]
        if (not _same(n['cell'], r['cell'])
                or not _same(before, r['validations'])):
            sys.exit(f'{r["name"]}: the folder\'s run does not repeat the '
                     f'committed one (other cell or other validations up '
                     f'to {start}): it cannot replace it')
        if not _same(steps[0]['previous'], r['convergence']):
            sys.exit(f'{r["name"]}: the verdict its extension replaced is '
                     f'not the committed one')
        out.append(n)
    return out + list(by_name.values())


def main(committed: str, folder: str, out_dir: str,
         extended: bool = False, only: str = '') -> None:
    old = load_results(committed)
    if only:
        old['cells'] = [r for r in old['cells']
                        if fnmatch.fnmatchcase(r['name'], only)]
        if not old['cells']:
            sys.exit(f'no record of {committed} matches --only {only!r}')
    with open(osp.join(folder, SETTINGS_FILE)) as f:
        settings = json.load(f)
    differ = sorted(k for k in set(settings) | set(old['settings'])
                    if settings.get(k) != old['settings'].get(k))
    if differ:
        sys.exit(f'{folder} has other settings than {committed} '
                 f'({", ".join(differ)}): its cells cannot join them')
    new = list(folder_records(folder))
    both = sorted({r['name'] for r in old['cells']} &
                  {r['name'] for r in new})
    if both and not extended:
        sys.exit(f'cells in both {committed} and {folder}: '
                 f'{", ".join(both)} (--extended, when the folder\'s are '
                 f'those cells run again and extended)')
    cells = replace_extended(old['cells'], new)
    print(f'{len(old["cells"])} records from {committed} + {len(new)} '
          f'from {folder} ({len(both)} replacing the committed ones); ' +
          '; '.join(code_versions(cells)))
    commands = (old['command'] or '').split('\n') + folder_commands(
        folder, new)
    write_report(cells, out_dir, settings,
                 '\n'.join(c for c in commands if c))


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('committed', help='the committed results file')
    p.add_argument('folder', help='the study folder that continued it')
    p.add_argument('out_dir', help='where the report and results go')
    p.add_argument('--extended', action='store_true',
                   help='let the folder\'s extended reruns replace the '
                   'committed records they repeat')
    p.add_argument('--only', default='', metavar='PATTERN',
                   help='keep only the committed records whose name '
                   'matches PATTERN (fnmatch)')
    a = p.parse_args()
    main(a.committed, a.folder, a.out_dir, a.extended, a.only)
