"""The position study's results file, and what the report reads from a
cell record.

A results file holds the study's cell records and settings alone, so that
the report and its figures re-derive from it without the study folder
(``python tools/analysis/position_study.py --report RESULTS.json
--out-dir DIR``)::

    {"format": "possec-study-results", "version": 3,
     "settings": {...}, "command": "...", "cells": [record, ...]}

It is written with sorted keys, cells in name order and NaN as null, so
that the same records give the same bytes. Records of older studies lack
``code``, ``convergence``, ``data_seed`` and the dose fields; the readers
below treat a missing key as unknown, never as an error.
"""
import functools
import json
import math
import os.path as osp
from typing import List, Optional, Sequence

from possec.errors import UserError
from possec.fileio import atomic_path

__all__ = [
    'FORMAT', 'VERSION', 'ResultsError', 'write_results', 'load_results',
    'arm', 'cell_fields', 'unit', 'converged', 'condition', 'probe_spc',
    'readout_failed'
]

FORMAT = 'possec-study-results'
VERSION = 3


class ResultsError(UserError, ValueError):
    """A file given as a study results file is not one."""


def _plain(value):
    """JSON-safe copy: tuples as lists, NaN and infinities as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, 'item') and not isinstance(value, (str, bytes)):
        return _plain(value.item())  # numpy scalars
    return value


def _sort_key(record: dict) -> tuple:
    return (str(record.get('name', '')),
            json.dumps(_plain(record.get('cell', {})), sort_keys=True))


def dumps_results(records: Sequence[dict], settings: dict,
                  command: Optional[str] = None) -> str:
    """The text of a results file (see :func:`write_results`)."""
    payload = dict(format=FORMAT, version=VERSION,
                   settings=_plain(dict(settings)),
                   cells=[_plain(r) for r in sorted(records, key=_sort_key)])
    if command is not None:
        payload['command'] = command
    return json.dumps(payload, sort_keys=True, indent=1,
                      allow_nan=False) + '\n'


def write_results(path: str, records: Sequence[dict], settings: dict,
                  command: Optional[str] = None) -> str:
    """Write the study's records and settings as a results file.

    Args:
        path (str): The file to write (atomically).
        records (Sequence[dict]): Cell records (what ``run_cell`` returns).
        settings (dict): The study settings.
        command (str, optional): The command line of the study, shown in
            the report. Default: None.

    Returns:
        str: ``path``.
    """
    text = dumps_results(records, settings, command)
    with atomic_path(path) as tmp:
        with open(tmp, 'w') as f:
            f.write(text)
    return path


def load_results(path: str) -> dict:
    """Read a results file, or the ``study.json`` of an older study folder.

    Args:
        path (str): The file.

    Returns:
        dict: ``cells`` (the records), ``settings``, ``command`` (or None)
        and ``version``.

    Raises:
        ResultsError: One line, when the file is missing, is not JSON, or
            is not a study results file.
    """
    hint = ('give the study_results.json that a position study writes '
            '(tools/analysis/position_study.py)')
    if not osp.isfile(path):
        raise ResultsError(f'study results file {path} not found: {hint}')
    try:
        with open(path) as f:
            data = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise ResultsError(f'{path} is not a study results file (not JSON: '
                           f'{str(e).splitlines()[0]}): {hint}') from None
    if isinstance(data, dict) and data.get('format') == FORMAT:
        if data.get('version') != VERSION or not isinstance(
                data.get('cells'), list):
            raise ResultsError(
                f'{path} is a study results file of version '
                f'{data.get("version")!r}; this possec reads version '
                f'{VERSION} (with a "cells" list): regenerate it with this '
                f'version\'s position_study.py')
        return dict(cells=data['cells'], settings=data.get('settings', {}),
                    command=data.get('command'), version=VERSION)
    if isinstance(data, dict) and isinstance(data.get('results'), list) \
            and isinstance(data.get('settings'), dict):
        # a study folder's study.json from before the results file
        return dict(cells=data['results'], settings=data['settings'],
                    command=data.get('command'), version=2)
    found = (f'keys {", ".join(sorted(map(str, data))[:6])}'
             if isinstance(data, dict) else f'a JSON {type(data).__name__}')
    raise ResultsError(f'{path} is not a study results file (expected '
                       f'"format": "{FORMAT}", found {found}): {hint}')


def arm(record: dict) -> tuple:
    """``(head, padding, pos)`` of a record's cell: the arm it ran
    (:func:`cell_fields`)."""
    c = cell_fields(record)
    return (c['head'], c['padding'], c['pos'])


def cell_fields(record: dict, settings: Optional[dict] = None) -> dict:
    """The cell of a record with every field the report reads: ``layout``,
    ``head``, ``padding`` (also read from ``border``), ``pos``, ``seed``,
    ``data_seed`` (the record's, else the settings', else None), ``prior``,
    ``val_prior``, ``tilt`` (None when the layout has none) and
    ``periodic`` (a bool, or the generator's kind of periodic data such
    as ``'both'``; False when missing)."""
    cell = dict(record['cell'])
    out = dict(layout=cell['layout'], head=cell['head'],
               padding=cell.get('padding', cell.get('border')),
               pos=cell.get('pos', 'none'), seed=cell['seed'])
    data_seed = cell.get('data_seed')
    if data_seed is None:
        data_seed = (record.get('settings') or settings or {}).get(
            'data_seed')
    out['data_seed'] = data_seed
    for key in ('prior', 'val_prior', 'tilt'):
        out[key] = cell.get(key)
    periodic = cell.get('periodic') or False
    out['periodic'] = periodic if isinstance(periodic, str) else bool(
        periodic)
    return out


def unit(record: dict):
    """The unit that pairs cells across variants: the training seed, and
    with a recorded ``data_seed`` the pair ``(seed, data_seed)``."""
    cell = record['cell']
    if cell.get('data_seed') is None:
        return cell['seed']
    return (cell['seed'], cell['data_seed'])


def unit_name(u) -> str:
    """``s1`` or ``s1/d0``."""
    return f's{u[0]}/d{u[1]}' if isinstance(u, tuple) else f's{u}'


def converged(record: dict) -> Optional[bool]:
    """``convergence.converged`` of a record: True, False or None
    (unknown, e.g. a record from before the criterion)."""
    conv = record.get('convergence') or {}
    value = conv.get('converged')
    return None if value is None else bool(value)


def condition(record: dict) -> str:
    """The data a cell was trained and validated on, as a section name:
    ``position-prior P=0.75 tilt=10``, ``prior-shift P=0.9 Q=0.1 tilt=20
    periodic``, or the layout alone."""
    c = cell_fields(record)
    parts = [c['layout']]
    if c['prior'] is not None:
        parts.append(f"P={c['prior']:g}")
    if c['val_prior'] is not None:
        parts.append(f"Q={c['val_prior']:g}")
    if c['tilt'] is not None:
        parts.append(f"tilt={c['tilt']:g}")
    if c['periodic'] is True:
        parts.append('periodic')
    elif c['periodic']:
        parts.append(f"periodic={c['periodic']}")
    return ' '.join(parts)


def code_versions(records: Sequence[dict]) -> List[str]:
    """One line per code version among the records: ``commit abc1234
    (clean): 12 cells``; records without ``code`` count as unknown."""
    counts = {}
    for r in records:
        code = r.get('code') or {}
        if code.get('commit'):
            state = {True: 'with uncommitted changes', False: 'clean'}.get(
                code.get('dirty'), 'state unknown')
            key = f"commit {str(code['commit'])[:10]} ({state})"
        else:
            key = 'code version not recorded'
        counts[key] = counts.get(key, 0) + 1
    return [f'{k}: {n} cell{"s" if n != 1 else ""}'
            for k, n in sorted(counts.items())]


#: Side of the grid the study's probes read (the probe's default).
PROBE_GRID = 28
#: A readout failed to train when its last epoch's training loss is above
#: this many times :func:`possec.analysis.probe.baseline_loss`, the loss
#: of predicting each map's spatial mean (a readout that ignores its
#: input). In the committed results the linear readouts end at 0.35-0.63
#: times it on zero padding, 0.95-1.00 on circular padding (nothing to
#: read) and 3.9-4.4 on the erased and shift-consistent backbones (their
#: sigmoid outputs saturated at the learning rate 0.01); every two-layer
#: readout at 0.06-0.95. 2 sits about midway (geometrically) between 1.0
#: and 3.9.
FAILED_READOUT_RATIO = 2.


def baseline_of(patterns: Sequence[str], convs: int) -> float:
    """:func:`possec.analysis.probe.baseline_loss` of ``patterns`` at the
    output side of a readout ``convs`` deep on :data:`PROBE_GRID`."""
    return _baseline(tuple(sorted(patterns)), int(convs))


@functools.lru_cache(maxsize=16)
def _baseline(patterns: tuple, convs: int) -> float:
    from ..probe import baseline_loss, readout_side
    return baseline_loss(patterns, readout_side(PROBE_GRID, convs))


def readout_failed(probe: Optional[dict]) -> Optional[bool]:
    """Whether a probe's readout failed to train: its last training loss
    above :data:`FAILED_READOUT_RATIO` times the loss of the best
    prediction that ignores the image
    (:func:`possec.analysis.probe.baseline_loss` of its patterns, at its
    depth's output side on :data:`PROBE_GRID`);
    worked out from the record, so records written before the check are
    judged alike. None without a loss.
    """
    probe = probe or {}
    loss, spc = probe.get('final_loss'), probe.get('spc')
    if loss is None or not spc:
        return None
    base = baseline_of(spc, int(probe.get('convs') or 1))
    return bool(not math.isfinite(loss) or loss > FAILED_READOUT_RATIO * base)


def probe_spc(probe: Optional[dict]) -> dict:
    """A probe's SPC per pattern, each None where its readout failed to
    train (:func:`readout_failed`): such SPC measures the readout, not
    the backbone."""
    spc = dict((probe or {}).get('spc') or {})
    if readout_failed(probe):
        return {p: None for p in spc}
    return spc
