"""Theoretical vs empirical receptive field of one logit (ParseNet).

    python tools/analysis/receptive_field.py \\
        configs/demo/parsenet_pos_synthetic.py \\
        --checkpoint work_dirs/parsenet_pos_synthetic/iter_160.pth
    python tools/analysis/receptive_field.py CONFIG --img photo.jpg \\
        --point 200 300 --class 15 --patch 16

Writes receptive_field.png and receptive_field.json into --out-dir.
"""
import warnings

# the pinned stack's import-time warning (mmengine imports pkg_resources);
# the others: possec.runtime.quiet.STACK_WARNINGS
warnings.filterwarnings('ignore', 'pkg_resources is deprecated', UserWarning)
from possec.analysis.common.cli import common_kwargs, tool_parser
from possec.analysis.fields.receptive import run_receptive_field
from possec.apis.cli import run_cli


def parse_args(argv=None):
    p = tool_parser(
        'Noise small patches of an image one at a time and map how much '
        'one logit changes; compare with its theoretical field',
        'work_dirs/receptive_field', batch_size=16)
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
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    result = run_cli(
        run_receptive_field, a.config, point=a.point, cls=a.cls,
        threshold=a.threshold, patch=a.patch, stride=a.stride,
        repeats=a.repeats, sigma=a.sigma, **common_kwargs(a))
    theory = result['theoretical']
    print(f'class {result["cls_name"]} at unit {tuple(result["unit"])}: '
          f'theoretical field {"global" if theory["is_global"] else "local"}'
          f' {theory["area"]} px, empirical {result["empirical_area"]} px '
          f'({result["empirical_over_theoretical"]:.1%}); wrote '
          f'{result["files"]["png"]}')
    return result


if __name__ == '__main__':
    main()
