"""Train a segmentor from a config (mmseg-compatible arguments).

    python tools/train.py configs/demo/parsenet_pos_synthetic.py
    python tools/train.py CONFIG --resume            # latest checkpoint
    bash tools/dist_train.sh CONFIG 2                # torchrun, CPU or GPU
"""
import possec.bootstrap  # noqa: F401,I001  (first: the stack's warnings)
import argparse

from possec.apis import train
from possec.apis.cli import add_common_args, run_cli


def parse_args():
    parser = argparse.ArgumentParser(description='Train a segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume', nargs='?', const='auto', default=None, metavar='CKPT',
        help='resume from CKPT, or with no value from the latest checkpoint '
        'in the work dir')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (CUDA only)')
    add_common_args(parser)
    return parser.parse_args()


def main():
    args = parse_args()
    run_cli(train, args.config, work_dir=args.work_dir, resume=args.resume,
            amp=args.amp, cfg_options=args.cfg_options,
            launcher=args.launcher, trust_checkpoint=args.trust_checkpoint,
            partial_load=args.partial_load, data_root=args.data_root,
            debug=args.debug, local_rank=args.local_rank)


if __name__ == '__main__':
    main()
