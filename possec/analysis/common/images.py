"""Reading images for the analysis tools: one contract for all of them.

Every image is read as RGB ``uint8`` and returned as a tensor of shape
``(N, 3, H, W)``, resized (bilinear, OpenCV's ``INTER_LINEAR``) to one size.
Each consumer converts from there: the position probe normalises the
tensor itself, the visual tools pass it through the segmentor's data
preprocessor (:func:`possec.analysis.fields.segmentor.model_inputs`).
"""
import os.path as osp
from typing import Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from torch import Tensor

from possec.errors import UserError

Size = Union[int, Tuple[int, int]]


def read_image(path: str, size: Optional[Size] = None) -> np.ndarray:
    """One image file as RGB ``uint8`` ``(H, W, 3)``.

    Args:
        path (str): Image file (any format OpenCV reads).
        size (int | tuple[int, int], optional): Resize to ``(H, W)`` (an
            int: a square). Default: None (keep the file's size).

    Raises:
        UserError: When the file is missing or OpenCV cannot decode it.
    """
    if not osp.isfile(path):
        raise UserError(f'image {path!r} not found: pass an existing image '
                        f'file')
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise UserError(f'image {path!r} could not be read: expected a '
                        f'JPEG, PNG or BMP file')
    if size is not None:
        height, width = (size, size) if isinstance(size, int) else size
        if img.shape[:2] != (height, width):
            img = cv2.resize(img, (width, height),
                             interpolation=cv2.INTER_LINEAR)
    return img[:, :, ::-1]


def load_images(paths: Sequence[str], size: Optional[Size] = None) -> Tensor:
    """Image files as one RGB ``uint8`` batch ``(N, 3, H, W)``.

    Args:
        paths (Sequence[str]): Image files.
        size (int | tuple[int, int], optional): Size ``(H, W)`` (an int: a
            square) every image is resized to. Default: None (the first
            image's size).

    Returns:
        Tensor: ``uint8`` RGB images, channels first.
    """
    images = []
    for path in paths:
        img = read_image(path, size)
        size = size or img.shape[:2]
        images.append(img.transpose(2, 0, 1))
    if not images:
        raise UserError('no image files given')
    return torch.from_numpy(np.ascontiguousarray(np.stack(images)))


def to_hwc(images: Tensor) -> np.ndarray:
    """``(N, 3, H, W)`` images as a numpy ``(N, H, W, 3)`` array, the
    layout matplotlib shows."""
    return images.permute(0, 2, 3, 1).numpy()
