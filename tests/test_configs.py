"""Every config under configs/ loads and builds its model, and the tree keeps
OpenMMLab's shape: shallow inheritance, model bases without dataset facts,
names in mmseg's scheme, no two configs for one experiment."""
import copy
import functools
import glob
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config

from .conftest import ROOT

CONFIG_ROOT = osp.join(ROOT, 'configs')
CONFIGS = sorted(
    p for p in glob.glob(osp.join(CONFIG_ROOT, '**', '*.py'), recursive=True)
    if '_base_' not in p.split(osp.sep))
MODEL_BASES = sorted(
    glob.glob(osp.join(CONFIG_ROOT, '_base_', 'models', '*.py')) +
    glob.glob(osp.join(CONFIG_ROOT, '_base_', 'padding', '*.py')))
#: The documented short names (README, `make demo`): each inherits from one
#: config named in mmseg's scheme and changes nothing.
ALIASES = {
    'parsenet_pos_voc.py':
    'zoo/parsenet-pos_r50-d8-zeros_4xb4-20k_voc12aug-512x512.py',
    'demo/parsenet_pos_synthetic.py':
    'demo/parsenet-pos_r18-d8_1xb8-160_synthetic-128x128.py',
}
#: mmseg's scheme: {algorithm}_{backbone}_{N}xb{B}-{iters}_{dataset}-{crop}.py
NAME = re.compile(r'^(?P<algorithm>[a-z0-9-]+)_(?P<backbone>[a-z0-9-]+)_'
                  r'(?P<gpus>\d+)xb(?P<batch>\d+)-(?P<iters>\d+k?)_'
                  r'(?P<dataset>[a-z0-9]+)-(?P<h>\d+)x(?P<w>\d+)\.py$')
MAX_DEPTH = 4
#: mmseg's model bases are written for Cityscapes (19 classes); a base
#: that says anything else carries a dataset fact.
MMSEG_BASE_CLASSES = 19


def rel(path):
    return osp.relpath(path, CONFIG_ROOT)


# Loading is cached: each `mmseg::` look-up reloads pkg_resources (about a
# second on a busy 2-core machine), and the tests below read every config
# several times.
@functools.lru_cache(maxsize=None)
def load(path):
    return Config.fromfile(path, import_custom_modules=False)


@functools.lru_cache(maxsize=None)
def _resolve(base):
    return osp.normpath(Config._get_cfg_path(base, '')[0])


def resolve(base, path):
    """The file that ``base`` in ``path``'s ``_base_`` names (mmengine's own
    resolver, `mmseg::` and `possec::` included)."""
    if '::' in base:
        return _resolve(base)
    return osp.normpath(osp.join(osp.dirname(path), base))


@functools.lru_cache(maxsize=None)
def inheritance_depth(path):
    """Files on the longest `_base_` chain from ``path`` down to a file
    with no base, both ends counted, mmseg's own bases included (the
    headline config used to reach mmseg through 7 files). Uses mmengine's
    own base-file parser."""
    depths = [
        inheritance_depth(resolve(base, path))
        for base in Config._get_base_files(path)
    ]
    return 1 + max(depths, default=0)


def test_found_configs():
    assert len(CONFIGS) > 20, f'found only {len(CONFIGS)} configs under ' \
        f'{CONFIG_ROOT}'
    assert len(MODEL_BASES) > 5


@pytest.mark.parametrize('path', CONFIGS, ids=[rel(p) for p in CONFIGS])
def test_config_builds(path):
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    import possec  # noqa: F401  (what custom_imports does)
    cfg = copy.deepcopy(load(path))
    assert cfg.custom_imports == dict(
        imports=['possec'], allow_failed_imports=False)
    model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0
    assert cfg.train_dataloader.dataset.type


def test_inheritance_depth_helper(tmp_path):
    # a chain a -> b -> c of local files, plus a mmseg base under c
    (tmp_path / 'c.py').write_text(
        "_base_ = 'mmseg::_base_/models/fcn_r50-d8.py'\n")
    (tmp_path / 'b.py').write_text("_base_ = ['./c.py']\n")
    (tmp_path / 'a.py').write_text("_base_ = ['./b.py', './c.py']\n")
    assert inheritance_depth(str(tmp_path / 'c.py')) == 2
    assert inheritance_depth(str(tmp_path / 'a.py')) == 4


@pytest.mark.parametrize('path', CONFIGS, ids=[rel(p) for p in CONFIGS])
def test_inheritance_at_most_four_levels(path):
    depth = inheritance_depth(path)
    assert depth <= MAX_DEPTH, (
        f'{rel(path)} reaches its last base through {depth} files (at most '
        f'{MAX_DEPTH}): list pieces side by side in _base_ instead of '
        f'chaining them')


@pytest.mark.parametrize('path', MODEL_BASES,
                         ids=[rel(p) for p in MODEL_BASES])
def test_model_bases_carry_no_dataset_facts(path):
    cfg = load(path)
    if 'model' not in cfg:  # a piece that defines a head variable
        assert 'posenet_head' in cfg, f'{rel(path)} defines neither model ' \
            'nor posenet_head'
        assert 'num_classes' not in cfg.posenet_head
        return
    aux = cfg.model.get('auxiliary_head') or []
    heads = [cfg.model.decode_head] + (aux if isinstance(aux, list) else [aux])
    heads = [h for h in heads if 'num_classes' in h]
    assert heads, rel(path)
    for head in heads:
        assert head.num_classes == MMSEG_BASE_CLASSES, (
            f'{rel(path)}: a model base sets num_classes={head.num_classes}; '
            'the dataset is the leaf config\'s to state')
    for key in ('train_dataloader', 'val_dataloader', 'dataset_type',
                'data_root', 'crop_size'):
        assert key not in cfg, f'{rel(path)} sets {key}'


@pytest.mark.parametrize('path', CONFIGS, ids=[rel(p) for p in CONFIGS])
def test_names_follow_mmseg_scheme(path):
    name = rel(path)
    if name in ALIASES:
        return
    match = NAME.match(osp.basename(path))
    assert match, f'{name} does not follow {{algorithm}}_{{backbone}}_' \
        '{N}xb{B}-{iters}_{dataset}-{crop}.py'
    cfg = load(path)
    assert cfg.train_dataloader.batch_size == int(match['batch']), name
    iters = match['iters']
    iters = int(iters[:-1]) * 1000 if iters.endswith('k') else int(iters)
    assert cfg.train_cfg.max_iters == iters, name
    size = (int(match['h']), int(match['w']))
    assert tuple(cfg.model.data_preprocessor.size) == size, name
    depth = re.match(r'[a-z]+(\d+)', match['backbone'])
    if depth and 'depth' in cfg.model.backbone:
        assert cfg.model.backbone.depth == int(depth[1]), name


@pytest.mark.parametrize('alias', sorted(ALIASES))
def test_aliases_are_their_twins(alias):
    path = osp.join(CONFIG_ROOT, alias)
    twin = osp.join(CONFIG_ROOT, ALIASES[alias])
    bases = [resolve(b, path) for b in Config._get_base_files(path)]
    assert bases == [osp.normpath(twin)], f'{alias} must inherit only ' \
        f'{ALIASES[alias]}'
    assert load(path).to_dict() == load(twin).to_dict()


def test_no_two_configs_run_the_same_experiment():
    seen = {}
    for path in CONFIGS:
        if rel(path) in ALIASES:
            continue
        text = load(path).pretty_text
        assert text not in seen, (
            f'{rel(path)} and {rel(seen[text])} resolve to the same config')
        seen[text] = path


def test_demo_inherits_parsenet_head():
    base = load(osp.join(CONFIG_ROOT, '_base_', 'models',
                         'parsenet_r50-d8.py')).model.decode_head
    demo = load(osp.join(CONFIG_ROOT, ALIASES[
        'demo/parsenet_pos_synthetic.py'])).model.decode_head
    assert demo.type == 'ParseNetHead'
    changed = {k for k in set(base) | set(demo) if base.get(k) != demo.get(k)}
    # the demo states only its width, its classes and its norm layer
    assert changed == {'in_channels', 'num_classes', 'norm_cfg'}
    text = open(osp.join(CONFIG_ROOT, ALIASES[
        'demo/parsenet_pos_synthetic.py'])).read()
    assert 'ParseNetHead' not in text and '_delete_' not in text


def test_padding_aware_parsenet_equals_mmseg_resnet():
    """The ParseNet base builds possec's PadResNetV1c (zero padding): the
    same parameters, initial values and function as mmseg's ResNetV1c."""
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    import possec  # noqa: F401  (registers PadResNetV1c)
    cfg = load(osp.join(CONFIG_ROOT, 'parsenet',
                        'parsenet_r50-d8_4xb4-20k_voc12aug-512x512.py'))
    pad_cfg = copy.deepcopy(cfg.model.backbone)
    pad_cfg.init_cfg = None
    assert pad_cfg.pop('type') == 'PadResNetV1c'
    assert pad_cfg.pop('padding_mode') == 'zeros'
    pad_cfg.update(depth=18, norm_cfg=dict(type='BN', requires_grad=True))
    built = {}
    for kind in ('PadResNetV1c', 'ResNetV1c'):
        torch.manual_seed(0)
        built[kind] = MODELS.build(dict(pad_cfg, type=kind))
        built[kind].eval()  # mmseg's ResNet.train returns None
    pad, ref = built['PadResNetV1c'], built['ResNetV1c']
    assert type(pad).__name__ == 'PadResNetV1c'
    sd_pad, sd_ref = pad.state_dict(), ref.state_dict()
    assert list(sd_pad) == list(sd_ref)
    for key in sd_ref:
        torch.testing.assert_close(sd_pad[key], sd_ref[key], rtol=0, atol=0)
    x = torch.randn(1, 3, 48, 48)
    with torch.no_grad():
        for a, b in zip(pad(x), ref(x)):
            torch.testing.assert_close(a, b)
