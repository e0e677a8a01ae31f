"""When to retry a request, and how long to wait first: pure decisions, no I/O."""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass

__all__ = ["RetryPolicy", "parse_retry_after"]

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# A submit may only be retried when the server certainly created no job: it refused the
# request outright (429), or said it is unavailable before processing it (503).
SUBMIT_RETRYABLE_STATUS = frozenset({429, 503})
_JITTER = random.Random()  # noqa: S311 - jitter, not crypto


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, honouring ``Retry-After`` up to a cap.

    ``max_retries`` counts retries after the first attempt (so 4 means up to 5 attempts).
    """

    max_retries: int = 4
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    retry_after_max: float = 60.0
    jitter: bool = True

    def delay(
        self, retry_number: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait before retry ``retry_number`` (1 for the first retry)."""
        if retry_after is not None:
            return float(min(retry_after, self.retry_after_max))
        ceiling = float(min(self.backoff_max, self.backoff_base * 2.0 ** (retry_number - 1)))
        if not self.jitter:
            return float(ceiling)
        # Full jitter, with a floor so that a retry never fires instantly.
        pick = (rng or _JITTER).random()
        return ceiling / 2 + pick * ceiling / 2

    @classmethod
    def none(cls) -> RetryPolicy:
        """Never retry."""
        return cls(max_retries=0)
