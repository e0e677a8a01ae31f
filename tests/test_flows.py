"""The job lifecycle's flows, driven by both drivers on scripted answers and a virtual clock.

Every test runs twice, through ``Client`` (the blocking driver) and ``AsyncClient`` (the
asyncio one): the lifecycle is written once (``_lifecycle``), so both must take every branch
alike. A few tests step a flow by hand, with no driver at all, to show it does no I/O.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from runcomfy_client import (
    AsyncClient,
    AsyncRequestHandle,
    Client,
    DeadlineExceededError,
    DownloadError,
    DownloadProgress,
    Failed,
    InProgress,
    JobCancelledError,
    JobFailedError,
    Queued,
    RequestHandle,
    SubmissionUncertainError,
)
from runcomfy_client import _lifecycle as lc
from runcomfy_client import _protocol as p
from runcomfy_client._flow import Exchange, Report, Sleep

from .conftest import INPAINT
from .scripted import Script, VirtualClock, ok, scripted, scripted_async

T = TypeVar("T")
GOOD = {"prompt": "p", "start_image": "https://e.com/a.png", "end_image": "https://e.com/b.png"}
OUT = "https://cdn.test/r1/out.mp4"
DONE = {"request_id": "r1", "status": "completed", "output": {"video": OUT}, "error": None}
PAYLOAD = bytes(range(256)) * 400  # 100 KiB
AnyClient = Client | AsyncClient


class Door:
    """One of the two clients; ``do`` turns whatever a method returns into its value."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def client(self, script: Script, **kwargs: Any) -> AnyClient:
        return (scripted if self.kind == "sync" else scripted_async)(script, **kwargs)

    def do(self, value: T | Awaitable[T]) -> T:
        if inspect.isawaitable(value):
            return asyncio.run(_awaited(value))
        return value

    def each(
        self, values: Iterator[T] | AsyncIterator[T], stop_after: int | None = None
    ) -> list[T]:
        """The items of a (maybe async) iterator, stopping early after ``stop_after``."""
        if isinstance(values, AsyncIterator):
            return asyncio.run(_collect(values, stop_after))
        seen: list[T] = []
        for value in values:
            seen.append(value)
            if len(seen) == stop_after:
                break
        return seen


async def _awaited(value: Awaitable[T]) -> T:
    return await value


async def _collect(values: AsyncIterator[T], stop_after: int | None) -> list[T]:
    seen: list[T] = []
    async for value in values:
        seen.append(value)
        if len(seen) == stop_after:
            break
    await values.aclose()  # type: ignore[attr-defined]
    return seen


@pytest.fixture(params=["sync", "async"])
def door(request: pytest.FixtureRequest) -> Door:
    return Door(str(request.param))


def job(
    clock: VirtualClock, statuses: list[dict[str, Any]], **overrides: Callable[..., Any]
) -> Script:
    """A job whose status answers follow ``statuses`` (the last one repeats)."""
    seen = {"status": 0}

    def answer(kind: str, request: httpx.Request, now: float) -> Any:
        if kind in overrides:
            return overrides[kind](request, now)
        if kind == "submit":
            return ok({"request_id": "r1", "status_url": "https://api.test/s"})
        if kind == "status":
            body = statuses[min(seen["status"], len(statuses) - 1)]
            seen["status"] += 1
            return ok({"request_id": "r1", **body})
        if kind == "result":
            return ok(DONE)
        if kind == "cancel":
            return ok({"request_id": "r1", "status": "in_queue", "outcome": "cancelled"})
        raise AssertionError(kind)

    return Script(clock, answer)


# -- following a job ----------------------------------------------------------------------------


def test_run_submits_once_follows_and_reports_each_change(door: Door) -> None:
    clock = VirtualClock()
    script = job(
        clock,
        [
            {"status": "in_queue", "queue_position": 2},
            {"status": "in_queue", "queue_position": 2},
            {"status": "in_queue", "queue_position": 1},
            {"status": "in_progress"},
            {"status": "completed"},
        ],
    )
    seen: list[Any] = []
    client = door.client(script)
    result = door.do(client.run(INPAINT, GOOD, on_status=seen.append))
    assert result.urls == [OUT]
    assert [type(s).__name__ for s in seen] == ["Queued", "Queued", "InProgress", "Completed"]
    assert [s.position for s in seen if isinstance(s, Queued)] == [2, 1]
    assert script.kinds() == ["submit"] + ["status"] * 5 + ["result"]
    assert len(clock.sleeps) == 4 and clock.now == sum(clock.sleeps)  # on the virtual clock


def test_the_deadline_while_queued_cancels_the_job(door: Door) -> None:
    clock = VirtualClock()
    script = job(clock, [{"status": "in_queue", "queue_position": 4}])
    client = door.client(script)
    with pytest.raises(DeadlineExceededError) as info:
        door.do(client.wait("r1", timeout=5))
    assert info.value.cancelled and info.value.status == "queued"
    assert script.kinds()[-1] == "cancel" and script.count("cancel") == 1
    assert 5 <= clock.now < 6


def test_the_deadline_while_running_leaves_the_job_running(door: Door) -> None:
    clock = VirtualClock()
    script = job(clock, [{"status": "in_progress"}])
    client = door.client(script)
    with pytest.raises(DeadlineExceededError) as info:
        door.do(client.wait("r1", timeout=5))
    assert not info.value.cancelled and info.value.status == "in progress"
    assert script.count("cancel") == 0
    assert "keeps running" in str(info.value)


def test_cancel_on_timeout_false_never_cancels(door: Door) -> None:
    clock = VirtualClock()
    script = job(clock, [{"status": "in_queue"}])
    client = door.client(script)
    with pytest.raises(DeadlineExceededError) as info:
        door.do(client.wait("r1", timeout=3, cancel_on_timeout=False))
    assert not info.value.cancelled and script.count("cancel") == 0


def test_a_cancel_that_starts_running_first_says_so(door: Door) -> None:
    clock = VirtualClock()
    script = job(
        clock,
        [{"status": "in_queue"}],
        cancel=lambda r, now: ok({"request_id": "r1", "outcome": "not_cancellable"}),
    )
    client = door.client(script)
    with pytest.raises(DeadlineExceededError) as info:
        door.do(client.wait("r1", timeout=2))
    assert not info.value.cancelled and info.value.status == "in progress"


def test_a_requested_cancel_is_followed_to_its_end(door: Door) -> None:
    clock = VirtualClock()
    script = job(
        clock,
        [{"status": "in_queue"}, {"status": "in_queue"}, {"status": "cancelled"}],
        cancel=lambda r, now: ok({"request_id": "r1", "outcome": "cancellation_requested"}),
    )
    client = door.client(script)
    outcome = door.do(client.cancel("r1"))
    assert outcome.cancelled
    assert script.kinds() == ["cancel", "status", "status", "status"]


def test_a_requested_cancel_not_ended_within_its_wait_stays_requested(door: Door) -> None:
    clock = VirtualClock()
    script = job(
        clock,
        [{"status": "in_queue"}],
        cancel=lambda r, now: ok({"request_id": "r1", "outcome": "cancellation_requested"}),
    )
    client = door.client(script)
    outcome = door.do(client.cancel("r1", wait=4))
    assert outcome.outcome == "cancellation_requested" and not outcome.cancelled
    assert 4 <= clock.now < 5


def test_an_unknown_state_asks_the_result_and_ends_with_it(door: Door) -> None:
    clock = VirtualClock()
    script = job(clock, [{"status": "finished_ok"}])
    client = door.client(script)
    seen = door.each(client.iter_status("r1"))
    assert type(seen[-1]).__name__ == "Completed"
    assert script.kinds()[:2] == ["status", "result"]


def test_a_failed_job_raises_with_the_reason_from_its_result(door: Door) -> None:
    clock = VirtualClock()
    failed = {"request_id": "r1", "status": "failed", "error": {"error_message": "GPU fell"}}
    script = job(
        clock, [{"status": "in_progress"}, {"status": "failed"}], result=lambda r, n: ok(failed)
    )
    client = door.client(script)
    with pytest.raises(JobFailedError, match="GPU fell"):
        door.do(client.wait("r1"))
    status = door.do(client.status("r1"))
    assert isinstance(status, Failed) and status.error is not None
    assert "GPU fell" in str(status.error)
    with pytest.raises(JobFailedError):
        door.do(client.result("r1"))


def test_a_cancelled_job_raises_job_cancelled(door: Door) -> None:
    clock = VirtualClock()
    cancelled = {"request_id": "r1", "status": "cancelled"}
    script = job(clock, [{"status": "cancelled"}], result=lambda r, n: ok(cancelled))
    client = door.client(script)
    with pytest.raises(JobCancelledError):
        door.do(client.wait("r1"))


def test_retries_through_an_outage_then_the_result(door: Door) -> None:
    clock = VirtualClock()

    def status(request: httpx.Request, now: float) -> Any:
        if now < 100:
            return httpx.ConnectError("connection refused")
        return ok({"request_id": "r1", "status": "completed"})

    script = job(clock, [], status=status)
    notices: list[str] = []
    client = door.client(script)
    client.retry_listeners.append(lambda notice: notices.append(str(notice)))
    result = door.do(client.wait("r1"))
    assert result.status == "completed" and clock.now >= 100
    assert notices and all("status" in n for n in notices)


def test_retry_after_sets_the_pause(door: Door) -> None:
    clock = VirtualClock()
    answers = iter([ok({"message": "busy"}, 429, **{"Retry-After": "7"})])

    def status(request: httpx.Request, now: float) -> Any:
        return next(answers, ok({"request_id": "r1", "status": "in_queue"}))

    script = job(clock, [], status=status)
    heard: list[tuple[int, float | None]] = []
    client = door.client(script)
    client.response_listeners.append(lambda code, after: heard.append((code, after)))
    assert isinstance(door.do(client.status("r1")), Queued)
    assert clock.sleeps == [7.0]
    assert heard == [(429, 7.0), (200, None)]


def test_a_submit_that_may_have_created_a_job_is_never_resent(door: Door) -> None:
    clock = VirtualClock()
    script = job(clock, [], submit=lambda r, now: httpx.ReadTimeout("slow"))
    client = door.client(script)
    with pytest.raises(SubmissionUncertainError):
        door.do(client.submit(INPAINT, GOOD))
    assert script.count("submit") == 1


def test_the_deadline_of_run_covers_the_submit_and_the_wait(door: Door) -> None:
    clock = VirtualClock()

    def submit(request: httpx.Request, now: float) -> Any:
        if now < 3:  # refused before anything was created: retried
            return ok({"message": "busy"}, 429, **{"Retry-After": "3"})
        return ok({"request_id": "r1"})

    script = job(clock, [{"status": "in_progress"}], submit=submit)
    client = door.client(script)
    with pytest.raises(DeadlineExceededError):
        door.do(client.run(INPAINT, GOOD, timeout=10))
    assert 10 <= clock.now < 11  # 3 s submitting, the rest following


# -- the handles --------------------------------------------------------------------------------


def test_every_handle_method_reaches_the_job(door: Door) -> None:
    clock = VirtualClock()
    script = job(clock, [{"status": "in_progress"}, {"status": "completed"}])
    client = door.client(script)
    handle = door.do(client.submit(INPAINT, GOOD))
    assert isinstance(handle, (RequestHandle, AsyncRequestHandle))
    assert handle.request_id == "r1" and handle.model_id == INPAINT
    assert handle.status_url == "https://api.test/s" and handle.result_url is None
    assert repr(handle) == f"{type(handle).__name__}('r1', model_id={INPAINT!r})"
    assert isinstance(door.do(handle.status()), InProgress)
    assert door.do(handle.result()).urls == [OUT]
    assert door.do(handle.cancel()).cancelled
    assert [type(s).__name__ for s in door.each(handle.iter_status())] == ["Completed"]
    assert door.do(handle.wait(timeout=60)).urls == [OUT]
    attached = client.attach("r1", model_id="m")
    assert attached.request_id == "r1" and attached.model_id == "m"


def test_leaving_iter_status_early_sends_nothing_more(door: Door) -> None:
    clock = VirtualClock()
    script = job(clock, [{"status": "in_queue", "queue_position": n} for n in (5, 4, 3, 2, 1)])
    client = door.client(script)
    seen = door.each(client.iter_status("r1"), stop_after=2)
    assert len(seen) == 2
    assert script.count("status") == 2


def test_a_status_callback_that_raises_stops_the_wait(door: Door) -> None:
    clock = VirtualClock()
    script = job(clock, [{"status": "in_queue"}, {"status": "in_progress"}])

    def callback(status: Any) -> None:
        if isinstance(status, InProgress):
            raise KeyError("the caller's own bug")

    client = door.client(script)
    with pytest.raises(KeyError, match="the caller's own bug"):
        door.do(client.wait("r1", on_status=callback))
    assert script.count("status") == 2


# -- downloads ------------------------------------------------------------------------------------


class _CutStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that sends ``first`` and then breaks the connection."""

    def __init__(self, first: bytes) -> None:
        self.first = first

    def __iter__(self) -> Iterator[bytes]:
        yield self.first
        raise httpx.ReadError("connection reset by peer")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.first
        raise httpx.ReadError("connection reset by peer")


def _cdn(cuts: list[int]) -> Callable[[httpx.Request, float], httpx.Response]:
    """Serves PAYLOAD, cutting the n-th answer after ``cuts[n]`` bytes; honours Range."""
    calls = {"n": 0}

    def answer(request: httpx.Request, now: float) -> httpx.Response:
        start = int((request.headers.get("range") or "bytes=0-")[6:-1])
        body = PAYLOAD[start:]
        n = calls["n"]
        calls["n"] += 1
        status, headers = 200, {"Content-Length": str(len(body)), "ETag": '"v1"'}
        if start:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}"
        if n < len(cuts):
            return httpx.Response(status, headers=headers, stream=_CutStream(body[: cuts[n]]))
        return httpx.Response(status, headers=headers, content=body)

    return answer


def test_a_download_resumes_after_each_cut(door: Door, tmp_path: Path) -> None:
    clock = VirtualClock()
    script = job(clock, [{"status": "completed"}], **{"out.mp4": _cdn([30_000, 20_000])})
    client = door.client(script)
    result = door.do(client.result("r1"))
    progress: list[DownloadProgress] = []
    [path] = door.do(result.download(tmp_path, on_progress=progress.append))
    assert path.read_bytes() == PAYLOAD
    ranges = [r.headers.get("range") for kind, _, r in script.requests if kind == "out.mp4"]
    assert ranges == [None, "bytes=30000-", "bytes=50000-"]
    assert progress[-1].done and progress[-1].received == len(PAYLOAD)
    assert not list(tmp_path.glob(".*.part"))


def test_a_download_that_keeps_failing_gives_up_at_the_deadline(door: Door, tmp_path: Path) -> None:
    clock = VirtualClock()
    down = {"out.mp4": lambda r, now: ok({"message": "down"}, 503)}
    script = job(clock, [{"status": "completed"}], **down)
    client = door.client(script)
    result = door.do(client.result("r1"))
    with pytest.raises(DownloadError, match="deadline"):
        door.do(client.download(result, tmp_path, timeout=30))
    assert script.count("out.mp4") > 1
    assert not list(tmp_path.glob(".*.part"))


def test_run_saves_the_outputs_within_its_deadline(door: Door, tmp_path: Path) -> None:
    clock = VirtualClock()
    script = job(clock, [{"status": "completed"}], **{"out.mp4": _cdn([10_000])})
    client = door.client(script)
    result = door.do(client.run(INPAINT, GOOD, timeout=600, download_to=tmp_path))
    assert [p.read_bytes() for p in result.files] == [PAYLOAD]


def test_cancelling_an_async_run_mid_download_leaves_no_partial_file(tmp_path: Path) -> None:
    clock = VirtualClock()
    started = asyncio.Event()

    class Stalls(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield PAYLOAD[:1000]
            started.set()
            await asyncio.Event().wait()  # never ends: only a cancel stops it
            yield b""

    cdn = lambda r, now: httpx.Response(  # noqa: E731
        200, headers={"Content-Length": str(len(PAYLOAD))}, stream=Stalls()
    )
    script = job(clock, [{"status": "completed"}], **{"out.mp4": cdn})

    async def main() -> None:
        async with scripted_async(script) as client:
            task = asyncio.ensure_future(client.run(INPAINT, GOOD, download_to=tmp_path))
            await started.wait()
            assert list(tmp_path.glob(".*.part"))  # being written
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(main())
    assert list(tmp_path.iterdir()) == []


# -- a flow needs no driver -----------------------------------------------------------------------


def test_a_flow_only_asks_for_io_and_reads_the_clock_it_is_given() -> None:
    """Step ``wait`` by hand: it yields requests, sleeps and reports, and is sent answers."""
    clock = VirtualClock()
    client = scripted(Script(clock, lambda kind, request, now: ok({})))
    flow = lc.wait(client, "r1", timeout=None)
    answers = [
        {"request_id": "r1", "status": "in_queue", "queue_position": 1},
        {"request_id": "r1", "status": "completed"},
        DONE,
    ]
    effects: list[str] = []
    reply: Any = None
    while True:
        try:
            effect = flow.send(reply)
        except StopIteration as stop:
            done = stop.value
            break
        reply = None
        if isinstance(effect, Exchange):
            effects.append(f"{effect.call.method} {effect.call.kind}")
            request = httpx.Request(effect.call.method, effect.url)
            response = httpx.Response(200, json=answers.pop(0), request=request)
            reply = type("A", (), {"response": response, "content": response.content})()
        elif isinstance(effect, Sleep):
            effects.append("sleep")
            clock.sleep(effect.seconds)
        elif isinstance(effect, Report):
            effects.append(f"report {type(effect.value).__name__}")
    assert effects == [
        "GET status",
        "report Queued",
        "sleep",
        "GET status",
        "report Completed",
        "GET result",
    ]
    assert done.urls == [OUT] and clock.now > 0


def test_an_exchange_effect_never_shows_the_api_key() -> None:
    """A flow's effects turn up in tracebacks with locals, debuggers and logs: the request an
    Exchange carries holds the Authorization header, which its repr must not show."""
    clock = VirtualClock()
    client = scripted(Script(clock, lambda kind, request, now: ok({})))
    exchange = client._exchange(p.submit_call(INPAINT, {"prompt": "x"}))
    assert exchange.headers["Authorization"].endswith("sk-test-key-0123456789")
    assert "sk-test-key" not in repr(exchange)
    assert "sk-test-key" not in str(exchange)


def _garbled(status: int = 200) -> httpx.Response:
    """An answer whose Content-Encoding lies (a broken proxy): httpx cannot decode its body."""
    body = httpx.ByteStream(b'{"request_id": "r1"}')
    return httpx.Response(status, stream=body, headers={"Content-Encoding": "gzip"})


def test_a_submit_answered_with_an_undecodable_body_is_uncertain_not_resent(door: Door) -> None:
    """The server answered, so the job may exist: the project's error, sent once."""
    clock = VirtualClock()
    script = job(clock, [], submit=lambda r, now: _garbled())
    client = door.client(script)
    with pytest.raises(SubmissionUncertainError):
        door.do(client.submit(INPAINT, GOOD))
    assert script.count("submit") == 1


def test_a_status_answered_with_an_undecodable_body_is_retried(door: Door) -> None:
    """A paid job is not abandoned to a garbled answer: like an unreadable one, asked again."""
    clock = VirtualClock()
    answers = iter([_garbled, lambda: _garbled(502)])
    queued = ok({"request_id": "r1", "status": "in_queue"})
    script = job(clock, [], status=lambda r, now: next(answers, lambda: queued)())
    client = door.client(script)
    assert isinstance(door.do(client.status("r1")), Queued)
    assert script.count("status") == 3


def test_ctrl_c_while_run_waits_names_the_job_left_running() -> None:
    """A KeyboardInterrupt during run() after the submit carries the paid job's id (a note),
    so the caller can re-attach instead of paying again."""
    clock = VirtualClock()

    def interrupted(request: httpx.Request, now: float) -> Any:
        raise KeyboardInterrupt

    client = scripted(job(clock, [], status=interrupted))
    with pytest.raises(KeyboardInterrupt) as caught:
        client.run(INPAINT, GOOD)
    assert any("job r1" in note and "attach" in note for note in caught.value.__notes__)


def test_any_error_after_the_submit_names_the_job_unless_it_already_does() -> None:
    """Whatever goes wrong once the job is paid for (here an exception no rule knows, raised
    while following it), the error that reaches the caller carries the job's id; the job's own
    errors, which name it already, get no second note."""
    clock = VirtualClock()

    def broken(request: httpx.Request, now: float) -> Any:
        raise LookupError("a bug somewhere below")

    client = scripted(job(clock, [], status=broken))
    with pytest.raises(LookupError) as caught:
        client.run(INPAINT, GOOD)
    assert any("job r1" in note and "attach" in note for note in caught.value.__notes__)

    failed = ok({"request_id": "r1", "status": "failed", "error": {"code": 7, "message": "x"}})
    client = scripted(job(VirtualClock(), [], status=lambda r, now: failed))
    with pytest.raises(JobFailedError) as fails:
        client.run(INPAINT, GOOD)
    assert "r1" in str(fails.value) and not getattr(fails.value, "__notes__", [])
