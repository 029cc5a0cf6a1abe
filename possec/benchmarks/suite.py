"""possec's benchmark suite: the registry of benchmarks and its report.

Each benchmark is a module of this package (:mod:`.heads`,
:mod:`.padding`, :mod:`.probe`, :mod:`.metric`, :mod:`.efficiency`,
:mod:`.throughput`, :mod:`.training`) exporting the same names:
``TITLE`` (what is compared), ``QUICK`` (the settings of the quick smoke
test), ``run`` (the measurement; its keyword defaults are the full-size
settings) and
``report(result, settings) -> (table, rows)``. The suite calls ``run``
with its defaults, ``QUICK`` in quick mode, and the user's overrides, then
writes one JSON file per benchmark and a summary (``summary.json``,
``summary.md``) into one folder, each atomically. Every number that is a
time comes from a variant timed interleaved with its baseline in the same
process (see :mod:`possec.benchmarks.timing`).
"""
import datetime
import inspect
import os.path as osp
import time
import traceback
from dataclasses import dataclass
from types import ModuleType
from typing import Callable, Dict, Optional, Sequence

import torch

from ..analysis.common import to_jsonable
from ..apis.cli import literal, signature_defaults
from ..fileio import dump_json
from . import (efficiency, heads, metric, padding, probe, throughput,
               training)
from .summary import (format_short, format_summary, load_average,
                      machine_info, write_summary)

__all__ = [
    'Benchmark', 'NAMES', 'get_benchmarks', 'parse_overrides', 'run_benchmark',
    'run_suite', 'format_short'
]

@dataclass
class Benchmark:
    """One entry of the suite.

    Args:
        name (str): Short name used on the command line.
        title (str): One line saying what is compared.
        function (callable): The benchmark's public entry point.
        quick (dict): Settings of the quick (smoke-test) mode.
        report (callable): ``(result, settings) -> (table, rows)``: the
            markdown table and the summary rows (see
            :func:`possec.benchmarks.rows.row`).
    """
    name: str
    title: str
    function: Callable[..., object]
    quick: dict
    report: Callable[[object, dict], tuple]

    @classmethod
    def from_module(cls, name: str, module: ModuleType) -> 'Benchmark':
        """The entry of a benchmark module (``TITLE``, ``run``, ``QUICK``,
        ``report``)."""
        return cls(name, module.TITLE, module.run, module.QUICK,
                   module.report)

    def defaults(self) -> dict:
        """The keyword defaults of :attr:`function`."""
        return signature_defaults(self.function)

    def settings(self,
                 quick: bool = False,
                 overrides: Optional[dict] = None) -> dict:
        """Effective keyword arguments: defaults < quick < overrides."""
        settings = self.defaults()
        settings.pop('progress', None)
        if quick:
            settings.update(self.quick)
        unknown = sorted(set(overrides or {}) - set(settings))
        if unknown:
            raise ValueError(f'unknown setting(s) {unknown} for benchmark '
                             f'{self.name!r}; expected some of '
                             f'{sorted(settings)}')
        settings.update(overrides or {})
        return settings


#: The benchmarks in suite order, by name.
MODULES = dict(heads=heads, padding=padding, probe=probe, metric=metric,
               efficiency=efficiency, throughput=throughput,
               training=training)
NAMES = tuple(MODULES)


def get_benchmarks(
        names: Optional[Sequence[str]] = None) -> Dict[str, Benchmark]:
    """The registered benchmarks, all or the ``names`` asked for."""
    names = list(names or NAMES)
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise ValueError(f'unknown benchmark(s) {unknown}; expected some of '
                         f'{list(NAMES)}')
    return {n: Benchmark.from_module(n, MODULES[n]) for n in names}


def parse_overrides(items: Sequence[str]) -> Dict[str, dict]:
    """``['heads.size=64', 'efficiency.sizes={"headline": 256}']`` ->
    ``{'heads': {'size': 64}, 'efficiency': {'sizes': {...}}}``; values are
    Python literals, anything else is kept as a string."""
    out: Dict[str, dict] = {}
    for item in items or []:
        key, sep, raw = item.partition('=')
        name, dot, setting = key.partition('.')
        if not sep or not dot or not name or not setting:
            raise ValueError(f'override {item!r} is not NAME.KEY=VALUE, '
                             f'e.g. heads.size=64')
        out.setdefault(name, {})[setting] = literal(raw)
    return out


def run_benchmark(bench: Benchmark,
                  quick: bool = False,
                  overrides: Optional[dict] = None,
                  threads: Optional[int] = None,
                  progress: bool = True) -> dict:
    """Run one benchmark; never raises for the benchmark's own errors.

    Returns:
        dict: ``name``, ``title``, ``quick``, ``settings``, ``status``
        ('ok' or 'error'), ``error`` (traceback), ``wall_s``, ``load``
        (1-minute load average before and after), ``rows``, ``table`` and
        the benchmark's raw ``result``.
    """
    settings = bench.settings(quick, overrides)
    if threads is not None and 'threads' in settings:
        settings['threads'] = threads
    kwargs = dict(settings)
    if 'progress' in inspect.signature(bench.function).parameters:
        kwargs['progress'] = progress
    record = dict(
        name=bench.name,
        title=bench.title,
        quick=quick,
        settings=settings,
        status='ok',
        error=None,
        rows=[],
        table='',
        result=None)
    saved_threads = torch.get_num_threads()
    load_before, start = load_average(), time.perf_counter()
    try:
        result = bench.function(**kwargs)
        record['result'] = result
        record['table'], record['rows'] = bench.report(result, settings)
        if quick:  # tiny sizes measure nothing: do not judge the targets
            for row in record['rows']:
                row['met'] = None
    except Exception:  # report it, go on with the next benchmark
        record['status'] = 'error'
        record['error'] = traceback.format_exc()
    finally:
        torch.set_num_threads(saved_threads)
    record['wall_s'] = time.perf_counter() - start
    record['load'] = dict(before=load_before, after=load_average())
    return record


def run_suite(names: Optional[Sequence[str]] = None,
              quick: bool = False,
              out_dir: str = 'work_dirs/benchmarks',
              overrides: Optional[Dict[str, dict]] = None,
              threads: Optional[int] = None,
              progress: bool = True,
              records: Optional[list] = None) -> dict:
    """Run benchmarks and write ``<name>.json``, ``summary.json`` and
    ``summary.md`` into ``out_dir``.

    Args:
        names (Sequence[str], optional): Benchmarks to run, in order.
            Default: all of :data:`NAMES`.
        quick (bool): Tiny sizes and one repeat: proves the suite works,
            measures nothing. Default: False.
        out_dir (str): Output folder. Default: 'work_dirs/benchmarks'.
        overrides (dict[str, dict], optional): Per benchmark, settings that
            replace the defaults (see :func:`parse_overrides`).
        threads (int, optional): ``torch.set_num_threads`` for every
            benchmark. Default: None (torch's choice).
        progress (bool): Print progress. Default: True.
        records (list, optional): If given, each benchmark's full record
            (see :func:`run_benchmark`) is appended to it. Default: None.

    Returns:
        dict: The summary (as written to ``summary.json``).
    """
    overrides = dict(overrides or {})
    benches = get_benchmarks(names)
    stray = sorted(set(overrides) - set(benches))
    if stray:
        raise ValueError(f'overrides for {stray}, which are not run; '
                         f'running {list(benches)}')
    # check every override before spending minutes on the first benchmark
    for name, bench in benches.items():
        bench.settings(quick, overrides.get(name))
    machine = machine_info()
    started = datetime.datetime.now(datetime.timezone.utc)
    records = [] if records is None else records
    for name, bench in benches.items():
        if progress:
            print(f'[{name}] {bench.title}', flush=True)
        record = run_benchmark(bench, quick, overrides.get(name), threads,
                               progress)
        records.append(record)
        dump_json(
            to_jsonable(dict(record, machine=machine)),
            osp.join(out_dir, f'{name}.json'))
        if progress and record['status'] != 'ok':
            print(record['error'], flush=True)
    summary = dict(
        started_utc=started.isoformat(timespec='seconds'),
        quick=quick,
        machine=machine,
        benchmarks=[{
            k: r[k]
            for k in ('name', 'title', 'status', 'error', 'settings', 'wall_s',
                      'load', 'rows')
        } for r in records])
    write_summary(out_dir, 'summary', summary,
                  format_summary(summary, records))
    return to_jsonable(summary)
