"""Every sigcore hook specification, grouped by concern.

Plugins implement these with ``@sigcore.hookimpl``. Registration hooks return
lists of classes satisfying the contracts in :mod:`sigcore.protocols`; they are
called once when the registry is built, never per image or per direction.
Lifecycle hooks are observers: they return ``None`` and must not modify the
run. Implementations may accept fewer arguments than the spec.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import typer

PROJECT_NAME = "sigcore"
SIGCORE_PLUGIN_API = "1.0"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

# --------------------------------------------------------------------------
# registration
# --------------------------------------------------------------------------


@hookspec
def sigcore_register_backends() -> list[type]:  # type: ignore[empty-body]
    """Contribute array backends.

    Called once per plugin when the registry is built
    (:func:`sigcore.plugins.build_registry`); every plugin's list is collected
    and a name registered twice is a :class:`~sigcore.errors.PluginError`.

    Returns
    -------
    list of type
        Classes satisfying :class:`sigcore.protocols.BackendFactory`: a ``name``
        class attribute, a cheap ``is_available()`` classmethod and a
        ``create(**options)`` classmethod returning a
        :class:`sigcore.protocols.Backend`. Example: the built-in ``cpu``.
    """


@hookspec
def sigcore_register_metrics() -> list[type]:  # type: ignore[empty-body]
    """Contribute similarity metrics.

    Called once per plugin when the registry is built
    (:func:`sigcore.plugins.build_registry`); every plugin's list is collected
    and a name registered twice is a :class:`~sigcore.errors.PluginError`.

    Returns
    -------
    list of type
        Classes satisfying :class:`sigcore.protocols.Metric` (instantiated with
        no arguments): ``name``, ``higher_is_better`` and a batched
        ``score(images, references, xp)``. Example: the built-in ``imed``.
    """


@hookspec
def sigcore_register_readers() -> list[type]:  # type: ignore[empty-body]
    """Contribute file readers.

    Called once per plugin when the registry is built
    (:func:`sigcore.plugins.build_registry`); every plugin's list is collected
    and a name registered twice is a :class:`~sigcore.errors.PluginError`.

    Returns
    -------
    list of type
        Classes satisfying :class:`sigcore.protocols.Reader` (instantiated with
        no arguments): ``name``, ``suffixes``, ``sniff(path)`` and
        ``read(path) -> ImageSet``. Example: the built-in ``relion-star``.
    """


@hookspec
def sigcore_register_writers() -> list[type]:  # type: ignore[empty-body]
    """Contribute file writers.

    Called once per plugin when the registry is built
    (:func:`sigcore.plugins.build_registry`); every plugin's list is collected
    and a name registered twice is a :class:`~sigcore.errors.PluginError`.

    Returns
    -------
    list of type
        Classes satisfying :class:`sigcore.protocols.Writer`: ``name``,
        ``suffixes`` and ``write(data, path, overwrite=False)``.
    """


@hookspec
def sigcore_register_executors() -> list[type]:  # type: ignore[empty-body]
    """Contribute executors that run image chunks (locally, on a cluster).

    Called once per plugin when the registry is built
    (:func:`sigcore.plugins.build_registry`); every plugin's list is collected
    and a name registered twice is a :class:`~sigcore.errors.PluginError`.

    Returns
    -------
    list of type
        Classes satisfying :class:`sigcore.protocols.Executor`, with a cheap
        ``is_available()`` classmethod. Example: the built-in ``local``.
    """


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------


@hookspec
def sigcore_register_commands(app: typer.Typer) -> None:
    """Add subcommands to the ``sigcore`` command line.

    Called once when the CLI starts, after the built-in commands exist.

    Parameters
    ----------
    app : typer.Typer
        The root application; call ``app.command()(fn)`` on it.

    Returns
    -------
    None
        Commands are added to ``app`` in place.
    """


# --------------------------------------------------------------------------
# run lifecycle (observers)
# --------------------------------------------------------------------------


@hookspec
def sigcore_run_start(run: Any) -> None:
    """Observe the start of a reconstruction.

    Called once, after the inputs are validated and before iteration 0.

    Parameters
    ----------
    run : sigcore.scheduler.RunInfo
        The configuration, input summary and output directory.

    Returns
    -------
    None
        Observers must not modify ``run``.
    """


@hookspec
def sigcore_iteration_end(run: Any, iteration: int, state: Any) -> None:
    """Observe the end of one iteration.

    Called once per iteration, after the volume is post-processed and the
    checkpoint written. Progress displays and loggers hang here.

    Parameters
    ----------
    run : sigcore.scheduler.RunInfo
        The configuration, input summary and output directory.
    iteration : int
        0-based iteration number.
    state : sigcore.scheduler.IterationStats
        Figures of this iteration (alpha, significant pairs, timings, ...).

    Returns
    -------
    None
        Observers must not modify ``run`` or ``state``.
    """


@hookspec
def sigcore_run_end(run: Any, result: Any) -> None:
    """Observe the end of a reconstruction.

    Called once, after the outputs are written.

    Parameters
    ----------
    run : sigcore.scheduler.RunInfo
        The configuration, input summary and output directory.
    result : sigcore.scheduler.ReconstructionResult
        The final volume, assignments and per-iteration history.

    Returns
    -------
    None
        Observers must not modify ``run`` or ``result``.
    """
