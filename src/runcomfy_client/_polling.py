"""How long to wait before the next status check: a pure policy, tested on its own.

RunComfy's own client sleeps 3 s after each status answer, then checks again. This policy is
never busier than that loop: after one immediate check, the second comes only once it has slept
4 s, and each next one only once it has slept 3 s more in all (time spent waiting for answers
does not count, as it does not for the loop); so whatever it believes, it makes at most one
request more than the loop on the same job, two thirds of one on average. Within that budget:

- **queued**: back off while ``queue_position`` does not move (never more than twice the
  interval apart at position 0 while the queue's pace is unknown); once the pace is known (seen
  on this job, or learned from the model's earlier jobs) check about halfway to the expected
  start, but never leave a job of a short model longer than it usually runs;
- **running, model unknown** (cold): check every 3 s, as the loop would;
- **running, running time learned** (warm): a check 6 s in (a fast failure), one at half the
  usual time (a model that got much faster), then gaps as long as the chance of the job ending
  inside them allows: long far from its usual end, ``near_end_interval`` around it; a job that
  outlives its model's usual time is never left more than the interval between checks.

What it learns (running times and queue pace per model) lives in a :class:`PollingMemory`,
which a client keeps in the user's cache folder so the next process starts warm. It never gives
up: deadlines are the caller's choice.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields, replace
from urllib.parse import urlsplit

from ._errors import ConfigurationError
from ._polling_memory import PollingMemory
from ._protocol import is_loopback

__all__ = ["PollObservation", "PollingPolicy", "PollingSettings", "default_policy"]

INTERVAL_ENV = "RUNCOMFY_POLL_INTERVAL"

# Positions beyond this are treated as this far back: the arithmetic stays in floats' range.
_FAR_BACK = 1_000_000
# A warm check may be put off while the expected lateness it risks (chance the job ends in the
# gap, times half the gap) stays under this share of near_end_interval.
_LATENESS = 0.03


@dataclass(frozen=True)
class PollingSettings:
    """The policy's fixed numbers, in seconds. ``scaled()`` changes all of them at once."""

    interval: float = 3.0
    """The fixed loop the policy never out-polls: at most one check per interval on average."""
    first_interval: float = 4.0
    """Slept before the second check at the earliest (the first is immediate). A little after
    the fixed loop's first, so that on average the policy makes two thirds of a request more
    than the loop at most, not a whole one."""
    near_end_interval: float = 2.0
    """Between checks around a warm model's usual running time (mean delay about half this)."""
    max_interval: float = 60.0
    """The longest gap between two checks, however long a job is expected to take."""
    max_queue_interval: float = 15.0
    """The longest gap while queued and the queue's pace is unknown."""
    queue_backoff: float = 1.5
    """Each check that finds the queue position unchanged stretches the next gap by this."""
    max_running_time: float = 6 * 3600.0
    """Ceiling on a learned running time: one runaway job cannot make the policy sleep for hours."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"PollingSettings.{f.name} must be positive, not {value!r}")
        if self.queue_backoff < 1:
            raise ValueError("PollingSettings.queue_backoff must be at least 1")

    def scaled(self, factor: float) -> PollingSettings:
        """Every duration multiplied by ``factor``: 0.1 polls a ten-times-faster world.

        For the emulator, whose jobs take a fraction of real ones (tests, demos, benchmarks).
        """
        if not (math.isfinite(factor) and factor > 0):
            raise ValueError(f"the scale factor must be a positive number, not {factor!r}")
        durations = {f.name: getattr(self, f.name) * factor for f in fields(self)}
        durations.pop("queue_backoff")
        return replace(self, **durations)

    @classmethod
    def with_interval(cls, interval: float) -> PollingSettings:
        """The defaults scaled so that the fixed loop's interval is ``interval`` seconds."""
        return cls().scaled(interval / cls.interval)


@dataclass(frozen=True)
class PollObservation:
    """What the waiter knows when it asks for the next delay."""

    status: str
    """``in_queue`` or ``in_progress`` (or any other non-terminal state)."""
    elapsed: float
    """Seconds since the job was submitted (or re-attached)."""
    running_for: float | None = None
    """Seconds since the job may have started running (the last check that saw it queued, or
    the submit); None while queued."""
    queue_position: int | None = None
    model_id: str | None = None
    queue_rate: float | None = None
    """Jobs per second leaving the queue ahead of this one, as this job has seen it move."""
    queue_moved: int = 0
    """How many places this job has moved up since it was first seen queued."""
    checks: int = 1
    """Status checks made so far, including the one being answered."""
    at_position_for: float = 0.0
    """Seconds since this queue position was first seen."""
    unchanged: int = 0
    """Checks since then that found the same position."""
    started_within: float = 0.0
    """How long the window was in which the job started (between the last check that saw it
    queued, or the submit, and the first that saw it running)."""
    slept: float | None = None
    """Of ``elapsed``, the time spent between checks rather than waiting for answers (None:
    all of it)."""


@dataclass(frozen=True)
class _RunningTime:
    """A model's running time as a normal distribution: ``spread`` is a mean absolute
    deviation (about 0.8 of a standard deviation), never narrower than ``floor``."""

    mean: float
    spread: float
    floor: float
    started_within: float = 0.0  # the start is uniform in a window this long

    def soonest(self) -> float:
        """A running time few of the model's jobs are shorter than (two sigmas under)."""
        return self.mean - 2 * self._sigma()

    def _sigma(self) -> float:
        return math.hypot(max(self.spread * 1.25, self.floor), self.started_within / math.sqrt(12))

    def ended_by(self, t: float) -> float:
        return 0.5 * (1 + math.erf((t - self.mean) / (self._sigma() * math.sqrt(2))))

    def lateness(self, running: float, gap: float) -> float:
        """Expected lateness of a check ``gap`` from now: P(ends in the gap | still running) *
        gap / 2."""
        left = 1 - self.ended_by(running)
        if left <= 1e-12:
            return gap  # far past its usual end: the chance is all in the gap
        chance = (self.ended_by(running + gap) - self.ended_by(running)) / left
        return chance * gap / 2


class PollingPolicy:
    """Next delay from an observation. Thread-safe; one instance may serve many jobs.

    ``settings`` are the fixed numbers (:class:`PollingSettings`); ``memory`` what has been
    learned (a :class:`PollingMemory`: in this process only unless it was given a file; the
    clients give theirs the user's cache file). ``learn=False`` keeps the memory as it is.
    """

    def __init__(
        self,
        settings: PollingSettings | None = None,
        *,
        memory: PollingMemory | None = None,
        learn: bool = True,
    ) -> None:
        self.settings = settings if settings is not None else PollingSettings()
        self.memory = memory if memory is not None else PollingMemory()
        self.learn = learn

    def __repr__(self) -> str:
        return f"PollingPolicy({self.settings!r}, memory={self.memory!r}, learn={self.learn})"

    def next_delay(self, obs: PollObservation) -> float:
        """Seconds to wait before the next status check."""
        wanted = self._queued(obs) if obs.status == "in_queue" else self._running(obs)
        # The budget: check n + 1 may not come before the policy has slept first_interval and
        # n - 1 intervals more, in all (as the fixed loop sleeps an interval after each answer).
        # The first check is the free one.
        s = self.settings
        slept = obs.slept if obs.slept is not None else obs.elapsed
        budget = s.first_interval + s.interval * (obs.checks - 1) - slept
        return max(wanted, budget)

    def _queued(self, obs: PollObservation) -> float:
        s = self.settings
        ahead = min(obs.queue_position or 0, _FAR_BACK)
        # While the position does not move, each check stretches the next gap; at position 0
        # the job may start at any moment, so the gap stays short.
        cap = 2 * s.interval if ahead == 0 else s.max_queue_interval
        backoff = max(s.interval, min(s.interval * s.queue_backoff ** min(obs.unchanged, 64), cap))
        rate = obs.queue_rate
        if obs.queue_moved < 2:
            # One move, seen some time after it happened, says little: trust the model's
            # earlier jobs first.
            rate = self.memory.queue_rate(obs.model_id) or rate
        if not rate:
            return backoff
        # The pace is known: about halfway to the expected start; but never so long that a
        # job starting just after this check could have ended before the next.
        left = (ahead + 1) / rate - obs.at_position_for
        longest = s.max_interval
        known = self.expected(obs.model_id)
        if known is not None:
            longest = min(
                longest, max(s.interval, _RunningTime(*known, s.near_end_interval / 2).soonest())
            )
        return min(longest, max(left / 2, backoff))

    def _running(self, obs: PollObservation) -> float:
        s = self.settings
        known = self.expected(obs.model_id)
        running = obs.running_for if obs.running_for is not None else obs.elapsed
        if known is None:
            return s.interval  # nothing known: the fixed loop's own cadence
        mean, spread = known
        # The start lies somewhere in a window: count from its middle, and widen the spread.
        within = min(obs.started_within, running)
        # A check early on (a fast failure), one at half the usual time (a model that got much
        # faster), then at most as long again as the job has run, and at most max_interval.
        if running < 2 * s.interval:
            gap = 2 * s.interval - running
        else:
            gap = max(running, mean / 2 - running)
        gap = min(gap, s.max_interval)
        if running >= mean:
            gap = min(gap, s.interval)  # overdue: never sparser than the fixed loop
        # The longest gap whose expected lateness stays small: long while the job is far from
        # its usual end, short (down to near_end_interval) around it.
        ends = _RunningTime(mean, spread, floor=s.near_end_interval / 2, started_within=within)
        allowed = s.near_end_interval * _LATENESS
        while gap > s.near_end_interval and ends.lateness(running - within / 2, gap) > allowed:
            gap *= 0.8
        return max(gap, s.near_end_interval)

    # -- what is learned ---------------------------------------------------------------------

    def record(self, model_id: str | None, running_seconds: float, unsure: float = 0.0) -> None:
        """Learn from a finished job how long this model's jobs run (give or take ``unsure``)."""
        if self.learn and model_id is not None:
            seconds = min(running_seconds, self.settings.max_running_time)
            self.memory.record_running(model_id, seconds, unsure)

    def record_queue_rate(self, model_id: str | None, rate: float) -> None:
        """Learn how fast a model's queue moves (jobs per second), shared by its jobs."""
        if self.learn and model_id is not None:
            self.memory.record_queue_rate(model_id, rate)

    def expected(self, model_id: str | None) -> tuple[float, float] | None:
        """(mean, spread) of the model's running time once learned, else None."""
        known = self.memory.running_time(model_id)
        if known is None:
            return None
        mean, spread = known
        ceiling = self.settings.max_running_time
        return min(mean, ceiling), min(spread, ceiling)

    def queue_rate(self, model_id: str | None) -> float | None:
        """The learned rate at which the model's queue moves, in jobs per second."""
        return self.memory.queue_rate(model_id)

    def flush(self) -> None:
        """Write what was learned to the memory's file now (clients do it when closed)."""
        self.memory.flush()


def default_policy(base_url: str) -> PollingPolicy:
    """A client's policy when it is given none.

    ``RUNCOMFY_POLL_INTERVAL`` (seconds) scales every interval (for the emulator, whose jobs
    take a fraction of real ones). What is learned about the real API is kept in the user's
    cache; what is learned from a server on loopback (the emulator) stays in the process.
    """
    settings = PollingSettings()
    text = os.environ.get(INTERVAL_ENV, "").strip()
    if text:
        try:
            settings = PollingSettings.with_interval(float(text))
        except ValueError:
            raise ConfigurationError(
                f"{INTERVAL_ENV} must be a positive number of seconds, not {text!r}"
            ) from None
    host = urlsplit(base_url).hostname or ""
    memory = PollingMemory() if is_loopback(host) else PollingMemory.user_cache(host)
    return PollingPolicy(settings, memory=memory)
