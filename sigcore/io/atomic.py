"""Atomic output files: write to a temporary sibling, rename on success.

Every sigcore writer (file formats, the scheduler's outputs) goes through
:func:`atomic_path`, so a crash or an error never leaves a half-written file
under the final name and an existing file is never overwritten silently.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from sigcore.errors import FormatError

__all__ = ["atomic_path", "check_writable"]


def check_writable(path: str | Path, *, overwrite: bool = False) -> Path:
    """Check that ``path`` may be written, before any work is done.

    Parameters
    ----------
    path : str or Path
        The final output file.
    overwrite : bool
        Allow replacing an existing file.

    Returns
    -------
    Path

    Raises
    ------
    FormatError
        When the file exists and ``overwrite`` is false, when it is a
        directory, or when its directory does not exist.
    """
    path = Path(path)
    if path.is_dir():
        raise FormatError(path, "is a directory, not a file")
    if path.exists() and not overwrite:
        raise FormatError(path, "exists; use --force to overwrite it")
    if not path.parent.is_dir():
        raise FormatError(path, f"directory {path.parent} does not exist")
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it onto ``path`` on success.

    The temporary name keeps the suffix of ``path`` (some writers look at it)
    and lives in the same directory, so the final ``os.replace`` is atomic.
    If the ``with`` body raises, the temporary file is removed and ``path`` is
    left untouched.

    Parameters
    ----------
    path : str or Path
        The final output file.
    overwrite : bool
        Allow replacing an existing file; otherwise an existing ``path`` is an
        error raised before the body runs.

    Yields
    ------
    Path
        Where the body must write.

    Raises
    ------
    FormatError
        See :func:`check_writable`; also when the body finishes without
        creating the temporary file.

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
    """
    path = check_writable(path, overwrite=overwrite)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        yield tmp
        if not tmp.exists():
            raise FormatError(path, "the writer produced no file")
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
