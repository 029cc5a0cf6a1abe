"""possec's benchmark suite: the registry of benchmarks and its report.

Each benchmark lives in its own module (``bench_heads``, ``bench_padding``,
``bench_probe``, ``bench_metric``, ``bench_efficiency``,
``bench_throughput``); the suite calls its public function with that
function's defaults, the module's ``QUICK`` settings in quick mode, and the
user's overrides, then writes one JSON file per benchmark and a summary
(``summary.json``, ``summary.md``) into one folder, each atomically. Every
number that is a time comes from a variant timed interleaved with its
baseline in the same process (see :mod:`possec.analysis.benchmark`).
"""
import ast
import datetime
import inspect
import math
import os
import os.path as osp
import platform
import time
import traceback
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from ..fileio import atomic_path, dump_json
from .benchmark import format_table


@dataclass
class Benchmark:
    """One entry of the suite.

    Args:
        name (str): Short name used on the command line.
        title (str): One line saying what is compared.
        function (callable): The benchmark's public entry point.
        quick (dict): Settings of the quick (smoke-test) mode.
        report (callable): ``(result, settings) -> (table, rows)``: the
            markdown table and the summary rows (see :func:`_row`).
    """
    name: str
    title: str
    function: Callable[..., object]
    quick: dict
    report: Callable[[object, dict], tuple]

    def defaults(self) -> dict:
        """The keyword defaults of :attr:`function`."""
        return {
            k: p.default
            for k, p in inspect.signature(self.function).parameters.items()
            if p.default is not inspect.Parameter.empty
        }

    def settings(self, quick: bool = False,
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


def _row(measure: str, value: float, fmt: str = '{:.3f}',
         target: Optional[str] = None, met: Optional[bool] = None) -> dict:
    """A summary row: what, how much, the target and whether it is met."""
    return dict(measure=measure, value=value, text=fmt.format(value),
                target=target, met=met)


def _report_heads(results, settings):
    from .bench_heads import BASELINE
    title = (f"one training step, ResNetV1c-{settings['depth']}-D8, "
             f"{settings['batch']}x3x{settings['size']}x{settings['size']}")
    rows = []
    for name, res in results.items():
        if name == BASELINE:
            continue
        paper = name == 'ParseNetHead (paper form)'
        rows.append(_row(f'{name} / {BASELINE}', res['ratio'], '{:.3f}x',
                         '<= 1.03x' if paper else None,
                         res['ratio'] <= 1.03 if paper else None))
    return format_table(results, title), rows


def _report_padding(result, settings):
    rows = []
    for mode in result['train']:
        if mode == 'zeros':
            continue
        worst = max(result['train'][mode]['ratio'],
                    result['inference'][mode]['ratio'])
        rows.append(_row(f'{mode} / zeros (worse of train, inference)',
                         worst, '{:.3f}x', f"<= {result['setup']['target']}x",
                         bool(result['within_target'][mode])))
    rows += [dict(measure=f'{mode} skipped', value=None, text=why,
                  target=None, met=None)
             for mode, why in result['skipped'].items()]
    return result['table'], rows


def _report_probe(result, settings):
    return result['table'], [
        _row('speed-up of the cached probe over the naive loop',
             result['speedup'], '{:.1f}x', '>= 10x',
             result['speedup'] >= 10),
        _row('largest SPC difference, cached vs naive',
             result['max_spc_diff'], '{:.4f}', '<= 0.02',
             result['max_spc_diff'] <= 0.02),
    ]


def _report_metric(results, settings):
    title = (f"one evaluation of {settings['images']} images of "
             f"{settings['size']}x{settings['size']}, {settings['classes']} "
             f"classes")
    rows = []
    for name, res in results.items():
        if name == 'IoUMetric':
            continue
        main = name == 'BorderIoUMetric'
        rows.append(_row(f'{name} / IoUMetric', res['ratio'], '{:.3f}x',
                         '<= 1.3x' if main else None,
                         res['ratio'] <= 1.3 if main else None))
    return format_table(results, title), rows


def _report_efficiency(result, settings):
    rows = [_row('fp32 matmul rate (GFLOP/s)',
                 result['matmul']['gflops_per_s'], '{:.1f}')]
    for name, r in result['models'].items():
        size = f"{r['size']}x{r['size']}"
        judged = r.get('memory_format', 'contiguous') == 'contiguous'
        if judged:
            rows.append(_row(f'{name} {size}: GMACs per image',
                             r['macs'] / 1e9, '{:.2f}'))
        rows += [
            _row(f'{name} {size}: inference images/s', r['images_per_s'],
                 '{:.2f}'),
            _row(f'{name} {size}: share of the matmul rate',
                 r['matmul_share'], '{:.0%}', '>= 85%' if judged else None,
                 r['matmul_share'] >= 0.85 if judged else None),
        ]
        if r['peak_memory_bytes'] is not None:
            rows.append(_row(f'{name} {size}: peak memory growth (MiB)',
                             r['peak_memory_bytes'] / 2**20, '{:.0f}'))
    return result['table'], rows


def _report_throughput(result, settings):
    return result['table'], [
        _row('training images/s, data loading excluded',
             result['excluded']['images_per_s'], '{:.2f}'),
        _row('training images/s, data loading included (Runner)',
             result['included']['images_per_s'], '{:.2f}'),
        _row('share of Runner iteration time waiting for data',
             result['included']['data_wait_share'], '{:.1%}'),
    ]


def _registry() -> Dict[str, Benchmark]:
    from . import (bench_efficiency, bench_heads, bench_metric,
                   bench_padding, bench_probe, bench_throughput)
    entries = [
        Benchmark('heads', 'training step per decode head vs a bare 1x1 '
                  'classifier', bench_heads.run, bench_heads.QUICK,
                  _report_heads),
        Benchmark('padding', 'training step and inference per padding mode '
                  'vs zeros', bench_padding.benchmark_padding,
                  bench_padding.QUICK, _report_padding),
        Benchmark('probe', 'cached position probe vs the naive loop',
                  bench_probe.benchmark_probe,
                  dict(bench_probe.QUICK, repeats=1), _report_probe),
        Benchmark('metric', 'BorderIoUMetric vs IoUMetric',
                  bench_metric.run, bench_metric.QUICK, _report_metric),
        Benchmark('efficiency', 'FLOPs, inference images/s, peak memory and '
                  'share of the fp32 matmul rate', bench_efficiency.run,
                  bench_efficiency.QUICK, _report_efficiency),
        Benchmark('throughput', 'training images/s of the demo config, data '
                  'loading excluded and included', bench_throughput.run,
                  bench_throughput.QUICK, _report_throughput),
    ]
    return {b.name: b for b in entries}


NAMES = ('heads', 'padding', 'probe', 'metric', 'efficiency', 'throughput')


def get_benchmarks(names: Optional[Sequence[str]] = None
                   ) -> Dict[str, Benchmark]:
    """The registered benchmarks, all or the ``names`` asked for."""
    names = list(names or NAMES)
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise ValueError(f'unknown benchmark(s) {unknown}; expected some of '
                         f'{list(NAMES)}')
    registry = _registry()
    return {n: registry[n] for n in names}


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
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        out.setdefault(name, {})[setting] = value
    return out


def machine_info() -> dict:
    """What the numbers were measured on."""
    import mmcv
    import mmengine
    import mmseg
    cpu = platform.processor()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next((line.split(':', 1)[1].strip() for line in f
                        if line.startswith('model name')), cpu)
    except OSError:
        pass
    try:
        memory = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')
    except (ValueError, OSError, AttributeError):
        memory = None
    usable = (len(os.sched_getaffinity(0))
              if hasattr(os, 'sched_getaffinity') else os.cpu_count())
    return dict(
        cpu=cpu,
        logical_cpus=os.cpu_count(),
        usable_cpus=usable,
        memory_gib=None if memory is None else round(memory / 2**30, 1),
        platform=platform.platform(),
        python=platform.python_version(),
        torch=torch.__version__,
        torch_threads=torch.get_num_threads(),
        torch_interop_threads=torch.get_num_interop_threads(),
        cpu_capability=torch.backends.cpu.get_cpu_capability(),
        mkldnn=torch.backends.mkldnn.is_available(),
        cuda=torch.cuda.is_available(),
        mmcv=mmcv.__version__,
        mmengine=mmengine.__version__,
        mmseg=mmseg.__version__)


def _load() -> Optional[List[float]]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def jsonable(obj):
    """``obj`` with numpy scalars/arrays, tuples and non-finite floats
    turned into what JSON holds (non-finite floats become None)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, torch.Tensor):
        return jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


def run_benchmark(bench: Benchmark, quick: bool = False,
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
    record = dict(name=bench.name, title=bench.title, quick=quick,
                  settings=settings, status='ok', error=None, rows=[],
                  table='', result=None)
    saved_threads = torch.get_num_threads()
    load_before, start = _load(), time.perf_counter()
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
    record['load'] = dict(before=load_before, after=_load())
    return record


def run_suite(names: Optional[Sequence[str]] = None,
              quick: bool = False,
              out_dir: str = 'work_dirs/benchmarks',
              overrides: Optional[Dict[str, dict]] = None,
              threads: Optional[int] = None,
              progress: bool = True) -> dict:
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
    records = []
    for name, bench in benches.items():
        if progress:
            print(f'[{name}] {bench.title}', flush=True)
        record = run_benchmark(bench, quick, overrides.get(name), threads,
                               progress)
        records.append(record)
        dump_json(jsonable(dict(record, machine=machine)),
                  osp.join(out_dir, f'{name}.json'))
        if progress and record['status'] != 'ok':
            print(record['error'], flush=True)
    summary = dict(
        started_utc=started.isoformat(timespec='seconds'),
        quick=quick,
        machine=machine,
        benchmarks=[{
            k: r[k]
            for k in ('name', 'title', 'status', 'error', 'settings',
                      'wall_s', 'load', 'rows')
        } for r in records])
    dump_json(jsonable(summary), osp.join(out_dir, 'summary.json'))
    with atomic_path(osp.join(out_dir, 'summary.md')) as tmp:
        with open(tmp, 'w') as f:
            f.write(format_summary(summary, records) + '\n')
    return jsonable(summary)


def format_short(summary: dict) -> str:
    """The short table printed at the end of a run."""
    lines = ['| benchmark | measure | value | target | met |',
             '|---|---|---:|---|---|']
    for bench in summary['benchmarks']:
        if bench['status'] != 'ok':
            last = bench['error'].strip().splitlines()[-1]
            lines.append(f"| {bench['name']} | ERROR: {last} | | | |")
            continue
        for row in bench['rows']:
            met = {True: 'yes', False: 'NO', None: ''}[row['met']]
            lines.append(f"| {bench['name']} | {row['measure']} | "
                         f"{row['text']} | {row['target'] or ''} | {met} |")
    return '\n'.join(lines)


def format_summary(summary: dict, records: Sequence[dict]) -> str:
    """``summary.md``: machine, the short table, then each benchmark's
    own tables."""
    m = summary['machine']
    mode = ' (quick mode: smoke test, not a measurement)' \
        if summary['quick'] else ''
    lines = [
        f"# possec benchmarks{mode}", '',
        f"Started {summary['started_utc']} on {m['cpu']}, "
        f"{m['usable_cpus']} usable CPU(s), {m['memory_gib']} GiB, "
        f"torch {m['torch']} ({m['torch_threads']} threads, "
        f"{m['cpu_capability']}), mmseg {m['mmseg']}, mmcv {m['mmcv']}, "
        f"mmengine {m['mmengine']}, CUDA {'yes' if m['cuda'] else 'no'}.",
        '', format_short(summary), ''
    ]
    for record in records:
        load = record['load']
        lines += [
            f"## {record['name']}: {record['title']}", '',
            f"{record['wall_s']:.0f} s; 1-min load average "
            f"{load['before'] and load['before'][0]} before, "
            f"{load['after'] and load['after'][0]} after; settings "
            f"`{jsonable(record['settings'])}`", ''
        ]
        if record['status'] == 'ok':
            lines += [record['table'], '']
        else:
            lines += ['```', record['error'].strip(), '```', '']
    return '\n'.join(lines)
