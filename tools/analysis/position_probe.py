"""How much absolute position does a frozen encoder carry? (PosENet probe)

    # the paper's "PosENet alone": raw noise images, readout padding 0/1/2
    python tools/analysis/position_probe.py noise --num-images 200 \\
        --ablate padding
    # a random-init VGG16 on black images, zero vs circular vs no padding
    python tools/analysis/position_probe.py black --num-images 64 \\
        --encoder vgg16 --ablate encoder-padding \\
        --ablate-values zeros circular none
    # the backbone of a trained segmentor, on a folder of photographs
    python tools/analysis/position_probe.py data/probe_images \\
        --config CFG --checkpoint work_dirs/NAME/iter_N.pth --ablate levels

Prints a markdown table of SPC and MAE per pattern and writes results.md,
results.csv, results.json and pred_<setting>.png into --out-dir.
"""
import warnings

# the pinned stack's import-time warning (mmengine imports pkg_resources);
# the others: possec.runtime.quiet.STACK_WARNINGS
warnings.filterwarnings('ignore', 'pkg_resources is deprecated', UserWarning)
import argparse
import sys

from mmengine.config import DictAction

from possec.analysis.common.cli import add_trust_option, apply_trust
from possec.analysis.probe.run import ABLATIONS, position_probe
from possec.apis.cli import run_cli
from possec.models.layers import PADDING_MODES
from possec.position import PATTERNS


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Train a PosENet readout on a frozen encoder and report '
        'how much position it reads (SPC, MAE)')
    p.add_argument('images', help='folder of images, or black, white, noise')
    p.add_argument('--num-images', type=int, default=None,
                   help='number of images (default: all of a folder; 200 noise, '
                   '64 black or white images)')
    p.add_argument('--input-size', type=int, default=224)
    enc = p.add_argument_group('encoder (frozen, eval mode)')
    enc.add_argument('--encoder', default='posenet',
                     help='posenet (the raw image) or vgg16')
    enc.add_argument('--config', help='mmseg config: its model.backbone is '
                     'the encoder (overrides --encoder)')
    enc.add_argument('--checkpoint', help='local weights: a segmentor '
                     "checkpoint's backbone.* or a bare backbone's")
    add_trust_option(enc)
    enc.add_argument('--padding-mode', choices=PADDING_MODES)
    enc.add_argument('--cfg-options', nargs='+', action=DictAction,
                     help='overrides of --config, e.g. '
                     'model.backbone.depth=18')
    ro = p.add_argument_group('readout (the PosENetHead position module)')
    ro.add_argument('--patterns', nargs='+', default=list(PATTERNS))
    ro.add_argument('--levels', nargs='+', help='f1 f2 ... (default: all)')
    ro.add_argument('--grid', type=int, default=28)
    ro.add_argument('--depth', type=int, default=1)
    ro.add_argument('--kernel', type=int, default=3)
    ro.add_argument('--readout-padding', type=int, default=0)
    ro.add_argument('--channels', type=int, default=64,
                    help='hidden width when --depth > 1')
    tr = p.add_argument_group('training')
    tr.add_argument('--epochs', type=int, default=15)
    tr.add_argument('--batch-size', type=int, default=32)
    tr.add_argument('--lr', type=_lr, default='auto',
                    help="a number (the paper's is 0.1), or auto: 0.1, then "
                    '0.01 and 0.001 while the readout diverges (wide or '
                    'large-valued features: a random-init vgg16, a trained '
                    "segmentor's backbone). Default: auto")
    tr.add_argument('--lr-step', type=int, default=10,
                    help='epoch from which the lr is x0.1')
    tr.add_argument('--test-fraction', type=float, default=0.2)
    tr.add_argument('--seed', type=int, default=0)
    p.add_argument('--ablate', choices=ABLATIONS)
    p.add_argument('--ablate-values', nargs='+',
                   help='settings of --ablate (default: the paper\'s)')
    p.add_argument('--score-at', default='image',
                   help="image (input size, as the paper), output, or pixels")
    p.add_argument('--cache-budget-gb', type=float, default=2.0,
                   help='largest in-memory feature cache; disk above it')
    p.add_argument('--extract-batch', type=int, default=16)
    p.add_argument('--device', default='cpu')
    p.add_argument('--num-show', type=int, default=4,
                   help='held-out images in the figure')
    p.add_argument('--out-dir', default='work_dirs/position_probe')
    p.add_argument('--allow-diverged', action='store_true',
                   help='exit with status 0 even if a readout diverged '
                   '(by default such a run is marked in every output and '
                   'exits with status 3)')
    return p.parse_args(argv)


def _lr(text):
    if text == 'auto':
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number or 'auto', got {text!r}") from None


def main(argv=None):
    a = parse_args(argv)
    apply_trust(a)
    score_at = int(a.score_at) if a.score_at.isdigit() else a.score_at
    result = run_cli(
        position_probe, a.images, encoder=a.encoder, config=a.config,
        checkpoint=a.checkpoint, padding_mode=a.padding_mode,
        cfg_options=a.cfg_options, num_images=a.num_images,
        input_size=a.input_size, out_dir=a.out_dir, seed=a.seed,
        patterns=a.patterns, grid=a.grid, levels=a.levels,
        readout=dict(num_convs=a.depth, kernel_size=a.kernel,
                     conv_padding=a.readout_padding, channels=a.channels),
        train=dict(epochs=a.epochs, batch_size=a.batch_size, lr=a.lr,
                   lr_step=a.lr_step),
        ablate=a.ablate, values=a.ablate_values,
        test_fraction=a.test_fraction, score_at=score_at,
        cache_budget=a.cache_budget_gb * 1024**3,
        extract_batch=a.extract_batch, device=a.device,
        num_show=a.num_show)
    bad = [r['setting'] for r in result['rows'] if r['diverged']]
    if bad and not a.allow_diverged:
        print(f'error: the readout diverged for {", ".join(bad)} (marked in '
              f'the table, results.* and the figures): pass a smaller --lr, '
              f'or --allow-diverged to accept the run', file=sys.stderr)
        sys.exit(3)
    return result


if __name__ == '__main__':
    main()
