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
import possec.bootstrap  # noqa: F401,I001  (first: the stack's warnings)
import argparse
import sys

from mmengine.config import DictAction

from possec.analysis.common.cli import add_trust_option, apply_trust
from possec.analysis.probe.readout import (TRAIN_DEFAULTS, make_readout,
                                           train_readout)
from possec.analysis.probe.run import ABLATIONS, position_probe, run_probe
from possec.apis.cli import (add_signature_options, given_options, run_cli,
                             signature_defaults)
from possec.models.layers import PADDING_MODES

#: ``args`` attribute -> keyword, per function the options go to
#: (filled by :func:`parse_args`)
OPTIONS = dict(probe={}, readout={}, train={})


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Train a PosENet readout on a frozen encoder and report '
        'how much position it reads (SPC, MAE). Defaults are those of '
        'possec.analysis.probe (the paper\'s recipe)')
    p.add_argument('images', help='folder of images, or black, white, noise')
    probe = OPTIONS['probe']
    probe.update(add_signature_options(
        p, position_probe, names=('num_images', 'input_size'),
        helps=dict(num_images='number of images; None: all of a folder, '
                   '200 noise or 64 black or white images')))
    enc = p.add_argument_group('encoder (frozen, eval mode)')
    probe.update(add_signature_options(
        enc, position_probe, names=('encoder', ),
        helps=dict(encoder='posenet (the raw image) or vgg16')))
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
    probe.update(add_signature_options(ro, run_probe,
                                       names=('patterns', 'grid')))
    ro.add_argument('--levels', nargs='+', help='f1 f2 ... (default: all)')
    OPTIONS['readout'] = add_signature_options(
        ro, make_readout, names=('num_convs', 'kernel_size', 'conv_padding',
                                 'channels'),
        flags=dict(num_convs='--depth', kernel_size='--kernel',
                   conv_padding='--readout-padding'))
    tr = p.add_argument_group('training')
    OPTIONS['train'] = add_signature_options(
        tr, train_readout, names=set(TRAIN_DEFAULTS) - {'lr'})
    tr.add_argument('--lr', type=_lr, default=argparse.SUPPRESS,
                    help="a number (the paper's is 0.1), or auto: 0.1, then "
                    '0.01 and 0.001 while the readout diverges (wide or '
                    'large-valued features: a random-init vgg16, a trained '
                    "segmentor's backbone). Default: "
                    f"{TRAIN_DEFAULTS['lr']}")
    OPTIONS['train']['lr'] = 'lr'
    probe.update(add_signature_options(tr, run_probe,
                                       names=('test_fraction', )))
    probe.update(add_signature_options(tr, position_probe, names=('seed', )))
    p.add_argument('--ablate', choices=ABLATIONS)
    p.add_argument('--ablate-values', nargs='+',
                   help='settings of --ablate (default: the paper\'s)')
    probe.update(add_signature_options(
        p, run_probe, names=('score_at', 'extract_batch', 'device',
                             'num_show'),
        types=dict(score_at=_score_at),
        helps=dict(score_at='image (input size, as the paper), output, or '
                   'pixels')))
    budget = signature_defaults(run_probe)['cache_budget'] / 1024**3
    p.add_argument('--cache-budget-gb', type=float, default=budget,
                   help='largest in-memory feature cache; disk above it '
                   f'(default: {budget:g})')
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


def _score_at(text):
    return int(text) if text.isdigit() else text


def main(argv=None):
    a = parse_args(argv)
    apply_trust(a)
    result = run_cli(
        position_probe, a.images, config=a.config,
        checkpoint=a.checkpoint, padding_mode=a.padding_mode,
        cfg_options=a.cfg_options, out_dir=a.out_dir, levels=a.levels,
        readout=given_options(a, OPTIONS['readout']),
        train=given_options(a, OPTIONS['train']),
        ablate=a.ablate, values=a.ablate_values,
        cache_budget=a.cache_budget_gb * 1024**3,
        **given_options(a, OPTIONS['probe']))
    bad = [r['setting'] for r in result['rows'] if r['diverged']]
    if bad and not a.allow_diverged:
        print(f'error: the readout diverged for {", ".join(bad)} (marked in '
              f'the table, results.* and the figures): pass a smaller --lr, '
              f'or --allow-diverged to accept the run', file=sys.stderr)
        sys.exit(3)
    return result


if __name__ == '__main__':
    main()
