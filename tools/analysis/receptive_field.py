"""Theoretical vs empirical receptive field of one logit (ParseNet).

    python tools/analysis/receptive_field.py \\
        configs/demo/parsenet_pos_synthetic.py \\
        --checkpoint work_dirs/parsenet_pos_synthetic/iter_160.pth
    python tools/analysis/receptive_field.py CONFIG --img photo.jpg \\
        --point 200 300 --class 15 --patch 16

Writes receptive_field.png and receptive_field.json into --out-dir.
"""
import possec.bootstrap  # noqa: F401,I001  (first: the stack's warnings)
from possec.analysis.common.cli import common_kwargs, tool_parser
from possec.analysis.fields.receptive import change_map, run_receptive_field
from possec.apis.cli import run_cli


def parse_args(argv=None):
    p = tool_parser(
        'Noise small patches of an image one at a time and map how much '
        'one logit changes; compare with its theoretical field',
        run_receptive_field, options_from=[change_map], own=[
            (run_receptive_field, dict(
                names=('cls', 'threshold'), flags=dict(cls='--class'),
                types=dict(cls=int))),
            (change_map, dict(
                names=('patch', 'stride', 'repeats', 'sigma'),
                types=dict(patch=int, stride=int),
                helps=dict(patch='side of the noised patches; None: '
                           'side/16', stride='patch step; None: --patch')))
        ])
    p.add_argument('--point', type=int, nargs=2, metavar=('ROW', 'COL'),
                   help='pixel whose logit is studied (default: centre)')
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    result = run_cli(
        run_receptive_field, a.config, point=a.point, **common_kwargs(a))
    theory = result['theoretical']
    print(f'class {result["cls_name"]} at unit {tuple(result["unit"])}: '
          f'theoretical field {"global" if theory["is_global"] else "local"}'
          f' {theory["area"]} px, empirical {result["empirical_area"]} px '
          f'({result["empirical_over_theoretical"]:.1%}); wrote '
          f'{result["files"]["png"]}')
    return result


if __name__ == '__main__':
    main()
