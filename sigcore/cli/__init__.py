"""The ``sigcore`` command line (typer).

Each command group lives in its own small module and registers itself on
:data:`app`; every command is a thin wrapper over a library call. Errors that a
user can cause (:class:`~sigcore.errors.SigcoreError`) become one line on
stderr and exit code 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from sigcore import __version__
from sigcore.errors import SigcoreError

app = typer.Typer(
    name="sigcore",
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Initial 3D cryo-EM maps from 2D class averages by significant assignment.",
    pretty_exceptions_enable=False,
)

_STATE = {"debug": False}


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"sigcore {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version_callback,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show full tracebacks on errors.")
    ] = False,
) -> None:
    """Initial 3D cryo-EM maps from 2D class averages by significant assignment."""
    _STATE["debug"] = debug


def _load_commands() -> None:
    # Explicit list (no module scanning); each module adds its commands to app.
    from sigcore.cli import (  # noqa: F401
        compare,
        files,
        imaging,
        plugins_cmd,
        run,
        symmetry_cmd,
    )
    from sigcore.plugins import get_plugin_manager

    try:
        get_plugin_manager().hook.sigcore_register_commands(app=app)
    except SigcoreError:
        if _STATE["debug"]:
            raise


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; turn user errors into one line on stderr and exit code 1."""
    _STATE["debug"] = False  # set again by the root callback for this call
    _load_commands()
    try:
        app(args=argv, prog_name="sigcore")
    except SigcoreError as exc:
        if _STATE["debug"] or "--debug" in (argv if argv is not None else sys.argv):
            raise
        typer.echo(f"sigcore: error: {exc}", err=True)
        sys.exit(1)
