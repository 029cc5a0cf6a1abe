"""Rows of the suite's short table.

Each benchmark's ``report(result, settings) -> (table, rows)`` returns the
markdown table of its own result and these rows: what was measured, the
value, the target and whether it is met.
"""
from typing import Optional


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
