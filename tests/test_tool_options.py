"""How the tools get their options: every tool imports the warning bootstrap
first, and the analysis tools take their defaults from the function they
call (the probe's training recipe from ``possec.analysis.probe.readout``).
"""
import argparse
import ast
import glob
import importlib
import os.path as osp
import runpy
import warnings

import pytest

from .conftest import ROOT

BOOTSTRAP = 'possec.bootstrap'


def _tools():
    paths = sorted(glob.glob(osp.join(ROOT, 'tools', '*.py')) +
                   glob.glob(osp.join(ROOT, 'tools', 'analysis', '*.py')))
    assert paths, 'no tools found'
    return paths


def _first_import(path):
    body = ast.parse(open(path).read()).body
    if body and isinstance(body[0], ast.Expr) and isinstance(
            body[0].value, ast.Constant):  # the docstring
        body = body[1:]
    return body[0] if body else None


def test_every_tool_imports_the_bootstrap_first():
    for path in _tools():
        first = _first_import(path)
        assert isinstance(first, ast.Import) and [
            a.name for a in first.names] == [BOOTSTRAP], (
                f'{osp.relpath(path, ROOT)}: the first statement must be '
                f'`import {BOOTSTRAP}`')


def test_no_library_module_imports_the_bootstrap():
    """The library leaves the warning filters to its caller."""
    paths = glob.glob(osp.join(ROOT, 'possec', '**', '*.py'), recursive=True)
    assert len(paths) > 20
    for path in paths:
        if path.endswith(osp.join('possec', 'bootstrap.py')):
            continue
        for node in ast.walk(ast.parse(open(path).read())):
            names = [a.name for a in node.names] if isinstance(
                node, ast.Import) else [node.module or ''] if isinstance(
                    node, ast.ImportFrom) else []
            assert not any(n.endswith('bootstrap') for n in names), path


def test_bootstrap_silences_the_stack_warnings_only():
    import possec.bootstrap
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter('always')
        importlib.reload(possec.bootstrap)
        warnings.warn('pkg_resources is deprecated as an API. See ...',
                      UserWarning)
        warnings.warn('something else', UserWarning)
    assert [str(w.message) for w in seen] == ['something else']


def _parse(tool, argv):
    return runpy.run_path(osp.join(ROOT, 'tools', 'analysis', tool),
                          run_name='tool_options')['parse_args'](argv)


def test_probe_tool_defaults_are_the_probes():
    """Nothing typed: no training or readout option reaches the probe, so
    the recipe of readout.py applies; typed: exactly what was typed."""
    from possec.analysis.probe.readout import TRAIN_DEFAULTS, train_readout
    from possec.apis.cli import given_options, signature_defaults
    tool = runpy.run_path(
        osp.join(ROOT, 'tools', 'analysis', 'position_probe.py'),
        run_name='tool_options')
    args = tool['parse_args'](['noise'])
    options = tool['OPTIONS']
    assert given_options(args, options['train']) == {}
    assert given_options(args, options['readout']) == {}
    assert given_options(args, options['probe']) == {}
    # the recipe is the signature of train_readout, with lr 'auto'
    recipe = signature_defaults(train_readout, ('epochs', 'batch_size',
                                                'momentum', 'weight_decay',
                                                'lr_step'))
    assert TRAIN_DEFAULTS == dict(recipe, lr='auto')
    args = tool['parse_args'](['noise', '--epochs', '3', '--lr', '0.5',
                               '--depth', '2', '--grid', '8',
                               '--score-at', '64'])
    assert given_options(args, options['train']) == dict(epochs=3, lr=0.5)
    assert given_options(args, options['readout']) == dict(num_convs=2)
    assert given_options(args, options['probe']) == dict(grid=8,
                                                         score_at=64)
    with pytest.raises(SystemExit):
        tool['parse_args'](['noise', '--lr', 'fast'])


@pytest.mark.parametrize('tool, fn, keys', [
    ('occlusion.py', 'possec.analysis.fields.occlusion:occlusion_map',
     dict(batch_size='batch_size')),
    ('deconvnet.py', 'possec.analysis.fields.deconvnet:run_deconvnet',
     dict(batch_size='batch_size', num_images='num_images',
          out_dir='out_dir')),
    ('invariance.py', 'possec.analysis.fields.invariance:run_invariance',
     dict(num_images='num_images', out_dir='out_dir')),
    ('receptive_field.py', 'possec.analysis.fields.receptive:change_map',
     dict(batch_size='batch_size')),
])
def test_visual_tools_take_the_functions_defaults(tool, fn, keys):
    from possec.apis.cli import signature_defaults
    module, name = fn.split(':')
    defaults = signature_defaults(getattr(importlib.import_module(module),
                                          name))
    args = vars(_parse(tool, ['CONFIG']))
    for dest, key in keys.items():
        assert args[dest] == defaults[key], (tool, dest)


def test_signature_options_take_the_functions_defaults():
    from possec.apis.cli import add_signature_options, given_options

    def probe(images, epochs: int = 15, lr: float = 0.1, flip=False,
              sizes=(8, 16), extra=None, num_convs: int = 1):
        """Toy.

        Args:
            images (str): Where.
            epochs (int): Passes over the images, 100% of
                them. Default: 15.
            lr (float): Rate. Default: 0.1.
        """

    parser = argparse.ArgumentParser()
    dests = add_signature_options(parser, probe, exclude=('extra', ),
                                  flags={'num_convs': '--depth'})
    assert dests == dict(epochs='epochs', lr='lr', flip='flip',
                         sizes='sizes', depth='num_convs')
    assert given_options(parser.parse_args([]), dests) == {}
    args = parser.parse_args(['--epochs', '3', '--no-flip', '--sizes', '4',
                              '5', '--depth', '2'])
    assert given_options(args, dests) == dict(epochs=3, flip=False,
                                              sizes=[4, 5], num_convs=2)
    text = parser.format_help()
    assert 'Passes over the images, 100% of them. (default: 15)' in \
        ' '.join(text.split())
    with pytest.raises(SystemExit):
        parser.parse_args(['--extra', '1'])

