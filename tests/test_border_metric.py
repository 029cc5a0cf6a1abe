"""BorderIoUMetric: bands, per-band counts, identity with IoUMetric, files."""
import csv
import json
import os.path as osp

import numpy as np
import pytest
import torch

from possec.evaluation.border_bands import (band_areas, band_index_map,
                                            band_name, parse_bands)


PIXEL_BANDS = [(0, 2), (2, 5), (5, 9), (9, None)]
FRACTION_BANDS = [(0, 0.0625), (0.0625, 0.125), (0.125, 0.25), (0.25, None)]
CLASSES = ('background', 'a', 'b', 'c', 'd')


def numpy_distance(height, width):
    """d = min(x, y, W-1-x, H-1-y) written directly."""
    y, x = np.indices((height, width))
    return np.minimum.reduce([x, y, width - 1 - x, height - 1 - y])


def numpy_band_masks(height, width, bands, unit):
    d = numpy_distance(height, width).astype(np.float64)
    scale = 1.0 if unit == 'pixel' else float(min(height, width))
    return np.stack([(d >= lo * scale) & (d < (np.inf if hi is None else
                                                  hi * scale))
                     for lo, hi in bands])


def numpy_band_counts(pred, label, masks, num_classes, ignore_index):
    """(3, bands, classes) intersection / prediction / label areas."""
    out = np.zeros((3, len(masks), num_classes), dtype=np.int64)
    valid = label != ignore_index
    for b, mask in enumerate(masks):
        keep = mask & valid
        for c in range(num_classes):
            out[0, b, c] = np.sum(keep & (pred == c) & (label == c))
            out[1, b, c] = np.sum(keep & (pred == c))
            out[2, b, c] = np.sum(keep & (label == c))
    return out


def random_pair(rng, height, width, num_classes, ignore_index=255,
                p_ignore=0.1, p_outside=0.0):
    """A prediction agreeing with the label on ~60% of pixels."""
    label = rng.integers(0, num_classes, (height, width))
    pred = np.where(rng.random((height, width)) < 0.6, label,
                    rng.integers(0, num_classes, (height, width)))
    label[rng.random((height, width)) < p_ignore] = ignore_index
    label[rng.random((height, width)) < p_outside] = num_classes + 3
    return pred, label


@pytest.mark.parametrize('unit,bands', [('pixel', PIXEL_BANDS),
                                        ('fraction', FRACTION_BANDS)])
@pytest.mark.parametrize('size', [(7, 10), (32, 32), (48, 21), (1, 5)])
def test_bands_cover_every_pixel_exactly_once(unit, bands, size):
    masks = numpy_band_masks(*size, bands, unit)
    assert np.array_equal(masks.sum(0), np.ones(size))
    got = band_index_map(*size, parse_bands(bands, unit), unit).numpy()
    assert np.array_equal(got, masks.argmax(0))


def test_fraction_bands_scale_with_short_side():
    # 64 x 40: S = 40, 1/8 of it is 5 px, so band 1 holds d in [2.5, 5).
    bands = parse_bands(FRACTION_BANDS, 'fraction')
    got = band_index_map(64, 40, bands, 'fraction').numpy()
    d = numpy_distance(64, 40)
    assert set(d[got == 1].tolist()) == {3, 4}
    assert set(d[got == 3].tolist()) == set(range(10, 20))


@pytest.mark.parametrize('bands,unit,match', [
    ([(0, 8), (4, None)], 'pixel', 'overlap'),
    ([(0, 8), (8, None), (16, None)], 'pixel', 'overlap'),
    ([(0, 8), (16, 32), (8, 16), (32, None)], 'pixel', 'unsorted'),
    ([(-4, 8), (8, None)], 'pixel', '>= 0'),
    ([(0, 8), (8, 8), (8, None)], 'pixel', 'empty'),
    ([(0, 8), (10, None)], 'pixel', 'gap'),
    ([(2, 8), (8, None)], 'pixel', 'start at 0'),
    ([(0, 8), (8, 16)], 'pixel', 'open-ended'),
    ([(0, 2.5), (2.5, None)], 'pixel', 'whole pixels'),
    ([(0, 0.1), (0.1, 0.6), (0.6, None)], 'fraction', 'below 0.5'),
    ([], 'pixel', 'non-empty'),
    ('0-8', 'pixel', 'non-empty'),
    ([(0, 8, 16)], 'pixel', 'pair'),
    ([(0, 'a'), ('a', None)], 'pixel', 'finite number'),
    ([(0, None)], 'pixels', 'unknown band_unit'),
])
def test_bad_bands_raise(bands, unit, match):
    with pytest.raises(ValueError, match=match):
        parse_bands(bands, unit)


def test_band_names():
    assert band_name((0, 8), 'pixel') == 'band0_8'
    assert band_name((32, None), 'pixel') == 'band32_inf'
    assert band_name((0.0625, 0.125), 'fraction') == 'band6p25pct_12p5pct'
    assert band_name((0.25, None), 'fraction') == 'band25pct_inf'


@pytest.mark.parametrize('ignore_index', [255, 0])
def test_band_areas_match_numpy(ignore_index):
    rng = np.random.default_rng(0)
    num_classes, (h, w) = 5, (23, 31)
    pred, label = random_pair(rng, h, w, num_classes, ignore_index,
                              p_outside=0.05)
    pred[0, :3] = num_classes + 1  # predictions outside the class range
    bands = parse_bands(PIXEL_BANDS, 'pixel')
    offset = band_index_map(h, w, bands) * (num_classes + 2)**2
    got = band_areas(torch.from_numpy(pred), torch.from_numpy(label), offset,
                     len(bands), num_classes, ignore_index)
    masks = numpy_band_masks(h, w, PIXEL_BANDS, 'pixel')
    expected = numpy_band_counts(pred, label, masks, num_classes,
                                 ignore_index)
    assert got.dtype == torch.int64
    assert np.array_equal(got.numpy(), expected)


# ------------------------------------------------------------------ metric --

def samples(pairs):
    return [dict(pred_sem_seg=dict(data=torch.from_numpy(p)[None]),
                 gt_sem_seg=dict(data=torch.from_numpy(g)[None]),
                 img_path=f'img_{i}.jpg')
            for i, (p, g) in enumerate(pairs)]


def evaluate(metric, pairs, size=None, batch=2):
    metric.dataset_meta = dict(classes=CLASSES,
                               palette=[[40 * i] * 3
                                        for i in range(len(CLASSES))])
    data = samples(pairs)
    for start in range(0, len(data), batch):
        metric.process({}, data[start:start + batch])
    return metric.evaluate(len(pairs) if size is None else size)


def make_pairs(seed=1, sizes=((20, 24), (31, 17), (20, 24), (9, 40))):
    rng = np.random.default_rng(seed)
    pairs = [random_pair(rng, h, w, len(CLASSES)) for h, w in sizes]
    pairs[0][0][pairs[0][0] == 4] = 3  # class 4 absent in some images
    pairs[0][1][pairs[0][1] == 4] = 3
    return pairs


@pytest.mark.parametrize('iou_metrics', [['mIoU'], ['mIoU', 'mDice']])
def test_overall_numbers_identical_to_iou_metric(iou_metrics):
    from mmseg.evaluation import IoUMetric

    from possec.evaluation import BorderIoUMetric
    pairs = make_pairs()
    ref = evaluate(IoUMetric(iou_metrics=iou_metrics), pairs)
    got = evaluate(BorderIoUMetric(iou_metrics=iou_metrics,
                                   results_file=None), pairs)
    assert set(ref) < set(got)
    for key, value in ref.items():
        assert got[key] == value and type(got[key]) is type(value), key


def test_band_numbers_match_numpy(tmp_path):
    from possec.evaluation import BorderIoUMetric
    pairs = make_pairs(seed=2)
    path = str(tmp_path / 'out' / 'metrics.json')
    metric = BorderIoUMetric(bands=PIXEL_BANDS, band_unit='pixel',
                             results_file=path)
    got = evaluate(metric, pairs)

    totals = sum(numpy_band_counts(p, g, numpy_band_masks(*p.shape,
                                                          PIXEL_BANDS,
                                                          'pixel'),
                                   len(CLASSES), 255) for p, g in pairs)
    with np.errstate(invalid='ignore', divide='ignore'):
        inter, pred, label = totals.astype(np.float64)
        iou = inter / (pred + label - inter)
        acc = inter / label
        aacc = inter.sum(1) / label.sum(1)
    with open(path) as f:
        written = json.load(f)
    bands = written['border_bands']['bands']
    assert written['border_bands']['unit'] == 'pixel'
    assert [b['name'] for b in bands] == [
        'band0_2', 'band2_5', 'band5_9', 'band9_inf']
    for b, band in enumerate(bands):
        name = band['name']
        assert got[f'aAcc_{name}'] == pytest.approx(100 * aacc[b], abs=0.006)
        assert got[f'mIoU_{name}'] == pytest.approx(
            100 * np.nanmean(iou[b]), abs=0.006)
        assert got[f'mAcc_{name}'] == pytest.approx(
            100 * np.nanmean(acc[b]), abs=0.006)
        assert isinstance(got[f'mIoU_{name}'], float)
        assert band['pixels'] == int(label[b].sum())
        for c, row in enumerate(band['classes']):
            assert row['name'] == CLASSES[c]
            for key, ref in (('IoU', iou[b, c]), ('Acc', acc[b, c])):
                if np.isnan(ref):
                    assert row[key] is None
                else:
                    # a clean decimal: float32's shortest repr of the value
                    assert row[key] == pytest.approx(100 * ref, rel=1e-6)
                    assert np.float32(row[key]) == np.float32(100 * ref)
                    assert len(repr(row[key])) <= len(
                        repr(np.float32(100 * ref)))
    # the overall per-class file of PerClassIoUMetric is still there
    assert written['mIoU'] == pytest.approx(float(got['mIoU']))
    assert len(written['classes']) == len(CLASSES)
    with open(str(tmp_path / 'out' / 'metrics_bands.csv')) as f:
        rows = list(csv.DictReader(f))
    # per band: its classes, then a 'mean' row holding the band's summary
    assert len(rows) == len(PIXEL_BANDS) * (len(CLASSES) + 1)
    assert rows[0]['band'] == 'band0_2' and rows[0]['name'] == 'background'
    for b, band in enumerate(bands):
        mean_row = rows[(b + 1) * (len(CLASSES) + 1) - 1]
        assert mean_row['name'] == 'mean' and mean_row['band'] == band['name']
        assert float(mean_row['IoU']) == pytest.approx(
            100 * np.nanmean(iou[b]), abs=0.006)
        assert float(mean_row['Acc']) == pytest.approx(
            100 * np.nanmean(acc[b]), abs=0.006)
    with open(str(tmp_path / 'out' / 'metrics.csv')) as f:
        overall_rows = list(csv.DictReader(f))
    assert [r['name'] for r in overall_rows[:-1]] == list(CLASSES)
    assert overall_rows[-1]['name'] == 'mean (mIoU, mAcc)'
    ious = [float(r['IoU']) for r in overall_rows[:-1] if r['IoU']]
    assert float(overall_rows[-1]['IoU']) == pytest.approx(
        np.mean(ious), abs=0.006)


def test_results_json_holds_clean_decimals(tmp_path):
    """metrics.json holds mmseg's rounded summaries, not float32 noise."""
    from mmseg.evaluation import IoUMetric

    from possec.evaluation import PerClassIoUMetric
    pairs = make_pairs(seed=4)
    ref = evaluate(IoUMetric(), pairs)  # np.float32, rounded to 2 decimals
    path = str(tmp_path / 'metrics.json')
    evaluate(PerClassIoUMetric(results_file=path), pairs)
    with open(path) as f:
        text = f.read()
    written = json.loads(text)
    for key in ('aAcc', 'mIoU', 'mAcc'):
        assert written[key] == round(float(ref[key]), 2), key
        assert repr(written[key]) in text


def test_band_counts_add_up_to_overall():
    from possec.evaluation import BorderIoUMetric
    pairs = make_pairs(seed=3)
    metric = BorderIoUMetric(results_file=None)  # default fraction bands
    evaluate(metric, pairs)
    assert len(metric.results) == 0  # evaluate() clears them
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, samples(pairs))
    assert len(metric.results) == len(pairs)  # one entry per image
    for counts, (p, g) in zip(metric.results, pairs):
        assert counts.shape == (3, 4, len(CLASSES))
        assert counts[2].sum() == np.sum(g != 255)
        assert counts[1].sum(0).tolist() == [
            int(np.sum((p == c) & (g != 255))) for c in range(len(CLASSES))]


def test_padding_duplicates_are_dropped():
    """collect_results keeps the first ``size`` entries: the sampler's
    padding duplicates must not count (one result per image)."""
    from possec.evaluation import BorderIoUMetric
    pairs = make_pairs(seed=4)
    clean = evaluate(BorderIoUMetric(results_file=None), pairs)
    padded = evaluate(BorderIoUMetric(results_file=None),
                      pairs + [pairs[0]], size=len(pairs))
    assert clean == padded


def test_auto_results_file_goes_to_log_folder(tmp_path):
    from mmengine.logging import MMLogger

    from possec.evaluation import BorderIoUMetric
    (tmp_path / 'run').mkdir()
    log_file = str(tmp_path / 'run' / 'run.log')
    logger = MMLogger.get_instance('border_metric_test', log_file=log_file)
    try:
        got = evaluate(BorderIoUMetric(), make_pairs())
    finally:
        for handler in logger.handlers:
            handler.close()
    with open(str(tmp_path / 'run' / 'border_metric.json')) as f:
        written = json.load(f)
    assert written['mIoU_band0pct_5pct'] == got['mIoU_band0pct_5pct']
    assert osp.isfile(str(tmp_path / 'run' / 'border_metric_bands.csv'))
    with open(log_file) as f:
        assert 'results by distance to the border' in f.read()


def test_prediction_pngs(tmp_path):
    from PIL import Image

    from possec.evaluation import BorderIoUMetric
    pairs = make_pairs()
    evaluate(BorderIoUMetric(output_dir=str(tmp_path), results_file=None),
             pairs)
    png = np.array(Image.open(str(tmp_path / 'img_1.png')))
    assert np.array_equal(png, pairs[1][0])


def test_builds_from_config_file(tmp_path):
    """As the runner builds it: default scope mmseg, mmengine's Evaluator."""
    from mmengine.config import Config
    from mmengine.registry import EVALUATOR, init_default_scope
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text(
        "default_scope = 'mmseg'\n"
        "custom_imports = dict(imports=['possec'], "
        "allow_failed_imports=False)\n"
        "val_evaluator = dict(type='BorderIoUMetric', band_unit='pixel', "
        "bands=[(0, 4), (4, None)], results_file=None)\n")
    cfg = Config.fromfile(str(cfg_file))
    init_default_scope(cfg.default_scope)
    evaluator = EVALUATOR.build(dict(type='Evaluator',
                                     metrics=cfg.val_evaluator))
    metric = evaluator.metrics[0]
    assert type(metric).__name__ == 'BorderIoUMetric'
    assert metric.band_names == ['band0_4', 'band4_inf']


def test_bad_metric_arguments():
    from mmseg.registry import METRICS

    import possec  # noqa: F401  (registers the metric)
    with pytest.raises(ValueError, match='overlap'):
        METRICS.build(dict(type='BorderIoUMetric', band_unit='pixel',
                           bands=[(0, 8), (4, None)]))
    with pytest.raises(ValueError, match='pass bands explicitly'):
        METRICS.build(dict(type='BorderIoUMetric', band_unit='pixel'))
