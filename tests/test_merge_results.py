"""docs/results/merge_results.py --extended: a committed record is
replaced only by that cell run again and extended, whose validations up
to the extension repeat the committed ones value for value."""
import importlib.util
import math
import os.path as osp

import pytest

from .conftest import ROOT


def _module():
    path = osp.join(ROOT, 'docs', 'results', 'merge_results.py')
    spec = importlib.util.spec_from_file_location('merge_results', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


merge = _module()
CELL = dict(layout='position-prior', padding='circular', seed=3)
VERDICT = dict(change=-3.7, converged=False)


def _vals(*pairs):
    return [dict(iter=i, metrics=dict(pairs_miou=v, band0=math.nan))
            for i, v in pairs]


def _committed(name='a'):
    return dict(name=name, cell=dict(CELL),
                validations=_vals((9000, 84.1), (9600, 84.4)),
                convergence=dict(VERDICT), metrics=dict(pairs_miou=84.4))


def _extended(name='a', **change):
    rec = dict(name=name, cell=dict(CELL),
               validations=_vals((9000, 84.1), (9600, 84.4),
                                 (14400, 88.0)),
               convergence=dict(change=+0.4, converged=True),
               metrics=dict(pairs_miou=88.0),
               extensions=[dict(from_iter=9600, to_iter=14400,
                                previous=dict(VERDICT))])
    rec.update(change)
    return rec


def test_extension_replaces_its_record_in_place():
    old = [_committed('a'), _committed('b'), _committed('c')]
    new = [_extended('b'), _extended('d')]
    out = merge.replace_extended(old, new)
    assert [r['name'] for r in out] == ['a', 'b', 'c', 'd']
    assert out[1]['metrics']['pairs_miou'] == 88.0
    assert out[0] is old[0] and out[2] is old[2]


@pytest.mark.parametrize('change, words', [
    (dict(extensions=[]), 'was not extended'),
    (dict(validations=_vals((9000, 84.1), (9600, 84.5), (14400, 88.0))),
     'does not repeat'),
    (dict(cell=dict(CELL, seed=4)), 'does not repeat'),
    (dict(extensions=[dict(from_iter=9600, to_iter=14400,
                           previous=dict(change=-3.7, converged=True))]),
     'verdict its extension replaced'),
])
def test_not_an_extension_of_the_committed_record_is_refused(change,
                                                            words):
    with pytest.raises(SystemExit, match=words):
        merge.replace_extended([_committed('a')], [_extended('a', **change)])
