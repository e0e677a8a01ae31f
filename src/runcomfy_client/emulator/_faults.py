"""Faults the emulator injects on demand: by rate or by a deterministic schedule, seedable.

A fault is written ``KIND[:ENDPOINT,...]=RATE`` (RATE from 0 to 1: the share of eligible requests
hit) or ``KIND[:ENDPOINT,...]=@N,M,...`` (hit exactly the Nth, Mth ... eligible request, counting
from 1). Examples: ``rate_limit=0.1``, ``server_error:status=@1,2``, ``lost_response=1``.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["API_ENDPOINTS", "FAULT_KINDS", "Fault", "FaultPlan", "parse_fault"]

API_ENDPOINTS = frozenset({"submit", "status", "result", "cancel"})
# Which endpoints each kind can hit. A submit hit by rate_limit, server_error, drop or error_200
# is refused before any job is created; lost_response creates the job and then loses the answer.
FAULT_KINDS: dict[str, frozenset[str]] = {
    "rate_limit": API_ENDPOINTS,
    "server_error": API_ENDPOINTS,
    "drop": API_ENDPOINTS,
    "lost_response": frozenset({"submit"}),
    "slow": API_ENDPOINTS,
    "truncate": frozenset({"download"}),
    "error_200": API_ENDPOINTS,
    # Serverless webhooks (emulator/_serverless.py): an event sent twice, held back behind the
    # job's next event, or never sent.
    "webhook_duplicate": frozenset({"webhook"}),
    "webhook_reorder": frozenset({"webhook"}),
    "webhook_drop": frozenset({"webhook"}),
}


@dataclass
class Fault:
    """One fault kind, hitting a share of eligible requests or an exact schedule of them."""

    kind: str
    rate: float = 0.0
    schedule: frozenset[int] = frozenset()
    endpoints: frozenset[str] = frozenset()
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


def parse_fault(spec: str) -> Fault:
    """Parse ``KIND[:ENDPOINT,...]=RATE`` or ``KIND[:ENDPOINT,...]=@N,M``."""
    head, sep, value = spec.partition("=")
    if not sep or not value.strip():
        raise ValueError(f"fault {spec!r} must look like KIND=RATE or KIND=@N,M")
    kind, _, where = head.strip().partition(":")
    endpoints = frozenset(e.strip() for e in where.split(",") if e.strip())
    value = value.strip()
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

    def __init__(self, faults: Iterable[Fault | str] = (), *, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._seed = seed
        self._faults: list[Fault] = []
        self._rngs: dict[str, random.Random] = {}
        self.replace(faults)

    def replace(self, faults: Iterable[Fault | str]) -> None:
        """Swap in a new set of faults (counters and random streams restart)."""
        parsed = [parse_fault(f) if isinstance(f, str) else f for f in faults]
        with self._lock:
            self._faults = parsed
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

    def describe(self) -> list[str]:
        return [
            f"{f.kind}:{','.join(sorted(f.endpoints))}="
            + (("@" + ",".join(map(str, sorted(f.schedule)))) if f.schedule else f"{f.rate:g}")
            for f in self._faults
        ]
