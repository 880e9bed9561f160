"""sigcore: initial 3D cryo-EM maps from 2D class averages by significant assignment.

``import sigcore`` is cheap: heavy modules (numba, cupy, scipy.ndimage, plugin
entry points) load only when a function that needs them is called.
"""

from __future__ import annotations

from typing import Any

from sigcore.errors import (
    BackendUnavailable,
    ConfigError,
    FormatError,
    PluginError,
    SigcoreError,
)
from sigcore.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailable",
    "ConfigError",
    "FormatError",
    "PluginError",
    "SigcoreError",
    "__version__",
    "hookimpl",
    "reconstruct",
]


def __getattr__(name: str) -> Any:
    if name == "reconstruct":
        from sigcore.api import reconstruct

        return reconstruct
    raise AttributeError(f"module 'sigcore' has no attribute {name!r}")
