"""SPC and MAE against scipy.stats and numpy."""
import warnings

import numpy as np
import pytest
import torch
from scipy import stats

from possec.position import (average_ranks, mae, mae_per_image,
                             position_metrics, spc, spc_per_image)


def scipy_spc(pred, target):
    """Per-image Spearman from scipy; NaN (constant input) read as 0."""
    n, p = pred.shape[:2]
    out = np.zeros((n, p))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for a in range(n):
            for b in range(p):
                r = stats.spearmanr(pred[a, b].ravel(),
                                    target[a, b].ravel()).statistic
                out[a, b] = 0. if np.isnan(r) else r
    return out


def check(pred, target):
    pred_t, target_t = torch.from_numpy(pred), torch.from_numpy(target)
    want = scipy_spc(pred, target)
    got = spc_per_image(pred_t, target_t)
    assert got.shape == want.shape and not torch.isnan(got).any()
    np.testing.assert_allclose(got.numpy(), want, atol=1e-10)
    np.testing.assert_allclose(spc(pred_t, target_t).numpy(), want.mean(0),
                               atol=1e-10)
    want_mae = np.abs(pred - target).reshape(*pred.shape[:2], -1).mean(-1)
    np.testing.assert_allclose(mae_per_image(pred_t, target_t).numpy(),
                               want_mae, atol=1e-12)
    np.testing.assert_allclose(mae(pred_t, target_t).numpy(),
                               want_mae.mean(0), atol=1e-12)


def test_random_inputs():
    rng = np.random.default_rng(0)
    check(rng.random((4, 3, 7, 9)), rng.random((4, 3, 7, 9)))


def test_correlated_inputs():
    rng = np.random.default_rng(1)
    target = rng.random((3, 2, 8, 8))
    pred = target + 0.3 * rng.standard_normal(target.shape)
    check(pred, target)


def test_tied_inputs():
    rng = np.random.default_rng(2)
    pred = rng.integers(0, 4, (5, 2, 6, 6)).astype(np.float64)
    target = rng.integers(0, 3, (5, 2, 6, 6)).astype(np.float64)
    check(pred, target)
    # ties on one side only, against a tie-free target
    check(pred, rng.random(pred.shape))


def test_constant_inputs_score_zero():
    rng = np.random.default_rng(3)
    target = rng.random((3, 2, 5, 5))
    pred = rng.random((3, 2, 5, 5))
    pred[0, 0] = 0.5  # constant prediction
    target[1, 1] = 0.2  # constant target
    pred[2, 0], target[2, 0] = 1., 1.  # both
    check(pred, target)
    got = spc_per_image(torch.from_numpy(pred), torch.from_numpy(target))
    assert got[0, 0] == 0 and got[1, 1] == 0 and got[2, 0] == 0


def test_monotone_maps_score_plus_and_minus_one():
    target = torch.rand(2, 1, 6, 6, dtype=torch.float64)
    got = spc_per_image(torch.cat([target.exp(), -target], 1),
                        target.expand(2, 2, 6, 6))
    np.testing.assert_allclose(got[:, 0].numpy(), 1, atol=1e-12)
    np.testing.assert_allclose(got[:, 1].numpy(), -1, atol=1e-12)


def test_average_ranks_match_rankdata():
    rng = np.random.default_rng(4)
    x = rng.integers(0, 5, (2, 3, 40)).astype(np.float64)
    np.testing.assert_array_equal(
        average_ranks(torch.from_numpy(x)).numpy(),
        stats.rankdata(x, method='average', axis=-1))
    y = rng.random((3, 17)).astype(np.float32)
    np.testing.assert_array_equal(
        average_ranks(torch.from_numpy(y)).numpy(),
        stats.rankdata(y, axis=-1))


def test_target_broadcasts_over_batch():
    rng = np.random.default_rng(5)
    pred = rng.random((3, 2, 4, 4))
    target = rng.random((1, 2, 4, 4))
    got = spc_per_image(torch.from_numpy(pred), torch.from_numpy(target))
    np.testing.assert_allclose(
        got.numpy(), scipy_spc(pred, np.broadcast_to(target, pred.shape)),
        atol=1e-10)


def test_position_metrics_keys_and_values():
    rng = np.random.default_rng(6)
    pred, target = rng.random((2, 2, 5, 5)), rng.random((2, 2, 5, 5))
    out = position_metrics(
        torch.from_numpy(pred), torch.from_numpy(target), ['H', 'G'])
    assert sorted(out) == ['mae_G', 'mae_H', 'spc_G', 'spc_H']
    want = scipy_spc(pred, target).mean(0)
    assert out['spc_H'].item() == pytest.approx(want[0], abs=1e-10)
    assert out['spc_G'].item() == pytest.approx(want[1], abs=1e-10)
    assert out['mae_G'].item() == pytest.approx(
        np.abs(pred - target)[:, 1].mean(), abs=1e-12)
    with pytest.raises(ValueError, match='one name per channel'):
        position_metrics(torch.from_numpy(pred), torch.from_numpy(target),
                         ['H'])


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match='broadcast'):
        spc(torch.rand(2, 1, 4, 4), torch.rand(2, 1, 3, 4))
    with pytest.raises(ValueError, match='batch'):
        mae(torch.rand(4), torch.rand(4))
