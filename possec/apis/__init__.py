"""possec's entry points in Python: what ``tools/train.py`` and
``tools/test.py`` call.

- :func:`train` trains a model from a config (``--cfg-options`` as a dict),
  with safe checkpoint loading, atomic checkpoint saving and one-line
  errors (:class:`UserError`);
- :func:`test` evaluates a checkpoint and, with ``out``, writes the
  predictions and ``metrics.json`` with the run's provenance;
- :func:`prepare_config` loads a config with the same checks and
  overrides, without running anything;
- :mod:`.provenance` compares the model settings a checkpoint was trained
  with against a config (:func:`model_differences`).

Example:
    >>> from possec.apis import train, test
    >>> runner = train('configs/demo/parsenet_pos_synthetic.py',
    ...                work_dir='work_dirs/demo')
    >>> metrics = test('configs/demo/parsenet_pos_synthetic.py',
    ...                'work_dirs/demo/iter_160.pth', out='work_dirs/demo/test')
"""
from .checks import UserError
from ..runtime.provenance import model_differences
from .test import test
from .train import prepare_config, train

__all__ = ['UserError', 'model_differences', 'prepare_config', 'test',
           'train']
