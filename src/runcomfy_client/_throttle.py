"""Flow control for many jobs at once: how many may be in flight, and when to hold back.

Additive increase, multiplicative decrease (as TCP does): a 429 halves the number of jobs allowed
in flight (at most once per ``cooldown``, so a burst of 429s from one moment counts once) and
pauses new submissions for the ``Retry-After`` time; every accepted submission then adds
``1/limit``, so the limit climbs back by about one per round of jobs. Pure logic: the clock is
passed in, nothing sleeps here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["AdaptiveLimit"]


@dataclass
class AdaptiveLimit:
    """The number of jobs allowed in flight, between 1 and ``maximum``."""

    maximum: int
    cooldown: float = 1.0
    default_pause: float = 1.0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    limit: float = field(init=False)
    active: int = field(default=0, init=False)
    peak: int = field(default=0, init=False)
    rate_limited: int = field(default=0, init=False)
    _pause_until: float = field(default=0.0, init=False, repr=False)
    _last_cut: float = field(default=float("-inf"), init=False, repr=False)

    def __post_init__(self) -> None:
        if self.maximum < 1:
            raise ValueError(f"the concurrency must be at least 1, not {self.maximum}")
        self.limit = float(self.maximum)

    @property
    def allowed(self) -> int:
        return max(1, int(self.limit))

    def can_start(self) -> bool:
        """True when another job may start now (below the limit and not paused)."""
        return self.active < self.allowed and self.pause_left() <= 0

    def pause_left(self) -> float:
        return max(0.0, self._pause_until - self.clock())

    def started(self) -> None:
        self.active += 1
        self.peak = max(self.peak, self.active)

    def finished(self) -> None:
        self.active = max(0, self.active - 1)

    def accepted(self) -> None:
        """A submission went through: climb back towards the maximum."""
        self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)

    def on_rate_limited(self, retry_after: float | None = None) -> None:
        """The API answered 429: fewer jobs in flight, and a pause before the next submit."""
        self.rate_limited += 1
        now = self.clock()
        if now - self._last_cut >= self.cooldown:
            self.limit = max(1.0, self.limit / 2.0)
            self._last_cut = now
        pause = self.default_pause if retry_after is None else retry_after
        self._pause_until = max(self._pause_until, now + pause)
