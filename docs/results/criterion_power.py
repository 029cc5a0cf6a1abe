"""docs/results/criterion_power.json: how often the windowed convergence
criterion passes a cell whose validations scatter as the committed hurt
cells' did, for windows of 1 to 9 validations, and the table
docs/position_study.md quotes.

    python docs/results/criterion_power.py \
        --windowed docs/results/position_study_windowed.json \
        --noise docs/results/validation_noise.json \
        --out docs/results/criterion_power.json

The criterion (possec/analysis/study/convergence.py) passes a cell when
the median of its last k validations before the end of the tail differs
from the median of its last k before the end of the schedule by less
than the margin (2 points). Model: each validation is the cell's level
plus independent normal noise of standard deviation sd, and the level
changes by delta between the two windows (0: a cell that has stopped
moving). P(pass) is estimated from 400000 simulated cells per setting
(seed 0; its standard error is at most 0.0008).

The sds: each windowed hurt cell's residual sd about the least-squares
line through all its validations (4200-9600; n - 2 degrees of freedom),
and the sd of the 400-image score of the two cells re-scored in
validation_noise.json. Independence between validations 300 iterations
apart is an assumption: the residuals' lag-1 autocorrelation is recorded
beside each sd (it ranges from about -0.4 to +0.6 over the six cells).
"""
import argparse
import json
import sys

import numpy as np

MARGIN = 2.0
WINDOWS = (1, 3, 5, 7, 9)
DELTAS = (0.0, 2.0, 4.0)
DRAWS = 400000


def residual_sd(iters, values) -> tuple:
    """Residual sd (n - 2 df) about the least-squares line, and the
    residuals' lag-1 autocorrelation."""
    x = np.asarray(iters, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    res = y - np.polyval(np.polyfit(x, y, 1), x)
    sd = float(np.sqrt((res**2).sum() / (len(y) - 2)))
    lag1 = float(np.corrcoef(res[:-1], res[1:])[0, 1])
    return sd, lag1


def pass_rate(sd: float, window: int, delta: float,
              rng: np.random.Generator) -> float:
    """P(|median of window at the end - median at the start + delta|
    < MARGIN) under independent normal noise of ``sd``."""
    a = np.median(rng.normal(0.0, sd, (DRAWS, window)), axis=1)
    b = np.median(rng.normal(0.0, sd, (DRAWS, window)), axis=1)
    return float(np.mean(np.abs(b - a + delta) < MARGIN))


def sources(windowed: dict, noise: dict) -> list:
    out = []
    for rec in windowed['cells']:
        key = rec['convergence']['key']
        v = [(x['iter'], x['metrics'][key]) for x in rec['validations']]
        sd, lag1 = residual_sd(*zip(*v))
        out.append(dict(name=rec['name'], what='residual about the line, '
                        f'{len(v)} validations of 100 images',
                        sd=sd, lag1=lag1,
                        converged=rec['convergence']['converged'],
                        change=rec['convergence']['change']))
    for cell in noise['cells']:
        out.append(dict(name=cell['name'], what='sd of the 400-image '
                        f'score, {cell["sd_whole"]["n"]} validations',
                        sd=cell['sd_whole']['sd'], lag1=None,
                        converged=None, change=None))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--windowed', required=True)
    parser.add_argument('--noise', required=True)
    parser.add_argument('--out', required=True)
    args = parser.parse_args(argv)
    with open(args.windowed) as f:
        windowed = json.load(f)
    with open(args.noise) as f:
        noise = json.load(f)
    rng = np.random.default_rng(0)
    rows = sources(windowed, noise)
    for row in rows:
        row['pass'] = {str(k): {f'{d:g}': pass_rate(row['sd'], k, d, rng)
                                for d in DELTAS} for k in WINDOWS}
    out = dict(margin=MARGIN, windows=list(WINDOWS), deltas=list(DELTAS),
               draws=DRAWS, seed=0, rows=rows)
    with open(args.out, 'w') as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write('\n')
    print('| cell | sd | lag-1 | committed verdict (change) '
          '| P(pass), flat: k = ' +
          ' / '.join(map(str, WINDOWS)) + ' | P(pass), moved 4: k = ' +
          ' / '.join(map(str, WINDOWS)) + ' |')
    print('|---|---|---|---|---|---|')
    for row in rows:
        lag = '' if row['lag1'] is None else f'{row["lag1"]:+.2f}'
        flat = ' / '.join(f'{row["pass"][str(k)]["0"]:.2f}' for k in WINDOWS)
        moved = ' / '.join(f'{row["pass"][str(k)]["4"]:.2f}'
                           for k in WINDOWS)
        verdict = ('' if row['converged'] is None else
                   f'{"yes" if row["converged"] else "no"} '
                   f'({row["change"]:+.1f})')
        print(f'| {row["name"]} ({row["what"]}) | {row["sd"]:.1f} | {lag} '
              f'| {verdict} | {flat} | {moved} |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
