"""mIoU of a segmentor over a dataset, overall, per border band and per
grid region, counted once per pass so that many ablations stay cheap.

The images of the config's test set pass through the model's own
``test_step`` (data preprocessor, whole or slide inference, resize to the
original image), so any mmseg segmentor works. Areas are counted per image
by :func:`possec.evaluation.border_bands.band_areas`, which follows mmseg's
``IoUMetric.intersect_and_union`` exactly, with a "zone" map in place of
the band map: the distance-to-border bands of
:class:`possec.evaluation.BorderIoUMetric` and the ``K x K`` regions of
the canvas grid.
"""
import copy
import warnings
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope
from mmseg.registry import DATASETS
from torch import Tensor, nn

from possec.apis.checks import check_data
from possec.datasets.synthetic import CLASSES as SYNTHETIC_CLASSES
from possec.datasets.synthetic import POSITION_PAIRS
from possec.errors import UserError
from possec.evaluation.border_bands import (band_areas, band_index_map,
                                            band_name, parse_bands)
from possec.evaluation.border_metric import DEFAULT_BANDS

PAIR_CLASSES = sorted(c for pair in POSITION_PAIRS for c in pair)


def region_index_map(height: int, width: int, grid: int) -> Tensor:
    """Region ``r * grid + c`` of every pixel: the image cut into ``grid x
    grid`` equal parts (the last row and column take the remainder)."""
    rows = torch.clamp(torch.arange(height) * grid // height, max=grid - 1)
    cols = torch.clamp(torch.arange(width) * grid // width, max=grid - 1)
    return rows[:, None] * grid + cols[None, :]


def load_batches(cfg, num_images: Optional[int] = None,
                 batch_size: int = 1) -> List[dict]:
    """The config's test set, through its test pipeline, as a list of
    ``test_step`` batches kept in memory (each pass reuses them).

    Args:
        cfg (Config): The segmentor's config, with a ``test_dataloader``.
        num_images (int, optional): The first images only. Default: None
            (all).
        batch_size (int): Images per batch. Default: 1.
    """
    if not cfg.get('test_dataloader'):
        raise UserError('the config has no test_dataloader: the reliance '
                        'measurement needs labelled images')
    check_data(cfg, ['test_dataloader'])
    with DefaultScope.overwrite_default_scope(
            cfg.get('default_scope', 'mmseg')), warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)
        dataset = DATASETS.build(copy.deepcopy(cfg.test_dataloader.dataset))
    num = len(dataset) if num_images is None else min(num_images,
                                                       len(dataset))
    if num < 1:
        raise UserError('the test set is empty')
    items = [dataset[i] for i in range(num)]
    return [pseudo_collate(items[i:i + batch_size])
            for i in range(0, num, batch_size)]


class ZoneCounts:
    """Intersection, prediction and label areas per zone and class, summed
    over the images of a pass.

    Args:
        num_classes (int): Classes of the decode head.
        ignore_index (int): Label to ignore. Default: 255.
        bands (Sequence[tuple]): Distance-to-border bands (fractions of the
            short side). Default: BorderIoUMetric's.
        grid (int): Regions per side. Default: 3.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255,
                 bands: Sequence = DEFAULT_BANDS, grid: int = 3) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.bands = parse_bands(bands, 'fraction')
        self.band_names = [band_name(b, 'fraction') for b in self.bands]
        self.grid = grid
        self.areas = dict(
            bands=torch.zeros(3, len(self.bands), num_classes,
                              dtype=torch.long),
            regions=torch.zeros(3, grid * grid, num_classes,
                                dtype=torch.long))

    def add(self, pred: Tensor, label: Tensor) -> None:
        """Count one image's ``(H, W)`` prediction and label."""
        height, width = label.shape
        slots = (self.num_classes + 2)**2
        zones = dict(bands=band_index_map(height, width, self.bands,
                                          'fraction'),
                     regions=region_index_map(height, width, self.grid))
        for key, zone in zones.items():
            self.areas[key] += band_areas(
                pred.cpu(), label.cpu(), zone * slots,
                self.areas[key].shape[1], self.num_classes,
                self.ignore_index)

    def metrics(self, pairs: bool = False) -> dict:
        """``mIoU`` and ``aAcc`` (percent), ``mIoU_pairs`` (with
        ``pairs``), ``bands`` and ``regions`` (mIoU per zone) and
        ``class_iou``."""
        total = self.areas['bands'].sum(1)
        iou = class_iou(total)
        out = dict(mIoU=_nanmean(iou), aAcc=_acc(total), class_iou=iou)
        if pairs:
            out['mIoU_pairs'] = _nanmean(iou[PAIR_CLASSES])
        out['bands'] = {n: _nanmean(class_iou(self.areas['bands'][:, i]))
                        for i, n in enumerate(self.band_names)}
        out['regions'] = [_nanmean(class_iou(self.areas['regions'][:, i]))
                          for i in range(self.grid * self.grid)]
        return out


def class_iou(areas: Tensor) -> np.ndarray:
    """Per-class IoU in percent from ``(3, C)`` intersection, prediction
    and label areas; NaN for a class neither predicted nor labelled (as
    mmseg's ``IoUMetric``)."""
    inter, pred, label = areas.double().numpy()
    union = pred + label - inter
    with np.errstate(divide='ignore', invalid='ignore'):
        return 100 * inter / union


def _nanmean(values: np.ndarray) -> Optional[float]:
    values = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(values)) if np.isfinite(values).any() else None


def _acc(areas: Tensor) -> Optional[float]:
    inter, _, label = areas.double().numpy()
    return float(100 * inter.sum() / label.sum()) if label.sum() else None


def has_pairs(model: nn.Module) -> bool:
    """Whether the model's classes are those of possec's synthetic data,
    whose layouts pair classes by position (``POSITION_PAIRS``)."""
    meta = getattr(model, 'dataset_meta', None) or {}
    classes = meta.get('classes')
    if classes is None:
        dataset = model.cfg.get('test_dataloader', {}).get('dataset', {})
        classes = SYNTHETIC_CLASSES if dataset.get('type') == \
            'SyntheticVOCDataset' else None
    return classes is not None and tuple(classes) == tuple(SYNTHETIC_CLASSES)


@torch.no_grad()
def evaluate(model: nn.Module, batches: List[dict], grid: int = 3,
             pairs: bool = False,
             on_batch: Optional[Callable[[], None]] = None) -> dict:
    """One pass of ``batches`` through ``model.test_step``; the metrics of
    :meth:`ZoneCounts.metrics`.

    Args:
        model (nn.Module): The segmentor (with any hooks in place).
        batches (list[dict]): From :func:`load_batches`.
        grid (int): Regions per side. Default: 3.
        pairs (bool): Add ``mIoU_pairs``. Default: False.
        on_batch (callable, optional): Called after every batch (a
            progress bar).
    """
    head = model.decode_head
    counts = ZoneCounts(head.num_classes, getattr(head, 'ignore_index', 255),
                        grid=grid)
    for batch in batches:
        for sample in model.test_step(batch):
            if 'gt_sem_seg' not in sample:
                raise UserError('the test pipeline gives no labels: add '
                                'LoadAnnotations to test_pipeline')
            counts.add(sample.pred_sem_seg.data[0],
                       sample.gt_sem_seg.data[0])
        if on_batch is not None:
            on_batch()
    return counts.metrics(pairs)


def metric_summary(metrics: dict) -> Dict[str, Optional[float]]:
    """The scalar metrics of :func:`evaluate` (no per-class or per-zone
    lists), with the bands as ``mIoU_<band>``."""
    out = {k: metrics[k] for k in ('mIoU', 'mIoU_pairs', 'aAcc')
           if k in metrics}
    out.update({f'mIoU_{k}': v for k, v in metrics['bands'].items()})
    return out
