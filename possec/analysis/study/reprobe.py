"""The two-layer probe again, at longer budgets, on kept cells.

The study reads each trained backbone with the linear probe and, with
``nonlinear_probe_epochs``, a two-layer readout; the two-layer readout is
accepted only where it reads at least what the linear one reads on zero
padding (:func:`.cells.nonlinear_probe_check`). A readout that reads less
may be under-trained (then more epochs close the gap) or may fit its 51
training images too closely (then they do not). :func:`reprobe_folders`
tells the two apart without training a cell again: for every finished
cell of a study folder that kept its state (``--keep-checkpoints``) it
rebuilds the segmentor from the config its run dumped and the state at its
last validated iteration, reads the backbone with the linear probe again
(its report says on how many cells it equals the record's, and a line
is printed for each that does not: the check that the backbone is the
one the record read) and trains the two-layer readout for each budget of
``epochs``, with the record's seed, images, learning rate and thread
count. The rule is then judged at each budget.

Each (cell, budget) is written to ``cells/`` as it finishes, so that a
killed run continues where it stopped; ``reprobe.json`` (the results),
``reprobe.md`` and ``reprobe.png`` are rewritten at the end, and
:func:`reprobe_report` writes the last two again from ``reprobe.json``
alone (``position_study.py --report`` does it for such a file).

Two folders may hold one trained backbone twice (a study run again with
the same seeds and code, validated otherwise or under another condition
name): :func:`distinct` counts such twins once, in the rule and in
:func:`padding_rows`, the paired zero minus circular padding differences
on each readout (the study's border comparison read by the linear probe
and by the two-layer readout at each budget).

:func:`kept_cells` and :func:`kept_probe` are the two steps on their own,
for other readings of the kept states (another readout recipe, say):
which cells kept a state, and the study's probe on one of them.
"""
import glob
import json
import os.path as osp
import time
from collections import OrderedDict, namedtuple
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import torch
from matplotlib.ticker import NullFormatter

from possec.fileio import atomic_path, dump_json
from ..common.figures import new_figure
from .aggregate import fmt, mean_sd
from .cells import (_mean_spc, nonlinear_probe_check, probe_backbone,
                    study_probe_images)
from .design import variant_name
from .extend import checkpoint_path
from .inference import difference_test
from .provenance import code_version
from .report import load_json
from .results import (FAILED_READOUT_RATIO, arm, condition, converged,
                      readout_failed, unit, unit_name)
from .run import folder_records
from .settings import StudyError, StudySettings
from .stats import interval, paired_contrast

__all__ = ['distinct', 'is_reprobe_file', 'kept_cells', 'kept_probe',
           'load_reprobe', 'padding_rows', 'reprobe_folders',
           'reprobe_report', 'rule_rows', 'KeptCell', 'REPROBE_FORMAT']

REPROBE_FORMAT = 'possec-study-reprobe'
REPROBE_VERSION = 1
_SAME = 1e-6


def _check_epochs(epochs: Sequence[int]) -> List[int]:
    if isinstance(epochs, int):
        epochs = [epochs]
    out = []
    for e in epochs:
        if isinstance(e, bool) or not isinstance(e, int) or e < 3:
            raise StudyError(f'reprobe epochs must be integers >= 3 (the '
                             f'plateau test needs three thirds), got {e!r}')
        out.append(e)
    if not out or len(set(out)) != len(out):
        raise StudyError(f'reprobe epochs must be distinct and at least '
                         f'one, got {list(epochs)!r}')
    return sorted(out)


#: One finished cell that kept its state: its study folder, its record,
#: its work directory, the state at its last validated iteration and the
#: config its run dumped.
KeptCell = namedtuple('KeptCell', 'folder record work checkpoint config')


def kept_cells(folders: Sequence[str],
               keep: Optional[Callable[[dict], bool]] = None
               ) -> List[KeptCell]:
    """Every finished cell of ``folders`` that kept its last state.

    Args:
        folders (Sequence[str]): Study folders (``--out-dir`` of runs with
            ``--keep-checkpoints``).
        keep (callable, optional): Which records to read. Default: all.

    Returns:
        list[KeptCell]: In folder order, then the folder's record order.

    Raises:
        StudyError: A folder is not a study folder, a cell's work
            directory holds other than one config, or no cell is left.
    """
    found = []
    for folder in folders:
        if not osp.isdir(osp.join(folder, 'runs')):
            raise StudyError(f'{folder} is not a study folder (no runs/ in '
                             f'it): give the --out-dir of a study run with '
                             f'--keep-checkpoints')
        for record in folder_records(folder):
            if keep is not None and not keep(record):
                continue
            work = osp.join(folder, 'runs', record['name'])
            ckpt = checkpoint_path(record, work)
            if not osp.isfile(ckpt):
                continue
            configs = sorted(glob.glob(osp.join(work, '*.py')))
            if len(configs) != 1:
                raise StudyError(
                    f'{work} holds {len(configs)} config files, expected '
                    f'the one its run dumped; remove the others')
            found.append(KeptCell(folder, record, work, ckpt, configs[0]))
    if not found:
        raise StudyError(f'no finished cell with a kept state in '
                         f'{", ".join(folders)} (and the filters): run the '
                         f'study with --keep-checkpoints')
    return found


def _same(a: Optional[dict], b: Optional[dict]) -> Optional[float]:
    """Largest |SPC difference| of two probes over their shared patterns
    (None if either is missing)."""
    if not a or not b:
        return None
    pa, pb = a.get('spc') or {}, b.get('spc') or {}
    keys = [k for k in pa if k in pb and pa[k] is not None
            and pb[k] is not None]
    return max(abs(pa[k] - pb[k]) for k in keys) if keys else None


def reprobe_folders(folders: Sequence[str], out_dir: str,
                    epochs: Sequence[int],
                    keep: Optional[Callable[[dict], bool]] = None,
                    command: Optional[str] = None,
                    log: Callable[[str], None] = print) -> Dict[str, str]:
    """Train the two-layer probe at each budget of ``epochs`` on every
    kept cell of ``folders`` (see the module's text) and write the
    results and report into ``out_dir``.

    Args:
        folders (Sequence[str]): Study folders (``--out-dir`` of runs with
            ``--keep-checkpoints``).
        out_dir (str): Where ``cells/``, ``reprobe.json``, ``reprobe.md``
            and ``reprobe.png`` go; rerun with the same folder to continue.
        epochs (Sequence[int]): Budgets of the two-layer readout.
        keep (callable, optional): Which records to read. Default: all.
        command (str, optional): The command, recorded.
        log (callable): Progress lines. Default: print.

    Returns:
        dict: Name -> path of every file written.
    """
    budgets = _check_epochs(epochs)
    cells = kept_cells(list(folders), keep)
    done_dir = osp.join(out_dir, 'cells')
    total, t_start, ran = len(cells) * len(budgets), time.perf_counter(), 0
    log(f'reprobe: {len(cells)} kept cell(s) x {len(budgets)} budget(s) '
        f'({", ".join(map(str, budgets))} epochs) into {out_dir}')
    entries = []
    for index, (folder, record, work, ckpt, config) in enumerate(cells):
        key = f'{osp.basename(osp.normpath(folder))}__{record["name"]}'
        path = osp.join(done_dir, key + '.json')
        entry = load_json(path) if osp.isfile(path) else None
        if entry is None or entry.get('checkpoint') != ckpt:
            entry = dict(name=record['name'], folder=folder, key=key,
                         checkpoint=ckpt, cell=record['cell'],
                         convergence=record.get('convergence'),
                         code=record.get('code'),
                         probe=record.get('probe'),
                         probe_nonlinear=record.get('probe_nonlinear'),
                         rerun=None, readouts={})
        todo = [e for e in budgets if str(e) not in entry['readouts']]
        if todo or entry['rerun'] is None:
            entry = _probe_cell(entry, record, config, ckpt, todo, path,
                                log, index, len(cells))
            ran += len(todo)
            rate = (time.perf_counter() - t_start) / max(ran, 1)
            left = sum(str(e) not in entry['readouts'] for e in budgets)
            remaining = (len(cells) - index - 1) * len(budgets) + left
            log(f'reprobe: {index + 1}/{len(cells)} cells, about '
                f'{rate * remaining / 60:.0f} min left at this rate '
                f'({total} readouts in all)')
        entries.append(entry)
    data = dict(format=REPROBE_FORMAT, version=REPROBE_VERSION,
                command=command, code=code_version(), epochs=budgets,
                folders=list(folders), cells=entries)
    results = osp.join(out_dir, 'reprobe.json')
    dump_json(data, results)
    files = reprobe_report(results, out_dir)
    files['results'] = results
    return files


@contextmanager
def kept_probe(record: dict, config: str, checkpoint: str,
               **overrides) -> Iterator[Callable[..., dict]]:
    """The study's probe on one kept cell's backbone.

    Rebuilds the segmentor from the dumped ``config`` and ``checkpoint``
    once, and yields ``probe(convs=None, epochs=None)``, which trains one
    readout on the frozen backbone with the record's settings, probe
    images, training seed and input normalisation
    (:func:`.cells.probe_backbone`; ``convs``/``epochs`` None for the
    settings'), and returns its probe record. With the record's settings
    and thread count the linear readout is the one the record holds.

    Args:
        record (dict): The cell's record (``folder_records``).
        config (str): The config its run dumped.
        checkpoint (str): Its kept state.
        **overrides: Settings that replace the record's for the readout
            (``probe_lr=0.001``, say); checked as the study checks them.

    Yields:
        callable: ``probe(convs=None, epochs=None) -> dict``.
    """
    from ..common.models import load_segmentor
    s = StudySettings.from_dict(dict(record['settings'], **overrides))
    threads = torch.get_num_threads()
    if s.threads:
        torch.set_num_threads(s.threads)
    try:
        model = load_segmentor(config, checkpoint)
        prep = model.cfg.model.get('data_preprocessor', {})
        mean, std = prep.get('mean'), prep.get('std')
        images = study_probe_images(s)
        seed = record['cell']['seed']

        def probe(convs: Optional[int] = None,
                  epochs: Optional[int] = None) -> dict:
            return probe_backbone(model.backbone, images, s, seed, mean,
                                  std, convs=convs, epochs=epochs)

        yield probe
    finally:
        torch.set_num_threads(threads)


def _probe_cell(entry: dict, record: dict, config: str, ckpt: str,
                todo: Sequence[int], path: str, log, index: int,
                count: int) -> dict:
    with kept_probe(record, config, ckpt) as probe:
        if entry['rerun'] is None:
            linear = probe()
            entry['rerun'] = dict(
                probe=linear, linear_difference=_same(linear,
                                                      record.get('probe')))
            dump_json(entry, path)
            diff = entry['rerun']['linear_difference']
            if diff is not None and diff > _SAME:
                log(f'[{index + 1}/{count}] {entry["key"]}: the linear '
                    f'probe read again differs from the record\'s by '
                    f'{diff:.2g} SPC: the kept state is not the backbone '
                    f'the record read (other code, threads or device?)')
        for e in todo:
            t0 = time.perf_counter()
            entry['readouts'][str(e)] = probe(convs=2, epochs=e)
            dump_json(entry, path)
            r = entry['readouts'][str(e)]
            log(f'[{index + 1}/{count}] {entry["key"]}: two-layer {e} '
                f'epochs, mean SPC {_mean_spc(r):+.3f} (linear '
                f'{_mean_spc(entry["probe"]):+.3f}), at its plateau: '
                f'{r["saturated"]}, {time.perf_counter() - t0:.0f} s')
    return entry


def is_reprobe_file(path: str) -> bool:
    """Whether ``path`` is a readable JSON file of this format."""
    try:
        data = load_json(path)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get('format') == REPROBE_FORMAT


def load_reprobe(path: str) -> dict:
    """A ``reprobe.json``, checked (one line on a file that is not one)."""
    data = load_json(path)
    if not isinstance(data, dict) or data.get('format') != REPROBE_FORMAT:
        raise StudyError(f'{path} is not a reprobe results file (format '
                         f'{REPROBE_FORMAT!r}); make one with '
                         f'position_study.py --reprobe')
    if data.get('version') != REPROBE_VERSION:
        raise StudyError(f'{path} is reprobe version '
                         f'{data.get("version")!r}; this code reads version '
                         f'{REPROBE_VERSION}')
    return data


def _as_records(entries: Sequence[dict], budget: int) -> List[dict]:
    """The entries as study records whose two-layer readout is the one at
    ``budget`` (those that have it), named by their key (folder and cell:
    two folders may hold cells of one name, and the rule pairs by name)."""
    return [dict(e, name=e['key'], probe_nonlinear=e['readouts'][str(budget)])
            for e in entries if str(budget) in e['readouts']]


def _fingerprint(entry: dict) -> str:
    """What identifies one trained backbone: its arm and seeds and the
    numbers the linear probe read from it, exactly (the probe is seeded,
    so one backbone read twice gives them bit for bit; the condition's
    name and the validations may differ: a study that validates on
    other images, or names the same training data otherwise, e.g.
    ``prior-shift`` with Q = P, trains the same network)."""
    c, probe = entry['cell'], entry.get('probe') or {}
    return json.dumps([c.get('head'), c.get('padding'), c.get('pos'),
                       c.get('seed'), c.get('data_seed'), probe.get('spc'),
                       probe.get('mae')], sort_keys=True)


def distinct(entries: Sequence[dict]) -> tuple:
    """The entries with each trained backbone once: ``(kept, twins)``,
    ``twins`` mapping the key of every later copy to the key of the first
    (:func:`_fingerprint`)."""
    first: Dict[str, str] = {}
    kept, twins = [], OrderedDict()
    for e in entries:
        mark = _fingerprint(e)
        if mark in first:
            twins[e['key']] = first[mark]
        else:
            first[mark] = e['key']
            kept.append(e)
    return kept, twins


def _judged(data: dict) -> List[dict]:
    """The distinct entries that converged or have no verdict."""
    return distinct([e for e in data['cells']
                     if converged(e) is not False])[0]


def rule_rows(data: dict) -> List[dict]:
    """The acceptance rule at each budget, over the distinct cells that
    converged or have no verdict: ``epochs``,
    :func:`.cells.nonlinear_probe_check`'s numbers and the t interval of
    the paired differences."""
    kept = _judged(data)
    rows = []
    for budget in data['epochs']:
        check = nonlinear_probe_check(_as_records(kept, budget))
        diffs = list(check['differences'].values())
        ci = interval(diffs) if len(diffs) > 1 else None
        rows.append(dict(epochs=budget, **check, interval=ci))
    return rows


def _readout(entry: dict, budget: Optional[int]) -> Optional[float]:
    probe = (entry['probe'] if budget is None
             else entry['readouts'].get(str(budget)))
    return _mean_spc(probe)


def padding_rows(data: dict) -> List[dict]:
    """Zero minus circular padding, mean SPC over patterns, paired by
    unit within each data condition, head and position mechanism, on the
    linear readout (``epochs`` None) and on the two-layer one at each
    budget; over the distinct cells that converged or have no verdict.

    Returns:
        list[dict]: ``condition``, ``head``, ``pos``, ``epochs``,
        ``units`` (names), ``differences``, ``mean``, ``interval`` (t,
        None with one unit) and ``p`` (two-sided t test of a zero mean,
        None with one unit).
    """
    groups: Dict[tuple, Dict[str, dict]] = OrderedDict()
    for e in _judged(data):
        c = e['cell']
        by_padding = groups.setdefault((condition(e), c['head'], c['pos']),
                                       {})
        by_padding.setdefault(c['padding'], {})[unit(e)] = e
    rows = []
    for (cond, head, pos), by_padding in groups.items():
        zeros = by_padding.get('zeros', {})
        circular = by_padding.get('circular', {})
        for budget in [None] + list(data['epochs']):
            c = paired_contrast(
                {u: _readout(e, budget) for u, e in zeros.items()},
                {u: _readout(e, budget) for u, e in circular.items()})
            if not c['diffs']:
                continue
            many = c['n'] > 1
            rows.append(dict(
                condition=cond, head=head, pos=pos, epochs=budget,
                units=[unit_name(u) for u in c['seeds']],
                differences=c['diffs'], mean=c['mean'],
                interval=c if many else None,
                p=difference_test(c['diffs'])['p'] if many else None))
    return rows


def _padding_lines(data: dict, rules: List[dict]) -> List[str]:
    """The report's section of :func:`padding_rows`."""
    rows = padding_rows(data)
    lines = ['', '## Zero minus circular padding on each readout', '']
    if not rows:
        return lines + ['No condition has converged cells of both paddings '
                        'on one unit.']
    verdict = {r['epochs']: r['accepted'] for r in rules}
    lines += ['The study\'s border comparison read by each readout: zero '
              'minus circular padding, mean SPC over patterns, paired by '
              'unit (t interval and two-sided t test; secondary, not in a '
              'Holm family). A two-layer budget counts only where the rule '
              'above accepts it.', '',
              '| data | head / pos | readout | units | zeros - circular '
              '| 95% CI (t) | p | per unit |',
              '|---|---|---|---|---|---|---|---|']
    for r in rows:
        if r['epochs'] is None:
            name = 'linear'
        else:
            ok = verdict.get(r['epochs'])
            name = (f"two-layer {r['epochs']} "
                    f"({'accepted' if ok else 'not accepted'})")
        ci = r['interval']
        ci_text = (f"[{ci['ci_low']:+.3f}, {ci['ci_high']:+.3f}]"
                   if ci and ci['ci_low'] is not None else '')
        p = '' if r['p'] is None else f"{r['p']:.3g}"
        per = ', '.join(f'{u} {d:+.3f}'
                        for u, d in zip(r['units'], r['differences']))
        lines.append(f"| {r['condition']} | {r['head']} / pos {r['pos']} "
                     f"| {name} | {len(r['units'])} | {r['mean']:+.3f} | "
                     f"{ci_text} | {p} | {per} |")
    for budget in [None] + list(data['epochs']):
        diffs = [d for r in rows if r['epochs'] == budget
                 for d in r['differences']]
        name = 'linear' if budget is None else f'two-layer {budget}'
        lines += ['', f'{name}: zero padding reads more in '
                  f'{sum(d > 0 for d in diffs)} of {len(diffs)} pairs (all '
                  f'conditions; a unit at several conditions counts at '
                  f'each, so this is a count, not a test).']
    return lines


def _loss_text(row: dict) -> str:
    if row['loss'] is None:
        return ''
    return (f"{row['loss']:.3f} / {row['linear_loss']:.3f} "
            f"({row['above']} of {row['n']})")


def reprobe_report(path: str, out_dir: str) -> Dict[str, str]:
    """``reprobe.md`` and ``reprobe.png`` of a ``reprobe.json``."""
    data = load_reprobe(path)
    entries, budgets = data['cells'], data['epochs']
    judged = _judged(data)
    lines = ['# The two-layer probe at longer budgets', '',
             f'Kept states of {len(entries)} cell(s) from '
             f'{len(data["folders"])} study folder(s), read again with the '
             f'linear probe and with a two-layer readout trained for '
             f'{", ".join(map(str, budgets))} epochs (the study\'s rule: '
             f'accepted where, on zero padding without a position mechanism, '
             f'it reads at least what the linear readout reads; mean SPC '
             f'over patterns, paired by cell). Over the cells that converged '
             f'or have no verdict; descriptive, not judged.', '']
    if data.get('command'):
        lines += [f'Command: `{data["command"]}`', '']
    twins = distinct(entries)[1]
    if twins:
        lines += ['Twins (one backbone in two folders: same arm, seeds and '
                  'linear probe numbers), counted once: ' +
                  '; '.join(f'{k} is {v}' for k, v in twins.items()) + '.',
                  '']
    diffs = [e['rerun']['linear_difference'] for e in entries
             if e.get('rerun') and e['rerun'].get('linear_difference')
             is not None]
    same = sum(d <= _SAME for d in diffs)
    lines += [f'Check: the linear probe read again equals the record\'s on '
              f'{same} of {len(diffs)} cell(s) (largest |SPC difference| '
              f'{max(diffs) if diffs else float("nan"):.2g}).']
    old = [(e, e['readouts'][str(e['probe_nonlinear']['epochs'])])
           for e in entries if e.get('probe_nonlinear')
           and str(e['probe_nonlinear'].get('epochs')) in e['readouts']]
    if old:
        again = sum((_same(r, e['probe_nonlinear']) or 0.) <= _SAME
                    for e, r in old)
        lines[-1] += (f' The two-layer readout at the record\'s own budget '
                      f'equals the record\'s on {again} of {len(old)}.')
    lines += ['', '## The rule at each budget', '',
              '| epochs | cells | two-layer - linear mean SPC | 95% CI (t) '
              '| range | at its plateau | training loss, two-layer / '
              'linear (two-layer above) | two-layer probe |',
              '|---|---|---|---|---|---|---|---|']
    rules = rule_rows(data)
    for row in rules:
        if row['accepted'] is None:
            lines.append(f"| {row['epochs']} | 0 | | | | | | no cell to "
                         f"judge |")
            continue
        d = list(row['differences'].values())
        ci = row['interval']
        ci_text = (f"[{ci['ci_low']:+.3f}, {ci['ci_high']:+.3f}]"
                   if ci and ci['ci_low'] is not None else '')
        lines.append(
            f"| {row['epochs']} | {row['n']} | "
            f"{row['mean_difference']:+.3f} | {ci_text} | "
            f"{min(d):+.3f} to {max(d):+.3f} | {row['saturated']} of "
            f"{row['n']} | {_loss_text(row)} | "
            f"{'accepted' if row['accepted'] else 'not accepted'} |")
    lines += ['', '## Mean SPC over patterns per arm', '',
              '| data | arm | cells | linear | ' +
              ' | '.join(f'two-layer {b}' for b in budgets) + ' |',
              '|' + '---|' * (4 + len(budgets))]
    groups = OrderedDict()
    for e in judged:
        groups.setdefault((condition(e), arm(e)), []).append(e)
    for (cond, key), items in groups.items():
        cols = []
        for b in budgets:
            vals = [_mean_spc(e['readouts'].get(str(b))) for e in items]
            mean, _ = mean_sd([v for v in vals if v is not None])
            plateau = sum(bool((e['readouts'].get(str(b)) or {})
                               .get('saturated')) for e in items)
            cols.append(f'{fmt(mean, None, 2)} ({plateau} at plateau)')
        lin, _ = mean_sd([_mean_spc(e['probe']) for e in items])
        lines.append(f'| {cond} | {variant_name(key)} | {len(items)} | '
                     f'{fmt(lin, None, 2)} | ' + ' | '.join(cols) + ' |')
    failed = [e['key'] for e in judged
              if any(readout_failed(p) for p in
                     [e.get('probe')] + list(e['readouts'].values()))]
    if failed:
        lines += ['', f'n/a: no readout that trained. A readout whose last '
                  f'training loss is above {FAILED_READOUT_RATIO:g} times '
                  f"the loss of predicting each map's spatial mean failed "
                  f'to train, and its SPC is withheld; it failed on '
                  f'{", ".join(failed)}.']
    lines += _padding_lines(data, rules)
    lines += ['', '![two-layer minus linear SPC against the budget]'
              '(reprobe.png)', '']
    md = osp.join(out_dir, 'reprobe.md')
    with atomic_path(md) as tmp:
        with open(tmp, 'w') as f:
            f.write('\n'.join(lines))
    png = osp.join(out_dir, 'reprobe.png')
    fig = _figure(judged, budgets)
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format='png', dpi=110)
    return dict(markdown=md, figure=png)


def _figure(entries: Sequence[dict], budgets: Sequence[int]):
    """Two-layer minus linear mean SPC against the budget, one line per
    cell of ``entries`` (the report passes the distinct cells that
    converged or have no verdict), a panel per padding; readouts that
    failed to train are not drawn."""
    paddings = sorted({arm(e)[1] for e in entries})
    fig, axes = new_figure(1, len(paddings), size=3.6)
    for ax, padding in zip(axes[0], paddings):
        for e in entries:
            if arm(e)[1] != padding:
                continue
            lin = _mean_spc(e['probe'])
            if lin is None:  # its linear readout failed: nothing to subtract
                continue
            spc = {b: _mean_spc(e['readouts'].get(str(b))) for b in budgets}
            xs = [b for b in budgets if spc[b] is not None]
            ys = [spc[b] - lin for b in xs]
            sat = [bool(e['readouts'][str(b)].get('saturated'))
                   for b in xs]
            ax.plot(xs, ys, color='0.6', lw=0.8, zorder=1)
            ax.scatter(xs, ys, s=14, zorder=2,
                       c=['tab:blue' if s else 'tab:orange' for s in sat])
            pos = e['cell'].get('pos')
            if xs and pos not in (None, 'none'):
                ax.annotate(f'pos {pos}', (xs[-1], ys[-1]), fontsize=7,
                            xytext=(-4, 4), textcoords='offset points',
                            ha='right')
        ax.axhline(0, color='k', lw=0.8)
        ax.set_xscale('log')
        ax.set_xticks(list(budgets))
        ax.set_xticklabels([str(b) for b in budgets])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel('two-layer readout epochs')
        ax.set_title(f"{'zero' if padding == 'zeros' else padding} "
                     f"padding", fontsize=10)
    axes[0][0].set_ylabel('two-layer - linear mean SPC')
    fig.suptitle('blue: at its loss plateau, orange: not', fontsize=9)
    return fig

