"""Feature change under translation, rotation and scaling, one curve per
border rule, at each backbone level (Zeiler & Fergus, Fig. 5).

    python tools/analysis/invariance.py \\
        configs/demo/parsenet_pos_synthetic.py \\
        --checkpoint work_dirs/parsenet_pos_synthetic/iter_600.pth
    python tools/analysis/invariance.py CONFIG --modes zeros circular \\
        --transforms translate --shifts 0 8 16 32 64

Writes invariance.png and invariance.json into --out-dir.
"""
import argparse

from mmengine.config import DictAction

from possec.analysis.invariance import DEFAULT_MODES, TRANSFORMS, \
    run_invariance
from possec.apis.cli import run_cli


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='How much backbone features change when the image is '
        'shifted, rotated or scaled, under each padding mode')
    p.add_argument('config', help='segmentor config file')
    p.add_argument('--checkpoint', help='weights, used under every mode '
                   '(default: the same random init for each)')
    p.add_argument('--img', nargs='+', help='image files (default: test set '
                   'images)')
    p.add_argument('--num-images', type=int, default=4)
    p.add_argument('--index', type=int, default=0,
                   help='first test set image')
    p.add_argument('--modes', nargs='+', default=list(DEFAULT_MODES))
    p.add_argument('--transforms', nargs='+', choices=TRANSFORMS,
                   default=list(TRANSFORMS))
    p.add_argument('--shifts', type=int, nargs='+',
                   help='vertical circular shifts in pixels')
    p.add_argument('--angles', type=float, nargs='+', help='degrees')
    p.add_argument('--scales', type=float, nargs='+', help='zoom factors')
    p.add_argument('--image-size', type=int, nargs=2, metavar=('H', 'W'))
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--no-progress', action='store_true')
    p.add_argument('--out-dir', default='work_dirs/invariance')
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    values = dict(translate=a.shifts, rotate=a.angles, scale=a.scales)
    result = run_cli(
        run_invariance, a.config, checkpoint=a.checkpoint, images=a.img,
        num_images=a.num_images, index=a.index, modes=a.modes,
        transforms=a.transforms, values=values, image_size=a.image_size,
        cfg_options=a.cfg_options, out_dir=a.out_dir, seed=a.seed,
        progress=not a.no_progress)
    print(f'{len(a.modes)} padding modes x {len(a.transforms)} transforms '
          f'on {result["num_images"]} images; wrote '
          f'{result["files"]["png"]}')
    return result


if __name__ == '__main__':
    main()
