"""Every hook of DESIGN §3 exists and is documented (datasette's docs test)."""

from __future__ import annotations

import inspect
import re

import pytest

from sigcore import hookspecs

DESIGN_HOOKS = {
    "sigcore_register_backends",
    "sigcore_register_metrics",
    "sigcore_register_readers",
    "sigcore_register_writers",
    "sigcore_register_executors",
    "sigcore_run_start",
    "sigcore_iteration_end",
    "sigcore_run_end",
}

SPECS = {
    name: fn
    for name, fn in vars(hookspecs).items()
    if name.startswith("sigcore_") and callable(fn)
}


def _section(doc: str, title: str) -> str | None:
    """Body of a numpydoc section (``title`` over a dashed rule), or None."""
    match = re.search(
        rf"^{title}\n-{{{len(title)}}}\n(.*?)(?=^\S[^\n]*\n-{{3,}}\n|\Z)",
        doc,
        flags=re.MULTILINE | re.DOTALL,
    )
    return match.group(1) if match else None


def test_design_hooks_exist_as_specs() -> None:
    assert set(SPECS) >= DESIGN_HOOKS
    for name, fn in SPECS.items():
        assert hasattr(fn, "sigcore_spec"), f"{name} is not marked @hookspec"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_hookspec_is_documented(name: str) -> None:
    doc = inspect.getdoc(SPECS[name])
    assert doc, f"{name} has no docstring"
    summary = doc.splitlines()[0]
    assert summary.endswith("."), f"{name}: summary line must end with a period"
    assert re.search(r"\bCalled\b", doc), f"{name}: must say when it is called"
    returns = _section(doc, "Returns")
    assert returns, f"{name}: no Returns section"
    assert returns.strip(), f"{name}: empty Returns section"
    params = list(inspect.signature(SPECS[name]).parameters)
    if params:
        documented = _section(doc, "Parameters") or ""
        for param in params:
            entry = re.search(rf"^{param} :[^\n]*\n( +\S)?", documented, re.MULTILINE)
            assert entry, f"{name}: parameter {param!r} not documented"
            assert entry.group(1), f"{name}: parameter {param!r} has no description"


def test_section_parser_rejects_an_undocumented_spec() -> None:
    doc = "Do something.\n\nCalled never.\n\nParameters\n----------\nrun : Any\n"
    assert _section(doc, "Returns") is None
    assert _section(doc, "Parameters") == "run : Any\n"


def test_registration_hooks_collect_lists_and_lifecycle_hooks_observe() -> None:
    for name, fn in SPECS.items():
        opts = fn.sigcore_spec
        assert not opts.get("firstresult"), f"{name} must collect every plugin"
        if name.startswith("sigcore_register_") and name != "sigcore_register_commands":
            assert inspect.signature(fn).parameters == {}
            assert "list" in str(inspect.signature(fn).return_annotation)
        else:
            assert inspect.signature(fn).return_annotation in (None, "None")
