"""One probe run, or one of the paper's ablations, from images to scores.

The ablations of `How Much Position Information Do Convolutional Neural
Networks Encode? <https://arxiv.org/abs/2001.08248>`_ each vary one thing:
the readout's depth, kernel or padding (Tables 3-4), the feature levels it
reads (Table 5) or the encoder's padding (Table 6). All but the last reuse
one feature cache; the encoder-padding ablation extracts once per mode.
"""
import os.path as osp
import time
from typing import Callable, Optional, Sequence, Union

from torch import Tensor

from possec.apis.paths import check_output_dir
from possec.models.layers import PADDING_MODES
from possec.position import PATTERNS, check_patterns
from .data import ProbeError, probe_images, split_indices
from .encoders import FrozenEncoder, build_encoder
from .readout import extract, probe_cached
from .report import format_table, write_results

# ablation -> (readout option, table column, default values)
READOUT_ABLATIONS = {
    'depth': ('num_convs', 'layers', (1, 2, 3)),
    'kernel': ('kernel_size', 'kernel', (1, 3, 7)),
    'padding': ('conv_padding', 'padding', (0, 1, 2)),
}
ABLATIONS = tuple(READOUT_ABLATIONS) + ('levels', 'encoder-padding')


def run_probe(images: Tensor,
              encoder: Union[FrozenEncoder,
                             Callable[[Optional[str]], FrozenEncoder]],
              patterns: Sequence[str] = PATTERNS,
              grid: int = 28,
              levels: Optional[Sequence[str]] = None,
              readout: Optional[dict] = None,
              train: Optional[dict] = None,
              ablate: Optional[str] = None,
              values: Optional[Sequence] = None,
              test_fraction: float = 0.2,
              score_at: Union[str, int] = 'image',
              seed: int = 0,
              cache_budget: float = 2 * 1024**3,
              extract_batch: int = 16,
              device: str = 'cpu',
              num_show: int = 4,
              progress: bool = True) -> dict:
    """Probe an encoder, optionally across one ablation.

    Args:
        images (Tensor): ``uint8`` images ``(N, 3, S, S)``.
        encoder (FrozenEncoder | callable): The encoder, or a function of a
            padding mode (None: the default) returning one; the
            ``'encoder-padding'`` ablation needs the function.
        patterns (Sequence[str]): Patterns. Default: all five.
        grid (int): Side of the readout's grid. Default: 28.
        levels (Sequence[str], optional): Levels ``f1 ..`` to read; None
            reads all. Default: None.
        readout (dict, optional): ``num_convs``, ``kernel_size``,
            ``conv_padding``, ``channels`` of the readout. Default: one 3x3
            conv without padding.
        train (dict, optional): Training options (``epochs``,
            ``batch_size``, ``lr``, ``momentum``, ``weight_decay``,
            ``lr_step``). Default: the paper's, with ``lr='auto'`` (0.1,
            then 0.01 and 0.001 while the readout diverges).
        ablate (str, optional): One of :data:`ABLATIONS`. Default: None.
        values (Sequence, optional): The ablation's settings; None uses the
            paper's (depth 1/2/3, kernel 1/3/7, padding 0/1/2, each level
            alone and all, every padding mode). Default: None.
        test_fraction (float): Held-out share of the images. Default: 0.2.
        score_at (str | int): Resolution of SPC and MAE: ``'image'`` (the
            input size, as the paper: predictions are resized bilinearly),
            ``'output'`` (the readout's own output) or a side in pixels.
            Default: 'image'.
        seed (int): Seed of the split, the readouts and the batch order.
            Default: 0.
        cache_budget (float): Largest in-memory feature cache in bytes;
            above it the cache goes to disk. Default: 2 GiB.
        extract_batch (int): Images per encoder forward. Default: 16.
        device (str): Where encoder and readout run. Default: 'cpu'.
        num_show (int): Held-out images whose predictions are kept for the
            figure. Default: 4.
        progress (bool): Progress bars and the cache size. Default: True.

    Returns:
        dict: ``column`` (the table's first column), ``patterns``,
        ``rows`` (per setting: ``setting``, ``spc``, ``mae``, ``loss``,
        ``lr`` (the rate used), ``diverged``, ``pred`` of the shown
        images), ``show`` (those images), ``levels``, ``num_train``,
        ``num_test``, ``cache`` and ``time_s``.
    """
    patterns = list(_check(check_patterns, patterns))
    if ablate is not None and ablate not in ABLATIONS:
        raise ProbeError(f'unknown ablation {ablate!r}; expected one of '
                         f'{", ".join(ABLATIONS)}')
    train_index, test_index = split_indices(len(images), test_fraction, seed)
    if score_at == 'image':
        score_size = images.shape[-1]
    elif score_at == 'output':
        score_size = None
    elif isinstance(score_at, int) and score_at > 1:
        score_size = score_at
    else:
        raise ProbeError(f"score_at must be 'image', 'output' or a side > 1 "
                         f"in pixels, got {score_at!r}")
    factory = encoder if not isinstance(encoder, FrozenEncoder) else None
    readout = dict(readout or {})
    t0 = time.perf_counter()
    ext_s = 0.

    def cache_for(mode=None):
        nonlocal ext_s
        if factory is None and mode is not None:
            raise ProbeError('the encoder-padding ablation needs an encoder '
                             'that can be rebuilt per padding mode')
        enc = (encoder if factory is None else factory(mode)).to(device)
        start = time.perf_counter()
        cache = extract(enc, images, grid, budget_bytes=cache_budget,
                        batch_size=extract_batch, device=device,
                        progress=progress)
        ext_s += time.perf_counter() - start
        return enc.name, cache

    def probe(cache, lv, ro):
        return probe_cached(cache, train_index, test_index, patterns, lv, ro,
                            train, score_size, seed, device, progress)

    rows, column = [], 'encoder'
    if ablate == 'encoder-padding':
        column = 'encoder padding'
        for mode in values or PADDING_MODES:
            name, cache = cache_for(mode)
            with cache:
                rows.append((str(mode), probe(cache, levels, readout)))
                info = _cache_info(cache)
    else:
        name, cache = cache_for()
        with cache:
            info = _cache_info(cache)
            if ablate is None:
                rows.append((name, probe(cache, levels, readout)))
            elif ablate == 'levels':
                column = 'levels'
                for lv in values or cache.level_names + ['all']:
                    lv_list = None if lv == 'all' else [lv]
                    rows.append((str(lv), probe(cache, lv_list, readout)))
            else:
                key, column, defaults = READOUT_ABLATIONS[ablate]
                for value in values or defaults:
                    ro = dict(readout, **{key: _as_int(value, ablate)})
                    rows.append((str(value), probe(cache, levels, ro)))
    show = test_index[:num_show]
    return dict(
        column=column,
        patterns=patterns,
        rows=[dict(setting=s, spc=r['spc'], mae=r['mae'], loss=r['loss'],
                   lr=r['lr'], diverged=r['diverged'],
                   pred=r['pred'][:num_show])
              for s, r in rows],
        show=images[show],
        levels=info['levels'],
        num_train=len(train_index),
        num_test=len(test_index),
        cache=info,
        score_size=score_size,
        time_s=dict(extract=ext_s, total=time.perf_counter() - t0))


def _as_int(value, ablate: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ProbeError(f'the {ablate} ablation takes integer settings, '
                         f'got {value!r}') from None


def _check(fn, value):
    try:
        return fn(value)
    except ValueError as exc:
        raise ProbeError(str(exc)) from None


def _cache_info(cache) -> dict:
    return dict(shape=list(cache.shape), bytes=cache.nbytes,
                on_disk=cache.on_disk, levels=list(cache.level_names),
                level_channels=list(cache.level_channels))


def position_probe(images: str,
                   encoder: str = 'posenet',
                   config: Optional[str] = None,
                   checkpoint: Optional[str] = None,
                   padding_mode: Optional[str] = None,
                   cfg_options: Optional[dict] = None,
                   num_images: Optional[int] = None,
                   input_size: int = 224,
                   out_dir: Optional[str] = None,
                   seed: int = 0,
                   **kwargs) -> dict:
    """The probe from a command line's options: load the images, build the
    encoder, run :func:`run_probe`, print the table and write the files of
    :func:`~possec.analysis.probe.report.write_results`.

    Args:
        images (str): A folder, or ``'black'``, ``'white'``, ``'noise'``.
        encoder (str): ``'posenet'`` or ``'vgg16'`` (ignored with
            ``config``). Default: 'posenet'.
        config (str, optional): mmseg config whose backbone is the encoder.
        checkpoint (str, optional): Weights of the backbone.
        padding_mode (str, optional): The encoder's border rule.
        cfg_options (dict, optional): Overrides of ``config``.
        num_images (int, optional): How many images (required for generated
            ones). Default: None.
        input_size (int): Side of the images. Default: 224.
        out_dir (str, optional): Where the files go; None writes none.
        seed (int): Seed of everything. Default: 0.
        **kwargs: Options of :func:`run_probe`.

    Returns:
        dict: The result of :func:`run_probe`, with ``files`` added.
    """
    if out_dir:
        check_output_dir(out_dir, '--out-dir')  # before any computation
    imgs = probe_images(images, input_size, num_images, seed)

    def factory(mode=None):
        return build_encoder(encoder, config, checkpoint,
                             padding_mode if mode is None else mode,
                             cfg_options, seed)

    enc = factory() if kwargs.get('ablate') != 'encoder-padding' else factory
    result = run_probe(imgs, enc, seed=seed, **kwargs)
    name = osp.basename(config) if config else encoder
    title = f'position probe: {name} on {images} ({len(imgs)} images)'
    print(format_table(result, title), flush=True)
    meta = dict(images=images, num_images=len(imgs), input_size=input_size,
                encoder=encoder if config is None else None, config=config,
                checkpoint=checkpoint, padding_mode=padding_mode, seed=seed,
                **{k: v for k, v in kwargs.items() if k != 'progress'})
    result['files'] = write_results(result, out_dir, meta, title) \
        if out_dir else {}
    return result
