from __future__ import annotations

import pytest

from sigcore.errors import FormatError
from sigcore.io.atomic import atomic_path


def test_renames_on_success_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path
        assert tmp.suffix == ".txt"
        tmp.write_text("new")
        assert not target.exists()
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_failure_keeps_old_file_and_removes_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def crash() -> None:
        with atomic_path(target, overwrite=True) as tmp:
            tmp.write_text("half")
            raise RuntimeError("writer crashed")

    with pytest.raises(RuntimeError, match="writer crashed"):
        crash()
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_refuses_existing_target_without_overwrite(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(FormatError, match="exists; use --force"), atomic_path(target):
        pytest.fail("body must not run")
    with atomic_path(target, overwrite=True) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"


def test_missing_directory_and_empty_body_are_errors(tmp_path):
    with (
        pytest.raises(FormatError, match="does not exist"),
        atomic_path(tmp_path / "nope" / "out.txt"),
    ):
        pass
    with (
        pytest.raises(FormatError, match="produced no file"),
        atomic_path(tmp_path / "out.txt"),
    ):
        pass
    assert not (tmp_path / "out.txt").exists()
