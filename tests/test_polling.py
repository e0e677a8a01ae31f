"""The polling policy on a virtual clock: its promises against RunComfy's fixed 3 s loop.

Jobs here are scripted timelines (queued at falling positions, then running, then done), and
the policy is asked exactly as the clients ask it (through ``Waiter``). The 3 s loop checks at
3, 6, 9 ... seconds after the submit, so it sees a job ending at ``t`` after ceil(t / 3) checks.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runcomfy_client import (
    Completed,
    InProgress,
    JobStatus,
    PollingMemory,
    PollingPolicy,
    PollingSettings,
    PollObservation,
    Queued,
)
from runcomfy_client._waiting import Waiter

from .fuzzing import examples

LOOP = 3.0  # RunComfy's own client


@dataclass(frozen=True)
class Job:
    """Queued for ``wait`` seconds (its position falling evenly from ``ahead`` to 0, or stuck at
    ``ahead``), then running for ``runs`` seconds."""

    runs: float
    wait: float = 0.0
    ahead: int = 0
    stuck: bool = False

    @property
    def ends(self) -> float:
        return self.wait + self.runs

    def status(self, t: float) -> JobStatus:
        if t < self.wait:
            if self.stuck:
                return Queued("r", "in_queue", position=self.ahead)
            share = (self.wait - t) / self.wait  # 1 at the submit, 0 at the start
            return Queued("r", "in_queue", position=min(self.ahead, int(share * (self.ahead + 1))))
        if t < self.ends:
            return InProgress("r", "in_progress")
        return Completed("r", "completed")

    def loop_checks(self) -> int:
        return max(1, math.ceil(self.ends / LOOP - 1e-9))

    def loop_delay(self) -> float:
        return self.loop_checks() * LOOP - self.ends


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def follow(policy: PollingPolicy, job: Job, model: str = "m") -> list[float]:
    """The times of every status check, the last one seeing the job done."""
    clock = Clock()
    waiter = Waiter("r", model, policy, clock=clock)
    times = []
    while True:
        status = job.status(clock.now)
        times.append(clock.now)
        waiter.changed(status)
        delay = waiter.next_delay(status)
        if delay is None:
            return times
        assert 0 < delay < math.inf
        clock.now += delay


def warm(jobs: list[Job], model: str = "m") -> PollingPolicy:
    policy = PollingPolicy()
    for job in jobs:
        follow(policy, job, model)
    return policy


def jittered(runs: float, n: int = 12, **queue: float) -> list[Job]:
    """n jobs spread over a 3 s range, so the 3 s loop meets them at every phase."""
    return [Job(runs - 1.5 + 3 * (i + 0.5) / n, **queue) for i in range(n)]  # type: ignore[arg-type]


# -- the budget: never more than the 3 s loop, plus one --------------------------------------

learned = st.one_of(
    st.none(),
    st.tuples(
        st.floats(0.5, 5000),  # mean running time, right or wrong
        st.floats(0, 1),  # spread, as a share of the mean
        st.one_of(st.none(), st.floats(1e-4, 20)),  # queue pace
    ),
)
jobs = st.builds(
    Job,
    runs=st.floats(0.05, 600),
    wait=st.one_of(st.just(0.0), st.floats(0.5, 600)),
    ahead=st.integers(0, 60),
    stuck=st.booleans(),
)


def policy_knowing(state: tuple[float, float, float | None] | None) -> PollingPolicy:
    policy = PollingPolicy()
    if state is not None:
        mean, share, rate = state
        policy.memory.record_running("m", mean)
        policy.memory._models["m"].spread = mean * share
        if rate is not None:
            policy.memory.record_queue_rate("m", rate)
    return policy


@settings(max_examples=examples(150), deadline=None)
@given(job=jobs, state=learned)
def test_never_more_checks_than_the_3s_loop_plus_one(
    job: Job, state: tuple[float, float, float | None] | None
) -> None:
    times = follow(policy_knowing(state), job)
    assert len(times) <= job.loop_checks() + 1
    gaps = [b - a for a, b in pairwise(times)]
    # Never spins, never sleeps past a minute, whatever it believes.
    assert all(PollingSettings().near_end_interval - 1e-9 <= g <= 60 + 1e-9 for g in gaps)


@settings(max_examples=examples(150), deadline=None)
@given(job=jobs, state=learned)
def test_no_gap_above_3s_once_the_job_has_run_longer_than_its_model_usually_takes(
    job: Job, state: tuple[float, float, float | None] | None
) -> None:
    times = follow(policy_knowing(state), job)
    usual = 60.0 if state is None else state[0]  # nothing known: after a minute
    for a, b in pairwise(times):
        if job.wait <= a < job.ends and a - job.wait >= usual:
            assert b - a <= LOOP + 1e-9


@settings(max_examples=examples(100), deadline=None)
@given(job=jobs)
def test_queued_at_position_0_with_an_unknown_pace_at_most_one_check_per_3s(job: Job) -> None:
    times = follow(PollingPolicy(), job)
    for a, b in pairwise(times):
        status = job.status(a)
        if isinstance(status, Queued) and status.position == 0:
            assert b - a >= LOOP - 1e-9


# -- cold: the 3 s loop's detection, one early check -----------------------------------------


@pytest.mark.parametrize("runs", [2, 7, 20, 45, 90, 150, 400])
def test_cold_detects_like_the_3s_loop(runs: float) -> None:
    batch = jittered(runs)
    ours = [follow(PollingPolicy(), job) for job in batch]
    delays = [times[-1] - job.ends for times, job in zip(ours, batch, strict=True)]
    loop = statistics.mean(job.loop_delay() for job in batch)
    assert statistics.mean(delays) <= 1.5 * loop
    assert all(len(t) <= job.loop_checks() + 1 for t, job in zip(ours, batch, strict=True))


def test_cold_checks_on_the_loops_grid_one_second_later() -> None:
    # The immediate check, then 4 s, 7 s, 10 s ...: two thirds of a request more than the loop
    # on average, at the same delay.
    for runs in (7, 20, 150):
        batch = jittered(runs, n=30)
        ours = [follow(PollingPolicy(), job) for job in batch]
        assert ours[-1][:4] == [0, 4, 7, 10]
        extra = statistics.mean(
            len(t) - job.loop_checks() for t, job in zip(ours, batch, strict=True)
        )
        assert extra == pytest.approx(2 / 3, abs=0.05)
        delays = [t[-1] - job.ends for t, job in zip(ours, batch, strict=True)]
        assert statistics.mean(delays) == pytest.approx(1.5, abs=0.05)


def test_cold_behind_a_queue_spends_fewer_checks_than_the_3s_loop() -> None:
    # 45 s at position 0 behind another job, then 45 s running: the trace in issue 19 had 46
    # checks in the queue alone.
    batch = jittered(45, wait=45.0, ahead=0, stuck=True)
    ours = [follow(PollingPolicy(), job) for job in batch]
    queued = [sum(1 for t in times if t < job.wait) for times, job in zip(ours, batch, strict=True)]
    assert max(queued) <= 10
    assert statistics.mean(map(len, ours)) <= 0.85 * statistics.mean(j.loop_checks() for j in batch)


def test_a_stuck_queue_is_checked_less_and_less_often() -> None:
    times = follow(PollingPolicy(), Job(runs=10, wait=600, ahead=7, stuck=True))
    queued = [t for t in times if t < 600]
    gaps = [b - a for a, b in pairwise(queued)]
    assert gaps == sorted(gaps)
    assert gaps[-1] == PollingSettings().max_queue_interval
    assert len(queued) <= 50  # the 3 s loop: 200


# -- warm: half the requests or fewer, no later --------------------------------------------------


@pytest.mark.parametrize(("runs", "wait"), [(60, 0), (150, 0), (45, 45), (300, 120), (900, 0)])
def test_warm_halves_the_requests_on_jobs_of_a_minute_or_more(runs: float, wait: float) -> None:
    batch = jittered(runs, wait=wait, ahead=3 if wait else 0)
    policy = warm(batch[:3])
    ours = [follow(policy, job) for job in batch]
    assert statistics.mean(map(len, ours)) <= 0.5 * statistics.mean(j.loop_checks() for j in batch)
    delays = [times[-1] - job.ends for times, job in zip(ours, batch, strict=True)]
    assert statistics.mean(delays) <= statistics.mean(job.loop_delay() for job in batch)


def test_warm_on_a_model_whose_running_time_varies() -> None:
    # 10 % spread: the dense window widens, the promise holds.
    batch = [Job(150 * (1 + 0.1 * math.sin(i * 2.4))) for i in range(40)]
    policy = warm(batch[:5])
    ours = [follow(policy, job) for job in batch[5:]]
    assert statistics.mean(map(len, ours)) <= 0.5 * statistics.mean(
        j.loop_checks() for j in batch[5:]
    )
    delays = [times[-1] - job.ends for times, job in zip(ours, batch[5:], strict=True)]
    assert statistics.mean(delays) <= statistics.mean(job.loop_delay() for job in batch[5:])


def test_a_model_that_got_faster_is_seen_early_then_relearned() -> None:
    policy = warm([Job(150)] * 5)
    lateness = [follow(policy, Job(40))[-1] - 40 for _ in range(10)]
    assert max(lateness) <= 40  # each seen within as long again as it ran
    mean, _ = policy.expected("m") or (0.0, 0.0)
    assert mean == pytest.approx(40, abs=5)
    assert lateness[-1] <= 2 < lateness[0]


def test_one_runaway_job_cannot_make_the_policy_sleep_for_hours() -> None:
    # Issue 16: after one very long job, polling for that model waited hours between checks.
    policy = warm([Job(60)] * 3)
    policy.record("m", 40 * 3600.0)  # a job that hung for 40 hours
    mean, _ = policy.expected("m") or (0.0, 0.0)
    assert mean <= PollingSettings().max_running_time
    times = follow(policy, Job(60))
    assert max(b - a for a, b in pairwise(times)) <= 60
    assert times[-1] - 60 <= 60


def test_learning_can_be_turned_off() -> None:
    policy = PollingPolicy(learn=False)
    follow(policy, Job(100, wait=20, ahead=3))
    assert policy.expected("m") is None
    assert policy.queue_rate("m") is None


# -- what the waiter tells the policy ------------------------------------------------------------


def test_waiter_learns_the_queue_pace_from_the_wait_and_shares_it() -> None:
    policy = PollingPolicy()
    follow(policy, Job(300, wait=40, ahead=3))  # 4 starts (3 ahead, then this one) in ~40 s
    assert policy.queue_rate("m") == pytest.approx(4 / 40, rel=0.15)
    # A newcomer far back checks about halfway to its expected start, not every few seconds.
    delay = policy.next_delay(PollObservation("in_queue", 0.0, queue_position=19, model_id="m"))
    assert delay == pytest.approx(min(60, 0.5 * 20 / policy.queue_rate("m")))  # type: ignore[operator]


def test_a_queued_job_of_a_short_model_is_never_left_longer_than_it_runs() -> None:
    # The pace says the start is minutes away; if it comes sooner, the job must not end unseen
    # long before the next check.
    policy = warm([Job(12)] * 5)
    policy.record_queue_rate("m", 1 / 100)
    delay = policy.next_delay(PollObservation("in_queue", 1.0, queue_position=5, model_id="m"))
    mean, _ = policy.expected("m") or (0.0, 0.0)
    assert PollingSettings().interval <= delay < mean


def test_waiter_learns_running_time_from_the_middle_of_each_window() -> None:
    # Seen queued at 9, running at 15 (started within those 6 s); done between 60 and 63.
    policy = PollingPolicy()
    clock = Clock()
    waiter = Waiter("r", "m", policy, clock=clock)
    for t, status in [
        (0, Queued("r", "in_queue", position=0)),
        (9, Queued("r", "in_queue", position=0)),
        (15, InProgress("r", "in_progress")),
        (60, InProgress("r", "in_progress")),
        (63, Completed("r", "completed")),
    ]:
        clock.now = t
        waiter.next_delay(status)
    assert waiter.running_since == 9
    mean, _ = policy.expected("m") or (0.0, 0.0)
    assert mean == pytest.approx(61.5 - 12)


def test_settings_scale_together_and_refuse_nonsense() -> None:
    fast = PollingSettings.with_interval(0.3)
    assert fast.interval == pytest.approx(0.3)
    assert fast.near_end_interval == pytest.approx(0.2)
    assert fast.max_running_time == pytest.approx(2160)
    assert fast.queue_backoff == PollingSettings().queue_backoff
    with pytest.raises(ValueError, match="interval"):
        PollingSettings(interval=0)
    with pytest.raises(ValueError, match="positive"):
        PollingSettings().scaled(math.nan)


def test_a_scaled_policy_makes_the_same_decisions_on_a_scaled_clock() -> None:
    job = Job(150, wait=30, ahead=2)
    normal = follow(warm([job] * 3), job)
    tenth = PollingPolicy(PollingSettings().scaled(0.1))
    short = Job(15, wait=3, ahead=2)
    for _ in range(3):
        follow(tenth, short)
    assert follow(tenth, short) == pytest.approx([t / 10 for t in normal], abs=1e-6)


def test_memory_is_per_model() -> None:
    policy = warm([Job(100)] * 3, model="a")
    assert policy.expected("a") is not None
    assert policy.expected("b") is None
    assert policy.expected(None) is None
    assert isinstance(policy.memory, PollingMemory)
