"""Training throughput of the demo config, without and with data loading.

Two numbers in images/s, in one process, on the same model and optimizer:

- **data loading included**: a real mmengine ``Runner`` built from the config
  trains for ``warmup + iters`` iterations on synthetic VOC-format data that
  :func:`possec.datasets.generate_synthetic_voc` writes into a temporary
  folder; the config's own dataloader (workers, pipeline, sampler) feeds it
  and its hooks run. A hook records the wall time of every iteration (from
  the end of one to the end of the next: waiting for the batch, the step
  and the hooks) and the part spent waiting for data.
- **data loading excluded**: ``model.train_step`` (data preprocessor,
  forward, losses, backward, optimizer step) on a batch of random tensors
  already in memory, timed by
  :func:`possec.benchmarks.timing.time_interleaved`.

A Runner's loop cannot be interleaved with anything, so the in-memory steps
bracket it: half of them run before the Runner's loop and half after, on the
same model and optimizer wrapper, and ``drift`` (median after / median
before) says how much the machine's speed changed meanwhile.
"""
import gc
import os.path as osp
import statistics
import tempfile
from typing import Optional

import torch

from ..analysis.common import offline_cfg
from ..analysis.common.config import load_tool_config
from ..apis.train import build_runner
from ..datasets import generate_synthetic_voc
from ..engine.hooks import IterTimes
from .models import DEMO_CONFIG
from .rows import row
from .runner import BenchmarkRunner, random_batch
from .timing import format_table

TITLE = ('training images/s of the demo config, data loading excluded and '
         'included')
QUICK = dict(iters=2, warmup=1, batch=2, size=64, num_workers=0)


def _train_config(config: str, root: str, work_dir: str, iters: int,
                  batch: Optional[int], size: Optional[int],
                  num_workers: Optional[int]):
    """The config, pointed at ``root``, with validation, checkpoints and
    logging switched off, random weights and BN instead of SyncBN."""
    cfg = load_tool_config(config)
    offline_cfg(cfg.model)
    loader = cfg.train_dataloader
    if batch is not None:
        loader.batch_size = batch
    if num_workers is not None:
        loader.num_workers = num_workers
        loader.persistent_workers = num_workers > 0
    loader.dataset.data_root = root
    loader.dataset.generate = None
    if size is not None:
        cfg.model.data_preprocessor.size = (size, size)
    for key in ('val_dataloader', 'val_evaluator', 'val_cfg',
                'test_dataloader', 'test_evaluator', 'test_cfg'):
        cfg[key] = None
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters)
    for scheduler in cfg.get('param_scheduler') or []:
        if scheduler.get('by_epoch') is False:
            scheduler['end'] = iters
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=10**6)
    cfg.work_dir = work_dir
    cfg.log_level = 'WARNING'
    cfg.randomness = dict(seed=0)
    return cfg


def run(config: str = DEMO_CONFIG,
        iters: int = 20,
        warmup: int = 3,
        batch: Optional[int] = None,
        size: Optional[int] = None,
        num_workers: Optional[int] = None,
        threads: Optional[int] = None,
        progress: bool = True) -> dict:
    """Training images/s of ``config``, data loading excluded and included.

    Args:
        config (str): Config file. Default: the demo config.
        iters (int): Timed iterations of each kind. Default: 20.
        warmup (int): Untimed iterations first. Default: 3.
        batch (int, optional): Batch size. Default: the config's.
        size (int, optional): Image side of the generated data and the
            preprocessor. Default: the config's crop size.
        num_workers (int, optional): Dataloader workers. Default: the
            config's.
        threads (int, optional): ``torch.set_num_threads``. Default: None.
        progress (bool): Print one line per timed round. Default: True.

    Returns:
        dict: ``settings``, ``included`` and ``excluded`` (median iteration
        time, spread, images/s; ``included`` adds the data-wait share),
        ``ratio`` (excluded images/s over included) and the ``table``;
        ``excluded['drift']`` is the median in-memory step time after the
        Runner's loop over the one before it.
    """
    if iters < 1 or warmup < 0:
        raise ValueError(f'iters must be >= 1 and warmup >= 0, got '
                         f'iters={iters}, warmup={warmup}')
    bench = BenchmarkRunner(threads=threads, progress=progress)
    with tempfile.TemporaryDirectory(prefix='possec_throughput_') as tmp:
        root = osp.join(tmp, 'VOC2012')
        cfg = _train_config(config, root, osp.join(tmp, 'work'),
                            warmup + iters + 1, batch, size, num_workers)
        batch = cfg.train_dataloader.batch_size
        size = cfg.model.data_preprocessor.size[0]
        workers = cfg.train_dataloader.num_workers
        generate_synthetic_voc(root, layout='uniform',
                               num_train=max(4 * batch, 16), num_val=1,
                               img_size=size, seed=0, progress=False)
        runner = build_runner(cfg)
        # the first timed iteration needs the end of the one before it
        timer = IterTimes(skip=warmup + 1)
        runner.register_hook(timer)
        # build the optimizer wrapper now (Runner.train keeps a built one)
        runner.optim_wrapper = runner.build_optim_wrapper(
            runner.optim_wrapper)
        model, optim = runner.model, runner.optim_wrapper
        inputs, samples = random_batch(
            batch, size, cfg.model.decode_head.num_classes, packed=True,
            generator=torch.Generator().manual_seed(0))
        data = dict(inputs=inputs, data_samples=samples)
        name = 'train_step, tensors in memory'
        unit = bench.unit(lambda: model.train_step(data, optim))

        def in_memory(repeats, warm):
            model.train()
            return bench.time({name: unit}, repeats=repeats,
                              warmup=warm)[name]

        first = in_memory((iters + 1) // 2, warmup)
        runner.train()
        second = in_memory(max(iters // 2, 1), 0)
        del runner, model, optim, unit
        gc.collect()  # let dataloader workers go before the folder does
    times = first['times_s'] + second['times_s']
    med = statistics.median(times)
    step = dict(median_s=med, min_s=min(times), max_s=max(times),
                spread=(max(times) - min(times)) / med, ratio=1.,
                times_s=times,
                drift=second['median_s'] / first['median_s'])
    iter_med = statistics.median(timer.iter_s)
    included = dict(
        median_s=iter_med,
        min_s=min(timer.iter_s),
        max_s=max(timer.iter_s),
        spread=(max(timer.iter_s) - min(timer.iter_s)) / iter_med,
        images_per_s=batch / iter_med,
        data_wait_share=sum(timer.data_s) / sum(timer.iter_s),
        times_s=timer.iter_s,
        data_wait_s=timer.data_s)
    step = dict(step, images_per_s=batch / step['median_s'])
    settings = dict(config=config, iters=iters, warmup=warmup, batch=batch,
                    size=size, num_workers=workers,
                    threads=torch.get_num_threads())
    table = format_throughput(settings, step, included)
    return dict(settings=settings, excluded=step, included=included,
                ratio=step['images_per_s'] / included['images_per_s'],
                table=table)


def format_throughput(settings: dict, excluded: dict, included: dict) -> str:
    """Markdown table of :func:`run`'s two throughputs."""
    rows = {
        'data loading excluded (train_step on tensors)': excluded,
        f"data loading included (Runner, {settings['num_workers']} "
        f'workers)': dict(included, ratio=included['median_s'] /
                          excluded['median_s']),
    }
    title = (f"training throughput, {osp.basename(settings['config'])}, "
             f"batch {settings['batch']} of {settings['size']}x"
             f"{settings['size']}, {settings['iters']} iterations each")
    lines = [format_table({k: dict(v, ratio=v.get('ratio', 1.))
                           for k, v in rows.items()}, title), '']
    lines += [f'- {name}: {r["images_per_s"]:.2f} images/s'
              for name, r in rows.items()]
    lines.append(f"- waiting for data: {100 * included['data_wait_share']:.1f}"
                 f'% of the Runner\'s iteration time')
    lines.append(f"- drift: in-memory steps after the Runner's loop took "
                 f"{excluded['drift']:.2f}x those before it")
    return '\n'.join(lines)


def report(result: dict, settings: dict) -> tuple:
    """The table of :func:`run` and its three numbers as summary rows."""
    return result['table'], [
        row('training images/s, data loading excluded',
            result['excluded']['images_per_s'], '{:.2f}'),
        row('training images/s, data loading included (Runner)',
            result['included']['images_per_s'], '{:.2f}'),
        row('share of Runner iteration time waiting for data',
            result['included']['data_wait_share'], '{:.1%}'),
    ]
