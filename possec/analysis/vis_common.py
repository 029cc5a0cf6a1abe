"""Shared pieces of the visual tools (receptive field, occlusion, deconvnet,
invariance): a segmentor in eval mode on the CPU, images prepared the way
the model sees them, class and index checks, figures and result files."""
import copy
import os.path as osp
import warnings
from typing import Callable, List, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
import torch
from matplotlib.figure import Figure
from mmengine.config import Config
from mmseg.models.utils import resize
from torch import Tensor, nn

from possec.apis.checks import UserError, check_data, check_file, load_config
from possec.fileio import atomic_path, dump_json
from possec.runtime import replace_sync_bn

Size = Tuple[int, int]


def load_segmentor(config: Union[str, Config],
                   checkpoint: Optional[str] = None,
                   cfg_options: Optional[dict] = None,
                   seed: int = 0) -> nn.Module:
    """Build a segmentor from a config, in eval mode on the CPU, frozen.

    Wraps mmseg's ``init_model``. Nothing is downloaded: ``pretrained`` and
    the backbone's ``init_cfg`` are cleared, SyncBN becomes BN. Without a
    checkpoint the model keeps its own (mmseg) initialisation, drawn with
    ``seed``, and a warning says that the pictures show an untrained model;
    one change: a backbone's ``zero_init_residual`` (mmseg's ResNets set
    the last norm of every residual branch to zero, so that at init only
    the shortcuts carry signal) is turned off, so that the pictures of an
    untrained model reflect the whole architecture.

    Args:
        config (str | Config): Config file or loaded config.
        checkpoint (str, optional): Local checkpoint of a model built from
            the same config. Default: None (random init).
        cfg_options (dict, optional): Overrides merged into the config.
            Default: None.
        seed (int): Seed of the random initialisation. Default: 0.

    Returns:
        nn.Module: The segmentor, with ``cfg`` set to the merged config.
    """
    from mmseg.apis import init_model
    from .probe_encoders import quiet_init_weights
    cfg = load_config(config) if isinstance(config, str) else copy.deepcopy(
        config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if not isinstance(cfg.get('model'), dict):
        raise UserError('the config has no model: give an mmseg model '
                        'config, e.g. configs/demo/parsenet_pos_synthetic.py')
    replace_sync_bn(cfg.model)
    if isinstance(cfg.model.get('backbone'), dict):
        cfg.model.backbone.init_cfg = None  # never download weights
    if checkpoint is not None:
        check_file(checkpoint, 'checkpoint', 'pass a .pth file written by '
                   'training this config (e.g. work_dirs/NAME/iter_N.pth), '
                   'or leave it out for a randomly initialised model')
    elif _takes(cfg.model.get('backbone'), 'zero_init_residual'):
        cfg.model.backbone.zero_init_residual = False
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = init_model(cfg, checkpoint, device='cpu')
        if checkpoint is None:
            warnings.warn(
                f'no checkpoint given: the model has random weights (seed '
                f'{seed}); the figures show the architecture, not what a '
                f'trained model learned')
            quiet_init_weights(model)
    model.eval().requires_grad_(False)
    return model


def _takes(module_cfg, arg: str) -> bool:
    """Whether the registered class of ``module_cfg`` takes ``arg``."""
    import inspect
    from mmseg.registry import MODELS
    if not isinstance(module_cfg, dict):
        return False
    cls = module_cfg.get('type')
    cls = MODELS.get(cls) if isinstance(cls, str) else cls
    if cls is None:
        return False
    return any(arg in inspect.signature(c.__init__).parameters
               for c in cls.__mro__ if '__init__' in vars(c))


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
        from mmseg.registry import DATASETS
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
    from mmseg.registry import DATASETS
    if not cfg.get('test_dataloader'):
        raise UserError('the config has no test_dataloader to take images '
                        'from: pass image files with --img')
    check_data(cfg, ['test_dataloader'])
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


def load_images(paths: Sequence[str], size: Optional[Size] = None
                ) -> np.ndarray:
    """Read images as RGB ``uint8`` ``(N, H, W, 3)``, resized to ``size``
    (H, W) if given, else to the first image's size."""
    images = []
    for path in paths:
        check_file(path, 'image', 'pass an existing image file')
        img = mmcv.imread(path, channel_order='rgb')
        if img is None:
            raise UserError(f'image {path!r} could not be read')
        if size is None:
            size = img.shape[:2]
        if img.shape[:2] != tuple(size):
            img = mmcv.imresize(img, (size[1], size[0]))
        images.append(img)
    return np.stack(images)


def model_inputs(model: nn.Module, images: np.ndarray) -> Tensor:
    """RGB ``uint8`` images -> the normalised float batch the model takes,
    through the model's own data preprocessor (which expects BGR, as
    mmseg's loading transforms give it)."""
    bgr = [torch.from_numpy(np.ascontiguousarray(img[..., ::-1])).permute(
        2, 0, 1) for img in images]
    data = dict(inputs=bgr)
    if getattr(model.data_preprocessor, 'test_cfg', None):  # pads at test
        from mmseg.structures import SegDataSample
        data['data_samples'] = [SegDataSample() for _ in bgr]
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
    """
    model = load_segmentor(config, checkpoint, cfg_options, seed)
    if not images:
        images = dataset_images(model.cfg, num_images, index)
    rgb = load_images(images, size or input_size(model))
    return model, rgb, model_inputs(model, rgb), list(images)


class Progress:
    """mmengine's progress bar over ``total`` tasks, or nothing."""

    def __init__(self, total: int, enabled: bool = True):
        self.bar = None
        if enabled and total > 0:
            from mmengine.utils import ProgressBar
            self.bar = ProgressBar(total)

    def update(self, num: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(num)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.file.write('\n')
            self.bar.file.flush()


def new_figure(rows: int, cols: int, size: float = 3.2):
    """A matplotlib figure (no pyplot, no display needed) and its axes."""
    fig = Figure(figsize=(cols * size, rows * size), layout='constrained')
    axes = np.array(fig.subplots(rows, cols, squeeze=False))
    return fig, axes


def draw_box(ax, box, **kwargs) -> None:
    """Draw an inclusive pixel box ``(y0, x0, y1, x1)`` on ``ax``."""
    from matplotlib.patches import Rectangle
    y0, x0, y1, x1 = box
    kwargs.setdefault('fill', False)
    ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1,
                           **kwargs))


def write_outputs(out_dir: str, name: str, fig: Figure,
                  results: dict) -> dict:
    """Write ``<name>.png`` and ``<name>.json`` into ``out_dir`` atomically;
    return their paths."""
    png = osp.join(out_dir, f'{name}.png')
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format='png', dpi=110)
    path = osp.join(out_dir, f'{name}.json')
    dump_json(to_jsonable(results), path)
    return dict(png=png, json=path)


def to_jsonable(obj):
    """Numpy and torch values -> plain Python for ``json``."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Tensor):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj
