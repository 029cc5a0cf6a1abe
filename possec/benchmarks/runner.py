"""What every benchmark sets up, set up once: :class:`BenchmarkRunner`.

A benchmark module builds its variants and writes its report; the runner
owns the rest (as timm's ``benchmark.py`` does with its
``BenchmarkRunner``): the torch threads, the seed, the device and its
synchronisation, a random segmentation batch, the reference matmul, one
training step and one inference as timed units, and the interleaved timing
of :func:`~.timing.time_interleaved`.
"""
import contextlib
from typing import Callable, Dict, Iterable, Optional, Tuple

import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from ..errors import UserError
from .timing import time_interleaved

__all__ = ['BenchmarkRunner', 'device_sync', 'gpu_device', 'random_batch']


def device_sync(device) -> None:
    """Wait for the work queued on ``device`` (a no-op off CUDA), so that a
    timer reads the end of the work, not of its launch."""
    device = torch.device(device)
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def gpu_device(device: Optional[str] = None,
               dry_run: bool = False) -> torch.device:
    """The device of a GPU run: ``device``, else CUDA (CPU for a dry run).

    Raises:
        UserError: CUDA is asked for and this torch has no usable GPU.
    """
    device = torch.device(device or ('cpu' if dry_run else 'cuda'))
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise UserError(
            'a GPU run needs CUDA, found torch ' + torch.__version__ +
            ' without a usable GPU: run it on a GPU machine, or add '
            '--dry-run (make gpu-check DRY_RUN=1) for the CPU dry run')
    return device


def random_batch(batch: int, size: int, num_classes: int, device='cpu',
                 packed: bool = False,
                 generator: Optional[torch.Generator] = None) -> tuple:
    """A random segmentation batch of square images and their labels.

    Args:
        batch (int): Number of images.
        size (int): Height and width.
        num_classes (int): Labels are drawn from ``range(num_classes)``.
        device (str | torch.device): Where the tensors live. Default: 'cpu'.
        packed (bool): As ``PackSegInputs`` and the default collate deliver
            a batch to ``model.train_step`` (uint8 images in a list) instead
            of normalised float inputs for ``model.loss``. Default: False.
        generator (torch.Generator, optional): Source of the random
            numbers. Default: torch's global generator.

    Returns:
        tuple: ``(inputs, data_samples)``; ``inputs`` is a float tensor
        ``(batch, 3, size, size)``, or with ``packed`` a list of uint8
        ``(3, size, size)`` tensors.
    """
    shape = dict(img_shape=(size, size), ori_shape=(size, size),
                 pad_shape=(size, size))
    if packed:
        inputs = [torch.randint(0, 256, (3, size, size), dtype=torch.uint8,
                                generator=generator).to(device)
                  for _ in range(batch)]
    else:
        inputs = torch.randn(batch, 3, size, size,
                             generator=generator).to(device)
    samples = []
    for _ in range(batch):
        sample = SegDataSample(metainfo=shape)
        sample.gt_sem_seg = PixelData(data=torch.randint(
            0, num_classes, (1, size, size), generator=generator).to(device))
        samples.append(sample)
    return inputs, samples


class BenchmarkRunner:
    """Threads, seed, device, timed units and interleaved timing.

    Constructing the runner sets the torch threads (when given) and seeds
    torch; each unit it hands out runs its work ``inner`` times and then
    waits for the device, so that a CUDA timing measures the work.

    Args:
        device (str | torch.device): Where the benchmark runs. Default:
            'cpu'.
        threads (int, optional): ``torch.set_num_threads``; None keeps
            torch's choice. Default: None.
        seed (int): Seed of weights and data. Default: 0.
        repeats (int): Timed rounds. Default: 5.
        warmup (int): Untimed rounds first. Default: 1.
        inner (int): Calls per timed unit (a GPU step of a few milliseconds
            is timed over many calls, so that launch jitter does not make
            the spread). Default: 1.
        progress (bool): Print one line per round. Default: True.
    """

    def __init__(self,
                 device='cpu',
                 threads: Optional[int] = None,
                 seed: int = 0,
                 repeats: int = 5,
                 warmup: int = 1,
                 inner: int = 1,
                 progress: bool = True) -> None:
        if inner < 1:
            raise ValueError(f'inner must be >= 1, got {inner}')
        if threads is not None:
            torch.set_num_threads(threads)
        self.device = torch.device(device)
        self.seed = seed
        self.repeats, self.warmup = repeats, warmup
        self.inner, self.progress = inner, progress
        self.reseed()

    def reseed(self, offset: int = 0) -> None:
        """Seed torch with ``seed + offset`` (the same weights for two
        variants built after the same call)."""
        torch.manual_seed(self.seed + offset)

    def sync(self) -> None:
        """Wait for the device (:func:`device_sync`)."""
        device_sync(self.device)

    def batch(self, batch: int, size: int, num_classes: int,
              packed: bool = False) -> tuple:
        """A :func:`random_batch` on the runner's device."""
        return random_batch(batch, size, num_classes, self.device, packed)

    def unit(self, fn: Callable[[], object], amp: bool = False,
             cudnn_benchmark: bool = False) -> Callable[[], object]:
        """``fn`` as one timed unit: ``inner`` calls, under autocast
        (float16 on CUDA, bfloat16 elsewhere) when ``amp``, with
        ``torch.backends.cudnn.benchmark`` set to ``cudnn_benchmark``,
        then a device sync."""
        amp_dtype = torch.float16 if self.device.type == 'cuda' \
            else torch.bfloat16

        def call():
            saved = torch.backends.cudnn.benchmark
            torch.backends.cudnn.benchmark = cudnn_benchmark
            try:
                with torch.autocast(self.device.type, dtype=amp_dtype,
                                    enabled=amp):
                    for _ in range(self.inner):
                        out = fn()
                self.sync()
                return out
            finally:
                torch.backends.cudnn.benchmark = saved

        return call

    def matmul(self, size: int, dtype: torch.dtype = torch.float32,
               tf32: bool = False) -> Tuple[str, Callable[[], object], int]:
        """The reference dense product: ``torch.mm`` of two random
        ``size x size`` matrices of ``dtype`` on the device, with CUDA's
        TF32 matmul switched to ``tf32`` during the call.

        Returns:
            tuple: Its label, its timed unit and the FLOPs of one call
            (``2 size³``).
        """
        a = torch.randn(size, size, device=self.device).to(dtype)
        b = torch.randn(size, size, device=self.device).to(dtype)
        c = torch.empty(size, size, device=self.device, dtype=dtype)
        matmul = torch.backends.cuda.matmul

        def product():
            saved = matmul.allow_tf32
            matmul.allow_tf32 = tf32
            try:
                return torch.mm(a, b, out=c)
            finally:
                matmul.allow_tf32 = saved

        kind = 'TF32' if tf32 else {
            torch.float32: 'fp32'}.get(dtype, str(dtype))
        return f'{kind} matmul {size}x{size}', self.unit(product), \
            2 * size**3

    def train_step(self,
                   loss_fn: Callable[[], torch.Tensor],
                   params: Iterable[torch.nn.Parameter],
                   optimizer: bool = True,
                   threads: Optional[int] = None,
                   amp: bool = False,
                   cudnn_benchmark: bool = False) -> Callable[[], object]:
        """One training step as a timed unit: gradients cleared,
        ``loss_fn()``, backward and (with ``optimizer``) an AdamW step
        (lr 1e-4) over ``params``.

        Args:
            loss_fn (callable): Computes the scalar loss (the forward).
            params (Iterable[Parameter]): What the step trains.
            optimizer (bool): Take an AdamW step; False times forward and
                backward only. Default: True.
            threads (int, optional): ``torch.set_num_threads`` during the
                step only. Default: None.
            amp (bool): Autocast, and on CUDA a ``GradScaler``. Default:
                False.
            cudnn_benchmark (bool): ``torch.backends.cudnn.benchmark``
                during the step. Default: False.
        """
        params = list(params)
        optim = torch.optim.AdamW(params, lr=1e-4) if optimizer else None
        scaler = torch.amp.GradScaler(self.device.type) \
            if amp and optimizer and self.device.type == 'cuda' else None

        def step():
            with _threads(threads):
                for p in params:
                    p.grad = None
                loss = loss_fn()
                if scaler is None:
                    loss.backward()
                    if optim is not None:
                        optim.step()
                else:
                    scaler.scale(loss).backward()
                    scaler.step(optim)
                    scaler.update()
            return loss

        return self.unit(step, amp, cudnn_benchmark)

    def inference(self, net: torch.nn.Module, inputs: torch.Tensor,
                  amp: bool = False,
                  cudnn_benchmark: bool = False) -> Callable[[], object]:
        """``net(inputs)`` in inference mode as a timed unit (``net`` is
        put in eval mode now)."""
        net.eval()

        def infer():
            with torch.inference_mode():
                return net(inputs)

        return self.unit(infer, amp, cudnn_benchmark)

    def time(self,
             variants: Dict[str, Callable[[], object]],
             baseline: Optional[str] = None,
             repeats: Optional[int] = None,
             warmup: Optional[int] = None) -> Dict[str, dict]:
        """Time the units interleaved (:func:`~.timing.time_interleaved`;
        by default the runner's rounds)."""
        return time_interleaved(
            variants, repeats=self.repeats if repeats is None else repeats,
            warmup=self.warmup if warmup is None else warmup,
            baseline=baseline, progress=self.progress)


@contextlib.contextmanager
def _threads(threads: Optional[int]):
    """``torch.set_num_threads(threads)`` inside the block (None: no
    change)."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
