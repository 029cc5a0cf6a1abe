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

With ``--rerun-failed`` a cell the file already holds may be in the
folder too, when the committed record failed its convergence test and
the folder's is a new run of the same cell (same seeds and settings;
typically run with ``--keep-checkpoints`` and then ``--extend``, which the
committed run could not be): the folder's record replaces it and keeps
the replaced one's code version, verdict and value under ``rerun_of``,
with the iteration of the first validation the rerun did not repeat.
A committed record that passed is never replaced. CPU runs of one cell
need not repeat bit for bit, so a rerun may be a new draw of the cell
rather than the committed run continued. Used for the help endpoint's failed
circular cells, which ran before cells kept their state (and for a failed
cell extended from its kept state, whose record then repeats the failed
one to its end)::

    python docs/results/merge_results.py --rerun-failed \
        --only 'position-prior-p1-t10-per__*' \
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


def _first_difference(old: Sequence[dict], new: Sequence[dict]):
    """The iteration of the first of ``old``'s validations that ``new``
    does not repeat (equal as the results file writes them, NaN as
    null), or None when it repeats them all."""
    by_iter = {v['iter']: v for v in new}
    for v in old:
        n = by_iter.get(v['iter'])
        if n is None or json.dumps(_plain(n), sort_keys=True) != json.dumps(
                _plain(v), sort_keys=True):
            return v['iter']
    return None


def _rerun_of(record: dict, rerun: dict) -> dict:
    """What a results file keeps of a record a rerun replaced, and the
    first validation the rerun did not repeat (``first_difference``;
    None when it repeats every one)."""
    conv = record.get('convergence') or {}
    key = conv.get('key')
    old = record.get('validations') or []
    return dict(code=record.get('code'), convergence=conv,
                value=(record.get('metrics') or {}).get(key),
                last_iter=old[-1].get('iter') if old else None,
                first_difference=_first_difference(
                    old, rerun.get('validations') or []))


def replace_failed(old: Sequence[dict], new: Sequence[dict]) -> List[dict]:
    """``old`` with each record of ``new`` that reruns a failed one of
    them in its place (``rerun_of`` added); a record of ``new`` that no
    record of ``old`` holds is added at the end.

    Raises:
        SystemExit: One line, when a record of ``new`` has the name of
            one in ``old`` that converged, or of another cell.
    """
    by_name = {r['name']: r for r in new}
    out = []
    for r in old:
        n = by_name.pop(r['name'], None)
        if n is None:
            out.append(r)
            continue
        if (r.get('convergence') or {}).get('converged') is not False:
            sys.exit(f'{r["name"]}: the committed record did not fail its '
                     f'convergence test, so no rerun replaces it')
        if json.dumps(n['cell'], sort_keys=True) != json.dumps(
                r['cell'], sort_keys=True):
            sys.exit(f'{r["name"]}: the folder\'s record is another cell '
                     f'under the same name: it cannot replace it')
        out.append(dict(n, rerun_of=_rerun_of(r, n)))
    return out + list(by_name.values())


def main(committed: str, folder: str, out_dir: str,
         rerun_failed: bool = False, only: str = '') -> None:
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
    if both and not rerun_failed:
        sys.exit(f'cells in both {committed} and {folder}: '
                 f'{", ".join(both)} (--rerun-failed, when the folder\'s '
                 f'run again cells that failed)')
    cells = replace_failed(old['cells'], new)
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
    p.add_argument('--rerun-failed', action='store_true',
                   help='let the folder\'s reruns replace the committed '
                   'records of the same cells that failed convergence')
    p.add_argument('--only', default='', metavar='PATTERN',
                   help='keep only the committed records whose name '
                   'matches PATTERN (fnmatch)')
    a = p.parse_args()
    main(a.committed, a.folder, a.out_dir, a.rerun_failed, a.only)
