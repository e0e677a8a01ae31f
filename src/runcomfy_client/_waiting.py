"""Following one job to its end: the decisions shared by the sync and async waiters."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ._errors import DeadlineExceededError, JobCancelledError, JobError, JobFailedError
from ._retry import Deadline
from ._types import (
    TERMINAL,
    Cancelled,
    CancelOutcome,
    Ended,
    ErrorInfo,
    Failed,
    JobStatus,
    Queued,
    Result,
    UnknownStatus,
    parse_status,
)

if TYPE_CHECKING:
    from ._polling import PollingPolicy

logger = logging.getLogger("runcomfy_client")

__all__ = ["StatusCallback", "Waiter"]

StatusCallback = Callable[[JobStatus], None]


@dataclass
class Waiter:
    """Tracks one job's states, says how long to sleep, and when the deadline has passed."""

    request_id: str
    model_id: str | None
    policy: PollingPolicy
    timeout: float | None = None
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.started = self.clock()
        # When the job started running is only known to lie between the last check that saw
        # it queued (or the submit) and the first that saw it running. Polling counts from the
        # earliest (so the end is never expected too late); learning uses the middle.
        self.running_since: float | None = None
        self.started_mid: float | None = None
        self.started_within = 0.0
        self.last_queued: float | None = None
        self.last: JobStatus | None = None
        self.checks = 0  # status answers seen, for the policy's request budget
        self.last_check: float | None = None
        # Time spent waiting for answers rather than sleeping: a fixed loop that sleeps after
        # each answer drifts by it, so the budget does too.
        self.answering = 0.0
        self.planned: float | None = None
        self.queued_at: tuple[float, int] | None = None  # first (time, position) seen queued
        self.position: tuple[int | None, float, int] | None = None  # (position, since, repeats)
        self.unknown_reported: set[str] = set()

    def changed(self, status: JobStatus) -> bool:
        """Whether ``status`` differs from the last one seen (state or queue position)."""
        last = self.last
        self.last = status
        if last is None or type(last) is not type(status):
            return True
        return (
            isinstance(status, Queued)
            and isinstance(last, Queued)
            and last.position != status.position
        )

    def next_delay(self, status: JobStatus) -> float | None:
        """Seconds until the next check; None when the job has ended."""
        now = self.clock()
        previous, self.last_check = self.last_check, now
        self.checks += 1
        woke = self.started if previous is None else previous + (self.planned or 0.0)
        self.answering += max(0.0, now - woke)
        if status.done:
            if self.started_mid is not None and status.status == "completed":
                # It ended between the previous check and this one: learn from the middle, and
                # say how uncertain that is (half of each window).
                ended = now if previous is None else (previous + now) / 2
                unsure = (self.started_within + (now - ended) * 2) / 2
                self.policy.record(self.model_id, ended - self.started_mid, unsure)
            return None
        if isinstance(status, Queued):
            self.last_queued = now
            self._note_position(status.position, now)
        elif self.running_since is None:
            earliest = self.last_queued if self.last_queued is not None else self.started
            self.running_since = earliest
            self.started_mid = (earliest + now) / 2
            self.started_within = now - earliest
            self._learn_queue_wait()
        at = self.position
        first = self.queued_at
        from ._polling import PollObservation

        observation = PollObservation(
            queue_rate=self._queue_rate(status, now),
            queue_moved=0 if first is None or at is None or at[0] is None else first[1] - at[0],
            status="in_queue" if isinstance(status, Queued) else "in_progress",
            elapsed=now - self.started,
            running_for=None if self.running_since is None else now - self.running_since,
            queue_position=status.position if isinstance(status, Queued) else None,
            model_id=self.model_id,
            checks=self.checks,
            at_position_for=0.0 if at is None else now - at[1],
            unchanged=0 if at is None else at[2],
            started_within=self.started_within,
            slept=now - self.started - self.answering,
        )
        delay = self.policy.next_delay(observation)
        left = self.time_left()
        self.planned = delay if left is None else max(0.0, min(delay, left))
        return self.planned

    def _note_position(self, position: int | None, now: float) -> None:
        if self.queued_at is None and position is not None:
            self.queued_at = (now, position)
        at = self.position
        if at is not None and at[0] == position:
            self.position = (position, at[1], at[2] + 1)
        else:
            self.position = (position, now, 0)

    def _queue_rate(self, status: JobStatus, now: float) -> float | None:
        """Jobs per second the queue ahead has moved since this job was first seen queued."""
        if not isinstance(status, Queued) or status.position is None or self.queued_at is None:
            return None
        since, first = self.queued_at
        moved = first - status.position
        if moved <= 0 or now <= since:
            return None
        return moved / (now - since)

    def _learn_queue_wait(self) -> None:
        """On leaving the queue: the jobs ahead, and this one, started in the time it waited."""
        if self.queued_at is None or self.started_mid is None:
            return
        since, first = self.queued_at
        if self.started_mid > since:
            self.policy.record_queue_rate(self.model_id, (first + 1) / (self.started_mid - since))

    def needs_result(self, status: JobStatus) -> bool:
        """True for a state this client does not know: ask ``/result`` whether the job ended.

        The first time each unknown state is seen it is logged (once, not every poll).
        """
        if not isinstance(status, UnknownStatus):
            return False
        if isinstance(status, Ended):
            return True  # ended, but only the result says how (a Serverless job's status)
        if status.status not in self.unknown_reported:
            self.unknown_reported.add(status.status)
            logger.warning(
                "job %s answered status %r, which this client does not know; following it by "
                "its result until that carries an output or an error",
                self.request_id,
                status.status,
            )
        return True

    def settle(self, status: JobStatus, result: Result) -> JobStatus:
        """The job's state once its result was read: ended if the result says so."""
        return settled(status, result)

    @property
    def deadline(self) -> Deadline | None:
        """The caller's deadline on the waiter's clock (bounds the retries of each call)."""
        if self.timeout is None:
            return None
        return Deadline(self.started + self.timeout, self.timeout)

    def time_left(self) -> float | None:
        if self.timeout is None:
            return None
        return self.timeout - (self.clock() - self.started)

    def expired(self) -> bool:
        left = self.time_left()
        return left is not None and left <= 0

    def should_cancel(self, status: JobStatus, cancel_on_timeout: bool) -> bool:
        return cancel_on_timeout and isinstance(status, Queued)

    def deadline_error(
        self, status: JobStatus, outcome: CancelOutcome | None
    ) -> DeadlineExceededError:
        cancelled = outcome is not None and outcome.cancelled
        state = "queued" if isinstance(status, Queued) else "in progress"
        if outcome is not None and outcome.outcome == "cancellation_requested":
            state = "cancellation requested"
        elif outcome is not None and not outcome.cancelled:
            state = "in progress"  # it started between the last check and the cancel
        return DeadlineExceededError(
            self.request_id,
            deadline=self.timeout or 0.0,
            cancelled=cancelled,
            status=state,
        )


def settled(status: JobStatus, result: Result) -> JobStatus:
    """``status`` once the job's result was read: the result's ending if it has one."""
    if result.status in TERMINAL:
        return parse_status({**result.raw, "status": result.status}, status.request_id)
    return status


def terminal_error(status: JobStatus) -> JobError | None:
    """The exception for a job that ended without a result (None when it completed)."""
    if isinstance(status, Failed):
        return JobFailedError(status.request_id, status.error)
    if isinstance(status, Cancelled):
        return JobCancelledError(status.request_id)
    return None


def needs_reason(status: JobStatus) -> bool:
    """A failed status that does not say why: the job's result (fetched next) does."""
    return isinstance(status, Failed) and status.error is None


def with_reason(status: JobStatus, result_body: Mapping[str, Any]) -> JobStatus:
    """``status`` with the error its job's result gives (unchanged when that says nothing)."""
    error = ErrorInfo.from_body(result_body.get("error"))
    if isinstance(status, Failed) and error is not None:
        return replace(status, error=error)
    return status


def ended_without_result(result: Result) -> JobError | None:
    """JobFailedError (with the server's error) or JobCancelledError for such a result."""
    if result.status == "failed":
        return JobFailedError(result.request_id, result.error)
    if result.status == "cancelled":
        return JobCancelledError(result.request_id)
    return None


def download_refusal(result: Result) -> JobError | None:
    """Why ``result`` has nothing to download (failed, cancelled, not finished), or None."""
    ended = ended_without_result(result)
    if ended is not None or result.status in ("", "completed"):
        return ended
    return JobError(
        f"job {result.request_id} has not finished (status {result.status}); wait for it "
        "first (wait(), or runcomfy-client wait ID)",
        request_id=result.request_id,
    )
