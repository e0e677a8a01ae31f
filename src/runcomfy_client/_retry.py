"""When to retry a request, and how long to wait first: pure decisions, no I/O.

Two kinds of call are retried differently:

- calls about a job that exists (its status, result, cancel, downloads) are never given up
  lightly: the job is paid for. Transient trouble is retried with capped exponential backoff
  for as long as the caller's deadline allows, or without one for ``outage_budget`` seconds
  of continuous trouble (like google-api-core's retries for long-running operations);
- every other call (a submit the server refused with 429 or that never connected, a model
  lookup) is retried at most ``max_retries`` times.

The clock is passed in, so the rules are tested on a virtual one.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Attempts", "Deadline", "RetryNotice", "RetryPolicy", "clip", "parse_retry_after"]

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_JITTER = random.Random()  # noqa: S311 - jitter, not crypto
# A Retry-After beyond a day is not a wait anyone meant; it is read as "a long time" and capped.
_RETRY_AFTER_CEILING = 86_400.0


def parse_retry_after(
    value: str | None, *, now: float | None = None, cap: float | None = None
) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP-date.

    Always a finite number from 0 up to ``cap`` (when given), or None when the header is
    missing or unreadable: ``inf``, ``nan``, ``1e999`` and dates far ahead are capped, never
    waited for.
    """
    if not value:
        return None
    value = value.strip()[:64]
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None:
            return None
        try:
            seconds = when.timestamp() - (time.time() if now is None else now)
        except (OverflowError, OSError, ValueError):
            return None
    if math.isnan(seconds):
        return None
    seconds = min(max(0.0, seconds), _RETRY_AFTER_CEILING)
    return seconds if cap is None else min(seconds, cap)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, honouring ``Retry-After`` up to a cap.

    ``max_retries`` counts retries after the first attempt (so 4 means up to 5 attempts) for
    calls that are not about an existing job. Calls about a job are bounded by time instead:
    the caller's deadline, else ``outage_budget`` seconds of continuous failure (15 minutes).
    """

    max_retries: int = 4
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    retry_after_max: float = 60.0
    jitter: bool = True
    outage_budget: float = 900.0

    def delay(self, retry_number: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry ``retry_number`` (1 for the first retry)."""
        if retry_after is not None and math.isfinite(retry_after):
            return float(min(max(0.0, retry_after), self.retry_after_max))
        exponent = min(retry_number - 1, 64)  # 2**big would overflow a float
        ceiling = float(min(self.backoff_max, self.backoff_base * 2.0**exponent))
        if not self.jitter:
            return float(ceiling)
        # Full jitter, with a floor so that a retry never fires instantly.
        pick = _JITTER.random()
        return ceiling / 2 + pick * ceiling / 2

    @classmethod
    def none(cls) -> RetryPolicy:
        """Never retry (not even a job's calls)."""
        return cls(max_retries=0, outage_budget=0.0)


@dataclass(frozen=True)
class Deadline:
    """The caller's deadline: the clock time ``at`` which ``seconds`` (as asked) run out."""

    at: float
    seconds: float


@dataclass(frozen=True)
class RetryNotice:
    """One retry about to happen, for progress displays: ``str()`` is the line to show."""

    kind: str  # "status", "result", "cancel", "submit", "download", "model"
    request_id: str | None
    reason: str  # "HTTP 503", "ReadTimeout", ...
    failing_for: float  # seconds since this call first failed
    delay: float  # seconds until the next attempt
    retry_after: bool = False  # the delay is the server's Retry-After

    def __str__(self) -> str:
        wait = f"next try in {self.delay:.0f} s" + (" (Retry-After)" if self.retry_after else "")
        if self.failing_for >= 1:
            return (
                f"retrying {self.kind} (API unreachable for {self.failing_for:.0f} s: "
                f"{self.reason}; {wait})"
            )
        return f"retrying {self.kind} after {self.reason} ({wait})"


class Attempts:
    """One call's attempts so far, and whether (and when) another is allowed.

    ``persistent`` calls (about an existing job) are bounded by ``deadline`` or, without one,
    by ``policy.outage_budget`` seconds since the first failure; the others by
    ``policy.max_retries``.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        persistent: bool,
        clock: Callable[[], float] = time.monotonic,
        deadline: Deadline | None = None,
    ) -> None:
        self.policy = policy
        self.persistent = persistent
        self.clock = clock
        self.deadline = deadline
        self.attempt = 1
        self.first_failure: float | None = None

    def failing_for(self) -> float:
        """Seconds since this call first failed (0 before any failure)."""
        if self.first_failure is None:
            return 0.0
        return max(0.0, self.clock() - self.first_failure)

    def next_delay(self, retry_after: float | None = None) -> float | None:
        """Seconds to wait before the next attempt, or None when no attempt is left."""
        now = self.clock()
        if self.first_failure is None:
            self.first_failure = now
        delay = self.policy.delay(self.attempt, retry_after)
        if not self.persistent:
            return delay if self.attempt <= self.policy.max_retries else None
        left = self.ends_at() - now
        if left <= 0:
            return None
        return min(delay, left)

    def ends_at(self) -> float:
        """The clock time after which a persistent call gives up."""
        if self.deadline is not None:
            return self.deadline.at
        assert self.first_failure is not None
        return self.first_failure + self.policy.outage_budget

    def stopped_by_deadline(self) -> bool:
        """True when the caller's deadline, not the outage budget, ended the retries."""
        return self.persistent and self.deadline is not None

    def advance(self) -> None:
        self.attempt += 1


def clip(value: float | None, left: float | None) -> float | None:
    """A timeout no longer than the ``left`` seconds (None: no limit)."""
    if left is None:
        return value
    left = max(left, 0.001)  # 0 would mean "no timeout" to some layers
    return left if value is None else min(value, left)
