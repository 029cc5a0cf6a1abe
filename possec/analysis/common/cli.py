"""The command-line options the visual tools share.

``tools/analysis/{occlusion,receptive_field,deconvnet,invariance}.py`` all
take a segmentor config, optional weights, images (files, or test-set images
by index), an input size, ``--cfg-options``, a seed and an output folder;
:func:`tool_parser` builds those options and :func:`common_kwargs` hands
them to the tool's ``run_*`` function. Each tool adds its own options.
"""
import argparse
from typing import Optional

from mmengine.config import DictAction

from possec.runtime.checkpoint import trust


def tool_parser(description: str,
                out_dir: str,
                many_images: bool = False,
                num_images: Optional[int] = None,
                batch_size: Optional[int] = None,
                progress: bool = True,
                checkpoint_help: str = 'weights (default: random init)'
                ) -> argparse.ArgumentParser:
    """A parser with the shared options of a visual tool.

    Args:
        description (str): The tool's one-line description.
        out_dir (str): Default of ``--out-dir``.
        many_images (bool): ``--img`` takes several files (and the index is
            the first test-set image) instead of one. Default: False.
        num_images (int, optional): Default of ``--num-images`` (test-set
            images used without ``--img``); None adds no such option.
        batch_size (int, optional): Default of ``--batch-size``; None adds
            no such option.
        progress (bool): Add ``--no-progress``. Default: True.
        checkpoint_help (str): Help of ``--checkpoint``.

    Returns:
        argparse.ArgumentParser: To add the tool's own options to.
    """
    p = argparse.ArgumentParser(description=description)
    p.add_argument('config', help='segmentor config file')
    p.add_argument('--checkpoint', help=checkpoint_help)
    add_trust_option(p)
    if many_images:
        p.add_argument('--img', nargs='+',
                       help='image files (default: test set images)')
        p.add_argument('--index', type=int, default=0,
                       help='first test set image')
    else:
        p.add_argument('--img', help='image file (default: a test set '
                       'image)')
        p.add_argument('--index', type=int, default=0,
                       help='test set image used without --img')
    if num_images is not None:
        p.add_argument('--num-images', type=int, default=num_images,
                       help='test set images used without --img')
    if batch_size is not None:
        p.add_argument('--batch-size', type=int, default=batch_size)
    p.add_argument('--image-size', type=int, nargs=2, metavar=('H', 'W'))
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    p.add_argument('--seed', type=int, default=0)
    if progress:
        p.add_argument('--no-progress', action='store_true')
    p.add_argument('--out-dir', default=out_dir)
    p.set_defaults(many_images=many_images)
    return p


def add_trust_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--trust-checkpoint``: the per-file opt-in to full unpickling.

    Without it, ``--checkpoint`` loads through possec's safe loader, which
    takes the project's own checkpoints and refuses any other pickled
    object in one line (:mod:`possec.runtime.checkpoint`).
    """
    parser.add_argument(
        '--trust-checkpoint', action='store_true',
        help='load --checkpoint with full unpickling (it can run code: '
        'only for a file you trust); by default only the objects possec\'s '
        'own checkpoints hold are loaded')


def apply_trust(args: argparse.Namespace) -> None:
    """Trust ``args.checkpoint`` (that one file) if ``--trust-checkpoint``."""
    if getattr(args, 'trust_checkpoint', False) and args.checkpoint:
        trust(args.checkpoint)


def common_kwargs(args: argparse.Namespace) -> dict:
    """The shared options of :func:`tool_parser` as keyword arguments of a
    ``run_*`` function (``images`` for several files, ``img`` for one).

    ``--trust-checkpoint`` takes effect here, for ``--checkpoint`` only.
    """
    apply_trust(args)
    kwargs = dict(checkpoint=args.checkpoint, index=args.index,
                  image_size=args.image_size, cfg_options=args.cfg_options,
                  out_dir=args.out_dir, seed=args.seed)
    kwargs['images' if args.many_images else 'img'] = args.img
    for name in ('num_images', 'batch_size'):
        if hasattr(args, name):
            kwargs[name] = getattr(args, name)
    if hasattr(args, 'no_progress'):
        kwargs['progress'] = not args.no_progress
    return kwargs
