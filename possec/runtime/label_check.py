"""A check of every label as it is read, naming the file at fault.

A label map whose size differs from its image, or that holds a class index
the model cannot predict, otherwise surfaces far from its cause: as "stack
expects each tensor to be equal size" when a batch is collated, or as
"Target 40 is out of bounds" inside the loss. :class:`CheckSegLabel` is
inserted by possec's train/test entry points right after each
``LoadAnnotations`` of the dataloaders' pipelines (see
:func:`insert_label_checks`), so it costs one comparison and one ``max``
per sample and no pre-scan of the dataset.
"""
from typing import List

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from ..errors import DataError

__all__ = ['CheckSegLabel', 'insert_label_checks']


@TRANSFORMS.register_module()
class CheckSegLabel(BaseTransform):
    """Check that ``gt_seg_map`` has the image's size and only class indices
    below ``num_classes`` (or ``ignore_index``).

    Args:
        num_classes (int): Classes the decode head predicts.
        ignore_index (int): Label value that is ignored. Default: 255.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255):
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)

    def transform(self, results: dict) -> dict:
        label = results.get('gt_seg_map')
        if label is None:
            return results
        path = results.get('seg_map_path', '?')
        img = results.get('img')
        if img is not None and tuple(img.shape[:2]) != tuple(label.shape[:2]):
            raise DataError(
                f'label {path!r} is {label.shape[1]}x{label.shape[0]} (WxH) '
                f'but its image {results.get("img_path", "?")!r} is '
                f'{img.shape[1]}x{img.shape[0]}: expected a label of the '
                f'image\'s size; re-export the label at that size or drop '
                f'the pair from the split file')
        valid = label[label != self.ignore_index]
        if valid.size and (valid.max() >= self.num_classes or valid.min() < 0):
            bad = np.unique(valid[(valid >= self.num_classes) | (valid < 0)])
            raise DataError(
                f'label {path!r} (image {results.get("img_path", "?")!r}) '
                f'holds class value(s) {", ".join(map(str, bad[:5]))}: '
                f'expected 0..{self.num_classes - 1} (num_classes='
                f'{self.num_classes}) or the ignore index '
                f'{self.ignore_index}; fix the label, or set the model\'s '
                f'num_classes (decode_head.num_classes) to match the dataset')
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index})')


def _head(model_cfg):
    head = model_cfg.get('decode_head') if model_cfg else None
    if isinstance(head, (list, tuple)):
        head = head[-1] if head else None
    return head if isinstance(head, dict) else None


def _insert(pipeline, check) -> int:
    if not isinstance(pipeline, list):
        return 0
    count, i = 0, 0
    while i < len(pipeline):
        step = pipeline[i]
        kind = step.get('type') if isinstance(step, dict) else None
        if isinstance(kind, str) and kind.split('.')[-1] == 'LoadAnnotations':
            following = pipeline[i + 1] if i + 1 < len(pipeline) else None
            if not (isinstance(following, dict)
                    and following.get('type') == 'CheckSegLabel'):
                pipeline.insert(i + 1, dict(check))
                count += 1
            i += 1
        i += 1
    return count


def insert_label_checks(cfg, loaders: List[str]) -> int:
    """Insert :class:`CheckSegLabel` after ``LoadAnnotations`` in the
    pipelines of ``loaders`` (wrapped datasets included), using the decode
    head's ``num_classes`` and ``ignore_index``.

    Returns:
        int: How many checks were inserted.
    """
    head = _head(cfg.get('model'))
    if head is None or not isinstance(head.get('num_classes'), int):
        return 0
    check = dict(type='CheckSegLabel', num_classes=head['num_classes'],
                 ignore_index=head.get('ignore_index', 255))
    count = 0
    for loader in loaders:
        node = cfg.get(loader)
        stack = [node.get('dataset')] if isinstance(node, dict) else []
        while stack:
            dataset = stack.pop()
            if not isinstance(dataset, dict):
                continue
            count += _insert(dataset.get('pipeline'), check)
            if isinstance(dataset.get('dataset'), dict):
                stack.append(dataset['dataset'])
            if isinstance(dataset.get('datasets'), list):
                stack.extend(dataset['datasets'])
    return count
