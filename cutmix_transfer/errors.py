"""The user-facing error types. Tools turn any of them into a one-line message and exit code 2.

Each message names the path (or value) that is wrong and says how to fix it.
"""


class CutmixTransferError(Exception):
    """Base of every error a user can cause with their input (files, flags, configs)."""


class CheckpointError(CutmixTransferError):
    """A checkpoint file that cannot be used: corrupt, unknown layout, wrong arch, wrong class count."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint that needs arbitrary unpickling; only --trust-checkpoint loads it."""


class DatasetError(CutmixTransferError):
    """A dataset folder, annotation file or image that is missing or malformed."""


class ConfigError(CutmixTransferError):
    """A config or command-line value that cannot work."""
