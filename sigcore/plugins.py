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
    "PluginInfo",
    "Registry",
    "build_registry",
    "create_backend",
    "default_registry",
    "describe_plugins",
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
        _load_entry_points(pm)
    for plugin in extra:
        try:
            pm.register(plugin)
        except (pluggy.PluginValidationError, ValueError) as exc:
            raise PluginError(
                f"cannot register plugin {_describe(plugin)}: {_one_line(exc)}"
            ) from exc
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(_one_line(exc)) from exc
    return pm


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    """Load the ``sigcore`` entry points one by one, naming the one that fails."""
    import importlib.metadata

    group = hookspecs.PROJECT_NAME
    for dist in list(importlib.metadata.distributions()):
        for ep in dist.entry_points:
            if ep.group != group or pm.has_plugin(ep.name) or pm.is_blocked(ep.name):
                continue
            try:
                pm.load_setuptools_entrypoints(group, name=ep.name)
            except Exception as exc:  # a broken third-party plugin must be named
                source = f"{dist.metadata['Name']} {dist.version}"
                raise PluginError(
                    f"entry point {ep.name} = {ep.value} (from {source}) is broken: "
                    f"{type(exc).__name__}: {_one_line(exc)}"
                ) from exc


def _one_line(exc: BaseException) -> str:
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())


def _describe(plugin: object) -> str:
    if isinstance(plugin, ModuleType):
        return plugin.__name__
    return getattr(plugin, "__name__", None) or type(plugin).__name__


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
        table: dict[str, Any] = getattr(registry, kind)
        for plugin, contributed in _contributions(pm, kind):
            label = plugin_label(pm, plugin)
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


def _contributions(
    pm: pluggy.PluginManager, kind: str
) -> list[tuple[object, list[Any]]]:
    """Call one registration hook per plugin: (plugin, contributed classes)."""
    caller = getattr(pm.hook, f"sigcore_register_{kind}")
    out = []
    # get_hookimpls() lists trylast implementations (the built-ins) first and
    # the ones called first last: contributions come built-ins first.
    for impl in caller.get_hookimpls():
        contributed = impl.function()
        if contributed is None:
            contributed = []
        if not isinstance(contributed, list | tuple):
            raise PluginError(
                f"{plugin_label(pm, impl.plugin)}: sigcore_register_{kind}() must "
                f"return a list of classes, not {type(contributed).__name__}"
            )
        out.append((impl.plugin, list(contributed)))
    return out


def _check_contract(kind: str, cls: object, label: str) -> None:
    missing = [attr for attr in _CONTRACTS[kind] if not hasattr(cls, attr)]
    if missing:
        raise PluginError(
            f"{label} contributes {kind[:-1]} {cls!r} without "
            f"{', '.join(missing)} (see sigcore.protocols)"
        )
    name = cls.name  # type: ignore[attr-defined]
    if not isinstance(name, str) or not name:
        raise PluginError(
            f"{label} contributes {kind[:-1]} {cls!r} whose name is {name!r}, "
            "not a non-empty string"
        )
    suffixes = getattr(cls, "suffixes", ())
    if isinstance(suffixes, str) or not all(
        isinstance(s, str) and s.startswith(".") for s in suffixes
    ):
        raise PluginError(
            f"{label} contributes {kind[:-1]} {name!r} with suffixes {suffixes!r}; "
            "expected a tuple of strings starting with '.'"
        )


@dataclass(frozen=True)
class PluginInfo:
    """One registered plugin and what it contributes (for ``sigcore plugins``).

    Attributes
    ----------
    name : str
        Name in the plugin manager (module name for built-ins, entry-point
        name for third-party plugins).
    distribution : str
        Distribution that provides it (``"sigcore"`` for built-ins).
    version : str
        Version of that distribution.
    builtin : bool
    hooks : tuple of str
        The hooks it implements.
    contributes : dict of str to list of dict
        Per kind (``"backends"``, ``"metrics"``, ...), one dict per class:
        ``name`` plus ``available`` (backends, executors), ``suffixes``
        (readers, writers), ``higher_is_better`` (metrics).
    """

    name: str
    distribution: str
    version: str
    builtin: bool
    hooks: tuple[str, ...]
    contributes: dict[str, list[dict[str, Any]]]


def describe_plugins(pm: pluggy.PluginManager | None = None) -> list[PluginInfo]:
    """List every registered plugin with its distribution and contributions.

    Parameters
    ----------
    pm : pluggy.PluginManager, optional
        Defaults to a fresh :func:`get_plugin_manager`.

    Returns
    -------
    list of PluginInfo
        Built-ins first (in :data:`DEFAULT_PLUGINS` order), then third-party
        plugins in registration order.

    Raises
    ------
    PluginError
        As :func:`build_registry` (the contributions are validated first).
    """
    from sigcore import __version__

    pm = pm or get_plugin_manager()
    build_registry(pm)
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    per_plugin: dict[int, dict[str, list[dict[str, Any]]]] = {}
    for kind in _CONTRACTS:
        for plugin, contributed in _contributions(pm, kind):
            entries = per_plugin.setdefault(id(plugin), {}).setdefault(kind, [])
            entries.extend(_summary(kind, cls) for cls in contributed)
    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked
            continue
        dist = dists.get(id(plugin))
        builtin = name in DEFAULT_PLUGINS
        hooks = tuple(sorted(h.name for h in pm.get_hookcallers(plugin) or ()))
        infos.append(
            PluginInfo(
                name=name,
                distribution=dist.project_name
                if dist
                else ("sigcore" if builtin else ""),
                version=dist.version if dist else (__version__ if builtin else ""),
                builtin=builtin,
                hooks=hooks,
                contributes=per_plugin.get(id(plugin), {}),
            )
        )
    return infos


def _summary(kind: str, cls: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": cls.name}
    if kind in ("backends", "executors"):
        try:
            entry["available"] = bool(cls.is_available())
        except Exception as exc:  # a probe must not take the listing down
            entry["available"] = False
            entry["error"] = f"{type(exc).__name__}: {_one_line(exc)}"
    if kind in ("readers", "writers"):
        entry["suffixes"] = list(cls.suffixes)
    if kind == "metrics":
        entry["higher_is_better"] = bool(cls.higher_is_better)
    return entry


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
