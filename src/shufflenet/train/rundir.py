"""Run directories: a fresh one per run by default, never silently reused, locked while a run writes it,
and file writes that fail with a one-line message (a full disk included) instead of a raw exception.

* :func:`default_output_dir` — ``runs/train/<YYYYmmdd-HHMMSS>-<model>`` (a suffix ``-2``, ``-3``... when
  that name is taken), the directory of a run started without ``output_dir``.
* :func:`check_run_dir` — a directory that already holds a run's results (``last.pt``, ``model.pt``,
  ``summary.json`` or metric rows) is only written by resuming that run; a fresh start there is refused.
  A directory holding only ``config.json``/``run.json`` (a run that stopped before its first checkpoint)
  has nothing to lose and may be reused.
* :class:`RunLock` — an exclusive, non-blocking ``flock`` on ``DIR/.lock`` for the whole run (POSIX; the
  file records the holder's pid and host), so a second process writing the same directory is refused
  instead of interleaving ``metrics.csv``. Under DDP only rank 0 writes, so only rank 0 locks.
* :func:`guard_write` — turns ``OSError`` and ``torch.save``'s writer failures into
  :class:`DiskFullError` / :class:`OutputWriteError`. Every file is written atomically (temp file +
  rename, :mod:`shufflenet._io`), so the previous version of the file is intact after such a failure.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from shufflenet.errors import ShuffleNetError, UserInputError, first_line

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"
RESULT_FILES = ("last.pt", "model.pt", "summary.json")
METRIC_FILES = ("metrics.jsonl", "metrics.csv")
_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
# What torch.save's C++ stream writer raises (as RuntimeError) when the underlying write fails.
_TORCH_WRITE_FAILURE = ("file write failed", "PytorchStreamWriter failed", "inline_container")


class RunDirectoryError(UserInputError):
    """The run directory cannot be used: it holds another run, or cannot be created."""


class RunInUseError(RunDirectoryError):
    """Another process holds the run directory's lock."""


class OutputWriteError(ShuffleNetError):
    """A result file could not be written; the previous version of it is intact."""


class DiskFullError(OutputWriteError):
    """No space left on the device (or quota exceeded) while writing a result file."""


def default_output_dir(model: str, root: str | os.PathLike[str] = "runs/train", *,
                       now: float | None = None) -> Path:
    """Create and return ``root/<YYYYmmdd-HHMMSS>-<model>`` (``-2``, ``-3``... if taken)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", model).strip("._") or "model"
    root = Path(root).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirectoryError(f"cannot create {root}: {exc.strerror or exc}") from None
    for i in range(1, 1000):
        path = root / (f"{stamp}-{name}" if i == 1 else f"{stamp}-{name}-{i}")
        try:
            path.mkdir()  # atomic: two runs started in the same second get different directories
        except FileExistsError:
            continue
        except OSError as exc:
            raise RunDirectoryError(f"cannot create {path}: {exc.strerror or exc}") from None
        return path
    raise RunDirectoryError(f"cannot find a free run directory name under {root}")


RUN_FILES = (*RESULT_FILES, *METRIC_FILES, "config.json", "run.json")


def remove_stale_temp_files(out: Path) -> list[str]:
    """Delete the temporary files an atomic write of a run file leaves when its process was killed
    mid-write (SIGKILL, the OOM killer): ``.last.pt.XXXX.tmp`` and the like. Call it holding the run's
    lock, so no live writer's file can be among them. Returns the names removed."""
    removed = []
    for name in RUN_FILES:
        for tmp in out.glob(f".{name}.*.tmp"):
            try:
                tmp.unlink()
                removed.append(tmp.name)
            except OSError:
                pass
    return removed


def run_contents(out: Path) -> list[str]:
    """The result files of a run that ``out`` holds (empty: nothing a fresh start would lose)."""
    found = [n for n in RESULT_FILES if (out / n).is_file()]
    for name in METRIC_FILES:
        try:
            lines = [ln for ln in (out / name).read_text(encoding="utf-8").splitlines() if ln.strip()]
        except (OSError, UnicodeDecodeError):
            continue
        if len(lines) > (1 if name.endswith(".csv") else 0):  # the CSV header alone is no result
            found.append(name)
    return found


def check_run_dir(out: Path, resume_path: Path | None) -> None:
    """Refuse a fresh start in a directory holding a run, and resuming one run into another's directory."""
    contents = run_contents(out)
    if not contents:
        return
    what = ", ".join(contents)
    if resume_path is None:
        if (out / "last.pt").is_file():
            raise RunDirectoryError(
                f"{out} already holds a run ({what}); continue it with `shufflenet train --resume "
                f"{out / 'last.pt'}`, or start a new run with another -o DIR (or without -o: a new "
                "runs/train/<time>-<model>)")
        raise RunDirectoryError(
            f"{out} already holds a run's results ({what}); start a new run with another -o DIR (or without "
            "-o: a new runs/train/<time>-<model>)")
    if _same_dir(resume_path.parent, out):
        return
    raise RunDirectoryError(
        f"{out} already holds another run ({what}); resume {resume_path} in its own directory "
        f"(-o {resume_path.parent}) or into an empty one")


def _same_dir(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or os.path.samefile(a, b)
    except OSError:
        return False


class RunLock:
    """An exclusive ``flock`` on ``DIR/.lock``, held from :meth:`acquire` to :meth:`release`."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / LOCK_NAME
        self._file: IO[str] | None = None

    def acquire(self) -> RunLock:
        if fcntl is None:  # pragma: no cover
            return self
        try:
            f = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the whole run
        except OSError as exc:
            raise RunDirectoryError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                f.close()
                raise RunDirectoryError(f"cannot lock {self.path}: {exc.strerror or exc}") from None
            f.seek(0)
            holder = f.read().strip()
            f.close()
            who = f"process {holder}" if holder else "another process"
            raise RunInUseError(f"{self.path.parent} is in use: {who} is training into it; wait for it "
                                "to finish, or use another -o DIR") from None
        try:  # who holds it, for the second process's message
            f.seek(0)
            f.truncate()
            f.write(f"{os.getpid()} on {socket.gethostname()}\n")
            f.flush()
        except OSError as exc:  # a full disk or quota: no lock half-held, one clear line
            f.close()
            raise RunDirectoryError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self._file = f
        return self

    def release(self) -> None:
        if self._file is not None:
            # The file stays: unlinking it would let a third process lock a new inode while a second
            # one still waits on the old.
            try:
                self._file.seek(0)
                self._file.truncate()
            except OSError:
                pass
            self._file.close()  # closing drops the flock
            self._file = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def write_failure(exc: BaseException, path: str | os.PathLike[str], note: str) -> OutputWriteError | None:
    """The one-line error for ``exc`` raised while writing ``path``; None when ``exc`` is no write failure."""
    os_errors = [e for e in _chain(exc) if isinstance(e, OSError) and e.errno is not None]
    torch_failure = isinstance(exc, RuntimeError) and any(m in str(exc) for m in _TORCH_WRITE_FAILURE)
    if not (isinstance(exc, OSError) or torch_failure):
        return None
    if any(e.errno in _NO_SPACE for e in os_errors) or (torch_failure and not os_errors):
        # torch's writer reports a failed write without its errno; a full disk is by far the usual cause
        how = "" if os_errors else " (torch: file write failed)"
        return DiskFullError(f"no space left on device writing {path}{how}; {note}")
    first = os_errors[0] if os_errors else exc
    reason = getattr(first, "strerror", None) or first_line(first)
    return OutputWriteError(f"cannot write {path}: {reason}; {note}")


@contextmanager
def guard_write(path: str | os.PathLike[str], note: str | None = None) -> Iterator[None]:
    """Run an (atomic) write of ``path``; a write failure becomes a one-line :class:`OutputWriteError`.

    ``note`` says what is intact; by default "the previous <name> is intact" when ``path`` existed.
    """
    existed = Path(path).exists()
    try:
        yield
    except (OSError, RuntimeError) as exc:
        if note is None:
            name = Path(path).name
            text = f"the previous {name} is intact" if existed else f"no {name} was written"
        else:
            text = note
        err = write_failure(exc, path, text)
        if err is None:
            raise
        raise err from None
