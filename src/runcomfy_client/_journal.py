"""The batch journal: one SQLite row per line of a batch file, saying how far it got.

The rule that keeps a job from being paid for twice: a line is marked ``submitting`` (committed)
before its POST, and ``submitted`` with the request id right after. A line found in
``submitting`` when a batch starts was interrupted between the two: its job may exist, so it
becomes ``uncertain`` and is not submitted again unless the caller asks.

WAL mode with ``synchronous=NORMAL``: a commit survives the process being killed (SIGKILL), which
is the failure this guards against, at a fraction of the cost of a full sync per write. One
process at a time: the journal is locked while a batch runs.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, get_args

from ._errors import ConfigurationError

if TYPE_CHECKING:
    import sqlite3

__all__ = ["FINAL_STATES", "STATES", "Journal", "JournalRow", "LineState"]

LineState = Literal[
    "pending",
    "submitting",
    "submitted",
    "completed",
    "downloaded",
    "failed",
    "cancelled",
    "uncertain",
    "invalid",
]
"""Where a batch line stands (the batch engine's table of moves is ``batch._MOVES``)."""
STATES: tuple[LineState, ...] = get_args(LineState)
# States a resume leaves alone: the job ended (or never will run) and was paid for or refused.
FINAL_STATES: frozenset[LineState] = frozenset({"downloaded", "failed", "cancelled", "invalid"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lines (
    line        INTEGER PRIMARY KEY,  -- line number in the batch file, from 1
    name        TEXT NOT NULL UNIQUE, -- the output folder: the line's id, else line-<n>
    model_id    TEXT NOT NULL,
    digest      TEXT NOT NULL,        -- sha256 of [model id, payload]: a changed line is caught
    state       TEXT NOT NULL,
    request_id  TEXT,
    files       TEXT,                 -- JSON list of paths relative to the output folder
    error       TEXT,
    resubmitted INTEGER NOT NULL DEFAULT 0,  -- submitted again after an uncertain submit
    updated     REAL NOT NULL,
    cost        REAL                  -- USD, as the API reported it for the finished job
);
"""
_COLUMNS = "line, name, model_id, digest, state, request_id, files, error, resubmitted, cost"


@dataclass(frozen=True)
class JournalRow:
    line: int
    name: str
    model_id: str
    digest: str
    state: LineState
    request_id: str | None
    files: tuple[str, ...]
    error: str | None
    resubmitted: int
    cost: float | None = None


class Journal:
    """The journal file of one batch. Use as a context manager: it holds the lock."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None
        self._lock_fd: int | None = None

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

    # -- opening ----------------------------------------------------------------------------

    def open(self) -> Journal:
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock()
        import sqlite3  # only when a batch runs: the CLI's other verbs do not pay for it

        db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        columns = {row[1] for row in db.execute("PRAGMA table_info(lines)")}
        if "cost" not in columns:  # a journal written before costs were recorded
            db.execute("ALTER TABLE lines ADD COLUMN cost REAL")
        self._db = db
        return self

    def _lock(self) -> None:
        # Two processes on one journal could both submit a pending line: refuse the second.
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks here; documented
            return
        # flock on the database file itself: independent of SQLite's own (fcntl) locks.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ConfigurationError(
                f"the journal {self.path} is in use by another batch; wait for it to finish"
            ) from None
        self._lock_fd = fd

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the lock
            self._lock_fd = None

    def __enter__(self) -> Journal:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the journal is not open")
        return self._db

    # -- reading ----------------------------------------------------------------------------

    def rows(self) -> list[JournalRow]:
        cursor = self.db.execute(f"SELECT {_COLUMNS} FROM lines ORDER BY line")  # noqa: S608
        return [_row(r) for r in cursor]

    def row(self, line: int) -> JournalRow | None:
        found = self.db.execute(
            f"SELECT {_COLUMNS} FROM lines WHERE line = ?",  # noqa: S608
            (line,),
        ).fetchone()
        return _row(found) if found else None

    # -- writing (each call is one committed transaction) -------------------------------------

    def add(self, lines: Sequence[tuple[int, str, str, str, str]]) -> None:
        """Add lines ``(line, name, model_id, digest, state)`` not in the journal yet."""
        now = time.time()
        with self._transaction():
            self.db.executemany(
                "INSERT OR IGNORE INTO lines (line, name, model_id, digest, state, updated) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(*line, now) for line in lines],
            )

    def set_state(self, line: int, state: LineState, **fields: Any) -> None:
        """Move a line to ``state``, setting ``request_id``, ``files``, ``error`` or ``cost``."""
        assert state in STATES, state
        columns = ["state = ?", "updated = ?"]
        values: list[Any] = [state, time.time()]
        for column, value in fields.items():
            if column not in ("request_id", "files", "error", "cost"):
                raise ValueError(column)
            columns.append(f"{column} = ?")
            values.append(json.dumps(list(value)) if column == "files" else value)
        values.append(line)
        with self._transaction():
            self.db.execute(f"UPDATE lines SET {', '.join(columns)} WHERE line = ?", values)  # noqa: S608

    def begin_submit(self, line: int, *, resubmit: bool = False) -> None:
        """Mark the line ``submitting``: committed before the POST goes out."""
        bump = ", resubmitted = resubmitted + 1" if resubmit else ""
        with self._transaction():
            self.db.execute(
                f"UPDATE lines SET state = 'submitting', error = NULL, updated = ?{bump} "  # noqa: S608
                "WHERE line = ?",
                (time.time(), line),
            )

    def mark_interrupted_submits(self) -> list[int]:
        """Lines left in ``submitting`` by a crash become ``uncertain``; returns their numbers."""
        with self._transaction():
            found = [
                r[0] for r in self.db.execute("SELECT line FROM lines WHERE state = 'submitting'")
            ]
            self.db.execute(
                "UPDATE lines SET state = 'uncertain', updated = ?, error = ? "
                "WHERE state = 'submitting'",
                (time.time(), "interrupted between marking the submit and recording its id"),
            )
        return found

    def _transaction(self) -> _Transaction:
        return _Transaction(self.db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


def _row(r: Sequence[Any]) -> JournalRow:
    files = tuple(json.loads(r[6])) if r[6] else ()
    return JournalRow(r[0], r[1], r[2], r[3], r[4], r[5], files, r[7], r[8], r[9])
