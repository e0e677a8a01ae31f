"""The batch journal: one SQLite row per line of a batch file, saying how far it got.

The rule that keeps a job from being paid for twice: a line is marked ``submitting`` (committed)
before its POST, and ``submitted`` with the request id right after. A line found in
``submitting`` when a batch starts was interrupted between the two: its job may exist, so it
becomes ``uncertain`` and is not submitted again unless the caller asks.

WAL mode with ``synchronous=NORMAL``: a commit survives the process being killed (SIGKILL), which
is the failure this guards against, at a fraction of the cost of a full sync per write. One
process at a time: the journal is locked while a batch runs, and with its output folder it
claims that folder too (:mod:`runcomfy_client._out_folder`).

A journal that cannot be trusted is never written to: a file that is not SQLite or is damaged,
an SQLite database of another program (its ``application_id`` or tables), or a journal of the
batch writing to another folder is refused with :class:`BatchStorageError`. So is a write that
fails (a full disk): the line keeps its last committed state, so a resume submits nothing twice,
and a request id that could not be recorded is kept in :attr:`Journal.unrecorded` and named in
the error.
"""

from __future__ import annotations

import errno
import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, get_args

from ._errors import BatchStorageError
from ._out_folder import FolderClaim

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
_META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
_APPLICATION_ID = 0x52436A6C  # "RCjl": this file is a runcomfy-client batch journal
_REQUIRED = {"line", "name", "model_id", "digest", "state", "request_id", "files", "error"}
_SQLITE_HEADER = b"SQLite format 3\x00"
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

    def __init__(
        self, path: str | os.PathLike[str], *, folder: str | os.PathLike[str] | None = None
    ) -> None:
        self.path = Path(path)
        self.folder = Path(folder) if folder is not None else None
        """The batch's output folder: claimed while open, and the journal's only folder."""
        self.unrecorded: dict[int, str] = {}
        """Request ids of jobs created that a failed write could not record, by line."""
        self.failure: BatchStorageError | None = None
        """The first write that failed: no submit should be sent once it is set."""
        self._db: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self._claim: FolderClaim | None = None

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

    # -- opening ----------------------------------------------------------------------------

    def open(self) -> Journal:
        import sqlite3  # only when a batch runs: the CLI's other verbs do not pay for it

        try:
            if str(self.path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._check_header()
                self._lock()
            if self.folder is not None:
                self._claim = FolderClaim(self.folder, self.path).acquire()
            self._db = self._connect()
            if self.folder is not None:
                self._bind(self.folder)
        except BaseException as exc:
            self.close()
            if isinstance(exc, (sqlite3.Error, OSError)):
                raise self._failure(exc, "opened") from None
            raise
        return self

    def _check_header(self) -> None:
        """A file that is not SQLite at all is someone else's: never let SQLite touch it."""
        try:
            with open(self.path, "rb") as stream:
                head = stream.read(len(_SQLITE_HEADER))
        except FileNotFoundError:
            return
        if head and head != _SQLITE_HEADER:
            raise BatchStorageError(
                f"the journal {self.path} is not a batch journal (not an SQLite database); "
                "it was not changed and nothing was submitted. Give another --journal"
            )

    def _connect(self) -> sqlite3.Connection:
        import sqlite3

        db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        try:
            # Read before anything is written: a damaged or foreign file is left as it was.
            damage = db.execute("PRAGMA quick_check").fetchall()
            if damage != [("ok",)]:
                shown = "; ".join(str(r[0]) for r in damage[:3])
                raise sqlite3.DatabaseError(f"database disk image is malformed ({shown})")
            self._refuse_foreign(db)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA + _META)
            db.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
            columns = {row[1] for row in db.execute("PRAGMA table_info(lines)")}
            if "cost" not in columns:  # a journal written before costs were recorded
                db.execute("ALTER TABLE lines ADD COLUMN cost REAL")
        except BaseException:
            db.close()
            raise
        return db

    def _refuse_foreign(self, db: sqlite3.Connection) -> None:
        """Another program's database: its ``application_id``, or tables that are not ours."""
        app = db.execute("PRAGMA application_id").fetchone()[0]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        ours = app == _APPLICATION_ID
        if app == 0 and tables:  # a journal from before the id was set has only our tables
            columns = {row[1] for row in db.execute("PRAGMA table_info(lines)")}
            ours = tables <= {"lines", "meta"} and columns >= _REQUIRED
        elif app == 0:
            ours = True  # empty: a new journal
        if not ours:
            shown = ", ".join(sorted(tables)[:5]) or "none"
            raise BatchStorageError(
                f"the journal {self.path} is an SQLite database of another program (tables: "
                f"{shown}); it was not changed and nothing was submitted. Give another --journal"
            )

    def _bind(self, folder: Path) -> None:
        """A journal belongs to one output folder: the one its lines' files were written to."""
        here = str(folder.resolve())
        found = self.db.execute("SELECT value FROM meta WHERE key = 'out'").fetchone()
        if found is None:
            with self._writing("bind it to its output folder"), self._transaction():
                self.db.execute("INSERT INTO meta (key, value) VALUES ('out', ?)", (here,))
            return
        owner = Path(found[0])
        if owner != Path(here) and not (owner.exists() and os.path.samefile(owner, here)):
            raise BatchStorageError(
                f"the journal {self.path} belongs to the batch writing to {owner}, not {folder}; "
                f"nothing was submitted. Give --out {owner}, or another --journal"
            )

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
            raise BatchStorageError(
                f"the journal {self.path} is in use by another batch; wait for it to finish"
            ) from None
        self._lock_fd = fd

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._claim is not None:
            self._claim.release()
            self._claim = None
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
        with self._writing("record the batch's lines"), self._transaction():
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
        request_id = fields.get("request_id")
        with self._writing(f"record line {line} as {state}", line, request_id), self._transaction():
            self.db.execute(f"UPDATE lines SET {', '.join(columns)} WHERE line = ?", values)  # noqa: S608

    def begin_submit(self, line: int, *, resubmit: bool = False) -> None:
        """Mark the line ``submitting``: committed before the POST goes out."""
        bump = ", resubmitted = resubmitted + 1" if resubmit else ""
        with self._writing(f"mark line {line} before its submit"), self._transaction():
            self.db.execute(
                f"UPDATE lines SET state = 'submitting', error = NULL, updated = ?{bump} "  # noqa: S608
                "WHERE line = ?",
                (time.time(), line),
            )

    def mark_interrupted_submits(self) -> list[int]:
        """Lines left in ``submitting`` by a crash become ``uncertain``; returns their numbers."""
        with self._writing("mark interrupted submits"), self._transaction():
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

    @contextmanager
    def _writing(
        self, what: str, line: int | None = None, request_id: str | None = None
    ) -> Iterator[None]:
        """A failed write becomes BatchStorageError; a request id it carried is kept."""
        import sqlite3

        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            if line is not None and request_id:
                self.unrecorded[line] = request_id
            failure = self._failure(exc, f"written (to {what})")
            self.failure = self.failure or failure
            raise failure from None

    def _failure(self, exc: BaseException, doing: str) -> BatchStorageError:
        """What went wrong with the journal's file, what is safe, and what to do."""
        text = str(exc) or type(exc).__name__
        full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
        if full or "disk is full" in text or "database or disk is full" in text:
            said = f"the disk is full: the journal {self.path} could not be {doing}"
            advice = "free some space and run the same command again"
        elif "malformed" in text or "not a database" in text or "corrupt" in text:
            said = f"the journal {self.path} is damaged ({text}) and could not be {doing}"
            advice = (
                "it cannot say which lines were paid for, so nothing more is submitted; "
                "restore it from a backup, or move it aside and give another --out"
            )
        elif isinstance(exc, BatchStorageError):
            return exc
        else:
            said = f"the journal {self.path} could not be {doing} ({text})"
            advice = "fix that and run the same command again"
        lost = ""
        if self.unrecorded:
            ids = ", ".join(f"line {n}: {rid}" for n, rid in sorted(self.unrecorded.items()))
            lost = (
                f"; these jobs were created but not recorded ({ids}): a resume reports their "
                "lines as uncertain and does not submit them again"
            )
        return BatchStorageError(
            f"{said}; {advice}. Every line keeps its last recorded state{lost}",
            unrecorded=self.unrecorded,
        )


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
        if exc_type is None:
            try:
                self.db.execute("COMMIT")
                return
            except BaseException:
                self._rollback()  # a commit that failed (a full disk) leaves nothing half done
                raise
        self._rollback()

    def _rollback(self) -> None:
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")


def _row(r: Sequence[Any]) -> JournalRow:
    files = tuple(json.loads(r[6])) if r[6] else ()
    return JournalRow(r[0], r[1], r[2], r[3], r[4], r[5], files, r[7], r[8], r[9])
