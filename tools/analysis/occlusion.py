"""Occlusion sensitivity of a class score over a region (Zeiler & Fergus).

    python tools/analysis/occlusion.py \\
        configs/demo/parsenet_pos_synthetic.py \\
        --checkpoint work_dirs/parsenet_pos_synthetic/iter_160.pth
    python tools/analysis/occlusion.py CONFIG --img photo.jpg --class 15 \\
        --region 100 120 300 260 --occluder 48 --stride 16 --score prob

Writes occlusion.png and occlusion.json into --out-dir.
"""
import possec.bootstrap  # noqa: F401,I001  (first: the stack's warnings)
from possec.analysis.common.cli import common_kwargs, tool_parser
from possec.analysis.fields.occlusion import (SCORES, occlusion_map,
                                              run_occlusion)
from possec.apis.cli import run_cli


def parse_args(argv=None):
    p = tool_parser(
        'Slide a grey square over an image and map how much a '
        "class's score over a region drops", run_occlusion,
        options_from=[occlusion_map], own=[
            (run_occlusion, dict(
                names=('cls', 'occluder'), flags=dict(cls='--class'),
                types=dict(cls=int, occluder=int),
                helps=dict(cls='class; None: the most frequent predicted '
                           'non-background class', occluder='side of the '
                           'grey square; None: side/8'))),
            (occlusion_map, dict(
                names=('stride', 'score'), types=dict(stride=int),
                helps=dict(stride='window step; None: --occluder / 2'),
                choices=dict(score=SCORES)))])
    p.add_argument('--region', type=int, nargs=4,
                   metavar=('Y0', 'X0', 'Y1', 'X1'),
                   help='scored region, end exclusive (default: the pixels '
                   'predicted as the class)')
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    result = run_cli(
        run_occlusion, a.config, region=a.region, **common_kwargs(a))
    print(f'class {result["cls_name"]}: clean {result["score"]} '
          f'{result["clean_score"]:.4g} over {result["region_pixels"]} px, '
          f'largest drop {result["max_drop"]:.4g} at {tuple(result["peak"])}'
          f'; wrote {result["files"]["png"]}')
    return result


if __name__ == '__main__':
    main()
