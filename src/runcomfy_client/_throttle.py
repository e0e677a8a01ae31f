"""Flow control for many jobs at once: how many may be in flight, and when to hold back.

Every 429 pauses new submissions for its ``Retry-After`` (everyone waits, not just the job that
was refused). When 429s are not sporadic but sustained (more than ``cut_share`` of the last
``window`` answers), the number of jobs allowed in flight is halved, at most once per
``cooldown``; every accepted submission then adds ``1/limit``, so the limit climbs back by about
one per round of jobs (additive increase, multiplicative decrease, as TCP does). Judging by the
share keeps a few stray 429s from collapsing a large batch to one job at a time. A pause is
never longer than ``max_pause`` (a ``Retry-After`` of ``inf`` or a year is read as "a while"),
and ``on_pause`` is told of each one, so progress can say why nothing is submitted. Pure logic:
the clock is passed in, nothing sleeps here.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["AdaptiveLimit"]


@dataclass
class AdaptiveLimit:
    """The number of jobs allowed in flight, between 1 and ``maximum``."""

    maximum: int
    cooldown: float = 1.0
    default_pause: float = 1.0
    window: int = 20
    cut_share: float = 0.25
    max_pause: float = 60.0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    on_pause: Callable[[float], None] | None = field(default=None, repr=False)
    limit: float = field(init=False)
    active: int = field(default=0, init=False)
    peak: int = field(default=0, init=False)
    rate_limited: int = field(default=0, init=False)
    cuts: int = field(default=0, init=False)
    _recent: deque[bool] = field(init=False, repr=False)
    _pause_until: float = field(default=0.0, init=False, repr=False)
    _last_cut: float = field(default=float("-inf"), init=False, repr=False)

    def __post_init__(self) -> None:
        if self.maximum < 1:
            raise ValueError(f"the concurrency must be at least 1, not {self.maximum}")
        self.limit = float(self.maximum)
        self._recent = deque(maxlen=self.window)

    @property
    def allowed(self) -> int:
        return max(1, int(self.limit))

    def can_start(self, *, submitting: bool = True) -> bool:
        """True when another job may start now: below the limit, and (for a job that is about
        to be submitted) not paused. A job re-attached by id sends no submit: no pause."""
        paused = submitting and self.pause_left() > 0
        return self.active < self.allowed and not paused

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

    def on_response(self, status: int, retry_after: float | None = None) -> None:
        """Every answer from the API: a 429 pauses submits; sustained 429s cut the limit."""
        limited = status == 429
        self._recent.append(limited)
        if not limited:
            return
        self.rate_limited += 1
        now = self.clock()
        pause = self.default_pause if retry_after is None else retry_after
        if not math.isfinite(pause):
            pause = self.max_pause
        pause = min(max(0.0, pause), self.max_pause)
        if now + pause > self._pause_until:
            self._pause_until = now + pause
            if self.on_pause is not None:
                self.on_pause(pause)
        share = sum(self._recent) / len(self._recent)
        if share > self.cut_share and now - self._last_cut >= self.cooldown:
            self.limit = max(1.0, self.limit / 2.0)
            self._last_cut = now
            self.cuts += 1
