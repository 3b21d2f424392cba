"""Errors raised by tvae.

Every error a user can cause is a :class:`TVAEError` subclass whose message is one line that
names the problem and the fix. The command line prints that line (no traceback) and exits
with a non-zero status; Python callers catch the class.
"""

from __future__ import annotations


class TVAEError(Exception):
    """Base class of every user-facing tvae error. ``exit_code`` is what the CLI returns."""

    exit_code: int = 1


class ConfigError(TVAEError, ValueError):
    """A model, training or book setting is invalid (unknown name, out-of-range number)."""

    exit_code = 2


class DataError(TVAEError):
    """A dataset is missing, truncated, corrupt or fails its checksum."""


class CheckpointError(TVAEError):
    """A checkpoint is unreadable, of an unknown format version, or from another config."""


class DeviceError(TVAEError):
    """A requested device (cuda, mps) is not available on this machine."""

    exit_code = 2


class TrainingError(TVAEError):
    """Training hit a non-finite loss; the last good checkpoint is kept."""


class EngineError(TVAEError):
    """A training engine is unknown or not installed, or its cluster is unreachable or lacks the
    resources a task needs (``scripts/train_models.py --engine``, :mod:`tvae.engines`)."""

    exit_code = 2
