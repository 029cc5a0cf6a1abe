"""One conversion of analysis results to what JSON holds."""
import math

import numpy as np
import torch


def to_jsonable(obj):
    """``obj`` with numpy and torch values, tuples and non-finite floats
    turned into plain JSON values.

    Non-finite floats (NaN, +-inf) become ``None`` (JSON ``null``): JSON
    has no such numbers, and Python's ``NaN`` literal is not read by other
    JSON parsers. Dict keys become strings; any other object its ``str``.

    Args:
        obj: A dict, list, tuple, tensor, array, scalar or string.

    Returns:
        The same structure in ``dict``, ``list``, ``str``, ``int``,
        ``float``, ``bool`` and ``None``.

    Example:
        >>> to_jsonable(dict(a=np.float32(0.5), b=(1, float('nan'))))
        {'a': 0.5, 'b': [1, None]}
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return to_jsonable(obj.detach().cpu().tolist())
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)
