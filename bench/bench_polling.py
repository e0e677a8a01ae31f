"""The polling policy on a virtual clock, against fixed-interval pollers.

Reference workload (seeded, 2,000 jobs): video jobs of 81 frames (running 150 s +- 20 s) and 141
frames (260 s +- 30 s), half each. Queue waits: half the jobs start at once, 30 % wait 5-60 s,
20 % wait 1-10 minutes; a queued job's position falls evenly from (wait / 30 s) to 0. Each
policy is asked for its delays exactly as the client asks (`Waiter` + `PollingPolicy` for ours;
the same `PollingPolicy` object serves all jobs in turn, as one long-lived client would).

Measured per policy: status requests per job, and the delay between a job's completion and its
detection (mean, p95). Fixed pollers of 0.1 s, 0.5 s and 3 s (the 3 s one twice: as RunComfy's
own Python client runs it, giving up at 300 s, a give-up counted not timed; and never giving up,
the baseline for ratios). Ours starts knowing nothing, as a new user would: its cold start, the
first ``COLD_JOBS`` jobs of each model, is also reported on its own, against the 3 s loop on the
same jobs.
"""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runcomfy_client import Completed, InProgress, PollingPolicy, Queued
from runcomfy_client._waiting import Waiter

JOBS = 2000
SEED = 20261121
COLD_JOBS = 10


@dataclass(frozen=True)
class Job:
    model: str
    queue_wait: float
    run: float

    @property
    def done_at(self) -> float:
        return self.queue_wait + self.run

    def status(self, t: float) -> Any:
        if t < self.queue_wait:
            ahead = math.ceil((self.queue_wait - t) / 30.0)
            return Queued("r", "in_queue", position=max(0, ahead - 1))
        if t < self.done_at:
            return InProgress("r", "in_progress")
        return Completed("r", "completed")


def workload(n: int = JOBS, seed: int = SEED) -> list[Job]:
    rng = random.Random(seed)
    jobs = []
    for _ in range(n):
        frames = rng.choice((81, 141))
        run = max(30.0, rng.gauss(150, 20) if frames == 81 else rng.gauss(260, 30))
        pick = rng.random()
        wait = 0.0 if pick < 0.5 else rng.uniform(5, 60) if pick < 0.8 else rng.uniform(60, 600)
        jobs.append(Job(f"wan/{frames}-frames", wait, run))
    return jobs


@dataclass
class Outcome:
    name: str
    requests: list[int]
    delays: list[float]
    gave_up: int

    def row(self) -> dict[str, float]:
        delays = sorted(self.delays)
        return {
            "requests": statistics.mean(self.requests),
            "mean_delay": statistics.mean(delays) if delays else math.nan,
            "p95_delay": delays[int(0.95 * (len(delays) - 1))] if delays else math.nan,
            "gave_up": self.gave_up,
        }


def ours(jobs: list[Job]) -> Outcome:
    policy = PollingPolicy()
    out = Outcome("runcomfy-client", [], [], 0)
    clock = [0.0]  # the virtual clock, restarted for each job
    for job in jobs:
        clock[0] = 0.0
        waiter = Waiter("r", job.model, policy, clock=lambda: clock[0])
        requests = 0
        while True:
            status = job.status(clock[0])
            requests += 1
            waiter.changed(status)
            delay = waiter.next_delay(status)
            if delay is None:
                out.delays.append(clock[0] - job.done_at)
                break
            assert delay > 0
            clock[0] += delay
        out.requests.append(requests)
    return out


def fixed(jobs: list[Job], interval: float, give_up: float | None = None) -> Outcome:
    name = f"every {interval:g} s" + (f", gives up at {give_up:g} s" if give_up else "")
    out = Outcome(name, [], [], 0)
    for job in jobs:
        polls = math.ceil(job.done_at / interval - 1e-9)  # the poll at or after completion
        detected = polls * interval
        if give_up is not None and detected > give_up:
            out.gave_up += 1
            out.requests.append(math.floor(give_up / interval))
            continue
        out.requests.append(polls)
        out.delays.append(detected - job.done_at)
    return out


def cold_start(jobs: list[Job]) -> list[int]:
    """Indices of the first COLD_JOBS jobs of each model."""
    seen: dict[str, int] = {}
    picked = []
    for i, job in enumerate(jobs):
        seen[job.model] = seen.get(job.model, 0) + 1
        if seen[job.model] <= COLD_JOBS:
            picked.append(i)
    return picked


def _subset(outcome: Outcome, picked: list[int], name: str) -> Outcome:
    return Outcome(
        name, [outcome.requests[i] for i in picked], [outcome.delays[i] for i in picked], 0
    )


def measure() -> list[tuple[str, dict[str, float]]]:
    """Every policy on the whole workload, then ours and the 3 s loop on its cold start."""
    jobs = workload()
    mine, loop = ours(jobs), fixed(jobs, 3.0)
    excess = max(a - b for a, b in zip(mine.requests, loop.requests, strict=True))
    assert excess <= 1, f"a job took {excess} requests more than the 3 s loop"
    results = [mine, loop, fixed(jobs, 3.0, give_up=300.0), fixed(jobs, 0.5), fixed(jobs, 0.1)]
    picked = cold_start(jobs)
    first = f"first {COLD_JOBS} jobs of each model"
    results += [_subset(mine, picked, f"runcomfy-client, {first}"),
                _subset(loop, picked, f"every 3 s, {first}")]  # fmt: skip
    return [(r.name, r.row()) for r in results]


def plot(rows: list[tuple[str, dict[str, float]]], live: list[dict[str, Any]], path: Path) -> None:
    """Left: the simulated workload, requests against delay. Right: the live rows, as ratios
    to the 3 s loop measured beside them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8), dpi=110)
    for name, row in rows:
        if name.startswith("every 3 s, first"):
            continue  # the cold start's baseline: its ratio is in the table
        left.errorbar(
            row["requests"],
            row["mean_delay"],
            yerr=[[0], [row["p95_delay"] - row["mean_delay"]]],
            fmt="o",
            capsize=4,
        )
        label = name.replace(f"first {COLD_JOBS} jobs of each model", "cold start") + (
            f" ({row['gave_up']:.0f} of {JOBS} given up)" if row["gave_up"] else ""
        )
        # Neighbours' labels one above, one below.
        below = name == "runcomfy-client" or "gives up" in name
        left.annotate(label, (row["requests"], row["mean_delay"]), textcoords="offset points",
                      xytext=(8, -12 if below else 6), fontsize=7)  # fmt: skip
    left.set_xscale("log")
    most = max(row["requests"] for _, row in rows)
    left.set_xlim(right=most * 6)  # room for the rightmost label
    left.set_xlabel("status requests per job (log scale)")
    left.set_ylabel("delay from completion to detection, s\n(dot: mean, bar: up to p95)")
    left.set_title(f"Simulated: {JOBS} video jobs (81 and 141 frames)", fontsize=10)
    left.grid(True, which="both", alpha=0.3)

    names = [row["name"].replace(": ", ":\n", 1) for row in live]
    x = range(len(live))
    width = 0.38
    right.bar([i - width / 2 for i in x], [r["request_ratio"] for r in live], width,
              label="requests / 3 s loop's")  # fmt: skip
    right.bar([i + width / 2 for i in x], [r["delay_ratio"] for r in live], width,
              label="mean delay / 3 s loop's")  # fmt: skip
    right.axhline(1.0, color="black", linewidth=0.8)
    right.axhline(0.5, color="grey", linewidth=0.8, linestyle="--")
    right.set_xticks(list(x), names, fontsize=7, rotation=30, ha="right")
    right.set_ylabel("ratio to RunComfy's 3 s loop (lower is better)")
    right.set_title("Live on the emulator, side by side (time-scaled)", fontsize=10)
    right.legend(fontsize=8)
    right.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    for name, row in measure():
        print(f"{name:32} {row}")
