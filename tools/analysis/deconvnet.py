"""Deconvnet projections of a backbone unit's top activations (Zeiler &
Fergus).

    python tools/analysis/deconvnet.py \\
        configs/demo/parsenet_pos_synthetic.py \\
        --checkpoint work_dirs/parsenet_pos_synthetic/iter_160.pth
    python tools/analysis/deconvnet.py CONFIG --layer layer3.1 --channel 7 \\
        --img a.jpg b.jpg c.jpg --topk 3

Writes deconvnet.png and deconvnet.json into --out-dir.
"""
import possec.bootstrap  # noqa: F401,I001  (first: the stack's warnings)
from possec.analysis.common.cli import common_kwargs, tool_parser
from possec.analysis.fields.deconvnet import run_deconvnet
from possec.apis.cli import run_cli


def parse_args(argv=None):
    p = tool_parser(
        'Project the strongest activations of one backbone channel back to '
        'pixels', run_deconvnet, many_images=True, progress=False,
        own=[(run_deconvnet, dict(names=('channel', 'k'),
                                  flags=dict(k='--topk'),
                                  types=dict(channel=int)))])
    p.add_argument('--layer', help='backbone module (e.g. layer2, '
                   'layer3.1.conv2) or output level number (default: 1)')
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    layer = int(a.layer) if a.layer and a.layer.isdigit() else a.layer
    result = run_cli(
        run_deconvnet, a.config, layer=layer, **common_kwargs(a))
    print(f'layer {result["layer"]}, channel {result["channel"]}: '
          f'{len(result["top"])} projections; wrote '
          f'{result["files"]["png"]}', flush=True)
    return result


if __name__ == '__main__':
    main()
