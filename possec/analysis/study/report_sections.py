"""Sections of the position study's report (:mod:`.report`): the variant
and comparison tables, the generated reading, the leak check, convergence
and the statement of units and statistics. Each returns markdown text."""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

from possec.datasets.synthetic import POSITION_PAIRS
from .aggregate import CONTRAST_KEYS, fmt, mean_sd
from .comparisons import endpoint_units
from .design import CONTRASTS, MARGINS, PRIMARY, variant_name
from .inference import ALPHA
from .leak import leak_rows
from .results import (FAILED_READOUT_RATIO, arm, baseline_of, cell_fields,
                      condition, converged, probe_spc, readout_failed, unit,
                      unit_name)
from .stats import PLATEAU_FRACTION, interval, linear_change, plain_contrast
from .verdict import MIOU_MARGIN, sentence

NAMES = dict(CONTRAST_KEYS, mIoU_pairs='pairs mIoU', spc='probe SPC')


def _converged_text(units: list, left: list, unknown: int) -> str:
    """``3/3``, ``2/3 (s1/d0 left out)`` or ``unknown``."""
    total = len(units) + len(left)
    if unknown == len(units) and not left:
        return 'unknown'
    text = f'{total - len(left) - unknown}/{total}'
    if left:
        text += f" ({', '.join(unit_name(u) for u in left)} left out)"
    if unknown:
        text += f', {unknown} unknown'
    return text


def variant_table(layout: str, variants: dict, band_names: List[str],
                  patterns: List[str], excluded: Optional[dict] = None,
                  unknown: Optional[dict] = None) -> str:
    """One markdown table: a row per variant, mean ± sd over the units
    that converged (or whose convergence is unknown), and which did
    not."""
    cols = ['mIoU', 'mIoU_pairs', 'mIoU_others'] + [
        f'band{i}' for i in range(len(band_names))] + [
            f'SPC_{p}' for p in patterns]
    heads = (['variant (head / border / position)', 'units', 'converged',
              'mIoU', 'pairs mIoU', 'others mIoU'] +
             [f'mIoU {n}' for n in band_names] +
             [f'SPC {p}' for p in patterns])
    lines = [f'| {" | ".join(heads)} |', '|' + '---|' * len(heads)]
    keys = list(variants) + [k for k in (excluded or {}) if k not in variants]
    for key in keys:
        seeds = variants.get(key, {})
        left = list((excluded or {}).get(key, []))
        row = [variant_name(key), str(len(seeds)),
               _converged_text(list(seeds), left,
                               (unknown or {}).get(key, 0))]
        for col in cols:
            digits = 2 if col.startswith('SPC') else 1
            row.append(fmt(*mean_sd([s.get(col) for s in seeds.values()]),
                           digits))
        lines.append(f'| {" | ".join(row)} |')
    return '\n'.join(lines)


def contrast_table(items: List[dict]) -> str:
    """Descriptive one-factor differences (no verdicts: those are the
    design's, above)."""
    heads = ['variant', 'vs reference', 'units'] + [
        f'Δ {name}' for _, name in CONTRAST_KEYS]
    lines = [f'| {" | ".join(heads)} |', '|' + '---|' * len(heads)]
    for item in items:
        row = [variant_name(item['variant']),
               variant_name(item['reference']), str(len(item['seeds']))]
        for col, _ in CONTRAST_KEYS:
            diffs = item['deltas'][col]
            row.append(plain_contrast(interval(diffs), 2 if col == 'spc'
                                      else 1) if diffs else 'n/a')
        lines.append(f'| {" | ".join(row)} |')
    return '\n'.join(lines)


def verdict_cell(v: dict) -> str:
    word = v['verdict']
    if word == 'differs':
        return ('**differs** (CI)' if v['primary'] else
                f"**differs** (Holm p={v['p_holm']:.3g})")
    if word == 'equivalent':
        return f"equivalent ±{v['stats']['margin']:g}"
    return word


def comparison_table(rows: List[dict]) -> str:
    """A row per comparison: units, the key column's difference, TOST,
    p (Holm-adjusted for secondary), verdict; SPC's difference and
    verdict; the units left out as not converged."""
    heads = ['comparison', 'primary', 'family', 'units', 'Δ key',
             'p (Holm-adjusted if secondary)', 'TOST p', 'verdict',
             'Δ probe SPC', 'SPC verdict', 'not converged (left out)']
    lines = [f'| {" | ".join(heads)} |', '|' + '---|' * len(heads)]
    for r in rows:
        key = r['judged'][0][0]
        v, s = r['verdicts'][key], r['verdicts'].get('spc')
        st = v['stats']
        p = v['stats'].get('p') if v['primary'] else v['p_holm']
        tost_p = v.get('tost_p_used')
        cells = [r['label'], 'yes' if v['primary'] else 'no', v['family'],
                 str(st.get('n', 0)),
                 plain_contrast(st, name=NAMES.get(key, key)),
                 'n/a' if p is None else f'{p:.3g}',
                 'n/a' if tost_p is None else f'{tost_p:.3g}',
                 verdict_cell(v),
                 plain_contrast(s['stats'], 2) if s else 'n/a',
                 verdict_cell(s) if s else 'n/a',
                 _left_out_cell(r)]
        lines.append(f'| {" | ".join(cells)} |')
    return '\n'.join(lines)


def _left_out_cell(row: dict) -> str:
    """``s0/d1 at P=0.75 and 0.9, s1/d1`` (a slope row's unit that still
    enters the slope over its other doses is named with the doses left
    out, joined by "and" so that they do not read as units), or
    ``none``."""
    partly = row.get('doses_left_out') or {}
    names = []
    for u in row['not_converged']:
        name = unit_name(u)
        if u in partly:
            name += ' at P=' + ' and '.join(f'{d:g}' for d in partly[u])
        names.append(name)
    return ', '.join(names) or 'none'


def reading(rows: List[dict]) -> List[str]:
    """One sentence per judged row: primary rows first, then the
    secondary ones by family; every verdict in the words of
    :func:`.verdict.sentence`."""
    order = sorted(range(len(rows)), key=lambda i: (
        not rows[i]['verdicts'][rows[i]['judged'][0][0]]['primary'],
        rows[i]['judged'][0][2], i))
    out = []
    for i in order:
        r = rows[i]
        parts = []
        for column, _, _ in r['judged']:
            v = r['verdicts'][column]
            if v['stats'].get('mean') is None:
                continue
            parts.append(sentence(v, NAMES.get(column, column),
                                  2 if column == 'spc' else 1))
        if parts:
            out.append(f"{r['label']}: " + '; '.join(parts) + '.')
    return out


def _primary_matches(p: dict, row: dict) -> bool:
    """Whether judged ``row`` is the declared primary comparison ``p``."""
    kind = 'slope' if p['statistic'] == 'slope' else 'comparison'
    if row['kind'] != kind or row['contrast'] != p['contrast'] or \
            row['head'] != p['head'] or not row.get('headline'):
        return False
    return _same(row.get('tilt'), p['tilt']) and (
        kind == 'slope' or _same(row.get('dose'), p['prior']))


def primary_section(rows: List[dict], records: Sequence[dict] = ()) -> str:
    """Each primary comparison of the design (:data:`.design.PRIMARY`) in
    declaration order: its verdict where the results hold it, and what
    it lacks where they do not (for an endpoint, how many cells of each
    arm ``records`` hold and how many converged), so that a partial study
    says which of its primary questions it has not answered."""
    lines = ['## Primary comparisons', '',
             'Declared in the design before any result; each is judged by '
             'its own 95% interval.', '']
    for p in PRIMARY:
        name = _primary_name(p)
        found = [r for r in rows if _primary_matches(p, r)]
        if found:
            said = reading(found)
            lines.append(f'- {name}: {said[0]}{_units_note(found[0])}'
                         if said else
                         f'- {name}: **not measured**: no converged unit '
                         f'holds both arms.')
            continue
        if p['statistic'] == 'slope':
            doses = sorted({float(r['dose']) for r in rows
                            if r['kind'] == 'comparison' and
                            r['contrast'] == p['contrast'] and
                            r['head'] == p['head'] and
                            _same(r.get('tilt'), p['tilt'])})
            have = (', '.join(f'P={d:g}' for d in doses) if doses
                    else 'none')
            lines.append(f'- {name}: **not measured**: a slope needs both '
                         f'arms at two or more doses (these results hold '
                         f'{have}).')
        else:
            lines.append(f'- {name}: **not measured**: no unit holds '
                         f'converged cells of both arms '
                         f'({_endpoint_cells(p, records)}).')
    table = endpoint_units_table(records)
    if table:
        lines += ['', table]
    return '\n'.join(lines)


def endpoint_units_table(records: Sequence[dict]) -> str:
    """The primary endpoints unit by unit (:func:`.comparisons.
    endpoint_units`): each unit's two cells, their difference, and
    whether the unit is in the endpoint's interval; then, where the
    units span more than one data seed, the mean difference per data
    seed over the units in the interval (descriptive: the interval treats
    units sharing a data seed as independent)."""
    units = endpoint_units(records)
    if not units:
        return ''
    names = {}
    for p in PRIMARY:
        if p['statistic'] == 'endpoint':
            names[(p['contrast'], p['head'], float(p['tilt']),
                   float(p['prior']))] = _primary_name(p)
    lines = ['Per unit (variant - reference; a unit is in the interval '
             'only when both its cells converged; the other units\' '
             'differences are of unconverged cells, shown, not judged):', '',
             '| endpoint | comparison | unit | key | variant | reference | '
             'difference | Δ probe SPC | in the interval |',
             '|---|---|---|---|---|---|---|---|---|']
    by_seed = OrderedDict()
    for u in units:
        name = names.get((u['contrast'], u['head'], float(u['tilt']),
                          float(u['prior'])), u['contrast'])
        spc = 'n/a' if u['spc_diff'] is None else f"{u['spc_diff']:+.2f}"
        used = ('yes' if u['used'] else
                f"no ({', '.join(u['failed'])} not converged)")
        lines.append(
            f"| {name} | {u['label']} | {unit_name(u['unit'])} | "
            f"{NAMES.get(u['key'], u['key'])} | {fmt(u['variant'], None)} | "
            f"{fmt(u['reference'], None)} | "
            f"{'n/a' if u['diff'] is None else format(u['diff'], '+.1f')} | "
            f"{spc} | {used} |")
        if u['used'] and u['diff'] is not None and \
                isinstance(u['unit'], tuple):
            by_seed.setdefault(name, OrderedDict()).setdefault(
                u['unit'][1], []).append(u['diff'])
    for name, seeds in by_seed.items():
        if len(seeds) < 2:
            continue
        diffs = sorted(seeds.items())
        means = [sum(v) / len(v) for _, v in diffs]
        parts = [f'd{d} {m:+.1f} ({len(v)} unit{"s" * (len(v) != 1)})'
                 for (d, v), m in zip(diffs, means)]
        over = interval(means)
        spread = ('' if over['ci_low'] is None else
                  f" [{over['ci_low']:+.1f}, {over['ci_high']:+.1f}]")
        lines += ['', f'{name}, mean difference by data seed over the units '
                  f'in the interval (descriptive): ' + '; '.join(parts) +
                  f'. With each data seed\'s mean as one value (95% t '
                  f'interval, n = {len(means)} data seeds): '
                  f"{over['mean']:+.1f}{spread}."]
    return '\n'.join(lines)


def _units_note(row: dict) -> str:
    """`` Over 3 units; left out as not converged: s0/d1 (parsenet /
    circular / pos none), ...`` for a primary row: which units its
    interval leaves out, and whose cell failed the criterion. For a
    slope, each unit's slope grouped by the doses it was fitted over
    (units at different doses average slopes over different ranges of
    the prior), and the units with fewer than two converged doses."""
    if row['kind'] == 'slope':
        return _slope_units_note(row)
    if row['kind'] != 'comparison':
        return ''
    n = row['stats'][row['judged'][0][0]].get('n', 0)
    text = f' Over {n} unit{"s" * (n != 1)}'
    if not row['not_converged']:
        return text + '; none left out.'
    failed = row['failed_arms']
    left = [unit_name(u) + (f" ({', '.join(failed[u])})" if u in failed
                            else '')
            for u in row['not_converged']]
    return text + '; left out as not converged: ' + ', '.join(left) + '.'


def _doses(doses) -> str:
    """``P=0.5, 0.75 and 0.9``."""
    text = [f'{d:g}' for d in doses]
    return 'P=' + (', '.join(text[:-1]) + ' and ' + text[-1]
                   if len(text) > 1 else text[0])


def _slope_units_note(row: dict) -> str:
    """`` Over 5 units, each unit's slope over its own converged doses:
    s0/d1 -164.1, s1/d1 -155.1 (P=0.5, 0.75 and 0.9); s1/d0 -280.0
    (P=0.75 and 0.9). In no slope (fewer than two converged doses): s0/d0
    (converged at P=0.75; not at P=0.9).``"""
    st = row['stats'][row['judged'][0][0]]
    groups: Dict[tuple, List[str]] = {}
    for u, b, doses in zip(st['units'], st['slopes'], st['unit_doses']):
        groups.setdefault(tuple(doses), []).append(f'{unit_name(u)} '
                                                   f'{b:+.1f}')
    n = len(st['units'])
    text = (f' Over {n} unit{"s" * (n != 1)}, each unit\'s slope over its '
            'own converged doses: ' + '; '.join(
                f'{", ".join(names)} ({_doses(doses)})'
                for doses, names in groups.items()) + '.')
    outside = row.get('units_outside') or {}
    if outside:
        parts = []
        for u in sorted(outside, key=unit_name):
            ok, failed = outside[u]
            said = ([f'converged at {_doses(ok)}'] if ok else []) + (
                [f'not converged at {_doses(failed)}'] if failed else [])
            parts.append(f'{unit_name(u)} ({"; ".join(said)})')
        text += (' In no slope (fewer than two converged doses): '
                 + ', '.join(parts) + '.')
    return text


def _endpoint_cells(p: dict, records: Sequence[dict]) -> str:
    """``zeros: 1 of 2 cells converged, circular: none run`` for the
    arms of primary endpoint ``p``."""
    spec = CONTRASTS[p['contrast']]
    at_dose = [r for r, c in ((r, cell_fields(r)) for r in records)
               if c['layout'] in spec['layouts'] and
               _same(c['tilt'], p['tilt']) and _same(c['prior'], p['prior'])]
    parts = []
    for padding, pos in spec['variants']:
        found = [r for r in at_dose if arm(r) == (p['head'], padding, pos)]
        ok = sum(converged(r) is not False for r in found)
        parts.append(f'{variant_name((p["head"], padding, pos))}: '
                     + (f'{ok} of {len(found)} cells converged' if found
                        else 'none run'))
    return '; '.join(parts)


def _same(a, b) -> bool:
    return a is not None and b is not None and float(a) == float(b)


def _primary_name(p: dict) -> str:
    where = [p.get('head'), None if p.get('tilt') is None else
             f"tilt {p['tilt']:g}", None if p.get('prior') is None else
             f"P={p['prior']:g}"]
    return (f"{p['contrast']} {p['statistic']} "
            f"({', '.join(w for w in where if w)})")


def leak_section(records: Sequence[dict]) -> str:
    """The leak check of every position-free arm on position-coded data
    (:mod:`.leak`); present in every report."""
    rows = leak_rows(records, POSITION_PAIRS)
    lines = ['## Leak check: do the position-free arms stay blind?', '',
             'Arms without absolute position (circular padding without '
             'CoordConv, position erasure) on data whose pairs differ only '
             'by position (position-coded; position-prior with P=1 and '
             'tilt 0): pairs mIoU over units (converged cells) with its '
             '95% t-interval, against the position-blind level (the best '
             'expected pairs mIoU of a predictor that segments every '
             'object but cannot tell a pair apart: 33.3 for equal pixel '
             'shares). "leaks": the interval\'s lower end lies above the '
             'level.', '']
    if not rows:
        return '\n'.join(lines + [
            'No position-free arm on position-coded data in these results: '
            'the check has nothing to judge.'])
    lines += ['| data | arm | units | pairs mIoU [95% CI] | blind level | '
              'shares | verdict | not converged (left out) |',
              '|---|---|---|---|---|---|---|---|']
    for r in rows:
        st = r['stats']
        ci = ('n/a' if st['mean'] is None else f"{st['mean']:.1f}" + (
            '' if st['ci_low'] is None else
            f" [{st['ci_low']:.1f}, {st['ci_high']:.1f}]"))
        verdict = dict(leaks='**leaks**', **{'not shown': 'leak not shown',
                                             'not judged': 'not judged'})
        lines.append(
            f"| {r['condition']} | {variant_name(r['variant'])} | {st['n']} "
            f"| {ci} | {r['level']:.1f} | {r['shares']} | "
            f"{verdict[r['verdict']]} | "
            f"{', '.join(unit_name(u) for u in r['not_converged']) or 'none'}"
            f" |")
    return '\n'.join(lines)


def nonlinear_probe_section(records: Sequence[dict],
                            patterns: Sequence[str]) -> str:
    """The two-layer probe beside the linear one, over the cells that
    converged or have no verdict: its acceptance rule
    (:func:`.cells.nonlinear_probe_check`) and both readouts' SPC per
    arm, a column per probe pattern of ``patterns`` (the report's).
    Empty when no such cell has a two-layer readout."""
    from .cells import nonlinear_probe_check
    kept = [r for r in records
            if r.get('probe_nonlinear') and converged(r) is not False]
    if not kept:
        return ''
    epochs = sorted({str(r['probe_nonlinear'].get('epochs'))
                     for r in kept})
    lines = ['## Two-layer probe', '',
             f'A two-layer readout ({" / ".join(epochs)} epochs) beside '
             'the linear one, on the same frozen backbones and images. It '
             'is accepted only where, on zero padding without a position '
             'mechanism, it reads at least what the linear readout reads '
             '(mean SPC over patterns, paired by cell, mean paired '
             'difference >= 0): a readout that reads less is '
             'under-trained, not evidence of less position. Over the '
             'cells that converged or have no verdict; descriptive, not '
             'judged.', '']
    check = nonlinear_probe_check(kept)
    if check['accepted'] is None:
        lines += ['No zero-padded cell without a position mechanism: the '
                  'rule has nothing to judge.', '']
    else:
        diffs = list(check['differences'].values())
        lines += [
            f"Zero padding without a position mechanism, {check['n']} "
            f"cell{'' if check['n'] == 1 else 's'}: two-layer minus linear "
            f"mean SPC "
            f"{check['mean_difference']:+.3f} (from {min(diffs):+.3f} to "
            f"{max(diffs):+.3f}); {check['saturated']} of {check['n']} "
            f"two-layer readouts reached their loss plateau. The two-layer "
            f"probe is **{'accepted' if check['accepted'] else 'not accepted'}"
            f"**."]
        if check['loss'] is not None:
            lines[-1] += (
                f" Its last training loss is above the linear readout's in "
                f"{check['above']} of {check['n']} (mean "
                f"{check['loss']:.3f} against {check['linear_loss']:.3f}): "
                f"a readout that fits its training images less well than "
                f"the linear one is under-trained; one that fits them "
                f"better yet reads less on held-out images is over-fitted.")
        lines.append('')
    groups = OrderedDict()
    for r in kept:
        groups.setdefault((condition(r), arm(r)), []).append(r)

    def mean_of(items, key, pattern):
        mean, _ = mean_sd([probe_spc(r.get(key)).get(pattern)
                           for r in items])
        return fmt(mean, None, 2)

    lines += ['| data | arm | cells | ' +
              ' | '.join(f'linear SPC {p}' for p in patterns) + ' | ' +
              ' | '.join(f'two-layer SPC {p}' for p in patterns) +
              ' | two-layer at its plateau |',
              '|' + '---|' * (4 + 2 * len(patterns))]
    for (cond, key), items in groups.items():
        plateau = sum(bool(r['probe_nonlinear'].get('saturated'))
                      for r in items)
        lines.append(
            f'| {cond} | {variant_name(key)} | {len(items)} | ' +
            ' | '.join(mean_of(items, 'probe', p) for p in patterns) +
            ' | ' +
            ' | '.join(mean_of(items, 'probe_nonlinear', p)
                       for p in patterns) + f' | {plateau} of {len(items)} |')
    return '\n'.join(lines)


def readout_section(records: Sequence[dict]) -> str:
    """The readouts that failed to train (:func:`.results.readout_failed`),
    linear and two-layer, whose SPC every table, figure and comparison
    withholds. Empty when no record has a probe."""
    probes = [(r, key, r[key]) for r in records
              for key in ('probe', 'probe_nonlinear')
              if (r.get(key) or {}).get('final_loss') is not None]
    if not probes:
        return ''
    failed = [(r, key, p) for r, key, p in probes if readout_failed(p)]
    lines = [
        '## Probe readouts', '',
        f'A readout failed to train when its last training loss is above '
        f'{FAILED_READOUT_RATIO:g} times the loss of predicting each '
        f'position map\'s spatial mean (a readout that ignores the image: '
        f'{baseline_of(sorted(probes[0][2]["spc"]), 1):.4f} for the '
        f'linear readout on these patterns): its SPC measures the readout, '
        f'not the backbone, and is withheld from every table, figure and '
        f'comparison. {len(failed)} of {len(probes)} readouts failed.']
    if failed:
        lines += ['', '| cell | readout | last training loss | ignoring '
                  'the image | ratio | SPC (withheld) |', '|---|---|---|---|'
                  '---|---|']
        for r, key, p in failed:
            base = baseline_of(p['spc'], int(p.get('convs') or 1))
            spc = ' '.join(f'{k} {v:+.2f}' for k, v in sorted(
                p['spc'].items()) if v is not None)
            lines.append(
                f"| {r.get('name')} | "
                f"{'linear' if key == 'probe' else 'two-layer'} | "
                f"{p['final_loss']:.3f} | {base:.3f} | "
                f"{p['final_loss'] / base:.1f} | {spc} |")
    return '\n'.join(lines)


def convergence_section(records: Sequence[dict]) -> str:
    """The criterion(s) the records state and the cells that did not
    converge (left out of every effect)."""
    criteria = sorted({(r.get('convergence') or {}).get('criterion')
                       for r in records} - {None})
    failed = [r for r in records if converged(r) is False]
    unknown = sum(converged(r) is None for r in records)
    lines = ['## Convergence', '']
    if len(criteria) == 1:
        lines += [f'Criterion: {criteria[0]}', '']
    elif criteria:
        lines += ['Criteria (each record states the one that judged it):',
                  ''] + [f'- {c}' for c in criteria] + ['']
    lines.append(f'{len(records) - len(failed) - unknown} of {len(records)} '
                 f'cells converged, {len(failed)} did not (left out of '
                 f'every mean and effect, marked in every table and '
                 f'figure), {unknown} without a verdict (not measured, or '
                 f'older records; kept).')
    if failed:
        lines += ['', 'Not converged: ' + ', '.join(
            sorted(r.get('name', '?') for r in failed)) + '.']
    rerun = _rerun_text(records)
    if rerun:
        lines += ['', rerun]
    extended = _extended_text(records)
    if extended:
        lines += ['', extended]
    table = _convergence_table(records)
    if table:
        lines += ['', table]
    table = _validations_table(records)
    if table:
        lines += ['', 'Every validation of the cells validated more than '
                  'twice (descriptive, not a verdict): the range, mean and '
                  'standard deviation (ddof 1) of the key metric over its '
                  'validations, and how much a least-squares line through '
                  'them changes between the two judged iterations '
                  '(scipy.stats.linregress; 90% t interval; p for a slope '
                  'of 0), and whether that change is shown to lie within '
                  '± the convergence tolerance (two one-sided t tests at '
                  '0.05, TOST: the 90% interval inside the margin). The '
                  'TOST reading is the equivalence test a "has stopped '
                  'moving" claim needs; the converged column is the '
                  'declared criterion.' + (
                      ' An extended cell\'s row reads the validations of '
                      'its last test (from its first judged window on).'
                      if extended else ''), '', table]
    return '\n'.join(lines)


def _rerun_text(records: Sequence[dict]) -> str:
    """``Run again in place of a record that failed (...): cell (before:
    84.4 at 9600, -3.7, not converged, commit e254b80; differs from the
    validation at 4200 on), ...`` or ''."""
    items = []
    for r in sorted(records, key=lambda r: r.get('name', '')):
        old = r.get('rerun_of')
        if not old:
            continue
        conv = old.get('convergence') or {}
        value, change = old.get('value'), conv.get('change')
        commit = str((old.get('code') or {}).get('commit') or '?')[:7]
        if 'first_difference' not in old:
            same = ''
        elif old['first_difference'] is None:
            same = (f"; repeats its validations to {old.get('last_iter')}"
                    f", value for value")
        else:
            same = f"; differs from the validation at " \
                   f"{old['first_difference']} on"
        items.append(
            f"{r.get('name', '?')} (before: "
            f"{'n/a' if value is None else f'{value:.1f}'} at "
            f"{old.get('last_iter')}, "
            f"{'n/a' if change is None else f'{change:+.1f}'}, not "
            f"converged, commit {commit}{same})")
    if not items:
        return ''
    return ('Run again in place of a record that failed the test (the same '
            'cell run anew, or the failed run continued from its saved '
            'state: a record that repeats its validations is one or the '
            'other; the results file keeps the failed one\'s verdict and '
            'value under rerun_of): ' + ', '.join(items) + '.')


def _extended_text(records: Sequence[dict]) -> str:
    """``Extended from their saved state (...): cell (9600 -> 14400;
    before: -6.2, not converged), ...`` or ''."""
    items = []
    for r in sorted(records, key=lambda r: r.get('name', '')):
        steps = r.get('extensions') or []
        if not steps:
            continue
        parts = []
        for step in steps:
            prev = step.get('previous') or {}
            change = prev.get('change')
            before = 'n/a' if change is None else f'{change:+.1f}'
            verdict = ('converged' if prev.get('converged') else
                       'not converged')
            parts.append(f"{step['from_iter']} -> {step['to_iter']}; "
                         f"before: {before}, {verdict}")
        items.append(f"{r.get('name', '?')} ({'; '.join(parts)})")
    if not items:
        return ''
    return ('Extended from their saved state (trained on at the same rate '
            'and judged again, the previous end against the new one): ' +
            ', '.join(items) + '.')


def validation_points(record: dict) -> list:
    """``[(iteration, key metric), ...]`` of every validation of a cell
    that has a value of its convergence key."""
    key = (record.get('convergence') or {}).get('key')
    return [(v['iter'], v['metrics'][key])
            for v in record.get('validations') or ()
            if key and v['metrics'].get(key) is not None]


def judged_points(record: dict) -> list:
    """:func:`validation_points`; for a cell extended from its saved
    state (:mod:`.extend`) those of its last test only (from the first
    validation of its first window, or its previous end, on), not those
    of the run it extended."""
    conv = record.get('convergence') or {}
    start = None
    if record.get('extensions') and conv.get('iters'):
        windows = conv.get('window_iters')
        start = windows[0][0] if windows else conv['iters'][0]
    return [(i, v) for i, v in validation_points(record)
            if start is None or i >= start]


def _validations_table(records: Sequence[dict]) -> str:
    """A row per cell validated three or more times: see
    :func:`convergence_section`."""
    rows = [(r, judged_points(r)) for r in records]
    rows = [(r, pts) for r, pts in rows if len(pts) >= 3]
    if not rows:
        return ''
    lines = ['| condition | arm | unit | key | validations | range | '
             'mean ± sd | change of the line [90% CI] | p (slope 0) | '
             'line within ± tol (TOST p) | converged |',
             '|---|---|---|---|---|---|---|---|---|---|---|']
    for r, pts in sorted(rows, key=lambda rp: _cell_order(rp[0])):
        conv = r['convergence']
        ends = conv.get('iters') or [pts[0][0], pts[-1][0]]
        tol = conv.get('tol')
        fit = linear_change([i for i, _ in pts], [v for _, v in pts],
                            span=ends[1] - ends[0],
                            margin=tol if tol and tol > 0 else None)
        verdict = {True: 'yes', False: '**no**'}.get(conv.get('converged'),
                                                      'n/a')
        trend = 'n/a' if 'tost_p' not in fit else (
            f"±{tol:g}: {'shown' if fit['tost_p'] < ALPHA else 'not shown'}"
            f" ({fit['tost_p']:.2g})")
        lines.append(
            f"{_cell_columns(r)}{fit['n']} ({pts[0][0]}-{pts[-1][0]}) | "
            f"{fit['low']:.1f}-{fit['high']:.1f} | "
            f"{fit['mean']:.1f} ± {fit['sd']:.1f} | "
            f"{fit['change']:+.1f} [{fit['ci_low']:+.1f}, "
            f"{fit['ci_high']:+.1f}] over {ends[1] - ends[0]} | "
            f"{fit['p']:.2g} | {trend} | {verdict} |")
    return '\n'.join(lines)


def _cell_order(record: dict) -> tuple:
    """Rows of the convergence tables: by condition, arm, unit."""
    return (condition(record), variant_name(arm(record)),
            str(unit(record)))


def _cell_columns(record: dict) -> str:
    """A convergence table row's first four cells (condition, arm, unit,
    key) and the separator after them."""
    key = (record.get('convergence') or {}).get('key')
    return (f"| {condition(record)} | {variant_name(arm(record))} | "
            f"{unit_name(unit(record))} | {NAMES.get(key, '?')} | ")


def _convergence_table(records: Sequence[dict]) -> str:
    """Each cell's two validations of its key metric (or the medians of
    its two windows of validations, with the iterations they span), their
    change and the training loss's relative change (last third against
    the middle third of the run), for records that carry them."""
    measured = [r for r in records
                if len((r.get('convergence') or {}).get('values') or []) == 2]
    if not measured:
        return ''
    lines = ['| condition | arm | unit | key | at iteration | value | '
             'change | loss, last third vs middle | converged |',
             '|---|---|---|---|---|---|---|---|---|']
    for r in sorted(measured, key=_cell_order):
        conv = r['convergence']
        a, b = conv['values']
        iters = conv.get('iters') or ['?', '?']
        if conv.get('window_iters'):  # the medians' spans
            iters = [f'{w[0]}-{w[-1]}' for w in conv['window_iters']]
        rel = (conv.get('loss_plateau') or {}).get('rel_change')
        lines.append(
            f"{_cell_columns(r)}{iters[0]} / {iters[1]} | "
            f"{a:.1f} / {b:.1f} | {b - a:+.1f} | "
            f"{'n/a' if rel is None else format(rel, '+.0%')} | "
            f"{'yes' if conv.get('converged') else '**no**'} |")
    return '\n'.join(lines)


def plateau_table(results: Sequence[dict], layout: str) -> str:
    """Older records' plateau verdicts (:func:`.stats.plateau` on the
    binned training loss) for the cells of condition ``layout``."""
    rows = [r for r in results if condition(r) == layout and
            r.get('plateau')]
    if not rows:
        return ''
    by_variant = OrderedDict()
    for r in rows:
        by_variant.setdefault(arm(r), []).append(
            (unit(r), r['plateau']['plateau'], r['plateau']['rel_change']))
    parts = []
    for key, items in by_variant.items():
        ok = sum(p for _, p, _ in items)
        rel = ', '.join(f'{unit_name(u)} {x:+.1%}' for u, _, x in items)
        parts.append(f'{variant_name(key)}: {ok}/{len(items)} plateaued '
                     f'({rel})')
    return (f'Plateau (older records): the mean training loss over the '
            f'last third of the run within {PLATEAU_FRACTION:.0%} of the '
            f'middle third\'s. ' + '; '.join(parts) + '.')


def _primaries() -> str:
    """The design's primary comparisons in words (:data:`.design.
    PRIMARY`)."""
    return '; '.join(_primary_name(p) for p in PRIMARY)


def units_text(records: Sequence[dict]) -> str:
    data_seeds = sorted({r['cell'].get('data_seed') for r in records
                         if r['cell'].get('data_seed') is not None})
    seeds = sorted({r['cell']['seed'] for r in records})
    return (
        f'Units: training seeds {", ".join(map(str, seeds)) or "none"}; '
        f'data seeds {", ".join(map(str, data_seeds)) or "not recorded"}. '
        'Two arms are compared on cells with the same training seed and '
        'data seed: the per-unit differences (variant - reference) are the '
        'sample; intervals are Student\'s t over these units (95%), which '
        'treats units that share a data seed as independent draws. '
        f'Primary comparisons (declared in the design: {_primaries()}) '
        'are judged by their own 95% '
        'interval; every other comparison is secondary and judged by its '
        'two-sided t test after Holm\'s correction within its family. '
        f'Equivalence: TOST at 0.05 with margins ±{MIOU_MARGIN:g} '
        f'mIoU points and ±{MARGINS["spc"]:g} SPC (Holm-adjusted for '
        'secondary comparisons). A slope is the mean over units of each '
        'unit\'s least-squares slope of the difference against the prior, '
        'with its t interval over units; it has no equivalence margin. '
        'Verdicts: "differs", "equivalent within ±m", or "not shown" '
        '(neither).')
