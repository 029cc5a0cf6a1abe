from .shift_consistency import (ShiftConsistencyEncoderDecoder,
                                shift_consistency_loss)

__all__ = ['ShiftConsistencyEncoderDecoder', 'shift_consistency_loss']
