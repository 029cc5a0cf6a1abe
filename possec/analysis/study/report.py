"""The position study's report: ``study.md``, its figures, ``study.json``
and the results file ``study_results.json``.

The report re-derives from the records and settings alone
(:func:`report_from_results` reads a results file, :mod:`.results`). Its
sections: the code versions, the units and statistics, convergence, the
leak check of the position-free arms (:mod:`.leak`, in every report), the
design's comparisons with their verdicts (:mod:`.comparisons`,
:mod:`.verdict`), the dose-response curves, the generated reading (whose
only words for a comparison are those of :func:`.verdict.sentence`), the
same comparisons on each cell's end-window median where cells were judged
on windows (:mod:`.sensitivity`, descriptive), and
per data condition the variants (mean ± sample standard deviation over
units) with descriptive one-factor differences. Cells that did not
converge are marked in every table and figure and left out of every
effect.
"""
import dataclasses
import json
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

from possec.fileio import atomic_path, dump_json
from .aggregate import (band_names, cell_values, contrasts, group,
                        named_contrasts, not_converged)
from .comparisons import design_rows, dose_curves
from .design import CONTRASTS
from .comparison_plots import plot_contrasts, plot_dose_response
from .plots import (plot_bands, plot_loss_curves, plot_spc,
                    plot_validation_curves)
from .report_sections import (comparison_table, contrast_table,
                              convergence_section, leak_section,
                              nonlinear_probe_section, readout_section,
                              plateau_table, primary_section, reading,
                              units_text, validation_points, variant_table)
from .sensitivity import end_median_records, end_median_section
from .results import (arm, code_versions, condition, converged,
                      load_results, write_results)
from .verdict import judge

__all__ = [
    'RESULTS_FILE', 'comparison_table', 'contrast_table', 'format_markdown',
    'judged_rows', 'reading', 'report_from_results', 'variant_table',
    'write_report'
]

RESULTS_FILE = 'study_results.json'


def load_json(path: str):
    with open(path) as f:
        return json.load(f)


def _plain_settings(settings) -> dict:
    if dataclasses.is_dataclass(settings):
        return dataclasses.asdict(settings)
    return dict(settings or {})


def _value_text(value) -> str:
    if isinstance(value, (list, tuple)):
        return ','.join(map(str, value))
    return str(value)


def format_markdown(results: Sequence[dict], settings: dict,
                    command: Optional[str], total: int,
                    plots: Dict[str, str],
                    rows: Optional[List[dict]] = None) -> str:
    settings = _plain_settings(settings)
    grouped = group(results)
    excluded = not_converged(results)
    bands = band_names(results)
    patterns = list(settings.get('probe_patterns') or [])
    if not patterns:
        patterns = sorted({p for r in results
                           for p in ((r.get('probe') or {}).get('spc')
                                     or {})})
    rows = judged_rows(results) if rows is None else rows
    lines = ['# Position study', '']
    if command:
        lines += ['Command:', '', '```', command, '```', '']
    lines += [f'{len(results)} of {total} cells finished.', '',
              'Code: ' + '; '.join(code_versions(results) or ['no cells']) +
              '.', '', units_text(results), '',
              convergence_section(results), '']
    readouts = readout_section(results)
    if readouts:
        lines += [readouts, '']
    lines += [leak_section(results), '',
              primary_section(rows, results), '']
    nonlinear = nonlinear_probe_section(results, patterns)
    if nonlinear:
        lines += [nonlinear, '']
    if rows:
        lines += ['## Comparisons', '']
        for name in list(CONTRASTS) + sorted(
                {r['contrast'] for r in rows} - set(CONTRASTS)):
            items = [r for r in rows if r['contrast'] == name]
            if not items:
                continue
            question = CONTRASTS[name]['question'] if name in CONTRASTS \
                else ''
            lines += [f'### {name}', '', question, '',
                      comparison_table(items), '']
        lines += ['## Reading (generated from the verdicts above)', '']
        lines += [f'- {s}' for s in reading(rows)] + ['']
        medians = end_median_records(results)
        if medians is not None:
            lines += [end_median_section(rows, judged_rows(medians)), '']
    lines += [
        'Settings: ' + ', '.join(f'{k}={_value_text(v)}'
                                 for k, v in sorted(settings.items())), '',
        'Numbers are the mean over units ± the sample standard deviation '
        '(ddof=1) across units, over the cells that converged or have no '
        'convergence verdict. mIoU and the probe\'s SPC are in % and '
        '[-1, 1]. "pairs mIoU" averages the ten classes of the look-alike '
        'pairs, "others mIoU" the other eleven (background included). '
        'Bands are distances d to the border, d = min(x, y, W-1-x, H-1-y), '
        'as shares of the short side (band 0 is the outermost).', '']
    unknown = {}
    for r in results:
        if converged(r) is None:
            d, key = unknown.setdefault(condition(r), {}), arm(r)
            d[key] = d.get(key, 0) + 1
    conditions = list(grouped) + [c for c in excluded if c not in grouped]
    for name in conditions:
        variants = grouped.get(name, {})
        lines += [f'## {name}', '',
                  variant_table(name, variants, bands, patterns,
                                excluded.get(name), unknown.get(name)), '']
        conv = plateau_table(results, name)
        if conv:
            lines += [conv, '']
        items = contrasts(variants)
        if items:
            lines += ['One-factor differences (variant minus reference, '
                      'paired by unit; mean [95% t-interval]; descriptive, '
                      'not judged: the verdicts are the comparisons\'):',
                      '', contrast_table(items), '']
    for title, name in plots.items():
        lines += [f'![{title}]({name})', '']
    return '\n'.join(lines)


def judged_rows(results: Sequence[dict]) -> List[dict]:
    """The design's comparisons (:func:`.comparisons.design_rows`) and,
    on conditions the design does not name (older studies, extra
    experiments), the same contrasts by layout (:func:`.aggregate.
    named_contrasts`; secondary, in families of their own), judged
    (:func:`.verdict.judge`)."""
    rows = design_rows(results)
    covered = {r['condition'] for r in rows}
    grouped = group(results)
    legacy = named_contrasts(OrderedDict(
        (k, v) for k, v in grouped.items() if k not in covered))
    for r in legacy:
        r.setdefault('kind', 'interaction' if r['interaction'] else
                     'comparison')
        r.setdefault('not_converged', [])
        # never primary, and Holm-corrected apart from the design's own
        r['judged'] = [(col, False, f'{family} (outside the design)')
                       for col, _, family in r['judged']]
    return judge(rows + legacy)


def loss_curves(results: Sequence[dict]) -> dict:
    """``{condition: {variant key: [(iters, loss), ...]}}`` of the cells
    that recorded a training-loss curve; a variant with non-converged
    cells is named ``(k not converged)``."""
    out = OrderedDict()
    for r in results:
        curve = r.get('loss_curve')
        if not curve:
            continue
        out.setdefault(condition(r), OrderedDict()).setdefault(
            arm(r), []).append(
                (curve['iters'], curve['loss']))
    return out


def validation_curves(results: Sequence[dict]) -> dict:
    """``{condition: {variant key: [dict(iters, values, converged,
    windows), ...]}}``: each cell's key metric at every validation, for
    the cells validated more than twice (a windowed convergence test);
    ``windows`` are the judged spans as ``(first, last)`` iterations."""
    out = OrderedDict()
    for r in results:
        conv = r.get('convergence') or {}
        points = validation_points(r)
        if len(points) < 3:
            continue
        out.setdefault(condition(r), OrderedDict()).setdefault(
            arm(r), []).append(dict(
                iters=[i for i, _ in points], values=[v for _, v in points],
                converged=conv.get('converged'),
                windows=[(w[0], w[-1]) for w in conv.get('window_iters')
                         or ()]))
    return out


def write_report(results: Sequence[dict], out_dir: str, settings,
                 command: Optional[str] = None,
                 total: Optional[int] = None) -> Dict[str, str]:
    """Write ``study.md``, its figures, ``study.json`` and the results
    file ``study_results.json`` into ``out_dir`` (each atomically).

    Args:
        results (Sequence[dict]): Cell records.
        out_dir (str): The folder.
        settings (dict | StudySettings): The study settings.
        command (str, optional): The study's command line. Default: None.
        total (int, optional): Cells of the study (finished or not).
            Default: ``len(results)``.

    Returns:
        dict: Name -> path of every file written.
    """
    settings = _plain_settings(settings)
    total = len(results) if total is None else total
    files = dict(json=osp.join(out_dir, 'study.json'),
                 results=osp.join(out_dir, RESULTS_FILE),
                 markdown=osp.join(out_dir, 'study.md'))
    dump_json(dict(settings=settings, command=command, total=total,
                   finished=len(results), results=list(results)),
              files['json'], sort_keys=True)
    write_results(files['results'], results, settings, command)
    plots = OrderedDict()
    rows = judged_rows(results) if results else []
    if results:
        grouped = group(results)
        excluded = not_converged(results)
        files['bands'] = osp.join(out_dir, 'study_bands.png')
        plot_bands(grouped, band_names(results), files['bands'], excluded)
        plots['mIoU by distance to the border'] = 'study_bands.png'
        files['spc'] = osp.join(out_dir, 'study_spc.png')
        plot_spc(grouped, files['spc'], _excluded_points(results))
        plots['probe SPC vs mIoU'] = 'study_spc.png'
        if rows:
            files['contrasts'] = osp.join(out_dir, 'study_contrasts.png')
            plot_contrasts([r for r in rows if r['kind'] != 'slope'],
                           files['contrasts'])
            plots['comparisons: differences of each row\'s key column with '
                  '95% CIs'] = 'study_contrasts.png'
        curves = dose_curves(rows)
        if curves:
            files['dose'] = osp.join(out_dir, 'study_dose.png')
            plot_dose_response(curves, files['dose'])
            plots['dose-response: differences against the prior, a panel '
                  'per tilt'] = 'study_dose.png'
        losses = loss_curves(results)
        if losses:
            files['loss'] = osp.join(out_dir, 'study_loss.png')
            plot_loss_curves(losses, files['loss'], excluded)
            plots['training loss per variant'] = 'study_loss.png'
        validations = validation_curves(results)
        if validations:
            files['validations'] = osp.join(out_dir,
                                            'study_validations.png')
            plot_validation_curves(validations, files['validations'])
            plots['key metric at every validation, per cell'] = \
                'study_validations.png'
    text = format_markdown(results, settings, command, total, plots, rows)
    with atomic_path(files['markdown']) as tmp:
        with open(tmp, 'w') as f:
            f.write(text + '\n')
    return files


def _excluded_points(results: Sequence[dict]) -> Dict[str, list]:
    out = {}
    for r in results:
        if converged(r) is False:
            v = cell_values(r)
            if v.get('spc') is not None and v.get('mIoU') is not None:
                out.setdefault(condition(r), []).append((v['spc'],
                                                         v['mIoU']))
    return out


def report_from_results(path: str, out_dir: str) -> Dict[str, str]:
    """Regenerate the report and figures from a results file alone
    (:func:`.results.load_results`; one line on a file that is not one).

    Returns:
        dict: Name -> path of every file written.
    """
    data = load_results(path)
    return write_report(data['cells'], out_dir, data['settings'],
                        data['command'])
