"""CLI commands (placeholder until filled in)."""

from __future__ import annotations
