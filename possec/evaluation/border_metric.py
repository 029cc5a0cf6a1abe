"""IoU metric by distance to the image border."""
import csv
import os.path as osp
import warnings
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.dist import is_main_process
from mmengine.logging import MMLogger, print_log
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS
from prettytable import PrettyTable

from ..fileio import atomic_path
from .border_bands import (band_areas, band_index_map, band_name,
                           parse_bands)
from .per_class_iou import PerClassIoUMetric, _plain, summary_row

DEFAULT_BANDS = ((0, 0.05), (0.05, 0.1), (0.1, 0.25), (0.25, None))
AUTO_FILE = 'border_metric.json'
_CACHE_SIZE = 8


def _summary(ret_metrics: dict) -> Dict[str, float]:
    """mmseg's summary (``aAcc``, ``mIoU``, ...) as plain rounded floats."""
    out = OrderedDict()
    with warnings.catch_warnings():  # a band without pixels gives NaN
        warnings.simplefilter('ignore', RuntimeWarning)
        for key, value in ret_metrics.items():
            name = key if key == 'aAcc' else 'm' + key
            out[name] = float(np.round(np.nanmean(value) * 100, 2))
    return out


@METRICS.register_module()
class BorderIoUMetric(PerClassIoUMetric):
    """:class:`IoUMetric` plus the same metrics per distance-to-border band.

    Boundary effects of padding are measured as a function of the distance
    to the image border, as in `Position, Padding and Predictions: A Deeper
    Look at Position Information in CNNs
    <https://arxiv.org/abs/2101.12322>`_. Each pixel of the original image
    (the size at which mmseg's test pipeline hands predictions and labels to
    the metric) has ``d = min(x, y, W - 1 - x, H - 1 - y)``; the bands are
    half-open intervals of ``d`` that cover every pixel exactly once (gaps
    are refused, so the per-band counts add up to the overall ones).

    The returned ``aAcc`` / ``mIoU`` / ``mAcc`` (or the summaries of the
    chosen ``iou_metrics``) are exactly ``IoUMetric``'s, computed by it from
    the same per-image areas. Each band adds the same summaries under keys
    such as ``mIoU_band0_8`` (pixels) or ``mIoU_band0pct_5pct`` (fractions,
    as percentages of the short side), plain floats in percent rounded like
    mmseg's (NaN for a band that holds no evaluated pixel). A per-band table
    goes to the log.

    Counts are streamed: each image adds one small ``(3, bands, classes)``
    integer array (intersection, prediction and label areas) to
    ``self.results``, so mmengine's ``collect_results`` gathers them across
    ranks and drops the sampler's padding duplicates as it does for
    ``IoUMetric``.

    Files (written by the main process, atomically): the JSON of
    :class:`PerClassIoUMetric` (summary, per-class values) plus a
    ``border_bands`` entry holding every band's summary and per-class values,
    the per-class CSV beside it, and ``<name>_bands.csv`` with one row per
    band and class and, after each band's classes, a ``mean`` row with that
    band's summary. With ``results_file='auto'`` the JSON is
    ``border_metric.json`` in the folder of the current log file (the
    runner's ``work_dir/<timestamp>/``), rewritten at every evaluation; when
    no log file exists nothing is written.

    Args:
        bands (Sequence[tuple], optional): Half-open ``(lo, hi)`` intervals of
            ``d``, sorted and touching, from 0 to ``hi=None``. Default: None
            (``((0, 0.05), (0.05, 0.1), (0.1, 0.25), (0.25, None))`` of the
            short side, which works for any image size).
        band_unit (str): ``'pixel'`` or ``'fraction'`` (of the short side
            ``min(H, W)``). Default: 'fraction'.
        results_file (str, optional): Path of the JSON results file;
            ``'auto'`` for the log folder, None for no file. Default: 'auto'.
        output_dir (str, optional): Folder for palette prediction PNGs.
            Default: None.
        **kwargs: Passed to :class:`mmseg.evaluation.IoUMetric`.
    """

    def __init__(self,
                 bands: Optional[Sequence[Sequence]] = None,
                 band_unit: str = 'fraction',
                 results_file: Optional[str] = 'auto',
                 output_dir: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(output_dir=output_dir, results_file=results_file,
                         **kwargs)
        if bands is None:
            if band_unit != 'fraction':
                raise ValueError(f'the default bands are fractions of the '
                                 f'short side; with band_unit={band_unit!r} '
                                 f'pass bands explicitly, e.g. [(0, 8), '
                                 f'(8, 16), (16, 32), (32, None)]')
            bands = DEFAULT_BANDS
        self.bands = parse_bands(bands, band_unit)
        self.band_unit = band_unit
        self.band_names = [band_name(b, band_unit) for b in self.bands]
        self._offsets: OrderedDict = OrderedDict()

    def band_offset(self, height: int, width: int, num_classes: int,
                    device: torch.device) -> torch.Tensor:
        """The band map of one image size, scaled for ``band_areas``.

        Kept in a small LRU cache keyed by size and device.
        """
        key = (height, width, num_classes, str(device))
        offset = self._offsets.get(key)
        if offset is None:
            bands = band_index_map(height, width, self.bands, self.band_unit)
            offset = (bands * (num_classes + 2)**2).to(device)
            self._offsets[key] = offset
            if len(self._offsets) > _CACHE_SIZE:
                self._offsets.popitem(last=False)
        else:
            self._offsets.move_to_end(key)
        return offset

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Add one ``(3, bands, classes)`` count array per image."""
        num_classes = len(self.dataset_meta['classes'])
        if not self.format_only:
            for data_sample in data_samples:
                pred = data_sample['pred_sem_seg']['data']
                pred = pred.reshape(pred.shape[-2:])
                label = data_sample['gt_sem_seg']['data']
                label = label.reshape(label.shape[-2:]).to(pred)
                offset = self.band_offset(*pred.shape, num_classes,
                                          pred.device)
                self.results.append(
                    band_areas(pred, label, offset, len(self.bands),
                               num_classes, self.ignore_index).cpu())
        self.save_predictions(data_samples)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Overall metrics (``IoUMetric``'s) and per-band metrics."""
        if self.format_only:
            print_log(f'format_only: predictions are in {self.pred_dir}',
                      logger='current')
            return OrderedDict()
        if not results:
            raise ValueError('BorderIoUMetric got no results: the evaluated '
                             'dataset is empty or every sample lacked '
                             'gt_sem_seg')
        # The per-image areas IoUMetric.intersect_and_union would give
        # (float32 tensors), summed by IoUMetric itself: identical numbers.
        overall = []
        for counts in results:
            intersect, pred, label = counts.sum(1).float()
            overall.append((intersect, pred + label - intersect, pred, label))
        metrics = IoUMetric.compute_metrics(self, overall)

        totals = torch.stack(results).sum(0).double()  # (3, bands, classes)
        band_rows = []
        for index, name in enumerate(self.band_names):
            intersect, pred, label = totals[:, index]
            ret = self.total_area_to_metrics(intersect,
                                             pred + label - intersect, pred,
                                             label, self.metrics,
                                             self.nan_to_num, self.beta)
            summary = _summary(ret)
            metrics.update({f'{key}_{name}': value
                            for key, value in summary.items()})
            band_rows.append(dict(name=name, summary=summary, per_class=ret,
                                  pixels=int(label.sum())))
        self.log_band_table(band_rows)

        results_file = self.resolve_results_file()
        if results_file:
            self.write_band_results(results_file, metrics, overall, band_rows)
        return metrics

    def band_range(self, index: int) -> str:
        """The interval of band ``index`` in words, for the log table."""
        lo, hi = self.bands[index]
        if self.band_unit == 'pixel':
            return f'[{lo}, {"inf" if hi is None else hi}) px'
        end = 'centre' if hi is None else f'{100 * hi:g}%'
        return f'[{100 * lo:g}%, {end}) of short side'

    def log_band_table(self, band_rows: List[dict]) -> None:
        total = sum(row['pixels'] for row in band_rows)
        table = PrettyTable()
        table.field_names = (['Band', 'd range', 'Pixels %'] +
                             list(band_rows[0]['summary']))
        for index, row in enumerate(band_rows):
            share = 100 * row['pixels'] / total if total else float('nan')
            table.add_row([row['name'], self.band_range(index),
                           f'{share:.2f}'] + list(row['summary'].values()))
        print_log('results by distance to the border:', logger='current')
        print_log('\n' + table.get_string(), logger='current')

    def resolve_results_file(self) -> Optional[str]:
        """``results_file``, with ``'auto'`` resolved to the log folder."""
        if self.results_file != 'auto':
            return self.results_file
        log_file = getattr(MMLogger.get_current_instance(), 'log_file', None)
        if not log_file:
            return None
        return osp.join(osp.dirname(osp.abspath(log_file)), AUTO_FILE)

    def write_band_results(self, results_file: str, metrics: dict,
                           overall: list, band_rows: List[dict]) -> None:
        """The JSON (with ``border_bands``), its CSV and the band CSV."""
        if not is_main_process():
            return
        classes = self.dataset_meta['classes']
        keys = [key for key in band_rows[0]['per_class'] if key != 'aAcc']
        bands = []
        csv_rows = []
        for (lo, hi), row in zip(self.bands, band_rows):
            per_class = [
                dict(name=cls, **{key: _plain(row['per_class'][key][i] * 100)
                                  for key in keys})
                for i, cls in enumerate(classes)
            ]
            bands.append(dict(name=row['name'], lo=lo, hi=hi,
                              pixels=row['pixels'], **row['summary'],
                              classes=per_class))
            csv_rows += [dict(band=row['name'], lo=lo, hi=hi, **values)
                         for values in per_class]
            csv_rows.append(summary_row(row['summary'], keys,
                                        name='mean', band=row['name'],
                                        lo=lo, hi=hi))
        extra = dict(border_bands=dict(unit=self.band_unit, bands=bands))
        configured, self.results_file = self.results_file, results_file
        try:  # write_results reads self.results_file
            self.write_results(metrics, self.per_class_metrics(overall),
                               extra=extra)
        finally:
            self.results_file = configured
        csv_path = osp.splitext(results_file)[0] + '_bands.csv'
        with atomic_path(csv_path) as tmp:
            with open(tmp, 'w', newline='') as f:
                writer = csv.DictWriter(
                    f, fieldnames=['band', 'lo', 'hi', 'name'] + keys)
                writer.writeheader()
                writer.writerows(csv_rows)
        print_log(f'per-band results written to {csv_path}', logger='current')
