"""Write a synthetic Pascal-VOC-format dataset (see possec.datasets.synthetic).

Example::

    python tools/make_synthetic_voc.py data/synthetic_uniform --layout uniform
    python tools/make_synthetic_voc.py data/prior75 --layout position-prior \
        --prior 0.75 --tilt 10 --periodic
"""
import possec.bootstrap  # noqa: F401,I001  (first: the stack's warnings)
import argparse

from possec.datasets.synthetic import (LAYOUTS, PERIODIC,
                                       generate_synthetic_voc)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Generate textured-shape segmentation data in VOC2012 '
        'format (JPEGImages, SegmentationClass, ImageSets/Segmentation).')
    parser.add_argument('out_dir', help='folder to write (created or '
                        'replaced atomically)')
    parser.add_argument('--layout', default='uniform', choices=LAYOUTS,
                        help='where objects lie; see possec.datasets.'
                        'synthetic')
    parser.add_argument('--num-train', type=int, default=300)
    parser.add_argument('--num-val', type=int, default=100)
    parser.add_argument('--size', type=int, nargs='+', default=[128],
                        metavar='N', help='image size: N, or H W')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--tilt', type=float, default=None,
                        help='shortcut and prior layouts only: how far the '
                        'stripes of the second class of a pair are tilted '
                        '(degrees, 0 to 90; 0 makes the pair identical; '
                        'default: possec.datasets.synthetic.SHORTCUT_TILT)')
    parser.add_argument('--prior', type=float, default=None,
                        help='position-prior and prior-shift: probability '
                        'that a pair\'s first class lies in the top half '
                        '(and its second in the bottom half)')
    parser.add_argument('--val-prior', type=float, default=None,
                        help='prior-shift only: the prior in validation '
                        '(default: 1 - prior)')
    parser.add_argument('--periodic', nargs='?', const='both',
                        default='none', choices=PERIODIC,
                        help='tileable samples: periodic backgrounds and '
                        'objects wrapped across the edges (both, the value '
                        'without an argument), or only one of them')
    parser.add_argument('--quiet', action='store_true',
                        help='print no progress')
    parser.add_argument('--debug', action='store_true',
                        help='print the traceback behind an error message')
    return parser.parse_args(argv)


def main(argv=None):
    from possec.apis.cli import run_cli
    args = parse_args(argv)
    size = args.size[0] if len(args.size) == 1 else tuple(args.size)
    out = run_cli(
        generate_synthetic_voc,
        args.out_dir,
        layout=args.layout,
        num_train=args.num_train,
        num_val=args.num_val,
        img_size=size,
        seed=args.seed,
        progress=not args.quiet,
        tilt=args.tilt,
        prior=args.prior,
        val_prior=args.val_prior,
        periodic=args.periodic,
        debug=args.debug)
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
