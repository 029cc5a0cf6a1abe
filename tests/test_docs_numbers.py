"""The README's measured numbers have one source: the docs.

Every measurement the README quotes (a duration, a metric value after
mIoU / SPC / aAcc, a speed ratio, a 95% interval) must appear verbatim in
one of the pages under ``docs/``, where it is given with its machine, date
and conditions, so that the README cannot drift from the measurements.
"""
import glob
import os.path as osp
import re

from .conftest import ROOT

#: What counts as a measurement in the README's prose.
MEASURED = (
    r'\b\d+ min \d+ s\b',                        # 5 min 24 s
    r'\b\d+ min\b(?! \d)',                        # 21 min
    r'\b\d+\.\d+ s\b',                             # 0.02 s
    r'\b(?:mIoU|SPC|aAcc|mAcc) [+−-]?\d+\.\d+',   # mIoU 49.13
    r'[+−-]?\d+\.\d+ ?[×x]\b',                    # 1.68x
    r'\[[+−-]?\d+\.\d+, [+−-]?\d+\.\d+\]',        # [-5.4, -0.6]
)


def _prose(path):
    text = open(path, encoding='utf-8').read()
    return re.sub(r'```.*?```', '', text, flags=re.S)


def measurements(text):
    """The measurements in ``text``, longest patterns first (a match is
    blanked out so that ``24 s`` of ``5 min 24 s`` is not found again)."""
    found = []
    for pattern in MEASURED:
        found += re.findall(pattern, text)
        text = re.sub(pattern, ' ', text)
    return found


def test_pattern_finds_measurements():
    # the patterns themselves, on a sentence of known content
    text = ('took 5 min 24 s and 0.02 s, mIoU 49.13, 1.68x slower, '
            '-3.0 [-5.4, -0.6], torch 2.13.0, 128×128, every 10 s')
    assert sorted(measurements(text)) == sorted(
        ['5 min 24 s', '0.02 s', 'mIoU 49.13', '1.68x', '[-5.4, -0.6]'])


def test_readme_numbers_come_from_docs():
    docs = ' '.join(' '.join(open(p, encoding='utf-8').read().split())
                    for p in glob.glob(osp.join(ROOT, 'docs', '**', '*.md'),
                                       recursive=True))
    readme = ' '.join(_prose(osp.join(ROOT, 'README.md')).split())
    numbers = measurements(readme)
    # the README does quote measurements (its install and demo times)
    assert numbers
    missing = [n for n in numbers if not re.search(
        r'(?<![\d.])' + re.escape(n) + r'(?![\d])', docs)]
    assert not missing, (f'README numbers not found in docs/: {missing}; '
                         'state them in docs/ first and quote them')
