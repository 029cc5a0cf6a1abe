"""Find possec's own configs the way mmengine finds ``_base_`` files.

possec ships its configs inside the package (under ``possec/.mim/configs``,
as mmseg does), so ``possec::demo/x.py`` names a config whether possec is
installed editable or not. Package code never looks for the repository's
``configs/`` folder through ``__file__``.
"""
import os.path as osp
from typing import Optional

from mmengine.config import Config

from possec.errors import UserError

SCHEME = 'possec::'


def config_path(name: str) -> str:
    """The file of a config: ``possec::<path>`` or a path of the user's.

    ``possec::<path>`` is resolved by mmengine's own resolver, the one that
    reads ``_base_ = ['possec::<path>']`` in a config file
    (:meth:`mmengine.config.Config._get_cfg_path`); anything else is a file
    path, relative to the working directory.

    Args:
        name (str): ``'possec::demo/parsenet_pos_synthetic.py'`` or a file
            path such as ``'work_dirs/my_config.py'``.

    Returns:
        str: The path of an existing config file.

    Raises:
        UserError: When the file does not exist.
    """
    if name.startswith(SCHEME):
        try:
            path, _ = Config._get_cfg_path(name, '')
        except (FileNotFoundError, ModuleNotFoundError, ValueError,
                AssertionError) as exc:  # mmengine asserts its scopes
            raise UserError(
                f'config {name!r} cannot be resolved ({exc}): expected '
                f'possec::<folder>/<file>.py naming a config shipped with '
                f'possec (under its configs/; pip install . ships them)'
            ) from None
    else:
        from possec.apis.paths import check_config_path
        path = check_config_path(name)
    if not osp.isfile(path):
        raise UserError(f'config {name!r} not found (looked for {path!r}): '
                        f'pass an existing config file, or possec::<path> '
                        f'for one shipped with possec')
    return path



def load_tool_config(name: str, cfg_options: Optional[dict] = None) -> Config:
    """Load a config as the analysis tools do: :func:`config_path`, the
    one-line errors of :func:`possec.apis.config_files.load_config`, and
    ``cfg_options`` merged after their value types are checked
    (:func:`possec.apis.option_types.check_option_types`).

    Args:
        name (str): ``possec::<path>`` or a config file.
        cfg_options (dict, optional): Overrides. Default: None.

    Returns:
        Config: The config, overrides merged.
    """
    from possec.apis.config_files import load_config
    from possec.apis.option_types import check_option_types, previous_values
    cfg = load_config(config_path(name))
    if cfg_options:
        check_option_types(previous_values(cfg, cfg_options), cfg_options)
        cfg.merge_from_dict(cfg_options)
    return cfg
