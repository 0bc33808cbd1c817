"""Atomic file writes, used for every result, checkpoint, plot and cache this package writes.

A file is written to a temporary name in the destination directory, flushed to disk and renamed over the
destination, so a crash or a full disk never leaves a half-written file where a good one was.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """Open a temporary binary file beside ``path``; on a clean exit it replaces ``path`` atomically."""
    path = Path(path)
    # Fail before creating anything, naming the real problem rather than the temporary file.
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory, not a file", str(path))
    parent = next((q for q in path.absolute().parents if q.exists()), None)
    if parent is not None and not parent.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{parent} is a file, not a directory", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> Path:
    """Write text (UTF-8) or bytes to ``path`` atomically; returns the path."""
    with atomic_file(path) as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def output_problem(path: str | os.PathLike[str], kind: str = "file") -> str | None:
    """Why ``path`` cannot be written as a ``kind`` (``"file"`` or ``"dir"``), or ``None`` when it can.

    Missing parent directories are fine (writes create them); what is refused: a directory where a file is
    wanted (or the reverse), a parent that is a file, and a place this process cannot create files in,
    found by creating (and removing) a temporary file in the nearest existing directory.
    """
    p = Path(os.path.abspath(path))
    if kind == "file":
        if p.is_dir() or str(path).endswith(("/", os.sep)):
            return "is a directory, not a file"
        start = p.parent
    else:
        if p.exists() and not p.is_dir():
            return "exists and is not a directory"
        start = p
    existing = start
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a directory"
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        return f"cannot create files in {existing} ({exc.strerror or exc})"
    return None
