"""Write a synthetic Pascal-VOC-format dataset (see possec.datasets.synthetic).

Example::

    python tools/make_synthetic_voc.py data/synthetic_uniform --layout uniform
"""
import warnings; warnings.filterwarnings('ignore', 'pkg_resources is deprecated', UserWarning)  # noqa: E702,E501 (mmengine imports it; see possec.runtime.quiet)
import argparse

from possec.datasets.synthetic import LAYOUTS, generate_synthetic_voc


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
                        help='shortcut layouts only: how far the stripes of '
                        'the second class of a pair are tilted (degrees; '
                        'default: possec.datasets.synthetic.SHORTCUT_TILT)')
    parser.add_argument('--quiet', action='store_true',
                        help='print no progress')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    size = args.size[0] if len(args.size) == 1 else tuple(args.size)
    out = generate_synthetic_voc(
        args.out_dir,
        layout=args.layout,
        num_train=args.num_train,
        num_val=args.num_val,
        img_size=size,
        seed=args.seed,
        progress=not args.quiet,
        tilt=args.tilt)
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
