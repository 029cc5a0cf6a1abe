"""docs/results/validation_noise.json from the cells of
validation_noise_cell.py, and the table docs/position_study.md quotes.

    python docs/results/validation_noise.py CELL.json [CELL.json ...] \
        --windowed docs/results/position_study_windowed.json \
        --out docs/results/validation_noise.json

Per cell, over the scored iterations (4200-6000, every 300):

- the standard deviation (ddof 1) of each 100-image quarter's pairs mIoU
  and of the 400-image pairs mIoU, the latter with its 95% chi-square
  interval (n - 1 degrees of freedom);
- a two-way split of the quarters' scores (iteration x quarter, one score
  per cell of the table): the variance every quarter shares from one
  iteration to the next (the network's level moving) and the residual
  variance (which objects a quarter's network gets right changing), and
  the standard deviation they predict for n validation images, with the
  residual shrinking as 100 / n;
- two cross-checks: the 400-image score against the run's own
  validations (BorderIoUMetric) where both exist, and the first
  quarter (the study's 100 validation images) against the committed
  windowed run's validations of the same cell.
"""
import argparse
import json
import math
import sys

import numpy as np
from scipy import stats as sps


def two_way(table: np.ndarray) -> dict:
    """Shared and residual variance of an ``iterations x quarters`` table
    (additive model, one value per cell; method of moments)."""
    n_it, n_q = table.shape
    grand = table.mean()
    rows, cols = table.mean(1), table.mean(0)
    resid = table - rows[:, None] - cols[None, :] + grand
    ms_rows = n_q * ((rows - grand)**2).sum() / (n_it - 1)
    ms_resid = (resid**2).sum() / ((n_it - 1) * (n_q - 1))
    shared = max(0.0, (ms_rows - ms_resid) / n_q)
    f = ms_rows / ms_resid if ms_resid > 0 else math.inf
    p = float(sps.f.sf(f, n_it - 1, (n_it - 1) * (n_q - 1)))
    return dict(shared_var=float(shared), residual_var=float(ms_resid),
                f=float(f), p=p)


def sd_interval(values, confidence=0.95) -> dict:
    x = np.asarray(values, dtype=np.float64)
    n = x.size
    sd = float(x.std(ddof=1))
    lo = math.sqrt((n - 1) * sd**2 / sps.chi2.ppf((1 + confidence) / 2,
                                                  n - 1))
    hi = math.sqrt((n - 1) * sd**2 / sps.chi2.ppf((1 - confidence) / 2,
                                                  n - 1))
    return dict(sd=sd, ci_low=lo, ci_high=hi, n=n)


def summarise(record: dict, windowed: dict) -> dict:
    scores = record['scores']
    iters = [s['iter'] for s in scores]
    quarters = np.array([s['quarters'] for s in scores])
    whole = [s['all'] for s in scores]
    split = two_way(quarters)
    per_quarter = int(record['settings']['num_val']) // quarters.shape[1]
    predicted = {str(n): math.sqrt(split['shared_var'] +
                                   split['residual_var'] * per_quarter / n)
                 for n in (100, 400)}
    own = {v['iter']: v['mIoU_pairs'] for v in record['own_validations']}
    by_iter = dict(zip(iters, whole))
    own_check = [dict(iter=i, own=own[i], scored=by_iter[i])
                 for i in sorted(own) if i in by_iter]
    study = windowed.get(record['name'], {})
    study_check = [dict(iter=i, study=study[i], first_quarter=q[0])
                   for i, q in zip(iters, quarters.tolist()) if i in study]
    return dict(
        name=record['name'], iters=iters, whole=whole,
        quarters=quarters.tolist(),
        sd_quarters=[float(np.std(quarters[:, q], ddof=1))
                     for q in range(quarters.shape[1])],
        sd_whole=sd_interval(whole), two_way=split,
        predicted_sd=predicted, own_check=own_check,
        study_check=study_check,
        study_max_abs_diff=(max(abs(c['study'] - c['first_quarter'])
                                for c in study_check)
                            if study_check else None),
        code=record['code'], threads=record['threads'],
        seconds=record['seconds'])


def windowed_validations(path: str) -> dict:
    with open(path) as f:
        data = json.load(f)
    return {c['name']: {v['iter']: v['metrics'].get('mIoU_pairs')
                        for v in c.get('validations') or ()}
            for c in data['cells']}


def table(rows) -> str:
    lines = ['| cell | iterations | sd of a 100-image quarter (4 quarters) '
             '| sd of all 400 [95% CI] | shared sd | residual sd | '
             'predicted sd, 100 / 400 images | first quarter vs the '
             'study run (max abs diff) |', '|---|---|---|---|---|---|---|---|']
    for r in rows:
        w = r['sd_whole']
        diff = r['study_max_abs_diff']
        lines.append(
            f"| {r['name']} | {len(r['iters'])} ({r['iters'][0]}-"
            f"{r['iters'][-1]}) | "
            f"{', '.join(f'{v:.1f}' for v in r['sd_quarters'])} | "
            f"{w['sd']:.1f} [{w['ci_low']:.1f}, {w['ci_high']:.1f}] | "
            f"{math.sqrt(r['two_way']['shared_var']):.1f} | "
            f"{math.sqrt(r['two_way']['residual_var']):.1f} | "
            f"{r['predicted_sd']['100']:.1f} / "
            f"{r['predicted_sd']['400']:.1f} | "
            f"{'n/a' if diff is None else f'{diff:.2g}'} |")
    return '\n'.join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('cells', nargs='+')
    p.add_argument('--windowed', required=True)
    p.add_argument('--out', required=True)
    args = p.parse_args(argv)
    windowed = windowed_validations(args.windowed)
    rows = []
    for path in args.cells:
        with open(path) as f:
            rows.append(summarise(json.load(f), windowed))
    with open(args.out, 'w') as f:
        json.dump(dict(cells=rows), f, indent=1)
    print(table(rows))
    return 0


if __name__ == '__main__':
    sys.exit(main())
