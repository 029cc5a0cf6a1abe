"""What the benchmark suite writes besides the numbers: the machine, the
load, and the markdown summary.
"""
import os
import platform
from typing import List, Optional, Sequence

import mmcv
import mmengine
import mmseg
import torch

from ..analysis.common import to_jsonable
from ..fileio import atomic_path, dump_json


def machine_info() -> dict:
    """What the numbers were measured on."""
    cpu = platform.processor()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next((line.split(':', 1)[1].strip()
                        for line in f if line.startswith('model name')), cpu)
    except OSError:
        pass
    try:
        memory = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')
    except (ValueError, OSError, AttributeError):
        memory = None
    usable = (
        len(os.sched_getaffinity(0))
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


def load_average() -> Optional[List[float]]:
    """The 1-, 5- and 15-minute load averages, None where unknown."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def format_short(summary: dict) -> str:
    """The short table printed at the end of a run."""
    lines = [
        '| benchmark | measure | value | target | met |',
        '|---|---|---:|---|---|'
    ]
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
        f"mmengine {m['mmengine']}, CUDA {'yes' if m['cuda'] else 'no'}.", '',
        format_short(summary), ''
    ]
    for record in records:
        load = record['load']
        lines += [
            f"## {record['name']}: {record['title']}", '',
            f"{record['wall_s']:.0f} s; 1-min load average "
            f"{load['before'] and load['before'][0]} before, "
            f"{load['after'] and load['after'][0]} after; settings "
            f"`{to_jsonable(record['settings'])}`", ''
        ]
        if record['status'] == 'ok':
            lines += [record['table'], '']
        else:
            lines += ['```', record['error'].strip(), '```', '']
    return '\n'.join(lines)


def write_summary(out_dir: str, stem: str, summary: dict,
                  markdown: str) -> None:
    """Write ``summary`` as ``<stem>.json`` and ``markdown`` as
    ``<stem>.md`` into ``out_dir``, each atomically."""
    dump_json(to_jsonable(summary), os.path.join(out_dir, f'{stem}.json'))
    with atomic_path(os.path.join(out_dir, f'{stem}.md')) as path:
        with open(path, 'w') as f:
            f.write(markdown if markdown.endswith('\n') else markdown + '\n')
