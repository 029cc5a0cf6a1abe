"""One-command GPU check: the GPU-marked tests, GPU variants (cudnn.benchmark,
channels_last, AMP) of training and inference, and the suite's device-aware
benchmarks on CUDA, in one summary (gpu_check.md, gpu_check.json).

    python tools/gpu_check.py [--out-dir work_dirs/gpu_check] [--dry-run]

``--dry-run`` runs the same code on CPU at tiny sizes. ``make gpu-check``
(``make gpu-check DRY_RUN=1``) calls this. Exit status 1 when a part failed.
"""
import warnings; warnings.filterwarnings('ignore', 'pkg_resources is deprecated', UserWarning)  # noqa: E702,E501 (mmengine imports it; see possec.runtime.quiet)
import argparse
import sys

from possec.benchmarks.gpu_check import run_gpu_check


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out-dir', default='work_dirs/gpu_check',
                        help='where gpu_check.md and gpu_check.json go')
    parser.add_argument('--dry-run', action='store_true',
                        help='run everything on CPU at tiny sizes')
    parser.add_argument('--device', default=None,
                        help="torch device (default: 'cuda'; dry run: cpu)")
    args = parser.parse_args(argv)
    try:
        summary = run_gpu_check(args.out_dir, args.dry_run, args.device)
    except RuntimeError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print(f"gpu check {'ok' if summary['ok'] else 'FAILED'} in "
          f"{summary['wall_s']:.0f} s: {args.out_dir}/gpu_check.md")
    return 0 if summary['ok'] else 1


if __name__ == '__main__':
    sys.exit(main())
