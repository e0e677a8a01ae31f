"""The polling policy on a virtual clock, against fixed-interval pollers.

Reference workload (seeded, 2,000 jobs): video jobs of 81 frames (running 150 s +- 20 s) and 141
frames (260 s +- 30 s), half each. Queue waits: half the jobs start at once, 30 % wait 5-60 s,
20 % wait 1-10 minutes; a queued job's position falls evenly from (wait / 30 s) to 0. Each
policy is asked for its delays exactly as the client asks (`Waiter` + `PollingPolicy` for ours;
the same `PollingPolicy` object serves all jobs in turn, as one long-lived client would).

Measured per policy: status requests per job, and the delay between a job's completion and its
detection (mean, p95). Fixed pollers of 0.1 s, 0.5 s and 3 s; the 3 s one gives up at 300 s as
RunComfy's own Python client does (a give-up is counted, not timed).
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
    now = [0.0]  # the virtual clock, restarted for each job
    for job in jobs:
        now[0] = 0.0
        waiter = Waiter("r", job.model, policy, clock=lambda: now[0])
        requests = 0
        while True:
            status = job.status(now[0])
            requests += 1
            waiter.changed(status)
            delay = waiter.next_delay(status)
            if delay is None:
                out.delays.append(now[0] - job.done_at)
                break
            assert delay > 0
            now[0] += delay
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


def measure() -> list[tuple[str, dict[str, float]]]:
    jobs = workload()
    results = [ours(jobs), fixed(jobs, 0.1), fixed(jobs, 0.5), fixed(jobs, 3.0, give_up=300.0)]
    return [(r.name, r.row()) for r in results]


def plot(rows: list[tuple[str, dict[str, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for name, row in rows:
        ax.errorbar(
            row["requests"],
            row["mean_delay"],
            yerr=[[0], [row["p95_delay"] - row["mean_delay"]]],
            fmt="o",
            capsize=4,
        )
        label = name + (f"\n({row['gave_up']:.0f} of {JOBS} given up)" if row["gave_up"] else "")
        ax.annotate(label, (row["requests"], row["mean_delay"]), textcoords="offset points",
                    xytext=(8, 6), fontsize=8)  # fmt: skip
    ax.set_xscale("log")
    most = max(row["requests"] for _, row in rows)
    ax.set_xlim(right=most * 4)  # room for the rightmost label
    ax.set_xlabel("status requests per job (log scale)")
    ax.set_ylabel("delay from completion to detection, s\n(dot: mean, bar: up to p95)")
    ax.set_title(f"Polling policies on {JOBS} simulated video jobs (81 and 141 frames)")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    for name, row in measure():
        print(f"{name:32} {row}")
