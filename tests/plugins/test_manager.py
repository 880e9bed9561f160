"""Plugin manager: built-ins, entry points, autoload switch, clear errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Any, ClassVar

import pytest

from sigcore import hookimpl
from sigcore.errors import PluginError
from sigcore.plugins import (
    DEFAULT_PLUGINS,
    build_registry,
    describe_plugins,
    get_plugin_manager,
)


def _plugin(name: str, **hooks: Any) -> types.ModuleType:
    """A plugin module called ``name`` with the given (hookimpl-marked) functions."""
    module = types.ModuleType(name)
    for hook, fn in hooks.items():
        setattr(module, hook, fn)
    return module


class _Metric:
    name: ClassVar[str] = "test.metric"
    higher_is_better: ClassVar[bool] = True

    def score(self, images: Any, references: Any, xp: Any) -> Any:
        return xp.sum(images * references, axis=(1, 2))


def test_no_manager_or_entry_point_scan_at_import_time() -> None:
    code = textwrap.dedent(
        f"""
        import importlib, importlib.metadata, pluggy
        calls = []
        original = pluggy.PluginManager.__init__
        def spy(self, *a, **k):
            calls.append("PluginManager")
            original(self, *a, **k)
        pluggy.PluginManager.__init__ = spy
        importlib.metadata.distributions = lambda *a, **k: calls.append("dists")
        importlib.metadata.entry_points = lambda *a, **k: calls.append("eps")
        import sigcore, sigcore.plugins, sigcore.cli
        for name in {DEFAULT_PLUGINS!r}:
            importlib.import_module(name)
        assert calls == [], calls
        sigcore.plugins.get_plugin_manager(autoload=False)
        assert calls == ["PluginManager"], calls
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_each_call_builds_a_fresh_manager() -> None:
    assert get_plugin_manager(autoload=False) is not get_plugin_manager(autoload=False)


def test_builtins_are_registered_as_trylast_plugins() -> None:
    pm = get_plugin_manager(autoload=False)
    names = {name for name, _ in pm.list_name_plugin()}
    assert set(DEFAULT_PLUGINS) <= names
    for name in DEFAULT_PLUGINS:
        for caller in pm.get_hookcallers(pm.get_plugin(name)) or ():
            for impl in caller.get_hookimpls():
                if impl.plugin_name == name and caller.name.startswith(
                    "sigcore_register_"
                ):
                    assert impl.trylast, f"{name}.{caller.name} must be trylast"


def test_third_party_plugin_is_called_before_builtins() -> None:
    calls: list[str] = []

    @hookimpl
    def sigcore_register_executors() -> list[type]:
        calls.append("third-party")
        return []

    pm = get_plugin_manager(
        autoload=False,
        extra=[_plugin("early", sigcore_register_executors=sigcore_register_executors)],
    )
    impls = pm.hook.sigcore_register_executors.get_hookimpls()
    assert impls[-1].plugin_name != "sigcore.executors"  # called first (LIFO)
    assert impls[0].plugin_name == "sigcore.executors"  # trylast


def test_entry_point_plugin_is_discovered(fake_dist: Path) -> None:
    pm = get_plugin_manager()
    assert pm.has_plugin("fake")
    registry = build_registry(pm)
    assert "fake.dot" in registry.metrics
    assert registry.providers[("metrics", "fake.dot")] == "sigcore-fake 0.1"
    info = {p.name: p for p in describe_plugins(pm)}["fake"]
    assert (info.distribution, info.version, info.builtin) == (
        "sigcore-fake",
        "0.1",
        False,
    )
    assert info.contributes == {
        "metrics": [{"name": "fake.dot", "higher_is_better": True}]
    }


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_env_var_turns_autoload_off(
    fake_dist: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("SIGCORE_DISABLE_PLUGIN_AUTOLOAD", value)
    pm = get_plugin_manager()
    assert not pm.has_plugin("fake")
    assert "fake.dot" not in build_registry(pm).metrics
    assert pm.has_plugin("sigcore.executors")  # built-ins stay


def test_explicit_autoload_overrides_env(
    fake_dist: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGCORE_DISABLE_PLUGIN_AUTOLOAD", "0")
    assert get_plugin_manager().has_plugin("fake")
    assert not get_plugin_manager(autoload=False).has_plugin("fake")


def test_duplicate_name_between_builtin_and_plugin_names_both() -> None:
    class Local:
        name: ClassVar[str] = "local"

        @classmethod
        def is_available(cls) -> bool:
            return True

        def map(self, fn: Any, chunks: Any) -> list[Any]:
            return [fn(c) for c in chunks]

    @hookimpl
    def sigcore_register_executors() -> list[type]:
        return [Local]

    pm = get_plugin_manager(
        autoload=False,
        extra=[
            _plugin("my_exec", sigcore_register_executors=sigcore_register_executors)
        ],
    )
    with pytest.raises(PluginError, match=r"'local'.*sigcore\.executors.*my_exec"):
        build_registry(pm)


def test_duplicate_name_between_two_distributions_names_both(
    fake_dist: Path, make_dist: Any
) -> None:
    make_dist(
        "sigcore-other",
        "2.5",
        {"other": "sigcore_other_plugin"},
        {
            "sigcore_other_plugin": """
            from sigcore import hookimpl

            class Dot:
                name = "fake.dot"
                higher_is_better = True

                def score(self, images, references, xp):
                    return (images * references).sum(axis=(1, 2))

            @hookimpl
            def sigcore_register_metrics():
                return [Dot]
            """
        },
    )
    with pytest.raises(PluginError) as info:
        build_registry(get_plugin_manager())
    message = str(info.value)
    assert "'fake.dot' is registered twice" in message
    assert "sigcore-fake 0.1" in message
    assert "sigcore-other 2.5" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("attrs", "problem"),
    [
        ({"higher_is_better": True}, "without score"),
        ({"score": lambda self, a, b, xp: a}, "without higher_is_better"),
        (
            {"name": 3, "higher_is_better": True, "score": lambda s, a, b, xp: a},
            "name is 3",
        ),
    ],
)
def test_class_missing_its_contract_is_named(
    attrs: dict[str, Any], problem: str
) -> None:
    broken = type("Broken", (), {"name": "test.broken", **attrs})

    @hookimpl
    def sigcore_register_metrics() -> list[type]:
        return [broken]

    pm = get_plugin_manager(
        autoload=False,
        extra=[
            _plugin("broken_metrics", sigcore_register_metrics=sigcore_register_metrics)
        ],
    )
    with pytest.raises(
        PluginError, match=rf"broken_metrics contributes metric .*{problem}"
    ):
        build_registry(pm)


def test_reader_suffixes_must_be_dotted() -> None:
    class Reader:
        name: ClassVar[str] = "test.reader"
        suffixes: ClassVar[tuple[str, ...]] = ("txt",)

        def sniff(self, path: Path) -> bool:
            return False

        def read(self, path: Path) -> Any:
            raise NotImplementedError

    @hookimpl
    def sigcore_register_readers() -> list[type]:
        return [Reader]

    pm = get_plugin_manager(
        autoload=False,
        extra=[_plugin("rd", sigcore_register_readers=sigcore_register_readers)],
    )
    with pytest.raises(
        PluginError, match=r"rd contributes reader 'test.reader' with suffixes"
    ):
        build_registry(pm)


def test_hook_returning_a_class_instead_of_a_list() -> None:
    @hookimpl
    def sigcore_register_metrics() -> type:
        return _Metric

    pm = get_plugin_manager(
        autoload=False,
        extra=[_plugin("single", sigcore_register_metrics=sigcore_register_metrics)],
    )
    with pytest.raises(
        PluginError, match=r"single: sigcore_register_metrics\(\) must return a list"
    ):
        build_registry(pm)


def test_bad_hook_signature_is_a_clear_error() -> None:
    @hookimpl
    def sigcore_run_start(run: Any, verbose: bool) -> None:
        return None

    with pytest.raises(PluginError) as info:
        get_plugin_manager(
            autoload=False,
            extra=[_plugin("chatty", sigcore_run_start=sigcore_run_start)],
        )
    message = str(info.value)
    assert "chatty" in message
    assert "sigcore_run_start" in message
    assert "verbose" in message
    assert "\n" not in message


def test_unknown_hook_name_is_a_clear_error() -> None:
    @hookimpl
    def sigcore_register_metric() -> list[type]:  # typo: missing "s"
        return [_Metric]

    with pytest.raises(PluginError, match="sigcore_register_metric"):
        get_plugin_manager(
            autoload=False,
            extra=[_plugin("typo", sigcore_register_metric=sigcore_register_metric)],
        )


def test_entry_point_with_bad_signature_names_the_distribution(make_dist: Any) -> None:
    make_dist(
        "sigcore-badsig",
        "0.3",
        {"badsig": "sigcore_badsig_plugin"},
        {
            "sigcore_badsig_plugin": """
            from sigcore import hookimpl

            @hookimpl
            def sigcore_register_metrics(backend):
                return []
            """
        },
    )
    with pytest.raises(PluginError) as info:
        get_plugin_manager()
    message = str(info.value)
    assert "badsig = sigcore_badsig_plugin" in message
    assert "sigcore-badsig 0.3" in message
    assert "backend" in message
    assert "\n" not in message


def test_entry_point_that_fails_to_import_names_the_distribution(
    make_dist: Any,
) -> None:
    make_dist(
        "sigcore-broken",
        "1.0",
        {"broken": "sigcore_broken_plugin"},
        {"sigcore_broken_plugin": "import a_module_that_does_not_exist_here\n"},
    )
    with pytest.raises(
        PluginError,
        match=r"broken = sigcore_broken_plugin \(from sigcore-broken 1\.0\)"
        r".*ModuleNotFoundError",
    ):
        get_plugin_manager()
    assert not get_plugin_manager(autoload=False).has_plugin("broken")


def test_describe_plugins_lists_builtins_with_sigcore_version() -> None:
    import sigcore

    infos = describe_plugins(get_plugin_manager(autoload=False))
    assert [i.name for i in infos][: len(DEFAULT_PLUGINS)] == list(DEFAULT_PLUGINS)
    executors = {i.name: i for i in infos}["sigcore.executors"]
    assert executors.builtin
    assert (executors.distribution, executors.version) == (
        "sigcore",
        sigcore.__version__,
    )
    assert executors.hooks == ("sigcore_register_executors",)
    names = [e["name"] for e in executors.contributes["executors"]]
    assert names == ["local", "dask"]
    assert executors.contributes["executors"][0]["available"] is True
