import glob
import os.path as osp

import pytest
import torch
import torch.nn.functional as F

mmseg_models = pytest.importorskip('mmseg.models')  # needs a full mmcv build
from mmseg.registry import MODELS  # noqa: E402

import possec  # noqa: E402,F401  (registers ParseNetHead)
from possec.models.decode_heads.parsenet_head import ParseNetHead  # noqa

from .conftest import ROOT as REPO  # noqa: E402
EPS = 1e-10


def build_head(**kwargs):
    cfg = dict(
        type='ParseNetHead',
        in_channels=8,
        num_classes=3,
        dropout_ratio=0.0,
        norm_cfg=dict(type='BN'))
    cfg.update(kwargs)
    return MODELS.build(cfg)


def l2n(x, gamma):
    """ParseNet normalisation written out: gamma x / sqrt(sum x^2 + eps)."""
    return gamma.view(1, -1, 1, 1) * x / torch.sqrt(
        (x * x).sum(1, keepdim=True) + EPS)


def classify(feat, conv):
    """A 1x1 conv as an einsum."""
    weight = conv.weight[:, :, 0, 0]
    return torch.einsum('kc,nchw->nkhw', weight, feat) + conv.bias.view(
        1, -1, 1, 1)


def two_levels(dtype=torch.float64):
    torch.manual_seed(0)
    return [
        torch.randn(2, 4, 12, 10, dtype=dtype),  # unused level 0
        torch.randn(2, 6, 12, 10, dtype=dtype),
        torch.randn(2, 8, 6, 5, dtype=dtype),
    ]


def reference_branches(head, inputs):
    """Branch features from the formulas, independently of the head."""
    levels = [inputs[i] for i in head.in_index]
    size = levels[0].shape[2:]
    branches = []
    for x, norm in zip(levels, head.level_norms):
        x = F.interpolate(x, size, mode='bilinear', align_corners=False)
        branches.append(l2n(x, norm.weight))
    if head.use_global:
        g = levels[-1].mean(dim=(2, 3), keepdim=True)
        branches.append(l2n(g, head.global_norm.weight).expand(
            -1, -1, *size))
    return branches


def multi_level_head(**kwargs):
    head = build_head(
        in_channels=[6, 8],
        in_index=[1, 2],
        input_transform='multiple_select',
        init_scales=[2.0, 5.0, 7.0],
        **kwargs).double().eval()
    with torch.no_grad():  # distinct per-channel scales
        for norm in [*head.level_norms, head.global_norm]:
            norm.weight.mul_(torch.linspace(0.5, 1.5, norm.num_channels,
                                            dtype=torch.float64))
        for conv in (head.conv_seg if head.fusion == 'late' else
                     [head.conv_seg]):
            conv.weight.normal_()
            conv.bias.normal_()
    return head


def test_early_fusion_matches_formula():
    head = multi_level_head(fusion='early')
    inputs = two_levels()
    feats = torch.cat(reference_branches(head, inputs), dim=1)
    assert head.channels == 6 + 8 + 8 == feats.size(1)
    torch.testing.assert_close(head._forward_feature(inputs), feats)
    torch.testing.assert_close(head(inputs), classify(feats, head.conv_seg))


def test_paper_form_gradients_match_the_concatenation():
    """The paper form classifies without building the concatenation (see
    ``ParseNetHead._classify_branches``): its gradients with respect to the
    inputs and every parameter equal those of the classifier on the
    concatenated branches, in training mode."""
    head = multi_level_head(fusion='early').train()
    inputs = [x.requires_grad_() for x in two_levels()]
    feats = torch.cat(reference_branches(head, inputs), dim=1)
    ref = classify(feats, head.conv_seg)
    weight = torch.randn_like(ref)
    params = [inputs[1], inputs[2]] + list(head.parameters())
    expected = torch.autograd.grad((ref * weight).sum(), params)
    found = torch.autograd.grad((head(inputs) * weight).sum(), params)
    for a, b in zip(found, expected):
        torch.testing.assert_close(a, b)


def test_late_fusion_sums_branch_scores_and_equals_early():
    late = multi_level_head(fusion='late')
    inputs = two_levels()
    branches = reference_branches(late, inputs)
    assert isinstance(late.conv_seg, torch.nn.ModuleList)
    expected = sum(classify(b, c) for b, c in zip(branches, late.conv_seg))
    torch.testing.assert_close(late(inputs), expected)

    # without a projection, late fusion is early fusion with the stacked
    # classifier weights and the summed biases
    early = multi_level_head(fusion='early')
    early.load_state_dict(
        {k: v
         for k, v in late.state_dict().items() if 'conv_seg' not in k},
        strict=False)
    with torch.no_grad():
        early.conv_seg.weight.copy_(
            torch.cat([c.weight for c in late.conv_seg], dim=1))
        early.conv_seg.bias.copy_(sum(c.bias for c in late.conv_seg))
    torch.testing.assert_close(early(inputs), late(inputs))


def test_normalisation_removes_scale_differences():
    """The paper's point: a level 1000x larger does not dominate."""
    head = multi_level_head()
    inputs = two_levels()
    scaled = [inputs[0], inputs[1] * 1e3, inputs[2] * 0.1]
    # equal up to eps = 1e-10 inside the square roots
    torch.testing.assert_close(head(scaled), head(inputs), rtol=1e-6,
                               atol=1e-6)


@pytest.mark.parametrize('use_global', [True, False])
def test_global_branch_is_global(use_global):
    torch.manual_seed(0)
    head = build_head(use_global=use_global).eval()
    x = torch.randn(1, 8, 9, 9)
    x_corner = x.clone()
    x_corner[:, :, :3, :3] += 5 * torch.randn(1, 8, 3, 3)
    far = head([x])[..., -3:, -3:]
    far_changed = head([x_corner])[..., -3:, -3:]
    if use_global:
        assert (far - far_changed).abs().max() > 1e-3
    else:  # a 1x1 classifier on per-position features is local
        torch.testing.assert_close(far, far_changed, rtol=0, atol=0)


@pytest.mark.parametrize('fusion', ['early', 'late'])
@pytest.mark.parametrize('channels', [None, 16])
@pytest.mark.parametrize('use_global', [True, False])
def test_shapes_and_channels(fusion, channels, use_global):
    head = build_head(
        in_channels=[6, 8],
        in_index=[1, 2],
        input_transform='multiple_select',
        channels=channels,
        fusion=fusion,
        use_global=use_global,
        dropout_ratio=0.1)
    inputs = [x.float() for x in two_levels()]
    num_branches = 3 if use_global else 2
    if channels is None:
        expected = 6 + 8 + (8 if use_global else 0)
    else:
        expected = channels * (num_branches if fusion == 'late' else 1)
    assert head.channels == expected
    feats = head._forward_feature(inputs)
    assert feats.shape == (2, expected, 12, 10)
    out = head(inputs)
    assert out.shape == (2, 3, 12, 10)
    out.sum().backward()
    for norm in head.level_norms:
        assert norm.weight.grad is not None and norm.weight.grad.abs().sum()


def test_single_level_and_global_level_choice():
    head = build_head(in_channels=8, in_index=2, channels=4)
    assert head([torch.randn(1, 8, 5, 5)] * 3).shape == (1, 3, 5, 5)
    # pool the shallower of two levels: the global branch is then 6 wide
    head = build_head(
        in_channels=[6, 8],
        in_index=[1, 2],
        input_transform='multiple_select',
        global_level=0)
    assert head.global_norm.num_channels == 6 and head.channels == 20


def test_init_weights_keeps_scales():
    head = multi_level_head(fusion='late', channels=4)
    with torch.no_grad():
        for p in head.parameters():
            p.normal_()
    head.init_weights()
    for norm, scale in zip([*head.level_norms, head.global_norm],
                           [2.0, 5.0, 7.0]):
        assert torch.equal(norm.weight.detach(),
                           torch.full_like(norm.weight, scale))
    for conv in head.conv_seg:  # BaseDecodeHead's Normal(std=0.01)
        assert conv.weight.std() < 0.05 and not conv.bias.any()


@pytest.mark.parametrize('kwargs,match', [
    (dict(fusion='middle'), r"unknown fusion 'middle'.*'early', 'late'"),
    (dict(in_channels=[6, 8], in_index=[1, 2, 3],
          input_transform='multiple_select'), 'same length'),
    (dict(in_channels=[6, 8], in_index=2), "multiple_select"),
    (dict(in_channels=8, in_index=[1, 2],
          input_transform='multiple_select'), 'same length'),
    (dict(in_channels=[6, 8], in_index=[1, 2],
          input_transform='resize_concat'), 'multiple_select'),
    (dict(init_scales=[1.0, 2.0, 3.0]), '2 branches'),
    (dict(global_level=1), 'global_level'),
    (dict(channels=0), 'channels'),
    (dict(channels=4, proj_kernel_size=2), 'proj_kernel_size'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_head(**kwargs)


def tiny_segmentor(decode_head):
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')  # SegDataPreProcessor lives in mmseg scope
    from mmengine.config import ConfigDict
    norm_cfg = dict(type='BN')
    return MODELS.build(
        ConfigDict(  # attribute access to test_cfg.mode, as from a file
            type='EncoderDecoder',
            data_preprocessor=dict(
                type='SegDataPreProcessor',
                mean=[123.675, 116.28, 103.53],
                std=[58.395, 57.12, 57.375],
                bgr_to_rgb=True,
                size=(64, 64),
                pad_val=0,
                seg_pad_val=255),
            backbone=dict(
                type='ResNetV1c',
                depth=18,
                num_stages=4,
                out_indices=(0, 1, 2, 3),
                dilations=(1, 1, 2, 4),
                strides=(1, 2, 1, 1),
                norm_cfg=norm_cfg,
                contract_dilation=True),
            decode_head=decode_head,
            auxiliary_head=dict(
                type='FCNHead',
                in_channels=256,
                in_index=2,
                channels=16,
                num_convs=1,
                concat_input=False,
                num_classes=4,
                norm_cfg=norm_cfg),
            train_cfg=dict(),
            test_cfg=dict(mode='whole')))


@pytest.mark.parametrize('fusion', ['early', 'late'])
def test_encoder_decoder_modes(fusion):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    torch.manual_seed(0)
    model = tiny_segmentor(
        dict(
            type='ParseNetHead',
            in_channels=[256, 512],
            in_index=[2, 3],
            input_transform='multiple_select',
            channels=32 if fusion == 'late' else None,
            fusion=fusion,
            num_classes=4,
            norm_cfg=dict(type='BN')))
    model.init_weights()
    assert torch.equal(model.decode_head.global_norm.weight.detach(),
                       torch.full((512, ), 10.0))
    samples = []
    for _ in range(2):
        sample = SegDataSample(metainfo=dict(img_shape=(64, 64),
                                             ori_shape=(64, 64)))
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, 4, (1, 64, 64)))
        samples.append(sample)
    data = dict(
        inputs=[torch.randint(0, 256, (3, 64, 64)).float() for _ in
                range(2)],
        data_samples=samples)

    model.train()
    data_in = model.data_preprocessor(data, training=True)
    losses = model(**data_in, mode='loss')
    assert {'decode.loss_ce', 'aux.loss_ce'} <= set(losses)
    loss = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(loss)
    loss.backward()
    assert model.decode_head.global_norm.weight.grad.abs().sum() > 0

    model.eval()
    with torch.no_grad():
        logits = model(**data_in, mode='tensor')
        assert logits.shape == (2, 4, 8, 8)  # stride 8
        preds = model(**model.data_preprocessor(data), mode='predict')
    assert len(preds) == 2
    assert preds[0].seg_logits.data.shape == (4, 64, 64)
    assert preds[0].pred_sem_seg.data.shape == (1, 64, 64)
    # the prediction is the arg-max of the upsampled tensor-mode logits
    up = F.interpolate(logits, (64, 64), mode='bilinear', align_corners=False)
    torch.testing.assert_close(preds[0].seg_logits.data, up[0])


def test_configs_load_and_build():
    from mmengine.config import Config
    paths = sorted(glob.glob(osp.join(REPO, 'configs', 'parsenet', '*.py')))
    assert len(paths) >= 5
    for path in paths:
        cfg = Config.fromfile(path)
        assert cfg.custom_imports['imports'] == ['possec']
        head = MODELS.build(cfg.model.decode_head)
        assert isinstance(head, ParseNetHead) and head.num_classes == 21
        assert head.use_global == ('noglobal' not in path)
        assert cfg.model.auxiliary_head.type == 'FCNHead'
        depth = 101 if 'r101' in path else 50
        assert cfg.model.backbone.depth == depth
        iters = 40000 if '40k' in path else 20000
        assert cfg.train_cfg.max_iters == iters
        assert cfg.train_dataloader.dataset.type == 'ConcatDataset'  # aug
