"""Deconvnet projections of a backbone unit's top activations (Zeiler &
Fergus).

    python tools/analysis/deconvnet.py \\
        configs/demo/parsenet_pos_synthetic.py \\
        --checkpoint work_dirs/parsenet_pos_synthetic/iter_600.pth
    python tools/analysis/deconvnet.py CONFIG --layer layer3.1 --channel 7 \\
        --img a.jpg b.jpg c.jpg --topk 3

Writes deconvnet.png and deconvnet.json into --out-dir.
"""
import argparse

from mmengine.config import DictAction

from possec.analysis.deconvnet import run_deconvnet
from possec.apis.cli import run_cli


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Project the strongest activations of one backbone '
        'channel back to pixels')
    p.add_argument('config', help='segmentor config file')
    p.add_argument('--checkpoint', help='weights (default: random init)')
    p.add_argument('--img', nargs='+', help='image files (default: test set '
                   'images)')
    p.add_argument('--num-images', type=int, default=16,
                   help='test set images searched without --img')
    p.add_argument('--index', type=int, default=0,
                   help='first test set image')
    p.add_argument('--layer', help='backbone module (e.g. layer2, '
                   'layer3.1.conv2) or output level number (default: 1)')
    p.add_argument('--channel', type=int,
                   help='default: the most strongly activated channel')
    p.add_argument('--topk', type=int, default=9)
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument('--image-size', type=int, nargs=2, metavar=('H', 'W'))
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out-dir', default='work_dirs/deconvnet')
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    layer = int(a.layer) if a.layer and a.layer.isdigit() else a.layer
    result = run_cli(
        run_deconvnet, a.config, checkpoint=a.checkpoint, images=a.img,
        num_images=a.num_images, index=a.index, layer=layer,
        channel=a.channel, k=a.topk, image_size=a.image_size,
        cfg_options=a.cfg_options, out_dir=a.out_dir, seed=a.seed,
        batch_size=a.batch_size)
    print(f'layer {result["layer"]}, channel {result["channel"]}: '
          f'{len(result["top"])} projections; wrote '
          f'{result["files"]["png"]}')
    return result


if __name__ == '__main__':
    main()
