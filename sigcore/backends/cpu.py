"""Built-in plugin module (contributions are being written)."""

from __future__ import annotations
