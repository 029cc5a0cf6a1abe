"""IoU metric that also writes per-class results and palette predictions."""
import csv
import math
import os
import os.path as osp
from typing import Dict, Optional, Sequence

import numpy as np
from mmengine.dist import is_main_process
from mmengine.logging import print_log
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS
from PIL import Image

from ..fileio import atomic_path, dump_json


def _plain(value) -> Optional[float]:
    """A metric (percent) as a clean JSON-ready float; NaN becomes None.

    mmseg computes its summaries in float32, so ``float()`` of them prints
    float32 noise (``97.48999786376953``). The value is written as the
    shortest decimal that reads back as the same float32 (``97.49``): no
    digit is invented and none that float32 holds is lost.
    """
    value = float(value)
    if math.isnan(value):
        return None
    if math.isinf(value):
        return value
    return float(np.format_float_positional(np.float32(value), unique=True,
                                            trim='-'))


def summary_row(metrics: dict, fields: Sequence[str], name: str = 'all',
                **extra) -> dict:
    """The CSV row that summarises the per-class rows above it.

    Each per-class column ``X`` (``IoU``, ``Acc``, ...) takes the summary
    ``mX`` of ``metrics`` (mmseg's mean over classes), so a spreadsheet shows
    the headline numbers under the classes they average.
    """
    row = dict(extra, name=name)
    for field in fields:
        if field in metrics:
            row[field] = _plain(metrics[field])
        elif f'm{field}' in metrics:
            row[field] = _plain(metrics[f'm{field}'])
    return row


@METRICS.register_module()
class PerClassIoUMetric(IoUMetric):
    """mmseg's :class:`IoUMetric` plus files a person can read afterwards.

    The returned aAcc / mIoU / mAcc are exactly those of ``IoUMetric`` (the
    summary is computed by the parent class). In addition:

    - ``results_file``: a JSON file with the summary and, for every class,
      its IoU and Acc (percent, clean decimals; ``null`` for a class absent
      from both prediction and ground truth), and a CSV of the per-class
      values beside it (same name, ``.csv``) whose last row,
      ``mean (mIoU, mAcc)``, holds the summary. Written atomically on the
      main process.
    - ``output_dir``: one PNG per image with the predicted class indices as
      a palette image coloured with the dataset's palette (read back with
      PIL it is the plain index map, as mmseg's grayscale output is).

    Args:
        output_dir (str, optional): Folder for the prediction PNGs.
            Default: None.
        results_file (str, optional): Path of the JSON results file.
            Default: None.
        **kwargs: Passed to :class:`mmseg.evaluation.IoUMetric`.
    """

    def __init__(self,
                 output_dir: Optional[str] = None,
                 results_file: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(output_dir=None, **kwargs)
        self.pred_dir = output_dir
        self.results_file = results_file
        if self.pred_dir:
            os.makedirs(self.pred_dir, exist_ok=True)

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        super().process(data_batch, data_samples)
        self.save_predictions(data_samples)

    def save_predictions(self, data_samples: Sequence[dict]) -> None:
        """Write the palette prediction PNGs (if ``output_dir`` is set)."""
        if self.pred_dir is None:
            return
        palette = self.dataset_meta.get('palette') if self.dataset_meta \
            else None
        for data_sample in data_samples:
            pred = data_sample['pred_sem_seg']['data'].squeeze().cpu().numpy()
            if data_sample.get('reduce_zero_label', False):
                pred = pred + 1
            image = Image.fromarray(pred.astype(np.uint8))
            if palette is not None:
                image = image.convert('P')
                flat = [c for color in palette for c in color]
                image.putpalette(flat + [0] * (768 - len(flat)))
            name = osp.splitext(osp.basename(data_sample['img_path']))[0]
            with atomic_path(osp.join(self.pred_dir, f'{name}.png')) as tmp:
                image.save(tmp, format='PNG')

    def per_class_metrics(self, results: list) -> Dict[str, np.ndarray]:
        """Per-class IoU and Acc (fractions) from accumulated results."""
        areas = [sum(column) for column in zip(*results)]
        return self.total_area_to_metrics(*areas, ['mIoU'], self.nan_to_num,
                                          self.beta)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        if self.format_only:
            # IoUMetric's own branch reads its output_dir, which is None
            # here: the PNGs went to ``pred_dir``.
            print_log(f'predictions written to {self.pred_dir}',
                      logger='current')
            return {}
        metrics = super().compute_metrics(results)
        if not self.results_file:
            return metrics
        per_class = self.per_class_metrics(results)
        self.write_results(metrics, per_class)
        return metrics

    def write_results(self, metrics: dict, per_class: dict,
                      extra: Optional[dict] = None) -> None:
        """Write the JSON and CSV results files (main process only)."""
        if not is_main_process():
            return
        classes = self.dataset_meta['classes']
        rows = [
            dict(name=name,
                 IoU=_plain(per_class['IoU'][i] * 100),
                 Acc=_plain(per_class['Acc'][i] * 100))
            for i, name in enumerate(classes)
        ]
        payload = {key: _plain(value) for key, value in metrics.items()}
        payload['classes'] = rows
        if extra:
            payload.update(extra)
        dump_json(payload, self.results_file)
        csv_path = osp.splitext(self.results_file)[0] + '.csv'
        with atomic_path(csv_path) as tmp:
            with open(tmp, 'w', newline='') as f:
                writer = csv.DictWriter(f, fieldnames=['name', 'IoU', 'Acc'])
                writer.writeheader()
                writer.writerows(rows)
                writer.writerow(summary_row(metrics, ['IoU', 'Acc'],
                                            name='mean (mIoU, mAcc)'))
        print_log(f'per-class results written to {self.results_file} and '
                  f'{csv_path}', logger='current')
