"""Position maps against their formulas, written independently in numpy."""
import numpy as np
import pytest
import torch

from possec.position import PATTERNS, position_map, position_maps

SIZES = [(5, 5), (6, 6), (4, 7), (7, 4), (28, 28)]


def reference(name, h, w, sigma=0.5, periods=2.5):
    i, j = np.meshgrid(np.arange(h), np.arange(w), indexing='ij')
    i, j = i.astype(np.float64), j.astype(np.float64)
    if name == 'H':
        return j / (w - 1)
    if name == 'V':
        return i / (h - 1)
    if name == 'G':
        g = np.exp(-((i - (h - 1) / 2)**2 / (2 * (sigma * h)**2) +
                     (j - (w - 1) / 2)**2 / (2 * (sigma * w)**2)))
        return (g - g.min()) / (g.max() - g.min())
    if name == 'HS':
        return (1 + np.cos(2 * np.pi * periods * (i + 0.5) / h)) / 2
    return (1 + np.cos(2 * np.pi * periods * (j + 0.5) / w)) / 2


@pytest.mark.parametrize('size', SIZES)
@pytest.mark.parametrize('name', PATTERNS)
def test_map_matches_formula(name, size):
    got = position_map(name, size).numpy()
    assert got.shape == size
    np.testing.assert_allclose(got, reference(name, *size), atol=1e-12)
    assert got.min() >= 0 and got.max() <= 1


@pytest.mark.parametrize('size', SIZES)
def test_directions(size):
    h, w = size
    hmap, vmap, gmap = (position_map(p, size).numpy() for p in 'HVG')
    assert (np.diff(hmap, axis=1) > 0).all() and (np.diff(hmap, axis=0)
                                                  == 0).all()
    assert (np.diff(vmap, axis=0) > 0).all() and (np.diff(vmap, axis=1)
                                                  == 0).all()
    assert hmap[:, 0].max() == 0 and hmap[:, -1].min() == 1
    # G: brightest at the centre, darkest in a corner, exactly 0 and 1
    assert gmap.max() == 1 and gmap.min() == 0
    assert gmap[(h - 1) // 2, (w - 1) // 2] == 1
    assert gmap[0, 0] == 0


def test_stripes_have_two_and_a_half_periods():
    n = 200
    hs = position_map('HS', (n, 3)).numpy()[:, 0]
    vs = position_map('VS', (3, n)).numpy()[0, :]
    np.testing.assert_array_equal(hs, vs)  # VS is HS transposed
    # 2.5 periods of a cosine starting at its top cross the mid-level 5 times
    crossings = np.count_nonzero(np.diff(np.sign(hs - 0.5)))
    assert crossings == 5
    assert hs[0] > 0.99  # bright at the top
    assert hs[-1] < 0.01  # half a period after 2: dark at the bottom
    # bright at the top at the reference size as well
    assert position_map('HS', 28)[0, 0] > 0.97


def test_options_sigma_and_periods():
    np.testing.assert_allclose(
        position_map('G', (9, 12), sigma=0.25).numpy(),
        reference('G', 9, 12, sigma=0.25),
        atol=1e-12)
    np.testing.assert_allclose(
        position_map('VS', (6, 10), periods=1).numpy(),
        reference('VS', 6, 10, periods=1),
        atol=1e-12)


@pytest.mark.parametrize('size', [(1, 1), (1, 5), (5, 1)])
def test_size_one_has_no_nan(size):
    maps = position_maps(PATTERNS, size, dtype=torch.float64)[0]
    assert torch.isfinite(maps).all()
    assert maps.min() >= 0 and maps.max() <= 1
    h, w = size
    if w == 1:
        assert (maps[0] == 0.5).all()
    else:
        np.testing.assert_allclose(maps[0].numpy(), reference('H', h, w))
    if h == 1:
        assert (maps[1] == 0.5).all()
    if size == (1, 1):
        assert maps[2].item() == 1


def test_batched_order_device_dtype():
    maps = position_maps(('VS', 'H'), (3, 4), batch_size=2,
                         dtype=torch.float64, device='cpu')
    assert maps.shape == (2, 2, 3, 4)
    assert maps.dtype == torch.float64 and maps.device.type == 'cpu'
    for n in range(2):
        np.testing.assert_allclose(maps[n, 0].numpy(), reference('VS', 3, 4))
        np.testing.assert_allclose(maps[n, 1].numpy(), reference('H', 3, 4))
    assert position_maps('G', 5, dtype=torch.float16).dtype == torch.float16


def test_cache_is_reused_and_cannot_be_corrupted():
    a = position_maps(PATTERNS, (6, 9), batch_size=3)
    b = position_maps(PATTERNS, (6, 9), batch_size=3)
    assert a.data_ptr() == b.data_ptr()  # cached, no copy
    with pytest.raises(RuntimeError):
        a.mul_(0)  # a broadcast view refuses in-place writes
    one = position_maps(PATTERNS, (6, 9))
    one.zero_()  # a single-image view is writable, and reaches the cache
    fresh = position_maps(PATTERNS, (6, 9))
    for k, name in enumerate(PATTERNS):
        np.testing.assert_allclose(fresh[0, k].numpy(),
                                   reference(name, 6, 9), atol=1e-6)


def test_maps_made_in_inference_mode_serve_as_loss_target():
    with torch.inference_mode():
        position_maps('H', (4, 4), dtype=torch.float64)
    pred = torch.zeros(1, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    target = position_maps('H', (4, 4), dtype=torch.float64)
    torch.nn.functional.mse_loss(pred, target).backward()
    np.testing.assert_allclose(pred.grad[0, 0].numpy(),
                               -2 * reference('H', 4, 4) / 16)


@pytest.mark.parametrize('patterns', ['X', ['H', 'h'], [], ['H', 'H']])
def test_bad_patterns_raise(patterns):
    with pytest.raises(ValueError, match='HS|once'):
        position_maps(patterns, 4)


@pytest.mark.parametrize('size', [0, -3, (4, 0), (2, 3, 4), 2.5])
def test_bad_size_raises(size):
    with pytest.raises(ValueError, match='positive'):
        position_maps('H', size)


def test_bad_options_raise():
    with pytest.raises(ValueError, match='sigma'):
        position_map('G', 4, sigma=0)
    with pytest.raises(ValueError, match='batch_size'):
        position_maps('H', 4, batch_size=0)
    with pytest.raises(ValueError, match='floating'):
        position_maps('H', 4, dtype=torch.int64)
