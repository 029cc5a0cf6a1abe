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
"""
import json
import os.path as osp
import sys

from possec.analysis.study.report import write_report
from possec.analysis.study.results import code_versions, load_results
from possec.analysis.study.run import (SETTINGS_FILE, folder_records,
                                       folder_commands)


def main(committed: str, folder: str, out_dir: str) -> None:
    old = load_results(committed)
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
    if both:
        sys.exit(f'cells in both {committed} and {folder}: '
                 f'{", ".join(both)}')
    print(f'{len(old["cells"])} records from {committed} + {len(new)} '
          f'from {folder}; ' + '; '.join(code_versions(old['cells'] + new)))
    commands = (old['command'] or '').split('\n') + folder_commands(
        folder, new)
    write_report(old['cells'] + new, out_dir, settings,
                 '\n'.join(c for c in commands if c))


if __name__ == '__main__':
    if len(sys.argv) != 4:
        sys.exit('usage: merge_results.py COMMITTED.json FOLDER OUT_DIR')
    main(*sys.argv[1:4])
