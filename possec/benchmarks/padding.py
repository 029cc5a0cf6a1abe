"""Cost of each ``padding_mode`` on the same R-50-D8 backbone.

Every mode runs the same backbone (mmseg's ResNetV1c-50 with dilations
(1, 1, 2, 4) and strides (1, 2, 1, 1), as in ``fcn_r50-d8``) with the same
weights on the same input, interleaved in one process by
:func:`possec.benchmarks.timing.time_interleaved`; the result is each mode's
time as a ratio to ``'zeros'``. A mode whose features vanish at the chosen
size (``'none'`` needs inputs of 431 pixels or more for R-50-D8) is skipped
with its reason.
"""
import platform
from typing import Dict, Optional, Sequence

import torch

from ..models.layers.padding import PADDING_MODES, resolve_padding_mode
from .models import backbone_loss, build_backbone
from .rows import row
from .runner import BenchmarkRunner
from .timing import format_table

TITLE = 'training step and inference per padding mode vs zeros'
QUICK = dict(depth=18, size=64, batch=1, repeats=1, warmup=0)


def run(modes: Sequence[str] = PADDING_MODES,
        size: int = 512,
        batch: int = 1,
        depth: int = 50,
        repeats: int = 3,
        warmup: int = 1,
        target: float = 1.10,
        device: str = 'cpu',
        threads: Optional[int] = None,
        progress: bool = True) -> Dict[str, object]:
    """Time a training step and an inference pass per padding mode.

    Args:
        modes (Sequence[str]): Modes to compare; ``'zeros'`` is always
            included and is the baseline. Default: all of them.
        size (int): Input height and width. Default: 512.
        batch (int): Batch size. Default: 1.
        depth (int): ResNet depth (50 for R-50-D8). Default: 50.
        repeats (int): Timed rounds. Default: 3.
        warmup (int): Untimed rounds. Default: 1.
        target (float): Largest acceptable ratio to ``'zeros'``.
            Default: 1.10.
        device (str): Torch device. Default: 'cpu'.
        threads (int, optional): ``torch.set_num_threads`` for the run.
            Default: None (torch's choice).
        progress (bool): Print progress. Default: True.

    Returns:
        dict: ``setup`` (the parameters and machine), ``shapes`` (per mode,
        the output shapes), ``skipped`` (mode -> reason), ``train`` and
        ``inference`` (:func:`time_interleaved` results, ``ratio`` vs
        zeros), ``within_target`` (mode -> both ratios <= target) and the
        markdown ``table``.
    """
    modes = ['zeros'] + [resolve_padding_mode(m) for m in modes
                         if m != 'zeros']
    runner = BenchmarkRunner(device, threads, 0, repeats, warmup,
                             progress=progress)
    device = runner.device
    x = torch.randn(batch, 3, size, size, device=device)
    reference = build_backbone(depth, 'zeros').to(device)
    state = reference.state_dict()
    models, shapes, skipped = {}, {}, {}
    for mode in modes:
        model = reference if mode == 'zeros' else build_backbone(
            depth, mode).to(device)
        model.load_state_dict(state, strict=True)
        try:
            with torch.no_grad():
                outs = model.eval()(x)
        except RuntimeError as err:  # e.g. 'none': features shrank to 0
            skipped[mode] = (f'input {size}x{size} too small for this mode: '
                             f'{str(err).splitlines()[0]}')
            continue
        models[mode] = model
        shapes[mode] = [list(o.shape) for o in outs]
    train = runner.time({
        m: runner.train_step(backbone_loss(model, x), model.parameters(),
                             optimizer=False)
        for m, model in models.items()
    }, baseline='zeros')
    inference = runner.time(
        {m: runner.inference(model, x)
         for m, model in models.items()}, baseline='zeros')
    within = {
        m: train[m]['ratio'] <= target and inference[m]['ratio'] <= target
        for m in models
    }
    title = f'R-{depth}-D8, {batch}x3x{size}x{size}'
    table = '\n\n'.join([
        format_table(train, f'training step (fwd+bwd), {title}'),
        format_table(inference, f'inference, {title}')
    ])
    if skipped:
        table += '\n\n' + '\n'.join(f'- {m} skipped: {why}'
                                    for m, why in skipped.items())
    return dict(
        setup=dict(
            modes=modes,
            size=size,
            batch=batch,
            depth=depth,
            device=str(device),
            repeats=repeats,
            warmup=warmup,
            target=target,
            torch=torch.__version__,
            threads=torch.get_num_threads(),
            machine=platform.machine(),
            processor=platform.processor()),
        shapes=shapes,
        skipped=skipped,
        train=train,
        inference=inference,
        within_target=within,
        table=table)


def report(result: dict, settings: dict) -> tuple:
    """The tables of :func:`run` and a summary row per mode: the worse of
    its two ratios to zeros against the target."""
    rows = []
    for mode in result['train']:
        if mode == 'zeros':
            continue
        worst = max(result['train'][mode]['ratio'],
                    result['inference'][mode]['ratio'])
        rows.append(
            row(f'{mode} / zeros (worse of train, inference)', worst,
                '{:.3f}x', f"<= {result['setup']['target']}x",
                bool(result['within_target'][mode])))
    rows += [
        dict(
            measure=f'{mode} skipped',
            value=None,
            text=why,
            target=None,
            met=None) for mode, why in result['skipped'].items()
    ]
    return result['table'], rows
