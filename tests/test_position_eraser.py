"""PositionEraser: its statistics and output against numpy, its resampling
against scipy's bilinear interpolation, its linear guarantee against a
numpy least-squares readout, the backbone option against the plain
backbone, and the calibration and its hook."""
import numpy as np
import pytest
import torch
from scipy import ndimage

from possec.models.backbones.padding_resnet import PadResNetV1c
from possec.models.layers import PositionEraser
from possec.models.layers.position_eraser import calibrate_erasers
from possec.engine.hooks import PositionEraserHook

from .test_padding_backbones import TINY, randomise


def _maps(n=6, c=3, h=5, w=4, seed=0):
    """Random maps whose mean and spread depend on the pixel."""
    gen = np.random.default_rng(seed)
    mean = gen.normal(size=(c, h, w))
    spread = gen.uniform(0.5, 2.0, size=(c, h, w))
    return mean + spread * gen.normal(size=(n, c, h, w))


@pytest.mark.parametrize('erase', ['mean', 'mean+scale'])
def test_first_batch_sets_statistics_and_output(erase):
    x = _maps()
    eraser = PositionEraser(3, erase=erase, eps=1e-5).double()
    got = eraser(torch.from_numpy(x)).numpy()
    mean, var = x.mean(0), x.var(0)  # numpy's population variance
    np.testing.assert_allclose(eraser.running_mean.numpy(), mean, atol=1e-12)
    m, v = eraser.statistics((5, 4))
    np.testing.assert_allclose(v.numpy(), var, atol=1e-12)
    average = mean.mean((1, 2), keepdims=True)
    want = x - mean
    if erase == 'mean+scale':
        ref = var.mean((1, 2), keepdims=True)
        want = want * np.sqrt((ref + 1e-5) / (var + 1e-5))
        # every pixel's variance is then the channel's average (up to eps)
        np.testing.assert_allclose(got.var(0), np.broadcast_to(
            ref, var.shape), rtol=1e-4)
    np.testing.assert_allclose(got, want + average, atol=1e-12)
    # the mean is the same at every pixel: the channel's average
    np.testing.assert_allclose(got.mean(0), np.broadcast_to(
        average, mean.shape), atol=1e-12)
    assert eraser.grid == (5, 4) and eraser.num_batches_tracked == 1


def test_moving_and_cumulative_averages():
    xs = [_maps(seed=s) for s in range(3)]
    ema = PositionEraser(3, momentum=0.1).double()
    cum = PositionEraser(3, momentum=None).double()
    for x in xs:
        ema(torch.from_numpy(x))
        cum(torch.from_numpy(x))
    want = xs[0].mean(0)
    for x in xs[1:]:
        want = 0.9 * want + 0.1 * x.mean(0)
    np.testing.assert_allclose(ema.running_mean.numpy(), want, atol=1e-12)
    np.testing.assert_allclose(cum.running_mean.numpy(),
                               np.mean([x.mean(0) for x in xs], 0),
                               atol=1e-12)
    np.testing.assert_allclose(
        cum.running_sqr.numpy(), np.mean([(x**2).mean(0) for x in xs], 0),
        atol=1e-12)


def test_identity_before_data_and_fixed_in_eval():
    eraser = PositionEraser(3).double()
    x = torch.from_numpy(_maps())
    assert torch.equal(eraser.eval()(x), x)  # nothing seen yet
    eraser.train()(x)
    before = eraser.running_mean.clone()
    eraser.eval()(torch.from_numpy(_maps(seed=1)))
    assert torch.equal(eraser.running_mean, before)


def test_other_sizes_use_bilinear_resampling():
    """Statistics of a 5x4 grid at 9x7: scipy's order-1 interpolation on
    the grid's corners-on-corners coordinates."""
    eraser = PositionEraser(3).double()
    x = _maps()
    eraser(torch.from_numpy(x))
    mean, _ = eraser.statistics((9, 7))
    rows, cols = np.meshgrid(np.linspace(0, 4, 9), np.linspace(0, 3, 7),
                             indexing='ij')
    want = np.stack([
        ndimage.map_coordinates(x.mean(0)[c], [rows, cols], order=1)
        for c in range(3)
    ])
    np.testing.assert_allclose(mean.numpy(), want, atol=1e-12)
    # a batch of another size is resampled to the stored grid
    y = _maps(h=9, w=7, seed=2)
    eraser(torch.from_numpy(y))
    small = np.stack([
        ndimage.map_coordinates(y.mean(0)[c], np.meshgrid(
            np.linspace(0, 8, 5), np.linspace(0, 6, 4), indexing='ij'),
                                order=1) for c in range(3)
    ])
    np.testing.assert_allclose(eraser.running_mean.numpy(),
                               0.9 * x.mean(0) + 0.1 * small, atol=1e-12)


def _lstsq_r2(features, target):
    """R² of the least-squares linear readout (with intercept) from the
    per-pixel features (N, C, H, W) to a map (H, W), over all pixels."""
    n, c, h, w = features.shape
    a = features.transpose(0, 2, 3, 1).reshape(-1, c)
    a = np.concatenate([a, np.ones((len(a), 1))], axis=1)
    y = np.broadcast_to(target, (n, h, w)).reshape(-1)
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    resid = y - a @ coef
    return 1 - (resid**2).sum() / ((y - y.mean())**2).sum()


def test_no_linear_readout_of_position_after_calibration():
    """On the calibration images, the least-squares linear readout of the
    horizontal position map from a zero-padded network's outputs explains
    most of it; from the erased outputs it explains nothing (its
    covariance with any function of position is zero)."""
    net = randomise(PadResNetV1c(**TINY, erase_position='mean'))
    gen = torch.Generator().manual_seed(0)
    images = [torch.rand(4, 3, 32, 32, generator=gen, dtype=torch.float64)
              for _ in range(5)]
    with torch.no_grad():
        raw = torch.cat([net(x)[1] for x in images]).numpy()  # identity
        assert calibrate_erasers(net, images) == 5
        erased = torch.cat([net(x)[1] for x in images]).numpy()
    assert not net.training  # the flags were restored
    h, w = raw.shape[2:]
    horizontal = np.broadcast_to(np.linspace(0, 1, w), (h, w))
    # fewer channels than pixels x images: the readout is not trivial
    assert raw.shape[1] < raw.shape[0] * h * w
    assert _lstsq_r2(raw, horizontal) > 0.5
    assert _lstsq_r2(erased, horizontal) < 1e-9


def test_backbone_option_loads_standard_weights():
    """The erasers hold buffers only: a plain state dict loads (their
    buffers reported missing), and until they see data the backbone
    computes what the plain one does; their statistics round-trip with
    their grid through a state dict."""
    plain = randomise(PadResNetV1c(**TINY))
    erased = PadResNetV1c(**TINY, erase_position='mean+scale').double()
    result = erased.load_state_dict(plain.state_dict(), strict=False)
    assert not result.unexpected_keys
    assert set(result.missing_keys) == {
        f'position_erasers.{i}.{name}' for i in range(4)
        for name in ('running_mean', 'running_sqr', 'num_batches_tracked')}
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        for a, b in zip(erased.eval()(x), plain(x)):
            assert torch.equal(a, b)
        calibrate_erasers(erased, [x])
        outs = erased(x)
    for out, ref in zip(outs, plain(x)):
        mean = out.mean(0).numpy()  # constant over the pixels
        np.testing.assert_allclose(mean, np.broadcast_to(
            mean.mean((1, 2), keepdims=True), mean.shape), atol=1e-9)
        assert (out - ref).abs().amax() > 1e-3
    copy = PadResNetV1c(**TINY, erase_position='mean+scale').double().eval()
    copy.load_state_dict(erased.state_dict())
    assert copy.position_erasers[0].grid == (8, 8)
    with torch.no_grad():
        for a, b in zip(copy(x), outs):
            assert torch.equal(a, b)


def test_bad_arguments_raise_and_empty_calibration_keeps_statistics():
    with pytest.raises(ValueError, match="erase_position 'median'"):
        PadResNetV1c(**TINY, erase_position='median')
    with pytest.raises(ValueError, match="unknown erase 'max'"):
        PositionEraser(4, erase='max')
    with pytest.raises(ValueError, match='momentum'):
        PositionEraser(4, momentum=0)
    with pytest.raises(ValueError, match=r'\(N, 3, H, W\)'):
        PositionEraser(3)(torch.zeros(2, 4, 5, 5))
    with pytest.raises(ValueError, match='positive int'):
        PositionEraserHook(num_batches=0)
    eraser = PositionEraser(3).double()
    eraser(torch.from_numpy(_maps()))
    before = {k: v.clone() for k, v in eraser.state_dict().items()}
    with pytest.raises(ValueError, match='no batches'):
        calibrate_erasers(eraser, [])
    for key, value in eraser.state_dict().items():
        assert torch.equal(value, before[key])
    assert eraser.momentum == 0.1 and eraser.training


def test_hook_recalibrates_every_interval_from_begin_and_at_the_end():
    """Calibrated after iterations begin, begin + interval, ... and after
    the last one (iterations counted as done, as validations are)."""
    from types import SimpleNamespace
    done = []
    hook = PositionEraserHook(interval=3, begin=6)
    hook.calibrate = lambda runner: done.append(runner.iter + 1)
    runner = SimpleNamespace(iter=0, max_iters=14,
                             train_loop=SimpleNamespace(max_iters=14))
    for i in range(14):
        runner.iter = i
        hook.after_train_iter(runner, i)
    assert done == [6, 9, 12, 14]
    with pytest.raises(ValueError, match='begin'):
        PositionEraserHook(begin=-1)


def test_a_trained_eraser_checkpoint_loads_through_the_fit_check(tmp_path):
    """possec's checked loading (what tools/test.py, the analyses and
    --reprobe use) takes a calibrated eraser's statistics at their saved
    grid into a freshly built model, whose buffers are still empty; a
    checkpoint whose statistics have other channels is still refused."""
    from possec.errors import WeightsMismatchError
    from possec.runtime.weights import load_model_checkpoint
    trained = randomise(PadResNetV1c(**TINY, erase_position='mean'))
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    calibrate_erasers(trained, [x])
    trained.eval()
    path = str(tmp_path / 'erased.pth')
    torch.save(dict(state_dict=trained.state_dict(), meta={}), path)
    fresh = PadResNetV1c(**TINY, erase_position='mean').double().eval()
    assert fresh.position_erasers[0].grid == (0, 0)
    load_model_checkpoint(fresh, path)
    assert fresh.position_erasers[0].grid == (8, 8)
    with torch.no_grad():
        for a, b in zip(fresh(x), trained(x)):
            assert torch.equal(a, b)
    state = trained.state_dict()
    key = 'position_erasers.0.running_mean'
    state[key] = torch.zeros((state[key].shape[0] + 1, ) +
                             tuple(state[key].shape[1:]))
    torch.save(dict(state_dict=state, meta={}), path)
    with pytest.raises(WeightsMismatchError, match=r'1 of another shape '
                       r'\(position_erasers\.0\.running_mean\)'):
        load_model_checkpoint(
            PadResNetV1c(**TINY, erase_position='mean'), path)
