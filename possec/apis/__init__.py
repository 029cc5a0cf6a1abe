from .checks import UserError
from .test import test
from .train import prepare_config, train

__all__ = ['UserError', 'prepare_config', 'test', 'train']
