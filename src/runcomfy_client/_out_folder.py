"""A batch's output folder belongs to one journal: two journals on one folder pay twice.

Each journal keys its lines by number; a second journal on the same folder (another
``--journal``, or the folder reached through a symlink, whose default journal is another file)
knows nothing of the first one's jobs and submits every line again. So a running batch holds an
advisory lock on ``.runcomfy-batch.lock`` in the folder (a symlink reaches the same file), and
the file names the journal that owns the folder: while that journal exists, another one is
refused, running or not.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ._errors import BatchStorageError

__all__ = ["LOCK_NAME", "FolderClaim"]

LOCK_NAME = ".runcomfy-batch.lock"
_MAX_LOCK_BYTES = 4096


class FolderClaim:
    """The claim of ``journal`` on ``folder``, held from :meth:`acquire` to :meth:`release`."""

    def __init__(self, folder: Path, journal: Path) -> None:
        self.folder = folder
        self.journal = journal
        self._fd: int | None = None

    def __repr__(self) -> str:
        return f"FolderClaim({str(self.folder)!r})"

    def acquire(self) -> FolderClaim:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks here; documented
            return self
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise BatchStorageError(
                f"the output folder {self.folder} cannot be used: {exc.strerror or exc}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read(fd)
            os.close(fd)
            who = f"journal {holder['journal']}" if holder.get("journal") else "another journal"
            pid = f", process {holder['pid']}" if holder.get("pid") else ""
            raise BatchStorageError(
                f"the output folder {self.folder} is in use by another batch ({who}{pid}); "
                "two journals writing one folder would pay for every line twice. Wait for it "
                "to finish, or give another --out"
            ) from None
        try:
            self._own(fd)
        except BaseException:
            os.close(fd)  # closing releases the lock
            raise
        self._fd = fd
        return self

    def _own(self, fd: int) -> None:
        owner = _read(fd).get("journal")
        if owner and not _same_file(Path(owner), self.journal) and Path(owner).exists():
            raise BatchStorageError(
                f"the output folder {self.folder} belongs to the batch journal {owner}: its "
                "lines' jobs are recorded there, and this journal would submit them again. "
                f"Run with --journal {owner}, or give another --out (or delete {owner} if that "
                "batch is over)"
            )
        record = json.dumps({"journal": str(self.journal.resolve()), "pid": os.getpid()})
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, record.encode() + b"\n", 0)
        except OSError as exc:
            raise BatchStorageError(
                f"the output folder {self.folder} cannot be used: {exc.strerror or exc}"
            ) from None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock; the owner stays recorded
            self._fd = None


def _read(fd: int) -> dict[str, str]:
    """What the lock file says (journal, pid), or nothing if it says nothing sensible."""
    try:
        data = json.loads(os.pread(fd, _MAX_LOCK_BYTES, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: str(v) for k, v in data.items() if k in ("journal", "pid") and v}


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (b.exists() and os.path.samefile(a, b))
    except OSError:
        return False
