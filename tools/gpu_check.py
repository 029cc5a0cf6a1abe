"""One-command GPU check: the GPU-marked tests, GPU variants (cudnn.benchmark,
channels_last, AMP) of training and inference, and the suite's device-aware
benchmarks on CUDA, in one summary (gpu_check.md, gpu_check.json).

    python tools/gpu_check.py [--out-dir work_dirs/gpu_check] [--dry-run]
    python tools/gpu_check.py --profile [--dry-run]   # make gpu-profile

``--dry-run`` runs the same code on CPU at tiny sizes. ``make gpu-check``
(``make gpu-check DRY_RUN=1``) calls this. ``--profile`` times and profiles
the position head and circular padding on the device instead
(gpu_profile.md, gpu_profile.json; see possec.benchmarks.gpu_profile).
Exit status 1 when a part failed or a profiled pair missed its target.
"""
import possec.bootstrap  # noqa: F401,I001  (first: the stack's warnings)
import argparse
import os.path as osp
import sys

from possec.apis.cli import run_cli
from possec.benchmarks.gpu_check import run_gpu_check
from possec.benchmarks.gpu_profile import run_gpu_profile

#: The GPU-marked tests of this checkout.
TESTS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'tests',
                 'test_gpu.py')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out-dir', help='where the summary goes (default: '
                        'work_dirs/gpu_check, with --profile '
                        'work_dirs/gpu_profile)')
    parser.add_argument('--dry-run', action='store_true',
                        help='run everything on CPU at tiny sizes')
    parser.add_argument('--device', default=None,
                        help="torch device (default: 'cuda'; dry run: cpu)")
    parser.add_argument('--tests', default=TESTS,
                        help='the GPU-marked tests (default: this '
                        "checkout's tests/test_gpu.py)")
    parser.add_argument('--no-tests', action='store_true',
                        help='skip the GPU-marked tests')
    parser.add_argument('--profile', action='store_true',
                        help='time and profile the position head and '
                        'circular padding on the device instead')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.profile:
        out_dir = args.out_dir or 'work_dirs/gpu_profile'
        summary = run_cli(run_gpu_profile, out_dir, args.dry_run,
                          args.device)
        print(f"gpu profile in {summary['wall_s']:.0f} s: " + '; '.join(
            f"{k} {p['ratio']:.3f}x" for k, p in summary['pairs'].items())
              + f'; {out_dir}/gpu_profile.md')
        return 1 if summary['ok'] is False else 0
    out_dir = args.out_dir or 'work_dirs/gpu_check'
    summary = run_cli(run_gpu_check, out_dir, args.dry_run, args.device,
                      tests=None if args.no_tests else args.tests)
    print(f"gpu check {'ok' if summary['ok'] else 'FAILED'} in "
          f"{summary['wall_s']:.0f} s: {out_dir}/gpu_check.md")
    return 0 if summary['ok'] else 1


if __name__ == '__main__':
    sys.exit(main())
