from . import backbones, decode_heads, layers  # noqa: F401  (registers modules)

__all__ = ['backbones', 'decode_heads', 'layers']
