"""Plugin manager factory, built-in plugin list and typed registries.

Nothing here runs at import time: :func:`get_plugin_manager` builds a manager
on request, registers the built-in plugins (as ``trylast`` implementations, so
third-party plugins are called first) and, unless
``SIGCORE_DISABLE_PLUGIN_AUTOLOAD=1``, loads the entry-point group ``sigcore``.
:func:`build_registry` calls every registration hook once and checks the
contracts; the core only ever talks to the resulting :class:`Registry`.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from sigcore import hookspecs
from sigcore.errors import BackendUnavailable, FormatError, PluginError

__all__ = [
    "DEFAULT_PLUGINS",
    "Registry",
    "build_registry",
    "create_backend",
    "default_registry",
    "find_reader",
    "find_writer",
    "get_plugin_manager",
]

DEFAULT_PLUGINS: tuple[str, ...] = (
    "sigcore.backends.numpy_backend",
    "sigcore.backends.cpu",
    "sigcore.backends.cupy_backend",
    "sigcore.metrics.correlation",
    "sigcore.metrics.imed",
    "sigcore.io.mrc",
    "sigcore.io.relion",
    "sigcore.io.xmipp",
    "sigcore.io.spider",
    "sigcore.io.cryosparc",
    "sigcore.executors",
)

AUTOLOAD_ENV = "SIGCORE_DISABLE_PLUGIN_AUTOLOAD"
BACKEND_PRIORITY: tuple[str, ...] = ("cupy", "cpu", "numpy")

# Attributes every contributed class must have, per kind.
_CONTRACTS: dict[str, tuple[str, ...]] = {
    "backends": ("name", "is_available", "create"),
    "metrics": ("name", "higher_is_better", "score"),
    "readers": ("name", "suffixes", "sniff", "read"),
    "writers": ("name", "suffixes", "write"),
    "executors": ("name", "is_available", "map"),
}


def _autoload_disabled() -> bool:
    return os.environ.get(AUTOLOAD_ENV, "").strip().lower() in {"1", "true", "yes"}


def get_plugin_manager(
    *, autoload: bool | None = None, extra: Iterable[object] = ()
) -> pluggy.PluginManager:
    """Create a plugin manager with the built-ins and, optionally, entry points.

    Parameters
    ----------
    autoload : bool, optional
        Load the ``sigcore`` entry-point group. Default: on, unless the
        environment variable ``SIGCORE_DISABLE_PLUGIN_AUTOLOAD=1`` is set.
    extra : iterable of objects
        Additional plugin objects (modules or instances) to register, e.g. in
        tests.

    Returns
    -------
    pluggy.PluginManager
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for module_name in DEFAULT_PLUGINS:
        module = importlib.import_module(module_name)
        pm.register(module, name=module_name)
    if autoload is None:
        autoload = not _autoload_disabled()
    if autoload:
        try:
            pm.load_setuptools_entrypoints(hookspecs.PROJECT_NAME)
        except Exception as exc:  # a broken third-party plugin must be named
            raise PluginError(f"cannot load a sigcore entry-point plugin: {exc}") from exc
    for plugin in extra:
        pm.register(plugin)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(str(exc)) from exc
    return pm


def plugin_label(pm: pluggy.PluginManager, plugin: object) -> str:
    """Return a human-readable name for a registered plugin (with its distribution)."""
    for candidate, dist in pm.list_plugin_distinfo():
        if candidate is plugin:
            return f"{dist.project_name} {dist.version}"
    name = pm.get_name(plugin)
    if name:
        return name
    if isinstance(plugin, ModuleType):
        return plugin.__name__
    return repr(plugin)


@dataclass(frozen=True)
class Registry:
    """Everything the plugins contribute, by kind and name.

    Attributes
    ----------
    backends, metrics, readers, writers, executors : dict of str to type
        Contributed classes by their ``name``.
    providers : dict of (kind, name) to str
        Which plugin contributed each entry (for messages and ``sigcore plugins``).
    """

    backends: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    readers: dict[str, Any] = field(default_factory=dict)
    writers: dict[str, Any] = field(default_factory=dict)
    executors: dict[str, Any] = field(default_factory=dict)
    providers: dict[tuple[str, str], str] = field(default_factory=dict)


def build_registry(pm: pluggy.PluginManager | None = None) -> Registry:
    """Call every registration hook once and collect the contributions.

    Parameters
    ----------
    pm : pluggy.PluginManager, optional
        Defaults to a fresh :func:`get_plugin_manager`.

    Returns
    -------
    Registry

    Raises
    ------
    PluginError
        When two plugins register the same name for one kind, or a class lacks
        an attribute its contract needs.
    """
    pm = pm or get_plugin_manager()
    registry = Registry()
    for kind in _CONTRACTS:
        caller = getattr(pm.hook, f"sigcore_register_{kind}")
        table: dict[str, Any] = getattr(registry, kind)
        for impl in reversed(caller.get_hookimpls()):  # built-ins first
            label = plugin_label(pm, impl.plugin)
            contributed = impl.function() or []
            for cls in contributed:
                _check_contract(kind, cls, label)
                name = cls.name
                if name in table:
                    other = registry.providers[(kind, name)]
                    raise PluginError(
                        f"{kind[:-1]} name {name!r} is registered twice: "
                        f"by {other} and by {label}"
                    )
                table[name] = cls
                registry.providers[(kind, name)] = label
    return registry


def _check_contract(kind: str, cls: object, label: str) -> None:
    missing = [attr for attr in _CONTRACTS[kind] if not hasattr(cls, attr)]
    if missing:
        raise PluginError(
            f"{label} contributes {kind[:-1]} {cls!r} without "
            f"{', '.join(missing)} (see sigcore.protocols)"
        )


@functools.cache
def default_registry() -> Registry:
    """Return the registry of the default plugin manager (built once, cached)."""
    return build_registry(get_plugin_manager())


def _match(path: Path, suffixes: Iterable[str]) -> bool:
    name = path.name.lower()
    return any(name.endswith(s.lower()) for s in suffixes)


def find_reader(path: str | Path, registry: Registry | None = None) -> Any:
    """Return a reader instance for ``path``, chosen by suffix, then by sniffing.

    Raises
    ------
    FormatError
        When the file does not exist or no reader accepts it.
    """
    path = Path(path)
    registry = registry or default_registry()
    if not path.exists():
        raise FormatError(path, "file not found")
    readers = [cls() for cls in registry.readers.values()]
    for reader in readers:
        if _match(path, reader.suffixes) and reader.sniff(path):
            return reader
    for reader in readers:
        if reader.sniff(path):
            return reader
    known = sorted({s for r in readers for s in r.suffixes})
    raise FormatError(path, f"unrecognised format (known suffixes: {' '.join(known)})")


def find_writer(path: str | Path, registry: Registry | None = None) -> Any:
    """Return a writer instance for ``path`` chosen by its suffix.

    Raises
    ------
    FormatError
        When no writer handles the suffix.
    """
    path = Path(path)
    registry = registry or default_registry()
    for cls in registry.writers.values():
        if _match(path, cls.suffixes):
            return cls()
    known = sorted({s for c in registry.writers.values() for s in c.suffixes})
    raise FormatError(path, f"cannot write this format (known: {' '.join(known)})")


def create_backend(
    name: str = "auto", registry: Registry | None = None, **options: Any
) -> Any:
    """Instantiate a backend by name, or the best available one for ``"auto"``.

    ``"auto"`` tries ``cupy``, then ``cpu``, then ``numpy``.

    Raises
    ------
    BackendUnavailable
        When the named backend is unknown or cannot run here.
    """
    registry = registry or default_registry()
    if name == "auto":
        for candidate in BACKEND_PRIORITY:
            cls = registry.backends.get(candidate)
            if cls is not None and cls.is_available():
                return cls.create(**options)
        raise BackendUnavailable("no array backend is available")
    cls = registry.backends.get(name)
    if cls is None:
        known = ", ".join(sorted(registry.backends))
        raise BackendUnavailable(f"unknown backend {name!r} (available: {known})")
    if not cls.is_available():
        raise BackendUnavailable(f"backend {name!r} cannot run on this machine")
    return cls.create(**options)
