"""``sigcore plugins``: list every plugin, its distribution and contributions.

A thin wrapper over :func:`sigcore.plugins.describe_plugins`. Plain output is
one block per plugin; ``--json`` prints a list of objects on stdout.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Any

import typer

from sigcore.cli import app

__all__ = ["plugins"]


def _entry_text(kind: str, entry: dict[str, Any]) -> str:
    text = entry["name"]
    if "available" in entry:
        text += " (available)" if entry["available"] else " (not available here)"
    if "suffixes" in entry:
        text += f" [{' '.join(entry['suffixes'])}]"
    if kind == "metrics":
        text += (
            " (higher is better)" if entry["higher_is_better"] else " (lower is better)"
        )
    return text


@app.command()
def plugins(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the listing as JSON on stdout.")
    ] = False,
) -> None:
    """List installed plugins (built-in and third-party) and what they contribute.

    Third-party plugins come from the entry-point group ``sigcore``; set
    ``SIGCORE_DISABLE_PLUGIN_AUTOLOAD=1`` to list the built-ins only.
    """
    from sigcore.plugins import describe_plugins

    infos = describe_plugins()
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(i) for i in infos], indent=2))
        return
    for info in infos:
        origin = "built-in" if info.builtin else "third-party"
        source = f"{info.distribution} {info.version}".strip() or "unknown distribution"
        typer.echo(f"{info.name}  ({source}, {origin})")
        for kind, entries in info.contributes.items():
            if entries:
                listed = ", ".join(_entry_text(kind, e) for e in entries)
                typer.echo(f"    {kind}: {listed}")
        others = [h for h in info.hooks if not h.startswith("sigcore_register_")]
        if others:
            typer.echo(f"    hooks: {', '.join(others)}")
