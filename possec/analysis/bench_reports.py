"""Summary rows and tables of each benchmark of the suite.

One ``_report_<name>(result, settings) -> (table, rows)`` per benchmark of
:mod:`possec.analysis.bench_suite`: the markdown table of its own result,
and the rows of the suite's short table (what was measured, the value, the
target and whether it is met).
"""
from typing import Optional

from .benchmark import format_table


def row(measure: str,
        value: float,
        fmt: str = '{:.3f}',
        target: Optional[str] = None,
        met: Optional[bool] = None) -> dict:
    """A summary row: what, how much, the target and whether it is met."""
    return dict(
        measure=measure,
        value=value,
        text=fmt.format(value),
        target=target,
        met=met)


def ratio_rows(results: dict, baseline: str, judged: str,
               limit: float) -> list:
    """A row per variant but ``baseline``: its ratio to the baseline, and
    for the ``judged`` variant the target ``<= limit`` and whether it is
    met."""
    rows = []
    for name, res in results.items():
        if name == baseline:
            continue
        target = name == judged
        rows.append(
            row(f'{name} / {baseline}', res['ratio'], '{:.3f}x',
                f'<= {limit:g}x' if target else None,
                res['ratio'] <= limit if target else None))
    return rows


def report_heads(results, settings):
    from .bench_heads import BASELINE, POSITION
    title = (f"one training step, ResNetV1c-{settings['depth']}-D8, "
             f"{settings['batch']}x3x{settings['size']}x{settings['size']}")
    rows = ratio_rows(results, BASELINE, 'ParseNetHead (paper form)', 1.03)
    paper = results.get('ParseNetHead (paper form)')
    if POSITION in results and paper:
        rows.append(
            row(
                'position head training overhead: '
                f'{POSITION} / ParseNetHead (paper form)',
                results[POSITION]['ratio'] / paper['ratio'], '{:.3f}x'))
    return format_table(results, title), rows


def report_padding(result, settings):
    rows = []
    for mode in result['train']:
        if mode == 'zeros':
            continue
        worst = max(result['train'][mode]['ratio'],
                    result['inference'][mode]['ratio'])
        rows.append(
            row(f'{mode} / zeros (worse of train, inference)', worst,
                '{:.3f}x', f"<= {result['setup']['target']}x",
                bool(result['within_target'][mode])))
    rows += [
        dict(
            measure=f'{mode} skipped',
            value=None,
            text=why,
            target=None,
            met=None) for mode, why in result['skipped'].items()
    ]
    return result['table'], rows


def report_probe(result, settings):
    return result['table'], [
        row('speed-up of the cached probe over the naive loop',
            result['speedup'], '{:.1f}x', '>= 10x', result['speedup'] >= 10),
        row('largest SPC difference, cached vs naive', result['max_spc_diff'],
            '{:.4f}', '<= 0.02', result['max_spc_diff'] <= 0.02),
    ]


def report_metric(results, settings):
    title = (f"one evaluation of {settings['images']} images of "
             f"{settings['size']}x{settings['size']}, {settings['classes']} "
             f"classes")
    rows = ratio_rows(results, 'IoUMetric', 'BorderIoUMetric', 1.3)
    return format_table(results, title), rows


def report_efficiency(result, settings):
    rows = [
        row('fp32 matmul rate (GFLOP/s)', result['matmul']['gflops_per_s'],
            '{:.1f}')
    ]
    for name, r in result['models'].items():
        size = f"{r['size']}x{r['size']}"
        judged = (r.get('memory_format', 'contiguous') == 'contiguous'
                  and not r.get('bn_folded'))
        if judged:
            rows.append(
                row(f'{name} {size}: GMACs per image', r['macs'] / 1e9,
                    '{:.2f}'))
        rows += [
            row(f'{name} {size}: inference images/s', r['images_per_s'],
                '{:.2f}'),
            row(f'{name} {size}: share of the matmul rate', r['matmul_share'],
                '{:.0%}', '>= 85%' if judged else None,
                r['matmul_share'] >= 0.85 if judged else None),
        ]
        if r['peak_memory_bytes'] is not None:
            rows.append(
                row(f'{name} {size}: peak memory growth (MiB)',
                    r['peak_memory_bytes'] / 2**20, '{:.0f}'))
    return result['table'], rows


def report_throughput(result, settings):
    return result['table'], [
        row('training images/s, data loading excluded',
            result['excluded']['images_per_s'], '{:.2f}'),
        row('training images/s, data loading included (Runner)',
            result['included']['images_per_s'], '{:.2f}'),
        row('share of Runner iteration time waiting for data',
            result['included']['data_wait_share'], '{:.1%}'),
    ]
