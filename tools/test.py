"""Evaluate a checkpoint (mIoU) and optionally write its predictions.

    python tools/test.py CONFIG CHECKPOINT --out results/
        -> results/pred/*.png (palette), results/metrics.json, metrics.csv
    bash tools/dist_test.sh CONFIG CHECKPOINT 2 --out results/
    python tools/test.py CONFIG CHECKPOINT --fuse-conv-bn   # BN folded
"""
import possec.bootstrap  # noqa: F401,I001  (first: the stack's warnings)
import argparse

from possec.apis import test
from possec.apis.cli import add_common_args, run_cli


def parse_args():
    parser = argparse.ArgumentParser(description='Test (evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out', metavar='DIR',
        help='write pred/*.png with the dataset palette, metrics.json '
        '(aAcc, mIoU, mAcc, per-class IoU and Acc) and metrics.csv to DIR')
    parser.add_argument('--show-dir', help='folder for drawn predictions')
    parser.add_argument('--tta', action='store_true',
                        help='test-time augmentation (the config\'s '
                        'tta_model and tta_pipeline)')
    parser.add_argument('--fuse-conv-bn', action='store_true',
                        help='fold BatchNorm into the preceding convs '
                        '(same outputs up to float rounding, faster)')
    add_common_args(parser)
    return parser.parse_args()


def main():
    args = parse_args()
    run_cli(test, args.config, args.checkpoint, work_dir=args.work_dir,
            out=args.out, show_dir=args.show_dir, tta=args.tta,
            cfg_options=args.cfg_options, launcher=args.launcher,
            fuse_conv_bn=args.fuse_conv_bn,
            trust_checkpoint=args.trust_checkpoint,
            partial_load=args.partial_load, data_root=args.data_root,
            debug=args.debug, local_rank=args.local_rank)


if __name__ == '__main__':
    main()
