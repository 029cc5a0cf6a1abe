from .border_metric import BorderIoUMetric
from .per_class_iou import PerClassIoUMetric

__all__ = ['BorderIoUMetric', 'PerClassIoUMetric']
