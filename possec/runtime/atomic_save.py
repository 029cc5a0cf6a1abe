"""Checkpoints that a ``kill -9`` cannot leave half-written.

mmengine 0.10.7 writes ``iter_N.pth`` in place, and its ``CheckpointHook``
with ``max_keep_ckpts`` deletes the previous checkpoint *before* saving the
next one: a process killed while saving leaves a truncated ``iter_N.pth``
and, with ``max_keep_ckpts=1``, nothing to resume from. Inside
:func:`atomic_checkpoint_saving` (entered by possec's train/test entry
points, restored on exit):

1. a local checkpoint is written to a temporary sibling
   (``.iter_N.pth.XXXX.tmp``), flushed to disk, then renamed onto its name
   (``os.replace``, atomic), so ``iter_N.pth`` exists complete or not at
   all;
2. the hook's deletion of old checkpoints is deferred until the new one is
   complete and ``last_checkpoint`` names it, so the last complete
   checkpoint survives a kill at any moment.

A killed save leaves only its temporary file; :func:`latest_checkpoint`
never picks such a file, and :func:`remove_partial_saves` deletes them.
"""
import contextlib
import os
import os.path as osp
import re
from typing import Iterator, List, Optional

import torch

from ..fileio import atomic_path

__all__ = ['atomic_checkpoint_saving', 'latest_checkpoint',
           'remove_partial_saves', 'save_checkpoint_atomic']

_CKPT_RE = re.compile(r'^(iter|epoch)_(\d+)\.pth$')


def save_checkpoint_atomic(checkpoint: dict, filename: str) -> None:
    """``torch.save`` to a temporary sibling, fsync, rename onto
    ``filename``.

    Args:
        checkpoint (dict): What to save.
        filename (str): Local destination.
    """
    with atomic_path(filename) as tmp:
        with open(tmp, 'wb') as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_checkpoint_saving() -> Iterator[None]:
    """Inside, the Runner saves local checkpoints atomically and the
    CheckpointHook deletes old checkpoints only after the new one is
    complete (see the module docstring)."""
    from mmengine.hooks import CheckpointHook
    from mmengine.runner import runner as runner_module
    original_save = runner_module.save_checkpoint
    original_step = CheckpointHook._save_checkpoint_with_step

    def save(checkpoint, filename, file_client_args=None,
             backend_args=None):
        if '://' in str(filename) or file_client_args or backend_args:
            return original_save(checkpoint, filename, file_client_args,
                                 backend_args)
        save_checkpoint_atomic(checkpoint, filename)

    def save_with_step(hook, runner, step, meta):
        backend = hook.file_backend
        deferred = []
        backend.remove = deferred.append  # shadows the method
        try:
            original_step(hook, runner, step, meta)
        finally:
            del backend.remove
        for path in deferred:
            if backend.isfile(path):
                backend.remove(path)

    runner_module.save_checkpoint = save
    CheckpointHook._save_checkpoint_with_step = save_with_step
    try:
        yield
    finally:
        runner_module.save_checkpoint = original_save
        CheckpointHook._save_checkpoint_with_step = original_step


def _complete(path: str) -> bool:
    """A cheap completeness test: a torch zip file ends with its central
    directory, which a truncated file lacks."""
    import zipfile
    try:
        return zipfile.is_zipfile(path)
    except OSError:
        return False


def latest_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint to resume from: the one ``last_checkpoint`` names if
    it is complete, else the newest complete ``iter_N.pth``/``epoch_N.pth``
    of ``work_dir``; None when there is none."""
    if not osp.isdir(work_dir):
        return None
    named = None
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip() or None
    if named and not osp.isabs(named) and not osp.isfile(named):
        named = osp.join(work_dir, osp.basename(named))
    if named and osp.isfile(named) and _complete(named):
        return named
    found = []
    for entry in os.listdir(work_dir):
        match = _CKPT_RE.match(entry)
        if match and _complete(osp.join(work_dir, entry)):
            found.append((int(match.group(2)), entry))
    return osp.join(work_dir, max(found)[1]) if found else None


def remove_partial_saves(work_dir: str) -> List[str]:
    """Delete temporary files of killed checkpoint saves
    (``.NAME.pth.XXXX.tmp``) in ``work_dir``.

    Returns:
        list[str]: The removed paths.
    """
    removed = []
    if osp.isdir(work_dir):
        for entry in sorted(os.listdir(work_dir)):
            if entry.startswith('.') and '.pth.' in entry and \
                    entry.endswith('.tmp'):
                os.remove(osp.join(work_dir, entry))
                removed.append(osp.join(work_dir, entry))
    return removed
