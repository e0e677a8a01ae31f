"""What a person sees while a job runs, on stderr (stdout carries only results).

Three modes: ``live`` on a terminal (a spinner line with the request id, queue position and
elapsed time, then a progress bar per download), ``plain`` when output is piped or captured (one
line per change, nothing that redraws), ``quiet`` with ``--json``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal

import click

from .._retry import RetryNotice
from .._types import DownloadProgress, JobStatus, Queued, UnknownStatus
from ._terminal import terminal_safe

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live
    from rich.progress import Progress, TaskID
    from rich.text import Text

Mode = Literal["live", "plain", "quiet"]

__all__ = ["JobView", "Mode", "choose_mode", "describe_status", "retry_printer"]


def retry_printer(say: Callable[[str], None], every: float = 10.0) -> Callable[[RetryNotice], None]:
    """Prints retry notices as lines: the first of a streak, then at most one per ``every`` s
    (an outage of 15 minutes is a few dozen lines, not hundreds)."""
    last: list[float] = []

    def show(notice: RetryNotice) -> None:
        now = time.monotonic()
        streak_start = notice.failing_for < 1
        if streak_start or not last or now - last[0] >= every:
            last[:] = [now]
            say(str(notice))

    return show


def choose_mode(as_json: bool) -> Mode:
    if as_json:
        return "quiet"
    return "live" if sys.stdout.isatty() and sys.stderr.isatty() else "plain"


def describe_status(status: JobStatus) -> str:
    """``queued (position 2)``, ``in progress``, ``completed``: the words for a status."""
    if isinstance(status, Queued):
        ahead = "" if status.position is None else f" (position {status.position})"
        return f"queued{ahead}"
    if isinstance(status, UnknownStatus):
        return f"status {status.status!r} (unknown to this client; following it by its result)"
    return status.status.replace("_", " ")


class _Line:
    """The live line: re-rendered on every refresh so the elapsed time keeps moving."""

    def __init__(self, view: JobView) -> None:
        self.view = view

    def __rich__(self) -> Text:
        from rich.text import Text

        v = self.view
        line = Text()
        line.append(terminal_safe(v.request_id or ""), style="bold")
        line.append(f"  {terminal_safe(v.state)}  ")
        line.append(f"{v.elapsed():.0f}s", style="dim")
        return line


class JobView:
    """Shows a job's progress; used as a context manager around the whole run."""

    def __init__(self, mode: Mode, *, console: Console | None = None) -> None:
        self.mode = mode
        self.request_id: str | None = None
        self.state = "validating"
        self.last_status: JobStatus | None = None
        self._started = time.monotonic()
        self._console = console
        self._live: Live | None = None
        self._progress: Progress | None = None
        self._tasks: dict[Path, TaskID] = {}
        self._retry_lines: Callable[[RetryNotice], None] | None = None

    def __enter__(self) -> JobView:
        if self.mode == "live":
            from rich.console import Console
            from rich.live import Live
            from rich.spinner import Spinner

            self._console = self._console or Console(stderr=True)
            self._live = Live(
                Spinner("dots", text=_Line(self)),
                console=self._console,
                refresh_per_second=8,
                transient=True,
            )
            self._live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop redrawing (idempotent); later messages print as plain lines."""
        if self._live is not None:
            self._live.stop()
            self._live = None
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def say(self, text: str) -> None:
        """A line for the person (not in quiet mode), above the live display if there is one."""
        if self.mode == "quiet":
            return
        text = terminal_safe(text)  # statuses, ids and names come from the server
        if self._console is not None and (self._live or self._progress):
            self._console.print(text, markup=False, highlight=False)
        else:
            click.echo(text, err=True)

    def phase(self, state: str) -> None:
        self.state = state
        if self.mode == "plain":
            self.say(f"{state}...")

    def submitted(self, request_id: str) -> None:
        self.request_id = request_id
        self.state = "submitted"
        self.say(f"submitted: request id {request_id}")

    def status(self, status: JobStatus) -> None:
        """The job's status changed (the client reports only changes)."""
        self.last_status = status
        self.state = describe_status(status)
        if self.mode == "plain":
            self.say(f"{status.request_id}  {self.state}  {self.elapsed():.1f}s")

    def retrying(self, notice: RetryNotice) -> None:
        """A call is being retried: "retrying status (API unreachable for 40 s ...)"."""
        if self.mode == "live":
            self.state = str(notice)  # the next status change replaces it
        elif self.mode == "plain":
            if self._retry_lines is None:
                self._retry_lines = retry_printer(self.say)
            self._retry_lines(notice)

    def progress(self, update: DownloadProgress) -> None:
        """Bytes arrived for one output file."""
        if self.mode == "plain":
            if update.done:
                self.say(f"downloaded {update.path.name} ({update.received:,} bytes)")
            return
        if self.mode != "live":
            return
        from rich.markup import escape

        if self._progress is None:
            self._start_progress()
        assert self._progress is not None
        task = self._tasks.get(update.path)
        if task is None:
            task = self._progress.add_task(
                escape(terminal_safe(update.path.name)), total=update.total
            )
            self._tasks[update.path] = task
        self._progress.update(task, completed=update.received, total=update.total)

    def _start_progress(self) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        if self._live is not None:  # the job is over: the spinner gives way to the bars
            self._live.stop()
            self._live = None
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self._console,
        )
        self._progress.start()
