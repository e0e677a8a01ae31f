"""Hold and release: a test decides when jobs move, instead of betting on job lengths.

Two gates, one per stage a test may want a job to stay in: ``queued`` (no worker starts a job)
and ``running`` (a started job does not end, even once its ``job_seconds`` are up). Both are open
unless held; releasing a gate lets every job waiting at it move on at once. Model API and
Serverless jobs pass the same gates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

__all__ = ["STAGES", "Holds"]

STAGES = ("queued", "running")


class Holds:
    """The gates of one emulator. Used on its event loop only."""

    def __init__(self) -> None:
        self._open = {stage: asyncio.Event() for stage in STAGES}
        for gate in self._open.values():
            gate.set()

    def hold(self, stages: Iterable[str] = STAGES) -> None:
        for stage in _checked(stages):
            self._open[stage].clear()

    def release(self, stages: Iterable[str] = STAGES) -> None:
        for stage in _checked(stages):
            self._open[stage].set()

    def held(self) -> list[str]:
        return [stage for stage in STAGES if not self._open[stage].is_set()]

    async def pass_(self, stage: str, or_when: asyncio.Event | None = None) -> None:
        """Return once ``stage`` is not held (at once when it is not), or once ``or_when`` is
        set: a cancel requested for a held running job ends it, as on the real service."""
        gate = self._open[stage]
        if gate.is_set() or or_when is None:
            await gate.wait()
            return
        waits = [asyncio.ensure_future(gate.wait()), asyncio.ensure_future(or_when.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()


def _checked(stages: Iterable[str]) -> list[str]:
    if isinstance(stages, str):
        stages = [stages]
    chosen = list(stages)
    unknown = [s for s in chosen if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage {unknown[0]!r}: hold one of {', '.join(STAGES)}")
    return chosen
