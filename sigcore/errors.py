"""The sigcore exception hierarchy.

Every error that a user can cause (bad input, bad parameters, a missing plugin
or device) is a :class:`SigcoreError`. The CLI turns these into one line on
stderr and a non-zero exit code; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "BackendUnavailable",
    "ConfigError",
    "FormatError",
    "PluginError",
    "SigcoreError",
]


class SigcoreError(Exception):
    """Base class of every error sigcore raises on purpose."""


class ConfigError(SigcoreError):
    """A parameter or a combination of parameters is invalid."""


class FormatError(SigcoreError):
    """A file cannot be read or written: missing, truncated, malformed or unsupported.

    Parameters
    ----------
    path : str or Path
        The file the problem is in.
    problem : str
        One sentence saying what is wrong with it.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class PluginError(SigcoreError):
    """A plugin is broken, collides with another one, or cannot be found."""


class BackendUnavailable(SigcoreError):
    """The requested array backend cannot run here (no GPU, missing package)."""
