"""Errors that speak to the user.

Every class here is a :class:`UserError`: possec's tools print its message as
one line (what was expected, what was found, what to do) and exit with status
2, without a traceback unless ``--debug`` is given. Failures raised by the
stack (mmengine, mmcv, torch) are turned into these in one place,
:func:`possec.apis.explain.explain_failure`.
"""

__all__ = [
    'CheckpointError', 'ConfigKeyError', 'DataError', 'ModelBuildError',
    'UntrustedCheckpointError', 'UserError', 'WeightsMismatchError'
]


class UserError(Exception):
    """An error caused by the user's input; tools print it without a
    traceback and exit with status 2."""


class CheckpointError(UserError):
    """A checkpoint file is missing, truncated or not a torch file."""


class UntrustedCheckpointError(CheckpointError):
    """A checkpoint holds Python objects outside possec's allowlist; loading
    it could run code. The message names the global and the per-file
    opt-in."""


class WeightsMismatchError(CheckpointError):
    """A checkpoint's weights do not fit the model (missing, unexpected or
    differently shaped keys) and no partial load was asked for."""


class ConfigKeyError(UserError, KeyError):
    """A config key (from the file or ``--cfg-options``) that nothing
    reads: a misspelling, or a key left over from a base config."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ''


class ModelBuildError(UserError):
    """A module of the model rejected its configuration."""


class DataError(UserError):
    """An image or label of the dataset cannot be used; the message names
    the file."""
