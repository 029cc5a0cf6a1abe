"""Trusted loading of the user's own local checkpoints on torch >= 2.6.

torch 2.6 switched ``torch.load`` to ``weights_only=True``. mmengine 0.10.7
calls ``torch.load`` without that argument, and its own checkpoints hold
Python objects (``HistoryBuffer`` in the message hub, numpy scalars in
``meta``), so ``--resume`` and ``load_from`` fail with "Unsupported global:
mmengine.logging.history_buffer.HistoryBuffer".

:func:`load_local_checkpoint` replaces mmengine's loader for the empty prefix,
i.e. for **local file paths only**. Local checkpoints are files the user wrote
(or chose to place on disk) and are trusted as such: they are unpickled with
``weights_only=False``, which can execute code stored in the file, exactly as
``torch.load`` did before torch 2.6. Remote URLs (``http://``, ``https://``,
``torchvision://``, ...) keep mmengine's loaders and torch's safe default.
"""
import os.path as osp

import torch
from mmengine.runner.checkpoint import CheckpointLoader


def load_local_checkpoint(filename: str, map_location=None):
    """Load a checkpoint from a local path with ``weights_only=False``.

    Args:
        filename (str): Local checkpoint path (``~`` is expanded).
        map_location (str | torch.device | callable, optional): As in
            :func:`torch.load`. Default: None.

    Returns:
        dict: The loaded checkpoint.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(
            f'checkpoint {filename!r} not found: expected a local .pth file '
            f'written by a possec/mmseg run (e.g. work_dirs/NAME/iter_N.pth)')
    return torch.load(filename, map_location=map_location, weights_only=False)


def register_trusted_local_loader() -> None:
    """Make mmengine load local files through :func:`load_local_checkpoint`.

    Idempotent. Only the empty prefix (plain local paths) is overridden.
    """
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_local_checkpoint, force=True)
