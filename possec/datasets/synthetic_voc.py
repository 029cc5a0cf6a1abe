"""The dataset class that reads (and first writes) synthetic VOC data."""
import os.path as osp
from typing import Optional

from mmengine.dist import barrier, get_dist_info
from mmseg.datasets import PascalVOCDataset
from mmseg.registry import DATASETS

from .synthetic import (CLASSES, generate_synthetic_voc, generation_meta,
                        read_generation_meta, voc_palette)


@DATASETS.register_module()
class SyntheticVOCDataset(PascalVOCDataset):
    """Synthetic textured shapes in Pascal VOC 2012 format.

    Reads the tree written by
    :func:`possec.datasets.synthetic.generate_synthetic_voc`: background and
    20 object classes named ``{shape}-{texture}``, VOC palette, 255 as the
    ignore label on object borders. The tree is plain VOC, so
    ``PascalVOCDataset`` reads it too (with VOC's class names).

    With ``generate`` given and ``data_root`` missing, the tree is generated
    first, so a config works on a fresh machine with no data step. In a
    distributed run only rank 0 generates; the other ranks wait at a barrier.
    If ``data_root`` holds a tree generated with other arguments than
    ``generate`` asks for, construction stops with an error instead of
    silently training on the old data.

    Args:
        ann_file (str): Split list, e.g.
            ``'ImageSets/Segmentation/train.txt'``.
        generate (dict, optional): Keyword arguments of
            ``generate_synthetic_voc`` (``layout``, ``num_train``,
            ``num_val``, ``img_size``, ``seed``, ``progress``, ``tilt``,
            ``prior``, ``val_prior``, ``periodic``)
            used when ``data_root`` does not exist. Default: None (never
            generate; a missing root fails as in ``PascalVOCDataset``).
        **kwargs: Passed on to ``PascalVOCDataset``.
    """
    METAINFO = dict(classes=CLASSES, palette=voc_palette(len(CLASSES)))

    def __init__(self,
                 ann_file: str,
                 generate: Optional[dict] = None,
                 **kwargs) -> None:
        if kwargs.get('data_root'):  # configs may name it under ~
            kwargs['data_root'] = osp.expanduser(kwargs['data_root'])
        if generate is not None:
            self._generate_if_missing(kwargs.get('data_root'), generate)
        super().__init__(ann_file=ann_file, **kwargs)

    @staticmethod
    def _generate_if_missing(data_root: Optional[str],
                             generate: dict) -> None:
        """Generate ``data_root`` on rank 0 if absent; check its arguments."""
        if not data_root:
            raise ValueError('SyntheticVOCDataset(generate=...) needs '
                             'data_root: the folder to generate into')
        args = {k: v for k, v in generate.items() if k != 'progress'}
        wanted = generation_meta(**args)
        rank, _ = get_dist_info()
        if rank == 0 and not osp.isdir(data_root):
            generate_synthetic_voc(data_root, **generate)
        barrier()  # every rank calls it once; the others wait for rank 0
        found = read_generation_meta(data_root)
        if found is not None and found != wanted:
            raise ValueError(
                f'data root {data_root} holds synthetic data generated with '
                f'{found}, but generate asks for {wanted}: delete the folder '
                f'to regenerate it, or set another data_root')
