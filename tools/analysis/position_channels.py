"""Where a trained segmentor keeps absolute position, and how much it
relies on it (Islam et al., ICCV 2021, "Global Pooling, More than Meets
the Eye").

    python tools/analysis/position_channels.py \\
        configs/demo/parsenet_pos_synthetic.py \\
        --checkpoint work_dirs/parsenet_pos_synthetic/iter_160.pth
    python tools/analysis/position_channels.py CONFIG --checkpoint CKPT \\
        --layer backbone.layer3 --ks 8 32 128 --draws 20 --num-images 200

Pastes test-set crops at each cell of a K x K grid, reads the cell and the
source image out of the pooled features of every backbone level (and of
ParseNet's global feature) with and without channel identity, ranks the
layer's channels by the placement's partial eta squared, and measures mIoU
(overall, position pairs, border bands, grid regions) with the top-k
position channels replaced by their dataset means, against random
channels. Writes position_channels.{json,csv,md} and
position_channels_{reliance,regions,decoding}.png into --out-dir.

    # several saved runs side by side (no model is run)
    python tools/analysis/position_channels.py --compare \
        zeros/position_channels.json circular/position_channels.json \
        --labels zeros circular --out-dir work_dirs/compare
"""
import possec.bootstrap  # noqa: F401,I001  (first: the stack's warnings)
import argparse

from mmengine.config import DictAction

from possec.analysis.channels.canvas import BACKGROUNDS
from possec.analysis.channels.report import format_table, write_comparison
from possec.analysis.channels.run import position_channels
from possec.analysis.common.cli import add_trust_option, apply_trust
from possec.apis.cli import run_cli


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Rank the channels of a segmentor by the absolute '
        'position they carry and measure how much its mIoU relies on them')
    p.add_argument('config', nargs='?', help='segmentor config file')
    p.add_argument('--checkpoint', help='weights (default: random init)')
    add_trust_option(p)
    p.add_argument('--layer', help='layer ranked and ablated: a module '
                   '(backbone.layer4) or NAME[i] for element i of its '
                   'outputs (default: backbone[i], the level the decode '
                   'head reads)')
    c = p.add_argument_group('canvases')
    c.add_argument('--img', nargs='+', help='source images (default: test '
                   'set images from --index)')
    c.add_argument('--index', type=int, default=0)
    c.add_argument('--num-sources', type=int, default=8)
    c.add_argument('--crops', type=int, default=6,
                   help='crops per source; half fit the read-outs')
    c.add_argument('--grid', type=int, default=3, help='K: K x K cells')
    c.add_argument('--backgrounds', nargs='+', choices=BACKGROUNDS,
                   default=list(BACKGROUNDS))
    c.add_argument('--canvas-size', type=int,
                   help="default: the data preprocessor's size")
    r = p.add_argument_group('reliance')
    r.add_argument('--ks', type=int, nargs='+',
                   help='channels ablated (default: 1 4 16 64 256 up to '
                   'half the layer)')
    r.add_argument('--draws', type=int, default=10,
                   help='random k-sets per k')
    r.add_argument('--region-k', type=int,
                   help='channels per region (one of --ks)')
    r.add_argument('--num-images', type=int, default=100,
                   help='test set images (0: all)')
    r.add_argument('--batch-size', type=int, default=1)
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--no-progress', action='store_true')
    p.add_argument('--out-dir', default='work_dirs/position_channels')
    p.add_argument('--compare', nargs='+', metavar='JSON',
                   help='instead of a run: draw saved position_channels.json '
                   'files side by side (position_channels_compare.png)')
    p.add_argument('--labels', nargs='+', help='one per --compare file')
    a = p.parse_args(argv)
    if (a.config is None) == (a.compare is None):
        p.error('give a config, or --compare with saved results')
    return a


def main(argv=None):
    a = parse_args(argv)
    if a.compare:
        path = run_cli(write_comparison, a.compare, a.labels, a.out_dir)
        print(f'wrote {path}')
        return path
    apply_trust(a)
    result = run_cli(
        position_channels, a.config, checkpoint=a.checkpoint,
        layer=a.layer, img=a.img, index=a.index, num_sources=a.num_sources,
        crops=a.crops, grid=a.grid, backgrounds=a.backgrounds,
        canvas_size=a.canvas_size, ks=a.ks, draws=a.draws,
        region_k=a.region_k, num_images=a.num_images or None,
        batch_size=a.batch_size, cfg_options=a.cfg_options,
        out_dir=a.out_dir, seed=a.seed, progress=not a.no_progress)
    print(format_table(result))
    print(f'wrote {result["files"]["json"]} and the figures')
    return result


if __name__ == '__main__':
    main()
