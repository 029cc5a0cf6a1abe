"""Feature change under translation, rotation and scaling, one curve per
border rule, at each backbone level (Zeiler & Fergus, Fig. 5).

    python tools/analysis/invariance.py \\
        configs/demo/parsenet_pos_synthetic.py \\
        --checkpoint work_dirs/parsenet_pos_synthetic/iter_160.pth
    python tools/analysis/invariance.py CONFIG --modes zeros circular \\
        --transforms translate --shifts 0 8 16 32 64

Prints the mean change per transform, padding mode and level, and writes
invariance.png, invariance.csv and invariance.json into --out-dir.
"""
import possec.bootstrap  # noqa: F401,I001  (first: the stack's warnings)
from possec.analysis.common.cli import common_kwargs, tool_parser
from possec.analysis.fields.invariance import TRANSFORMS, \
    format_invariance, run_invariance
from possec.apis.cli import run_cli


def parse_args(argv=None):
    p = tool_parser(
        'How much backbone features change when the image is shifted, '
        'rotated or scaled, under each padding mode', run_invariance,
        many_images=True,
        checkpoint_help='weights, used under every mode (default: the same '
        'random init for each)', own=[(run_invariance, dict(
            names=('modes', 'transforms'),
            choices=dict(transforms=TRANSFORMS)))])
    p.add_argument('--shifts', type=int, nargs='+',
                   help='vertical circular shifts in pixels')
    p.add_argument('--angles', type=float, nargs='+', help='degrees')
    p.add_argument('--scales', type=float, nargs='+', help='zoom factors')
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    values = dict(translate=a.shifts, rotate=a.angles, scale=a.scales)
    result = run_cli(
        run_invariance, a.config, values=values, **common_kwargs(a))
    print('relative feature change ||F(x) - U(F(Tx))|| / ||F(x)||, mean '
          f'over the values and {result["num_images"]} images:\n'
          f'{format_invariance(result)}\nwrote {result["files"]["png"]}, '
          f'{result["files"]["csv"]} and {result["files"]["json"]}',
          flush=True)
    return result


if __name__ == '__main__':
    main()
