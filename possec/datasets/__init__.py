from .synthetic import generate_synthetic_voc
from .synthetic_voc import SyntheticVOCDataset

__all__ = ['generate_synthetic_voc', 'SyntheticVOCDataset']
