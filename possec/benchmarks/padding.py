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
from mmseg.registry import MODELS

from ..models.layers.padding import PADDING_MODES, resolve_padding_mode
from .rows import row
from .timing import format_table, time_interleaved

TITLE = 'training step and inference per padding mode vs zeros'
QUICK = dict(depth=18, size=64, batch=1, repeats=1, warmup=0)
R50_D8 = dict(
    type='PadResNetV1c',
    depth=50,
    num_stages=4,
    out_indices=(0, 1, 2, 3),
    dilations=(1, 1, 2, 4),
    strides=(1, 2, 1, 1),
    norm_cfg=dict(type='BN', requires_grad=True),
    norm_eval=False,
    style='pytorch',
    contract_dilation=True)


def build_backbone(mode: str, depth: int = 50) -> torch.nn.Module:
    """The R-D8 backbone of ``fcn_r50-d8`` (any depth) in ``mode``."""
    cfg = dict(R50_D8, depth=depth, padding_mode=resolve_padding_mode(mode))
    return MODELS.build(cfg)


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _train_step(model, x):

    def step():
        model.train()
        loss = sum(out.mean() for out in model(x))
        loss.backward()
        model.zero_grad(set_to_none=True)
        _sync(x.device)

    return step


def _inference(model, x):

    def infer():
        model.eval()
        with torch.no_grad():
            model(x)
        _sync(x.device)

    return infer


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
    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    x = torch.randn(batch, 3, size, size, device=device)
    reference = build_backbone('zeros', depth).to(device)
    state = reference.state_dict()
    models, shapes, skipped = {}, {}, {}
    for mode in modes:
        model = reference if mode == 'zeros' else build_backbone(
            mode, depth).to(device)
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
    train, inference = (
        time_interleaved({m: make(models[m], x) for m in models},
                         repeats=repeats, warmup=warmup, baseline='zeros',
                         progress=progress)
        for make in (_train_step, _inference))
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
            device=device,
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
