"""Faults the emulator injects on demand: by rate or by a deterministic schedule, seedable.

A fault is written ``KIND[:ENDPOINT,...]=RATE`` (RATE from 0 to 1: the share of eligible requests
hit) or ``KIND[:ENDPOINT,...]=@N,M,...`` (hit exactly the Nth, Mth ... eligible request, counting
from 1). Examples: ``rate_limit=0.1``, ``server_error:status=@1,2``, ``lost_response=1``.

An outage is a window of time instead: ``outage=AT+SECONDS`` makes every request (downloads
included) fail for SECONDS, starting AT seconds after the faults were set (``outage=0+20``: now,
for 20 s). Each request in it gets a gateway's 502/503/504 or a dropped connection.

Answer switches are not faults: they make the emulator speak the other dialects RunComfy's
services and clients are known to use (see :data:`ANSWER_SWITCHES`).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

__all__ = [
    "ANSWER_SWITCHES",
    "API_ENDPOINTS",
    "FAULT_KINDS",
    "Fault",
    "FaultPlan",
    "check_answers",
    "parse_fault",
]

MODEL_ENDPOINTS = frozenset({"submit", "status", "result", "cancel"})
# The Serverless API's job endpoints (emulator/_serverless.py): a deployment's inference, and
# its jobs' status, result and cancel.
SERVERLESS_ENDPOINTS = frozenset(
    {"deployment_submit", "deployment_status", "deployment_result", "deployment_cancel"}
)
API_ENDPOINTS = MODEL_ENDPOINTS | SERVERLESS_ENDPOINTS
_SUBMITS = frozenset({"submit", "deployment_submit"})
# Which endpoints each kind can hit. A submit hit by rate_limit, server_error, drop or error_200
# is refused before any job is created; lost_response creates the job and then loses the answer.
FAULT_KINDS: dict[str, frozenset[str]] = {
    "rate_limit": API_ENDPOINTS,
    "server_error": API_ENDPOINTS,
    "drop": API_ENDPOINTS,
    "lost_response": _SUBMITS,
    "slow": API_ENDPOINTS,
    "truncate": frozenset({"download"}),
    "error_200": API_ENDPOINTS,
    # Serverless webhooks (emulator/_serverless.py): an event sent twice, held back behind the
    # job's next event, or never sent.
    "webhook_duplicate": frozenset({"webhook"}),
    "webhook_reorder": frozenset({"webhook"}),
    "webhook_drop": frozenset({"webhook"}),
    # The job is created, then the answer is a 503: the case where resending pays twice.
    "created_then_503": _SUBMITS,
    # 403 with error_code 403001 (permission denied): a permanent answer.
    "forbidden": API_ENDPOINTS,
    "outage": API_ENDPOINTS | {"download"},
}

# Other spellings and shapes of the API's answers, each seen in RunComfy's services or clients.
ANSWER_SWITCHES: dict[str, str] = {
    "succeeded": "a completed job's status reads 'succeeded'",
    "canceled": "a cancelled job's status and a cancel's outcome read 'canceled'",
    "null_errors": 'success answers carry "error_code": null and "error_message": null',
    "cancellation_requested": "a cancel is answered 'cancellation_requested' (queued or "
    "running); the job ends cancelled a moment later",
    "detail_lists": "error answers carry 'detail' as a list of {loc, msg, type}",
}


def check_answers(names: Iterable[str]) -> frozenset[str]:
    """The answer switches named, or ValueError listing the known ones."""
    chosen = frozenset(n.strip() for n in names if n.strip())
    wrong = sorted(chosen - set(ANSWER_SWITCHES))
    if wrong:
        raise ValueError(
            f"unknown answer switch {', '.join(wrong)}; switches are "
            + ", ".join(sorted(ANSWER_SWITCHES))
        )
    return chosen


@dataclass
class Fault:
    """One fault kind, hitting a share of eligible requests or an exact schedule of them."""

    kind: str
    rate: float = 0.0
    schedule: frozenset[int] = frozenset()
    endpoints: frozenset[str] = frozenset()
    window: tuple[float, float] | None = None  # outage: (starts after, lasts) in seconds
    _seen: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(
                f"unknown fault kind {self.kind!r}; kinds are {', '.join(sorted(FAULT_KINDS))}"
            )
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be between 0 and 1, not {self.rate}")
        allowed = FAULT_KINDS[self.kind]
        if not self.endpoints:
            self.endpoints = allowed
        wrong = set(self.endpoints) - allowed
        if wrong:
            raise ValueError(
                f"fault {self.kind} cannot hit {sorted(wrong)}; it applies to {sorted(allowed)}"
            )
        if (self.kind == "outage") != (self.window is not None):
            raise ValueError("an outage is written outage=AT+SECONDS; other faults take a rate")


def parse_fault(spec: str) -> Fault:
    """Parse ``KIND[:ENDPOINT,...]=RATE`` or ``KIND[:ENDPOINT,...]=@N,M``."""
    head, sep, value = spec.partition("=")
    if not sep or not value.strip():
        raise ValueError(f"fault {spec!r} must look like KIND=RATE or KIND=@N,M")
    kind, _, where = head.strip().partition(":")
    endpoints = frozenset(e.strip() for e in where.split(",") if e.strip())
    value = value.strip()
    if kind.strip() == "outage":
        at, plus, seconds = value.partition("+")
        try:
            window = (float(at), float(seconds))
        except ValueError:
            window = (-1.0, -1.0)
        if not plus or window[0] < 0 or window[1] <= 0:
            raise ValueError(
                f"outage {value!r} must be AT+SECONDS (seconds from now, then how long), "
                "e.g. outage=5+20"
            )
        return Fault("outage", window=window, endpoints=endpoints)
    if value.startswith("@"):
        try:
            schedule = frozenset(int(n) for n in value[1:].split(",") if n.strip())
        except ValueError:
            raise ValueError(f"fault schedule {value!r} must be @ and request numbers") from None
        return Fault(kind.strip(), schedule=schedule, endpoints=endpoints)
    try:
        rate = float(value)
    except ValueError:
        raise ValueError(f"fault rate {value!r} is not a number from 0 to 1") from None
    return Fault(kind.strip(), rate=rate, endpoints=endpoints)


class FaultPlan:
    """Decides, request by request, which fault (if any) hits. Thread-safe and seedable."""

    def __init__(
        self,
        faults: Iterable[Fault | str] = (),
        *,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._seed = seed
        self._clock = clock
        self._faults: list[Fault] = []
        self._rngs: dict[str, random.Random] = {}
        self._since = clock()
        self.replace(faults)

    def replace(self, faults: Iterable[Fault | str]) -> None:
        """Swap in a new set of faults (counters and random streams restart)."""
        parsed = [parse_fault(f) if isinstance(f, str) else f for f in faults]
        with self._lock:
            self._faults = parsed
            self._since = self._clock()  # outage windows count from here
            # One stream per kind, so turning one kind on never changes when another hits.
            self._rngs = {
                f.kind: random.Random(f"{self._seed}:{f.kind}")  # noqa: S311 - not crypto
                for f in parsed
            }

    def hit(self, kind: str, endpoint: str) -> bool:
        """Whether this request, to ``endpoint``, is hit by fault ``kind``."""
        with self._lock:
            for fault in self._faults:
                if fault.kind != kind or endpoint not in fault.endpoints:
                    continue
                if fault.window is not None:
                    start, length = fault.window
                    elapsed = self._clock() - self._since
                    if start <= elapsed < start + length:
                        return True
                    continue
                fault._seen += 1
                if fault.schedule:
                    return fault._seen in fault.schedule
                return self._rngs[kind].random() < fault.rate
        return False

    def rng(self, kind: str) -> random.Random:
        """The random stream of one fault kind (for its details: which 5xx, which header form)."""
        with self._lock:
            return self._rngs.setdefault(kind, random.Random(f"{self._seed}:{kind}:x"))  # noqa: S311

    def __bool__(self) -> bool:
        return bool(self._faults)
