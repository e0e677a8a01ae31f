"""What the emulator charges: a job's cost from its model's price, and an account's balance.

The emulator's own reading of a price (the client estimates separately, before submitting):
``base_price_usd`` per ``price_unit``; a unit of output (``output``, ``image``, ``video`` ...)
is charged per file the job made, a ``second`` per second of the clip the job was asked for.
Other units, and models without a price, cost nothing here (``cost`` is then null).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from typing import Any

__all__ = ["Ledger", "job_cost"]

_PER_FILE = frozenset(
    ("output", "outputs", "image", "images", "video", "videos", "clip", "generation", "request")
)
_PER_SECOND = frozenset(("second", "seconds", "sec", "s"))


def job_cost(record: Mapping[str, Any], *, files: int, seconds: float) -> float | None:
    """What a completed job costs in USD; None when its model has no usable price."""
    price = record.get("base_price_usd")
    unit = record.get("price_unit")
    if isinstance(price, bool) or not isinstance(price, (int, float)) or not isinstance(unit, str):
        return None
    if not math.isfinite(price) or price < 0:
        return None
    word = unit.strip().lower()
    if word in _PER_FILE:
        return round(price * max(files, 1), 6)
    if word in _PER_SECOND:
        return round(price * seconds, 6)
    return None


class Ledger:
    """An account's balance in USD (None: unlimited) and what its jobs have spent."""

    def __init__(self, balance: float | None) -> None:
        self.balance = balance
        self.spent = 0.0
        self._lock = threading.Lock()

    def charge(self, cost: float | None) -> None:
        if cost:
            with self._lock:
                self.spent += cost

    @property
    def exhausted(self) -> bool:
        """True once the balance is spent: new jobs are refused (HTTP 402)."""
        return self.balance is not None and self.spent >= self.balance - 1e-9

    def left(self) -> float | None:
        return None if self.balance is None else max(0.0, self.balance - self.spent)
