"""A segmentor seen by the visual tools: its inputs, logits and classes.

The tools (receptive field, occlusion, deconvnet, invariance) take a
segmentor built offline (:func:`possec.analysis.common.load_segmentor`),
images prepared the way the model sees them, and check class and index
arguments against the model.
"""
import copy
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmseg.models.utils import resize
from mmseg.registry import DATASETS
from mmseg.structures import SegDataSample
from torch import Tensor, nn

from possec.apis.checks import check_data
from possec.errors import UserError
from ..common import load_images, load_segmentor, to_hwc, write_outputs

Size = Tuple[int, int]


def head_logits(model: nn.Module) -> Callable[[Tensor], Tensor]:
    """``x -> logits`` at the decode head's own resolution (before the
    final resize to the image), i.e. ``model._forward``."""
    return lambda x: model._forward(x)


def upsample(model: nn.Module, logits: Tensor, size: Sequence[int]) -> Tensor:
    """Resize head logits to the image as mmseg's ``predict`` does."""
    return resize(logits, size=tuple(size), mode='bilinear',
                  align_corners=model.decode_head.align_corners)


def class_names(model: nn.Module) -> List[str]:
    """Class names from the checkpoint's or the config's dataset, else the
    class indices."""
    num = model.decode_head.out_channels
    meta = getattr(model, 'dataset_meta', None) or {}
    names = meta.get('classes')
    if names is None:
        dataset = model.cfg.get('test_dataloader', {}).get('dataset', {})
        cls = DATASETS.get(dataset.get('type')) if isinstance(
            dataset.get('type'), str) else None
        names = getattr(cls, 'METAINFO', {}).get('classes')
    if names is None or len(names) != num:
        names = [str(i) for i in range(num)]
    return list(names)


def check_index(value: int, num: int, what: str, hint: str = '') -> int:
    """Return ``value`` if ``0 <= value < num``, else raise a UserError."""
    if not isinstance(value, (int, np.integer)) or not 0 <= value < num:
        raise UserError(f'{what} {value!r} is out of range: expected 0 to '
                        f'{num - 1}{hint}')
    return int(value)


def check_class(model: nn.Module, cls: Optional[int]) -> Optional[int]:
    """Check a class index against the decode head's classes."""
    if cls is None:
        return None
    num = model.decode_head.out_channels
    return check_index(cls, num, 'class',
                       f' (the decode head has {num} classes)')


def dataset_images(cfg: Config, num: int, start: int = 0) -> List[str]:
    """Paths of ``num`` images of the config's test set from ``start``.

    Builds ``cfg.test_dataloader.dataset`` (possec's synthetic dataset
    generates its data on first use).
    """
    if not cfg.get('test_dataloader'):
        raise UserError('the config has no test_dataloader to take images '
                        'from: pass image files with --img')
    check_data(cfg, ['test_dataloader'])
    # the pipeline's transforms live in mmseg's scope (as in the Runner)
    with DefaultScope.overwrite_default_scope(
            cfg.get('default_scope', 'mmseg')):
        dataset = DATASETS.build(copy.deepcopy(cfg.test_dataloader.dataset))
    if not 0 <= start < len(dataset):
        raise UserError(f'image index {start} is out of range: the test set '
                        f'has {len(dataset)} images')
    stop = min(start + num, len(dataset))
    return [dataset.get_data_info(i)['img_path'] for i in range(start, stop)]


def input_size(model: nn.Module) -> Optional[Size]:
    """The fixed input size of the model's data preprocessor, if any."""
    size = getattr(model.data_preprocessor, 'size', None)
    return tuple(size) if size is not None else None


def model_inputs(model: nn.Module, images: Tensor) -> Tensor:
    """RGB ``uint8`` images ``(N, 3, H, W)`` -> the normalised float batch
    the model takes, through the model's own data preprocessor (which
    expects BGR, as mmseg's loading transforms give it)."""
    data = dict(inputs=list(images.flip(1)))
    if getattr(model.data_preprocessor, 'test_cfg', None):  # pads at test
        data['data_samples'] = [SegDataSample() for _ in images]
    return model.data_preprocessor(data, False)['inputs']


def prepare(config: Union[str, Config],
            checkpoint: Optional[str],
            images: Optional[Sequence[str]],
            num_images: int = 1,
            index: int = 0,
            size: Optional[Size] = None,
            cfg_options: Optional[dict] = None,
            seed: int = 0):
    """The model, the RGB images and the model's input batch for a tool.

    Images are ``images`` (paths) or, if None, ``num_images`` images of the
    config's test set from ``index``; they are resized to ``size``, else to
    the data preprocessor's fixed size, else to the first image's size.

    Returns:
        tuple: The segmentor, the ``uint8`` RGB images ``(N, 3, H, W)``,
        the model's input batch and the image paths.
    """
    model = load_segmentor(config, checkpoint, cfg_options, seed)
    if not images:
        images = dataset_images(model.cfg, num_images, index)
    rgb = load_images(images, size or input_size(model))
    return model, rgb, model_inputs(model, rgb), list(images)


def prepare_one(config: Union[str, Config], checkpoint: Optional[str],
                img: Optional[str], index: int, size: Optional[Size],
                cfg_options: Optional[dict], seed: int,
                cls: Optional[int] = None):
    """:func:`prepare` for a tool that studies one image (``img``, else
    test set image ``index``) and, optionally, one class.

    Returns:
        tuple: The segmentor, the RGB image ``(H, W, 3)`` to show, the
        model's input ``(1, C, H, W)`` and the image path.
    """
    model, rgb, x, paths = prepare(config, checkpoint, [img] if img else
                                   None, 1, index, size, cfg_options, seed)
    check_class(model, cls)
    return model, to_hwc(rgb)[0], x, paths[0]


def save_result(result: dict, out_dir: str, name: str, fig,
                maps: Sequence[str] = (), **meta) -> dict:
    """The numbers of ``result`` (without its ``maps``) with ``meta``, and
    ``files``: the paths of ``<name>.png`` (``fig``) and ``<name>.json``
    written into ``out_dir``."""
    numbers = {k: v for k, v in result.items() if k not in maps}
    numbers.update(meta)
    numbers['files'] = write_outputs(out_dir, name, fig, numbers)
    return numbers
