"""Draws docs/figures/study_layouts.png: samples of the study's layouts,
each image beside its label map, from the generator itself
(``possec.datasets.synthetic_render.render_sample``, data seed 0)::

    python docs/results/layouts_figure.py docs/figures/study_layouts.png
"""
import sys

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from possec.datasets.synthetic import voc_palette  # noqa: E402
from possec.datasets.synthetic_render import render_sample  # noqa: E402

#: (title, layout, split, keyword arguments of render_sample)
ROWS = (
    ('position-coded (old, not periodic)', 'position-coded', 'train',
     dict()),
    ('position-coded, periodic', 'position-coded', 'train',
     dict(periodic='both')),
    ('position-prior P=0.75, tilt 10, periodic', 'position-prior', 'train',
     dict(prior=0.75, tilt=10.0, periodic='both')),
    ('prior-shift P=0.9: validation (Q=0.1)', 'prior-shift', 'val',
     dict(prior=0.9, tilt=10.0, periodic='both')),
    ('uniform', 'uniform', 'train', dict()),
)
SAMPLES = 3


def main(path):
    palette = np.array(voc_palette(), np.uint8).reshape(-1, 3)
    fig, axes = plt.subplots(len(ROWS), 2 * SAMPLES,
                             figsize=(2 * SAMPLES * 1.3, len(ROWS) * 1.45))
    for r, (title, layout, split, kwargs) in enumerate(ROWS):
        for s in range(SAMPLES):
            image, label = render_sample(layout, split, s, 0, (64, 64),
                                         **kwargs)
            axes[r, 2 * s].imshow(image)
            axes[r, 2 * s + 1].imshow(palette[label])
        axes[r, 0].set_title(title, fontsize=8, loc='left')
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout(pad=0.3)
    fig.savefig(path, dpi=72, metadata={'Software': None})


if __name__ == '__main__':
    main(sys.argv[1])
