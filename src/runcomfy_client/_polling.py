"""How long to wait before the next status check: a pure policy, tested on its own.

RunComfy's own client polls every 3 s and gives up after 300 s, which a long video job
outlives. This policy checks soon after submitting, backs off while the job is queued (more the
further back it is), and while it runs polls at a share of its running time, so the delay
between completion and its detection stays a small fraction of the job's length. It learns how
long each model's jobs take and then sleeps through most of a job, polling closely only around
the time it is expected to end. It never gives up: deadlines are the caller's choice.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

__all__ = ["PollObservation", "PollingPolicy"]


@dataclass(frozen=True)
class PollObservation:
    """What the waiter knows when it asks for the next delay."""

    status: str
    """``in_queue`` or ``in_progress`` (or any other non-terminal state)."""
    elapsed: float
    """Seconds since the job was submitted (or re-attached)."""
    running_for: float | None = None
    """Seconds since the job was first seen in progress; None while queued."""
    queue_position: int | None = None
    model_id: str | None = None
    queue_rate: float | None = None
    """Jobs per second leaving the queue ahead of this one, as this job has seen it move."""


@dataclass
class _Estimate:
    mean: float
    spread: float
    count: int = 1


@dataclass
class PollingPolicy:
    """Next delay from an observation. Thread-safe; one instance may serve many jobs.

    - first check after ``first_interval``;
    - queued: half the expected wait for the jobs ahead, at the rate the queue is seen to move
      (this job's own observations, else what recent jobs of the model saw), else
      ``queue_interval`` per job ahead; always between ``min_interval`` and ``max_interval``;
    - running, duration unknown: ``proportion`` of the running time, within the bounds;
    - running, duration learned: sleep towards the expected end, then poll every
      ``near_end_interval``.
    """

    first_interval: float = 0.5
    min_interval: float = 0.5
    max_interval: float = 15.0
    queue_interval: float = 1.0
    proportion: float = 0.1
    near_end_interval: float = 2.0
    learn: bool = True
    _estimates: dict[str, _Estimate] = field(default_factory=dict, repr=False)
    _queue_rates: dict[str, float] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def next_delay(self, obs: PollObservation) -> float:
        """Seconds to wait before the next status check."""
        if obs.status == "in_queue":
            ahead = obs.queue_position if obs.queue_position is not None else 1
            rate = obs.queue_rate or self.queue_rate(obs.model_id)
            # With a known rate, check again about halfway to the expected start: a queue that
            # moves fast (short jobs, many workers) is followed closely, a slow one left alone.
            delay = 0.5 * (1 + ahead) / rate if rate else self.queue_interval * (1 + ahead)
            if obs.elapsed < self.first_interval * 2:
                delay = min(delay, self.first_interval)
            return self._bound(delay)
        running = obs.running_for if obs.running_for is not None else obs.elapsed
        estimate = self.expected(obs.model_id)
        if estimate is not None:
            mean, spread = estimate
            earliest = mean - 2 * spread - running
            if earliest > self.near_end_interval:
                # Sleep through most of what is left; the gap halves as the end approaches.
                return max(self.min_interval, earliest * 0.75)
            return self._bound(min(self.near_end_interval, max(self.min_interval, spread)))
        return self._bound(max(self.first_interval, self.proportion * running))

    def _bound(self, delay: float) -> float:
        return min(self.max_interval, max(self.min_interval, delay))

    def record(self, model_id: str | None, running_seconds: float) -> None:
        """Learn from a finished job how long this model's jobs run."""
        if not self.learn or model_id is None or running_seconds <= 0:
            return
        with self._lock:
            known = self._estimates.get(model_id)
            if known is None:
                self._estimates[model_id] = _Estimate(running_seconds, running_seconds * 0.2)
                return
            weight = 0.3
            error = abs(running_seconds - known.mean)
            known.mean += weight * (running_seconds - known.mean)
            known.spread += weight * (error - known.spread)
            known.count += 1

    def record_queue_rate(self, model_id: str | None, rate: float) -> None:
        """Learn how fast a model's queue moves (jobs per second), shared by its jobs."""
        if not self.learn or model_id is None or rate <= 0:
            return
        with self._lock:
            known = self._queue_rates.get(model_id)
            self._queue_rates[model_id] = rate if known is None else known + 0.3 * (rate - known)

    def queue_rate(self, model_id: str | None) -> float | None:
        """The learned rate at which the model's queue moves, in jobs per second."""
        if model_id is None:
            return None
        with self._lock:
            return self._queue_rates.get(model_id)

    def expected(self, model_id: str | None) -> tuple[float, float] | None:
        """(mean, spread) of the model's running time once learned, else None."""
        if model_id is None:
            return None
        with self._lock:
            known = self._estimates.get(model_id)
            return (known.mean, known.spread) if known else None
