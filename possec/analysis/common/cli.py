"""The command-line options the visual tools share.

``tools/analysis/{occlusion,receptive_field,deconvnet,invariance}.py`` all
take a segmentor config, optional weights, images (files, or test-set images
by index), an input size, ``--cfg-options``, a seed and an output folder;
:func:`tool_parser` builds those options, with the defaults of the
``run_*`` function the tool calls, and :func:`common_kwargs` hands them to
it. Each tool adds its own options, the same way
(:func:`possec.apis.cli.add_signature_options`).
"""
import argparse
import os
from typing import Callable, Optional, Sequence, Tuple

from mmengine.config import DictAction

from possec.apis.cli import (add_signature_options, given_options,
                             signature_defaults)
from possec.runtime.checkpoint import trust


def tool_parser(description: str,
                fn: Optional[Callable] = None,
                many_images: bool = False,
                out_dir: Optional[str] = None,
                num_images: Optional[int] = None,
                batch_size: Optional[int] = None,
                progress: bool = True,
                checkpoint_help: str = 'weights (default: random init)',
                options_from: Sequence[Callable] = (),
                own: Sequence[Tuple[Callable, dict]] = ()
                ) -> argparse.ArgumentParser:
    """A parser with the shared options of a visual tool.

    The defaults of ``--out-dir``, ``--seed``, ``--index``,
    ``--num-images`` and ``--batch-size`` are those of ``fn`` (the latter
    two options exist where ``fn``, or a function of ``options_from`` that
    ``fn`` hands its keywords to, has such a keyword); a value given here
    replaces them.

    Args:
        description (str): The tool's one-line description.
        fn (callable, optional): The ``run_*`` function the tool calls.
        many_images (bool): ``--img`` takes several files (and the index is
            the first test-set image) instead of one. Default: False.
        out_dir (str, optional): Default of ``--out-dir``. Default: fn's.
        num_images (int, optional): Default of ``--num-images`` (test-set
            images used without ``--img``). Default: fn's, if any.
        batch_size (int, optional): Default of ``--batch-size``. Default:
            fn's (or ``options_from``'s), if any.
        progress (bool): Add ``--no-progress``. Default: True.
        checkpoint_help (str): Help of ``--checkpoint``.
        options_from (Sequence[callable]): Functions that ``fn`` passes its
            ``**kwargs`` to. Default: ().
        own (Sequence[tuple]): The tool's own options taken from function
            signatures: ``(function, keyword arguments of``
            :func:`possec.apis.cli.add_signature_options` ``)`` pairs; what
            the user types reaches ``fn`` through :func:`common_kwargs`.
            Default: ().

    Returns:
        argparse.ArgumentParser: To add the tool's own options to.
    """
    defaults = {}
    for source in reversed([fn, *options_from] if fn else []):
        defaults.update(signature_defaults(source))
    given = dict(out_dir=out_dir, num_images=num_images,
                 batch_size=batch_size)
    defaults.update({k: v for k, v in given.items() if v is not None})
    p = argparse.ArgumentParser(description=description)
    p.add_argument('config', help='segmentor config file')
    p.add_argument('--checkpoint', help=checkpoint_help)
    add_trust_option(p)
    if many_images:
        p.add_argument('--img', nargs='+',
                       help='image files (default: test set images)')
        p.add_argument('--index', type=int, default=defaults.get('index', 0),
                       help='first test set image')
    else:
        p.add_argument('--img', help='image file (default: a test set '
                       'image)')
        p.add_argument('--index', type=int, default=defaults.get('index', 0),
                       help='test set image used without --img')
    if 'num_images' in defaults:
        p.add_argument('--num-images', type=int,
                       default=defaults['num_images'],
                       help='test set images used without --img '
                       '(default: %(default)s)')
    if 'batch_size' in defaults:
        p.add_argument('--batch-size', type=int,
                       default=defaults['batch_size'],
                       help='images per forward (default: %(default)s)')
    p.add_argument('--image-size', type=int, nargs=2, metavar=('H', 'W'))
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    p.add_argument('--seed', type=int, default=defaults.get('seed', 0))
    if progress:
        p.add_argument('--no-progress', action='store_true')
    p.add_argument('--out-dir', default=defaults.get('out_dir'),
                   help='where the files go (default: %(default)s)')
    p.add_argument('--data-root', metavar='DIR',
                   help='where generated (synthetic) test-set data goes '
                   '(default: $POSSEC_DATA_ROOT, else ~/.cache/possec/data)')
    dests = {}
    for source, kwargs in own:
        dests.update(add_signature_options(p, source, **kwargs))
    p.set_defaults(many_images=many_images, signature_options=dests)
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

    ``--trust-checkpoint`` takes effect here, for ``--checkpoint`` only,
    and ``--data-root`` (as ``$POSSEC_DATA_ROOT`` of this process, which
    the configs read).
    """
    apply_trust(args)
    if getattr(args, 'data_root', None):
        from possec.apis.config_files import DATA_ROOT_ENV, data_home
        os.environ[DATA_ROOT_ENV] = data_home(args.data_root)
    kwargs = dict(checkpoint=args.checkpoint, index=args.index,
                  image_size=args.image_size, cfg_options=args.cfg_options,
                  out_dir=args.out_dir, seed=args.seed)
    kwargs['images' if args.many_images else 'img'] = args.img
    for name in ('num_images', 'batch_size'):
        if hasattr(args, name):
            kwargs[name] = getattr(args, name)
    if hasattr(args, 'no_progress'):
        kwargs['progress'] = not args.no_progress
    kwargs.update(given_options(args, getattr(args, 'signature_options',
                                              {})))
    return kwargs
