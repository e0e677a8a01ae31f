"""Batches: many jobs from a JSONL file, concurrently, resumable, never submitted twice.

Each line of a batch file is a JSON object: the job's inputs (by readable names or wire keys),
its model as ``"model"`` (unless one model is given for all), and optionally an ``"id"`` that
names its output folder. The inputs may also be nested under ``"inputs"`` (needed when a field
is itself called ``id`` or ``model``)::

    {"id": "fox", "model": "community/wan-2-2/fun-inpaint", "prompt": "a fox", ...}

Every line is validated before anything is submitted. A SQLite journal records each line's state
(see :mod:`runcomfy_client._journal`), so running the same batch again resumes it: submitted jobs
are re-attached by id, finished ones are downloaded only if their files are missing, and a line
whose submit was interrupted is reported as uncertain rather than paid for twice.

Money: each finished job's reported ``cost`` is recorded on its line. With ``max_cost`` (USD),
no line is submitted whose estimate (:mod:`runcomfy_client._pricing`, from the model's published
price) would take what was spent plus what is in flight past the cap: the batch then stops
submitting, lets the jobs in flight finish, and leaves the other lines pending. A model with no
known price makes ``max_cost`` refuse before anything is submitted. An answer that the balance
is spent (HTTP 402, error 400002) stops submitting the same way.

>>> batch = Batch(read_batch("prompts.jsonl", registry=client.registry), "out/")  # doctest: +SKIP
>>> async for line in batch.run(async_client):                                   # doctest: +SKIP
...     print(line.name, line.state, line.files)
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, cast

from . import _errors as e
from . import _flow as f
from . import _lifecycle as lc
from ._client import AsyncClient, Client
from ._core import ClientCore
from ._deployment_jobs import routes_for
from ._errors import BatchInputError
from ._flow import Effect, Flow, Shielded, Sleep
from ._journal import FINAL_STATES, Journal, JournalRow, LineState
from ._pricing import CostUnknownError, Estimate, estimate
from ._protocol import payload_fingerprint
from ._registry import ModelSchema, Registry
from ._throttle import AdaptiveLimit
from ._types import ErrorInfo, HandleData, Result, job_document

__all__ = [
    "Batch",
    "BatchInputError",
    "BatchLine",
    "LineProblem",
    "LineResult",
    "default_journal_path",
    "read_batch",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_RESERVED_KEYS = ("id", "model", "inputs")
# Errors after which no job exists, so the line can simply be tried again later: a submit ends
# in these only when nothing reached the server (429, or a connection that never opened). Any
# other trouble after sending is a SubmissionUncertainError (see _protocol).
_NOT_CREATED = (e.RateLimitError, e.APIConnectionError, e.APITimeoutError)
# Errors that no amount of retrying fixes for this line; no job was created.
_REFUSED = (e.BadRequestError, e.NotFoundError, e.InputValidationError, e.UploadError)
# Errors that stop the whole batch: every other line would meet them too. (A spent balance
# only stops new submits: the jobs in flight are paid for and run to their end.)
_FATAL = (e.AuthenticationError, e.PermissionDeniedError, e.BatchStorageError)
_STOP_GRACE = 5.0  # seconds a stopped batch waits for a submit already on the wire
_SUBMIT_ROUNDS = 8  # submits refused as rate-limited/unavailable, per line, before giving up


@dataclass(frozen=True)
class LineProblem:
    """Why one line of a batch file cannot be submitted."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class BatchLine:
    """One valid line: its job's model and payload (by wire key), and its output folder."""

    line: int
    name: str
    model_id: str
    payload: dict[str, Any] = field(repr=False)
    model: ModelSchema | None = field(default=None, repr=False, compare=False)
    """The schema it was checked against (its sidecar gives the price)."""

    @property
    def digest(self) -> str:
        return payload_fingerprint(self.model_id, self.payload)


@dataclass(frozen=True)
class LineResult:
    """Where a line ended up in this run (or stands, for lines left alone)."""

    line: int
    name: str
    state: LineState
    request_id: str | None = None
    files: tuple[Path, ...] = ()
    error: str | None = None
    cost: float | None = None
    """USD, as the API reported it for the finished job."""

    @property
    def status(self) -> str | None:
        """The job's status as the API spells it (None while no job is known to exist)."""
        return _JOB_STATUS.get(self.state) if self.request_id else None

    def as_dict(self) -> dict[str, Any]:
        """The line (``line``, ``name``, batch ``state``) and its job's document."""
        error = ErrorInfo(None, self.error) if self.error else None
        job = job_document(
            self.request_id, self.status, files=self.files, error=error, cost=self.cost
        )
        return {"line": self.line, "name": self.name, "state": self.state, **job}


# A line's journal state -> its job's status. A submitted job may be queued or running: the
# journal does not know which, so it says what it last knew: the job was accepted.
_JOB_STATUS = {
    "submitted": "in_queue",
    "completed": "completed",
    "downloaded": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
}


def read_batch(
    source: str | os.PathLike[str] | Iterable[str],
    *,
    registry: Registry,
    model: str | None = None,
    uploads: bool = False,
    skip_invalid: bool = False,
) -> list[BatchLine]:
    """Parse and validate every line; :class:`BatchInputError` lists all invalid ones.

    ``source`` is a JSONL file or its lines. With ``skip_invalid`` the valid lines are returned
    and the invalid ones dropped silently (:func:`check_batch` returns both). With ``uploads``,
    local files for media fields are accepted (the client's uploader turns them into URLs at
    submit time).
    """
    lines, problems = check_batch(source, registry=registry, model=model, uploads=uploads)
    if problems and not skip_invalid:
        raise BatchInputError(problems)
    return lines


def check_batch(
    source: str | os.PathLike[str] | Iterable[str],
    *,
    registry: Registry,
    model: str | None = None,
    uploads: bool = False,
) -> tuple[list[BatchLine], list[LineProblem]]:
    """The valid lines and the problems of the others (every line is checked)."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, encoding="utf-8") as stream:
            texts = stream.read().splitlines()
    else:
        texts = [text.rstrip("\n") for text in source]
    lines: list[BatchLine] = []
    problems: list[LineProblem] = []
    names: dict[str, int] = {}
    for number, text in enumerate(texts, start=1):
        if not text.strip():
            continue
        found = _check_line(number, text, registry, model, uploads)
        if isinstance(found, list):
            problems.extend(found)
            continue
        if found.name in names:
            problems.append(
                LineProblem(number, f"id {found.name!r} is also used by line {names[found.name]}")
            )
            continue
        names[found.name] = number
        lines.append(found)
    return lines, problems


def _check_line(
    number: int, text: str, registry: Registry, model: str | None, uploads: bool
) -> BatchLine | list[LineProblem]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return [LineProblem(number, f"not JSON: {exc.msg} at column {exc.colno}")]
    if not isinstance(data, dict):
        return [LineProblem(number, "must be a JSON object")]
    name = data.get("id", f"line-{number}")
    if not isinstance(name, str) or not _NAME.match(name):
        return [
            LineProblem(
                number,
                f"id {name!r} cannot name a folder: use letters, digits, '.', '_' or '-' "
                "(at most 100, not starting with '.')",
            )
        ]
    model_id = data.get("model", model)
    if not isinstance(model_id, str) or not model_id:
        return [LineProblem(number, 'no model: give "model" on the line, or --model')]
    if isinstance(data.get("inputs"), dict):
        inputs = data["inputs"]
    else:
        inputs = {k: v for k, v in data.items() if k not in _RESERVED_KEYS}
    try:
        validator = registry.validator(model_id)
    except e.UnknownModelError as exc:
        return [LineProblem(number, str(exc))]
    payload, found = validator.check(inputs)
    if uploads:
        _, found = validator.split_local_files(found)
    if found:
        return [LineProblem(number, f"{name}: {problem}") for problem in found]
    return BatchLine(number, name, validator.model.model_id, payload, validator.model)


def default_journal_path(out_dir: str | os.PathLike[str]) -> Path:
    """Beside the output folder: ``out/`` -> ``out.batch.sqlite``."""
    out = Path(out_dir)
    if not out.name:  # "." or "/": name it after the folder it really is
        out = out.resolve()
    return out.with_name(out.name + ".batch.sqlite")


StateCallback = Callable[[int, str], None]


def estimate_lines(lines: Sequence[BatchLine]) -> dict[int, Estimate]:
    """Every line's estimated cost; ConfigurationError naming each model whose price is not
    known (or cannot be estimated), before anything is submitted."""
    found: dict[int, Estimate] = {}
    unknown: dict[str, list[int]] = {}
    reasons: dict[str, str] = {}
    for line in lines:
        if line.model is None:
            raise e.ConfigurationError(
                f"line {line.line}: its schema is not known; read it with read_batch"
            )
        try:
            found[line.line] = estimate(line.model, line.payload)
        except CostUnknownError as exc:
            unknown.setdefault(line.model_id, []).append(line.line)
            reasons.setdefault(line.model_id, str(exc))
    if unknown:
        said = "; ".join(
            f"{reasons[model]} (line{'s' if len(numbers) > 1 else ''} "
            f"{', '.join(map(str, numbers[:5]))}{', ...' if len(numbers) > 5 else ''})"
            for model, numbers in unknown.items()
        )
        raise e.ConfigurationError(
            f"--max-cost needs every job's price, and it is not known: {said}"
        )
    return found


class _Budget:
    """The cost cap: spent (reported costs) plus in flight (estimates) never past ``cap``."""

    def __init__(self, cap: float, estimates: dict[int, Estimate]) -> None:
        self.cap = cap
        self.estimates = estimates
        self.spent = 0.0
        self.held: dict[int, float] = {}

    def room_for(self, line: int) -> bool:
        total = self.spent + sum(self.held.values()) + self.estimates[line].usd
        return total <= self.cap + 1e-9

    def hold(self, line: int) -> None:
        self.held[line] = self.estimates[line].usd

    def settle(self, line: int, cost: float | None, *, ran: bool) -> None:
        """The job ended (``ran``: it completed) or never started: its real cost counts now;
        a completed job that reported none counts its estimate."""
        held = self.held.pop(line, 0.0)
        self.spent += cost if cost is not None else (held if ran else 0.0)

    def left_text(self) -> str:
        in_flight = sum(self.held.values())
        return f"${self.spent:.2f} spent, ${in_flight:.2f} in flight, cap ${self.cap:.2f}"


class Batch:
    """Runs lines as jobs, at most ``concurrency`` in flight, recording each step in a journal.

    ``timeout`` is each job's whole-job deadline. ``resubmit_uncertain`` submits again the lines
    whose earlier submit may or may not have reached the API (a duplicate job is possible: the
    journal counts these as ``resubmitted``). ``on_state(line, state)`` is called on every change.
    ``max_cost`` (USD) caps what the batch's jobs may cost, counting the costs its journal
    recorded in earlier runs (see the module's docstring); ``stop_reason`` says why a run
    stopped submitting, and the lines left pending are reported with it.
    """

    def __init__(
        self,
        lines: Sequence[BatchLine],
        out_dir: str | os.PathLike[str],
        *,
        journal: str | os.PathLike[str] | None = None,
        concurrency: int = 8,
        timeout: float | None = None,
        resubmit_uncertain: bool = False,
        on_state: StateCallback | None = None,
        max_cost: float | None = None,
    ) -> None:
        if concurrency < 1:
            raise e.ConfigurationError(f"concurrency must be at least 1, not {concurrency}")
        if max_cost is not None and not max_cost >= 0:
            raise e.ConfigurationError(f"max_cost must be 0 USD or more, not {max_cost}")
        self.lines = list(lines)
        self.out_dir = Path(out_dir)
        self.journal_path = Path(journal) if journal else default_journal_path(out_dir)
        self.concurrency = concurrency
        self.timeout = timeout
        self.resubmit_uncertain = resubmit_uncertain
        self.on_state = on_state
        self.limit = AdaptiveLimit(concurrency)
        self.uncertain_found: list[int] = []
        self.max_cost = max_cost
        self.budget = (
            _Budget(max_cost, estimate_lines(self.lines)) if max_cost is not None else None
        )
        self.stop_reason: str | None = None
        """Why this run stopped submitting (the cost cap, a spent balance), or None."""

    def stop_submitting(self, reason: str) -> None:
        """Submit nothing more in this run; jobs in flight go on to their end."""
        if self.stop_reason is None:
            self.stop_reason = reason

    def __repr__(self) -> str:
        return (
            f"Batch({len(self.lines)} lines, out_dir={str(self.out_dir)!r}, "
            f"concurrency={self.concurrency})"
        )

    # -- the journal ----------------------------------------------------------------------------

    def _prepare(self, journal: Journal) -> None:
        known = {row.line: row for row in journal.rows()}
        _refuse_renumbered(self.lines, known, journal)
        changed = [
            line.line
            for line in self.lines
            if line.line in known
            and (known[line.line].digest != line.digest or known[line.line].name != line.name)
        ]
        if changed:
            shown = ", ".join(str(n) for n in changed[:10])
            raise e.ConfigurationError(
                f"line(s) {shown} of the batch changed since the journal {journal.path} was "
                "written; restore the file, or start over with a new --journal and --out"
            )
        journal.add([(ln.line, ln.name, ln.model_id, ln.digest, "pending") for ln in self.lines])
        self.uncertain_found = journal.mark_interrupted_submits()
        if self.budget is not None:
            self._account(journal)

    def _account(self, journal: Journal) -> None:
        """What earlier runs spent (their recorded costs) and left in flight, for the cap."""
        assert self.budget is not None
        ours = {ln.line for ln in self.lines}
        for row in journal.rows():
            if row.line not in ours:
                continue
            if row.state in ("submitted", "uncertain"):
                self.budget.hold(row.line)  # may run, or be paid for: held until it ends
            elif row.state in ("completed", "downloaded"):
                self.budget.spent += (
                    row.cost if row.cost is not None else (self.budget.estimates[row.line].usd)
                )
            elif row.cost is not None:
                self.budget.spent += row.cost

    def report(self) -> list[LineResult]:
        """Every line's state as the journal has it (for a summary after a run)."""
        with Journal(self.journal_path) as journal:
            rows = {row.line: row for row in journal.rows()}
        return [self.result_of(rows[ln.line]) for ln in self.lines if ln.line in rows]

    def result_of(self, row: JournalRow) -> LineResult:
        """A journal row as a :class:`LineResult` (files as paths under the output folder)."""
        files = tuple(self.out_dir / row.name / f for f in row.files)
        return LineResult(row.line, row.name, row.state, row.request_id, files, row.error, row.cost)

    # -- running --------------------------------------------------------------------------------

    async def run(self, client: AsyncClient) -> AsyncIterator[LineResult]:
        """Run every line not finished yet; yield each line's result as it settles.

        To leave the loop early, iterate inside ``contextlib.aclosing(batch.run(client))``:
        the jobs in flight are then stopped (their lines keep their state for the next run) and
        the journal is released at once, not whenever the generator is garbage-collected.
        """
        journal = Journal(self.journal_path, folder=self.out_dir).open()
        results: asyncio.Queue[LineResult | BaseException] = asyncio.Queue()
        turns = asyncio.Condition()
        client.response_listeners.append(self.limit.on_response)
        tasks: list[asyncio.Task[None]] = []
        try:
            self._prepare(journal)
            work = _LineWork(self, client, journal)

            async def one(line: BatchLine) -> None:
                try:
                    await results.put(await work.arun(line, turns))
                except asyncio.CancelledError:
                    raise
                except BaseException as exc:  # noqa: BLE001 - judged, then handed on
                    await results.put(work.judge(line, exc))

            tasks = [asyncio.create_task(one(line)) for line in self.lines]
            for _ in tasks:
                item = await results.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            client.response_listeners.remove(self.limit.on_response)
            journal.close()

    def run_sync(self, client: Client) -> Iterator[LineResult]:
        """The same engine for a :class:`Client`, with the client as it is (its ``http_client``,
        listeners, uploader): each line's flow runs in one of ``concurrency`` worker threads.

        Line logic (journal, cost cap, ``on_state``) runs one line at a time, under the batch's
        lock; only the waiting (requests, pauses) runs in parallel. Stopping the iteration, or
        Ctrl-C, ends every pause at once and lets requests on the wire finish: a submit already
        sent is recorded with its request id.
        """
        from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

        journal = Journal(self.journal_path, folder=self.out_dir).open()
        turns = threading.Condition()
        stop = threading.Event()
        client.response_listeners.append(self.limit.on_response)
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="runcomfy-batch")
        try:
            with turns:
                self._prepare(journal)
            work = _LineWork(self, client, journal)

            def one(line: BatchLine) -> LineResult | BaseException:
                try:
                    return work.run(line, turns, stop)
                except BaseException as exc:  # noqa: BLE001 - judged, then handed on
                    return work.judge(line, exc)

            running: set[Future[LineResult | BaseException]] = {
                pool.submit(one, line) for line in self.lines
            }
            while running:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    item = future.result()
                    if isinstance(item, BaseException):
                        raise item
                    yield item
        finally:
            stop.set()
            with turns:
                turns.notify_all()
            pool.shutdown(wait=True, cancel_futures=True)
            client.response_listeners.remove(self.limit.on_response)
            journal.close()


# Where a line may move from each state; staying put (with a new error or cost) is always
# allowed. "submitting" is committed before the POST; see _journal.
_MOVES: dict[LineState, frozenset[LineState]] = {
    "pending": frozenset({"submitting"}),
    "uncertain": frozenset({"submitting"}),
    "submitting": frozenset({"submitted", "uncertain", "pending", "failed"}),
    "submitted": frozenset({"completed", "failed", "cancelled"}),
    "completed": frozenset({"downloaded"}),
    "downloaded": frozenset({"completed"}),  # its files were gone: fetched again
    "failed": frozenset(),
    "cancelled": frozenset(),
    "invalid": frozenset(),
}


class _StoppedError(Exception):
    """The batch is stopping: a line's pause ends here (its journal state stays as it is)."""


def _refuse_renumbered(
    lines: Sequence[BatchLine], known: dict[int, JournalRow], journal: Journal
) -> None:
    """The journal keys lines by number: a line found under another number than the journal
    has it (a line inserted or removed above it, blank lines included) would be run as a new
    line, and the job of the line now at its old number re-attached to the wrong inputs."""
    by_name = {row.name: row for row in known.values()}
    moved = [
        (line, by_name[line.name])
        for line in lines
        if line.name in by_name and by_name[line.name].line != line.line
    ]
    if moved:
        shown = "; ".join(
            f"line {line.line} ({line.name!r}) was line {row.line}" for line, row in moved[:5]
        )
        more = f" and {len(moved) - 5} more" if len(moved) > 5 else ""
        raise e.BatchStorageError(
            f"the batch file's lines were renumbered since the journal {journal.path} was "
            f"written: {shown}{more}. Nothing was submitted; the journal keeps every job's "
            "request id. Restore the file's order (blank lines count), or start over with a "
            "new --journal and --out"
        )


def _disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a write refused for lack of space."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class _LineWork:
    """One line's work, from wherever the journal says it is to where it can go.

    Its I/O is the lifecycle's flows (``_lifecycle``), so the async engine and the sync one
    drive the same code; :meth:`move` is the one way a line changes state.
    """

    def __init__(self, batch: Batch, core: ClientCore[Any], journal: Journal) -> None:
        self.batch = batch
        self.core = core
        self.journal = journal
        self.limit = batch.limit

    # -- the one transition ---------------------------------------------------------------------

    def move(self, line: int, state: LineState, **fields: Any) -> None:
        """Write the line's new state to the journal (committed), then tell ``on_state``."""
        row = self.journal.row(line)
        assert row is not None
        if state != row.state and state not in _MOVES[row.state]:
            raise RuntimeError(f"line {line}: no move from {row.state} to {state}")
        if state == "submitting":
            self.journal.begin_submit(line, resubmit=bool(fields.get("resubmit")))
        else:
            self.journal.set_state(line, state, **fields)
        if self.batch.on_state is not None:
            self.batch.on_state(line, state)

    # -- the engines' entry points --------------------------------------------------------------

    def start(self, line: BatchLine) -> LineResult | tuple[JournalRow, bool]:
        """The line's result when there is nothing to do; else its row and whether it submits."""
        row = self.journal.row(line.line)
        assert row is not None
        if row.state == "downloaded" and all(
            (self.batch.out_dir / row.name / f).is_file() for f in row.files
        ):
            return self.batch.result_of(row)
        if row.state in FINAL_STATES - {"downloaded"}:
            return self.batch.result_of(row)
        if row.state == "uncertain" and not self.batch.resubmit_uncertain:
            return self.batch.result_of(row)
        submitting = row.state in ("pending", "uncertain")
        if submitting and self.batch.stop_reason is not None:
            return self._unsubmitted(line)
        return row, submitting

    async def arun(self, line: BatchLine, turns: asyncio.Condition) -> LineResult:
        """The line on the async client's driver; ``turns`` guards the in-flight limit."""
        started = self.start(line)
        if isinstance(started, LineResult):
            return started
        row, submitting = started
        async with turns:
            while not self.limit.can_start(submitting=submitting):
                pause = self.limit.pause_left() if submitting else 0.0
                with contextlib.suppress(TimeoutError):  # a pause ended: look again
                    await asyncio.wait_for(turns.wait(), timeout=pause or None)
            self.limit.started()
        try:
            driver = cast("AsyncClient", self.core)._driver
            return await driver.run(self.advance(line, row, submitting))
        finally:
            async with turns:
                self.limit.finished()
                turns.notify_all()

    def run(self, line: BatchLine, turns: threading.Condition, stop: threading.Event) -> LineResult:
        """The line on the sync client's driver, in a worker thread: its logic holds ``turns``
        (the batch's lock), released while a request or a pause is under way."""
        client = cast("Client", self.core)
        driver = client._driver
        virtual = "_sleep" in vars(client)  # a test's clock: its sleeps are instant

        def handle(effect: Effect) -> object:
            if stop.is_set():
                raise _StoppedError
            if isinstance(effect, Shielded):  # a submit is never abandoned mid-POST here
                return f.run(effect.flow, handle, None)
            turns.release()
            try:
                if isinstance(effect, Sleep) and not virtual:
                    stop.wait(effect.seconds)
                    return None
                return driver.handle(effect)
            finally:
                turns.acquire()

        with turns:
            started = self.start(line)
            if isinstance(started, LineResult):
                return started
            row, submitting = started
            while not self.limit.can_start(submitting=submitting):
                if stop.is_set():
                    raise _StoppedError
                turns.wait(self.limit.pause_left() if submitting else None)
            self.limit.started()
            try:
                return f.run(self.advance(line, row, submitting), handle, None)
            finally:
                self.limit.finished()
                turns.notify_all()

    def judge(self, line: BatchLine, exc: BaseException) -> LineResult | BaseException:
        """What a line's exception means for the batch: the line's own result (a job that could
        not be handled fails its line only), or the exception that stops the batch."""
        if isinstance(exc, (_StoppedError, *_FATAL)):
            return exc  # every other line would meet it too
        if isinstance(exc, Exception):
            return self.poisoned(line, exc)
        return exc

    # -- the line as a flow ---------------------------------------------------------------------

    def advance(self, line: BatchLine, row: JournalRow, submitting: bool) -> Flow[LineResult]:
        if submitting and not self._may_submit(line):
            return self._unsubmitted(line)
        state, request_id = row.state, row.request_id
        if submitting:
            submitted = yield from self._submit(line, resubmit=state == "uncertain")
            if isinstance(submitted, LineResult):
                return submitted
            state, request_id = "submitted", submitted
        assert request_id is not None
        result = None
        if state == "submitted":
            try:
                result = yield from lc.wait(
                    self.core, request_id, timeout=self.batch.timeout, model_id=line.model_id
                )
            except e.JobCancelledError as exc:
                return self._ended(line, "cancelled", exc)
            except e.DeadlineExceededError as exc:
                if exc.cancelled:
                    return self._ended(line, "cancelled", exc)
                # Still running: a later run re-attaches (its estimate stays held).
                return self._stays(line, "submitted", str(exc))
            except e.JobFailedError as exc:
                return self._ended(line, "failed", exc)
            except e.NotFoundError as exc:
                return self._ended(line, "failed", f"the request is unknown or expired: {exc}")
            except (e.TransportError, e.APIError) as exc:
                return self._stays(line, "submitted", str(exc))
            self._settle(line, result.cost, ran=True)
            self.move(line.line, "completed", cost=result.cost)
        return (yield from self._download(line, request_id, result))

    def _submit(self, line: BatchLine, *, resubmit: bool) -> Flow[str | LineResult]:
        """Submit with the journal's two-step rule; the request id, or the line's result."""
        for round_number in range(1, _SUBMIT_ROUNDS + 1):
            self.move(line.line, "submitting", resubmit=resubmit)
            posting = lc.submit(self.core, line.model_id, line.payload)
            try:
                handle = yield Shielded(posting, _STOP_GRACE, partial(self._late, line))
            except _StoppedError:
                # Stopped before the POST was sent (or while a refused one waited to be sent
                # again): certainly nothing was created.
                self.move(line.line, "pending")
                raise
            except e.SubmissionUncertainError as exc:
                return self._stays(line, "uncertain", str(exc))  # its estimate stays held
            except _FATAL:
                self._settle(line, None, ran=False)
                self.move(line.line, "pending")
                raise
            except e.InsufficientBalanceError as exc:
                # Nothing was created; the jobs in flight are paid for and go on.
                self._settle(line, None, ran=False)
                self.batch.stop_submitting(f"the balance is spent: {exc}")
                return self._stays(line, "pending", f"not submitted: {exc}")
            except _REFUSED as exc:
                return self._ended(line, "failed", f"not submitted: {exc}")
            except _NOT_CREATED as exc:
                # No job exists: back to pending, and try again once the pressure is off.
                self.move(line.line, "pending", error=str(exc))
                if round_number == _SUBMIT_ROUNDS:
                    self._settle(line, None, ran=False)
                    return self._now(line)
                yield Sleep(min(30.0, 0.5 * 2**round_number))
                resubmit = False
                continue
            request_id = cast("HandleData", handle).request_id
            self.move(line.line, "submitted", request_id=request_id)
            self.limit.accepted()
            return request_id
        raise AssertionError("unreachable")

    def _late(self, line: BatchLine, handle: HandleData) -> None:
        """A submit that answered after the batch was stopped: its job is recorded."""
        self.move(line.line, "submitted", request_id=handle.request_id)

    def _download(
        self, line: BatchLine, request_id: str, result: Result | None
    ) -> Flow[LineResult]:
        folder = self.batch.out_dir / line.name
        for stale in folder.glob(".*.part"):  # left by a run that was killed mid-download
            stale.unlink(missing_ok=True)
        try:
            if result is None:
                routes = routes_for(self.core, line.model_id)  # a deployment's job: its own
                result = yield from lc.result_or_raise(self.core, request_id, None, routes)
            paths = yield from lc.download(self.core, result, folder, overwrite=True)
        except (e.DownloadError, e.TransportError, e.APIError, e.JobError, OSError) as exc:
            if _disk_full(exc):  # every other line would meet it too: stop, keep the job
                raise e.BatchStorageError(
                    f"the disk is full: line {line.line}'s outputs (job {request_id}) could not "
                    f"be written to {folder}; free some space and run the same command again: "
                    "finished jobs are downloaded then, nothing is submitted twice",
                    unrecorded=self.journal.unrecorded,
                ) from None
            return self._stays(line, "completed", str(exc))
        names = [str(p.relative_to(folder.resolve())) for p in paths]
        self.move(line.line, "downloaded", files=names, error=None)
        return self._now(line)

    # -- bookkeeping ----------------------------------------------------------------------------

    def _may_submit(self, line: BatchLine) -> bool:
        """Whether this line may be submitted now: the batch still submits, and (with a cost
        cap) its estimate fits beside what is spent and in flight; it is then held."""
        if self.batch.stop_reason is not None:
            return False
        if self.journal.failure is not None:  # it could not record this job's id: none sent
            raise self.journal.failure
        budget = self.batch.budget
        if budget is None:
            return True
        if not budget.room_for(line.line):
            guess = budget.estimates[line.line]
            self.batch.stop_submitting(
                f"--max-cost: line {line.line} would cost about ${guess.usd:.2f} "
                f"({guess.how}) with {budget.left_text()}"
            )
            return False
        budget.hold(line.line)
        return True

    def _unsubmitted(self, line: BatchLine) -> LineResult:
        """A line left pending because the batch stopped submitting, saying why."""
        reason = self.batch.stop_reason or "the batch stopped submitting"
        return self._stays(line, "pending", f"not submitted: {reason}")

    def _settle(self, line: BatchLine, cost: float | None, *, ran: bool) -> None:
        if self.batch.budget is not None:
            self.batch.budget.settle(line.line, cost, ran=ran)

    def _ended(self, line: BatchLine, state: LineState, why: object) -> LineResult:
        """The job ended without running to a result (or was refused): nothing more is held."""
        self._settle(line, None, ran=False)
        self.move(line.line, state, error=str(why))
        return self._now(line)

    def _stays(self, line: BatchLine, state: LineState, error: str) -> LineResult:
        """The line rests in ``state`` with ``error`` until a later run picks it up."""
        self.move(line.line, state, error=error)
        return self._now(line)

    def poisoned(self, line: BatchLine, exc: Exception) -> LineResult:
        """A line whose job could not be handled (an answer no rule covers): recorded on the line,
        which keeps its state so that a later run picks it up; the other lines go on."""
        row = self.journal.row(line.line)
        assert row is not None
        text = f"could not be handled: {type(exc).__name__}: {exc}"[:500]
        return self._stays(line, row.state, text)

    def _now(self, line: BatchLine) -> LineResult:
        row = self.journal.row(line.line)
        assert row is not None
        return self.batch.result_of(row)
