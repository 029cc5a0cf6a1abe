"""Theoretical vs empirical receptive field of one logit (ParseNet).

    python tools/analysis/receptive_field.py \\
        configs/demo/parsenet_pos_synthetic.py \\
        --checkpoint work_dirs/parsenet_pos_synthetic/iter_600.pth
    python tools/analysis/receptive_field.py CONFIG --img photo.jpg \\
        --point 200 300 --class 15 --patch 16

Writes receptive_field.png and receptive_field.json into --out-dir.
"""
import argparse

from mmengine.config import DictAction

from possec.analysis.receptive_field import run_receptive_field
from possec.apis.cli import run_cli


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Noise small patches of an image one at a time and map '
        'how much one logit changes; compare with its theoretical field')
    p.add_argument('config', help='segmentor config file')
    p.add_argument('--checkpoint', help='weights (default: random init)')
    p.add_argument('--img', help='image file (default: a test set image)')
    p.add_argument('--index', type=int, default=0,
                   help='test set image used without --img')
    p.add_argument('--point', type=int, nargs=2, metavar=('ROW', 'COL'),
                   help='pixel whose logit is studied (default: centre)')
    p.add_argument('--class', dest='cls', type=int,
                   help='class of the logit (default: the predicted one)')
    p.add_argument('--patch', type=int,
                   help='side of the noised patches (default: side/16)')
    p.add_argument('--stride', type=int, help='default: --patch')
    p.add_argument('--repeats', type=int, default=1,
                   help='noise draws per patch')
    p.add_argument('--sigma', type=float, default=1.0,
                   help='noise std in normalised units')
    p.add_argument('--threshold', type=float, default=0.1,
                   help='empirical field: change >= threshold * max')
    p.add_argument('--batch-size', type=int, default=16)
    p.add_argument('--image-size', type=int, nargs=2, metavar=('H', 'W'))
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--no-progress', action='store_true')
    p.add_argument('--out-dir', default='work_dirs/receptive_field')
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    result = run_cli(
        run_receptive_field, a.config, checkpoint=a.checkpoint, img=a.img,
        index=a.index, point=a.point, cls=a.cls, threshold=a.threshold,
        image_size=a.image_size, cfg_options=a.cfg_options,
        out_dir=a.out_dir, seed=a.seed, patch=a.patch, stride=a.stride,
        repeats=a.repeats, sigma=a.sigma, batch_size=a.batch_size,
        progress=not a.no_progress)
    theory = result['theoretical']
    print(f'class {result["cls_name"]} at unit {tuple(result["unit"])}: '
          f'theoretical field {"global" if theory["is_global"] else "local"}'
          f' {theory["area"]} px, empirical {result["empirical_area"]} px '
          f'({result["empirical_over_theoretical"]:.1%}); wrote '
          f'{result["files"]["png"]}')
    return result


if __name__ == '__main__':
    main()
