"""One cell of the position study: train, validate, probe, record.

A cell is one in-process training (:func:`possec.apis.train`) of the
config that :mod:`.builder` makes from it. It is validated with
:class:`possec.evaluation.BorderIoUMetric` (overall, per class and by
distance to the border, as in `Position, Padding and Predictions
<https://arxiv.org/abs/2101.12322>`_) at the end of its schedule and,
with a constant-rate tail, again at the end of the tail (the convergence
test of :mod:`.convergence`); its trained backbone is then read by the
position probe of `How Much Position Information Do Convolutional Neural
Networks Encode? <https://arxiv.org/abs/2001.08248>`_ (linear, and
optionally a two-layer readout trained to saturation).
"""
import copy
import gc
import os.path as osp
import time
from typing import Optional, Sequence, Union

import torch

from possec.apis import train
from possec.datasets.synthetic import (POSITION_PAIRS, generate_synthetic_voc,
                                       read_generation_meta)
from ..probe import FrozenEncoder, probe_images, run_probe
from .builder import (PROBE_DATA_SEED, cell_options, head_config,
                      probe_data_root)
from .convergence import judge
from .design import Cell
from .progress import binned, loss_values
from .provenance import code_version
from .report import load_json
from .results import PROBE_GRID, baseline_of, probe_spc
from .settings import StudyError, StudySettings
from .stats import plateau

PAIR_CLASSES = sorted(c for pair in POSITION_PAIRS for c in pair)


def check_settings(settings: Union[None, dict, StudySettings]
                   ) -> StudySettings:
    """The study settings: a :class:`StudySettings`, or the defaults
    updated by a dict (unknown keys and bad values refused)."""
    if isinstance(settings, StudySettings):
        return settings
    return StudySettings.from_dict(settings)


def study_probe_images(settings: StudySettings) -> torch.Tensor:
    """The probe's images: the first ``probe_images`` of a periodic
    ``uniform`` tree drawn with :data:`.builder.PROBE_DATA_SEED` (unseen
    by every training; position carries no label information there, and
    the images have no seam to read it from), as ``uint8 (N, 3, S, S)``."""
    s = settings
    root = probe_data_root(s)
    if read_generation_meta(root) is None:
        generate_synthetic_voc(root, 'uniform', s.probe_images, 1,
                               s.img_size, PROBE_DATA_SEED, progress=False,
                               periodic='both')
    return probe_images(osp.join(root, 'JPEGImages'), s.img_size,
                        s.probe_images)


def probe_backbone(backbone: torch.nn.Module, images: torch.Tensor,
                   settings: StudySettings, seed: int, mean=None, std=None,
                   convs: Optional[int] = None,
                   epochs: Optional[int] = None) -> dict:
    """H/V/G SPC and MAE of a trained backbone (a frozen copy of it).

    Args:
        backbone (nn.Module): The trained backbone.
        images (Tensor): The probe's images.
        settings (StudySettings): Patterns, learning rate, device.
        seed (int): Seed of the probe's split and readout.
        mean, std: The data preprocessor's normalisation.
        convs (int, optional): Readout depth; None for
            ``settings.probe_convs``. Default: None.
        epochs (int, optional): Readout epochs; None for
            ``settings.probe_epochs``. Default: None.

    Returns:
        dict: ``spc`` and ``mae`` per pattern, ``num_train``,
        ``num_test``, ``convs``, ``epochs``, ``final_loss``,
        ``saturated`` (the readout's training loss passes
        :func:`.stats.plateau`: its last third of epochs within 5% of the
        middle third; None with fewer than 3 epochs), ``losses`` (every
        epoch's) and ``baseline_loss`` (:func:`.probe.baseline_loss` at
        the readout's output side; :func:`.results.readout_failed` judges
        the readout from these fields).
    """
    s = settings
    convs = s.probe_convs if convs is None else convs
    epochs = s.probe_epochs if epochs is None else epochs
    kwargs = {} if mean is None else dict(mean=mean, std=std)
    encoder = FrozenEncoder(copy.deepcopy(backbone).to(s.device),
                            name='trained', **kwargs)
    result = run_probe(
        images, encoder, patterns=list(s.probe_patterns),
        train=dict(epochs=epochs, lr=s.probe_lr,
                   lr_step=max(1, epochs * 2 // 3)),
        grid=PROBE_GRID, readout=dict(num_convs=int(convs)), seed=seed,
        num_show=0, device=s.device, progress=False)
    row = result['rows'][0]
    losses = [float(x) for x in row.get('loss') or []]
    saturated = None
    if len(losses) >= 3 and min(losses) > 0:
        saturated = plateau(losses)['plateau']
    out = dict(spc=row['spc'], mae=row['mae'], num_train=result['num_train'],
               num_test=result['num_test'], convs=int(convs),
               epochs=int(epochs), final_loss=losses[-1] if losses else None,
               saturated=saturated, losses=losses)
    out['baseline_loss'] = baseline_of(s.probe_patterns, int(convs))
    return out


def class_metrics(raw: dict, results_file: Optional[str]) -> dict:
    """Plain floats of the returned metrics, per-class IoU from the
    results file, and the mIoU of the position-paired classes and of the
    others."""
    out = dict(metrics={k: float(v) for k, v in raw.items()})
    if results_file and osp.isfile(results_file):
        data = load_json(results_file)
        out['class_iou'] = [c['IoU'] for c in data['classes']]
        pair = [out['class_iou'][c] for c in PAIR_CLASSES
                if out['class_iou'][c] is not None]
        other = [v for c, v in enumerate(out['class_iou'])
                 if c not in PAIR_CLASSES and v is not None]
        out['metrics']['mIoU_pairs'] = (sum(pair) / len(pair)
                                        if pair else None)
        out['metrics']['mIoU_others'] = (sum(other) / len(other)
                                         if other else None)
        out['bands'] = [dict(name=b['name'], lo=b['lo'], hi=b['hi'],
                             pixels=b['pixels'], mIoU=b.get('mIoU'),
                             aAcc=b.get('aAcc'))
                        for b in data['border_bands']['bands']]
    return out


def _history(runner) -> list:
    for hook in runner.hooks:
        if type(hook).__name__ == 'ValidationHistoryHook':
            return hook.history
    raise StudyError('the cell\'s runner has no ValidationHistoryHook: '
                     'its config did not come from builder.cell_options')


def run_cell(cell: Cell, settings: StudySettings, work_dir: str,
             images: torch.Tensor, heads: Optional[dict] = None) -> dict:
    """Train, validate and probe one cell in ``work_dir``.

    Returns:
        dict: The cell record: ``cell`` (its fields), ``name``,
        ``metrics`` (overall and per-band summaries, ``mIoU_pairs`` /
        ``mIoU_others``, at the last validation), ``bands``,
        ``class_iou``, ``probe`` (``spc``, ``mae`` per pattern),
        ``probe_nonlinear`` (or None), ``validations`` (``iter`` and the
        key numbers of each), ``convergence`` (:func:`.convergence.
        judge`), ``loss_curve``, ``code``, ``settings`` and ``time_s``.
    """
    s = check_settings(settings)
    run = train_cell(cell, s, work_dir, images, heads)
    losses = run.pop('losses')
    tail = losses[s.max_iters:] if s.tail_iters else losses[:0]
    tail_curve = binned(tail, 10)
    convergence = judge(cell.layout, run['validations'], s.max_iters,
                        s.converge_tol,
                        tail_curve['loss'] if tail_curve else None,
                        window=s.converge_window, every=s.val_every)
    return dict(cell=cell._asdict(), name=cell.name, **run,
                convergence=convergence, loss_curve=binned(losses, 30),
                code=code_version(), settings=s.as_dict())


def train_cell(cell: Cell, settings: StudySettings, work_dir: str,
               images: torch.Tensor, heads: Optional[dict] = None,
               resume: Optional[str] = None) -> dict:
    """Train one cell for ``settings.total_iters`` iterations (from
    ``resume``, a checkpoint of it, when given), then read its
    validations and probe its backbone.

    Returns:
        dict: The record's ``metrics``, ``bands``, ``class_iou`` (at the
        last validation), ``probe``, ``probe_nonlinear``,
        ``validations`` (those of this run), ``time_s`` and ``losses``
        (the training loss of every iteration the runner's message hub
        holds).
    """
    s = check_settings(settings)
    results_file = osp.join(work_dir, 'metrics.json')
    opts = cell_options(cell, s, work_dir, results_file, heads,
                        progress_every=max(1, s.total_iters // 6))
    t0 = time.perf_counter()
    # the study prints its own progress: no run summary per cell
    runner = train(head_config(cell.head), work_dir=work_dir,
                   cfg_options=opts, summary=False, resume=resume)
    t1 = time.perf_counter()
    losses = loss_values(runner)
    history = _history(runner)
    validations = []
    for entry in history:
        files = [f for f in entry['files'] if f.endswith('.json')]
        numbers = class_metrics(entry['metrics'], files[0] if files
                                else None)['metrics']
        validations.append(dict(iter=entry['iter'], metrics={
            k: numbers.get(k) for k in ('mIoU', 'mIoU_pairs',
                                        'mIoU_others', 'aAcc')}))
    if not validations:
        raise StudyError(f'cell {cell.name} was never validated: its '
                         f'training stopped before iteration '
                         f'{s.max_iters}')
    last = history[-1]
    val_s = sum(entry.get('seconds', 0.0) for entry in history)
    record = class_metrics(last['metrics'], results_file)
    model = getattr(runner.model, 'module', runner.model)
    prep = runner.cfg.model.get('data_preprocessor', {})
    mean, std = prep.get('mean'), prep.get('std')
    t2 = time.perf_counter()
    probe = probe_backbone(model.backbone, images, s, cell.seed, mean, std)
    nonlinear = None
    if s.nonlinear_probe_epochs:
        nonlinear = probe_backbone(model.backbone, images, s, cell.seed,
                                   mean, std, convs=2,
                                   epochs=s.nonlinear_probe_epochs)
    t3 = time.perf_counter()
    del runner, model
    gc.collect()
    return dict(**record, probe=probe, probe_nonlinear=nonlinear,
                validations=validations, losses=losses,
                time_s=dict(train=t1 - t0 - val_s, eval=val_s,
                            probe=t3 - t2, total=t3 - t0))


def _mean_spc(probe: Optional[dict]) -> Optional[float]:
    """Mean SPC over patterns; None where the readout failed."""
    spc = [v for v in probe_spc(probe).values() if v is not None]
    return sum(spc) / len(spc) if spc else None


def nonlinear_probe_check(records) -> dict:
    """Whether the two-layer probe is accepted: on the zero-padding cells
    without a position mechanism it must read at least what the linear
    probe reads (mean SPC over patterns, paired by cell, the mean paired
    difference >= 0); a readout that reads less is under-trained, not
    evidence of less position.

    Args:
        records (Iterable[dict]): Cell records.

    Returns:
        dict: ``accepted`` (bool, or None without a paired cell), ``n``,
        ``mean_difference`` (nonlinear minus linear SPC), ``differences``
        (per cell name), ``saturated`` (how many of those cells' two-
        layer readouts reached their loss plateau) and the readouts'
        training losses over the same cells (:func:`train_losses`).
    """
    diffs, saturated, paired = {}, 0, []
    for r in records:
        cell = r.get('cell', {})
        if cell.get('padding') != 'zeros' or cell.get('pos') != 'none':
            continue
        a, b = _mean_spc(r.get('probe')), _mean_spc(r.get('probe_nonlinear'))
        if a is not None and b is not None:
            diffs[r.get('name', str(len(diffs)))] = b - a
            saturated += bool(r['probe_nonlinear'].get('saturated'))
            paired.append(r)
    losses = train_losses(paired)
    if not diffs:
        return dict(accepted=None, n=0, mean_difference=None,
                    differences={}, saturated=0, **losses)
    mean = sum(diffs.values()) / len(diffs)
    return dict(accepted=bool(mean >= 0), n=len(diffs),
                mean_difference=mean, differences=diffs,
                saturated=saturated, **losses)


def train_losses(records: Sequence[dict]) -> dict:
    """The readouts' last training losses over ``records``: ``loss``
    and ``linear_loss`` (means) and ``above`` (how many two-layer losses
    are above the linear one of their cell): a two-layer readout that
    fits its training images less well than the linear one is
    under-trained; one that fits them better yet reads less on held-out
    images is over-fitted."""
    pairs = [(r['probe_nonlinear'].get('final_loss'),
              (r.get('probe') or {}).get('final_loss')) for r in records]
    pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
    if not pairs:
        return dict(loss=None, linear_loss=None, above=None)
    return dict(loss=sum(a for a, _ in pairs) / len(pairs),
                linear_loss=sum(b for _, b in pairs) / len(pairs),
                above=sum(a > b for a, b in pairs))
