"""The batch engine on both drivers, on scripted answers and a virtual clock.

``Batch.run`` (AsyncClient) and ``Batch.run_sync`` (Client) drive the same line flows; the sync
one uses the caller's client as it is (its http_client and listeners), in worker threads.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import aclosing
from pathlib import Path
from typing import Any

import httpx
import pytest

from runcomfy_client import AsyncClient, Client
from runcomfy_client.batch import Batch, BatchLine, LineResult, read_batch

from .conftest import INPAINT
from .scripted import Script, VirtualClock, ok, scripted, scripted_async

IMAGE = "https://e.com/a.png"
BODY = b"frame" * 1000


def lines_of(client: Client | AsyncClient, prompts: list[str]) -> list[BatchLine]:
    rows = [
        json.dumps({"model": INPAINT, "prompt": p, "start_image": IMAGE, "end_image": IMAGE})
        for p in prompts
    ]
    return read_batch(rows, registry=client.registry)


class Api:
    """Jobs named after their prompt: ``fail`` fails, ``slow`` stays queued, ``after-slow``
    completes once ``slow`` is being followed, ``lost`` times out on submit (nobody knows
    whether it was created), ``busy`` is refused once with 429."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.refused: set[str] = set()
        self.slow_followed = False
        self.script = Script(clock, self.answer)

    def answer(self, kind: str, request: httpx.Request, now: float) -> Any:
        if kind == "submit":
            prompt = json.loads(request.content)["99_text"]
            if prompt == "lost":
                return httpx.ReadTimeout("no answer")
            if prompt == "busy" and prompt not in self.refused:
                self.refused.add(prompt)
                return ok({"message": "slow down"}, 429, **{"Retry-After": "5"})
            return ok({"request_id": f"r-{prompt}"})
        if kind == "out.png":
            return httpx.Response(200, content=BODY)
        rid = request.url.path.split("/")[3]
        if kind == "status":
            if rid == "r-slow":
                self.slow_followed = True
            if rid == "r-after-slow" and not self.slow_followed:
                return ok({"request_id": rid, "status": "in_queue"})
            state = {"r-fail": "failed", "r-slow": "in_queue"}.get(rid, "completed")
            return ok({"request_id": rid, "status": state})
        if kind == "result":
            if rid == "r-fail":
                return ok(
                    {"request_id": rid, "status": "failed", "error": {"error_message": "oom"}}
                )
            out = {"image": f"https://cdn.test/{rid}/out.png"}
            return ok({"request_id": rid, "status": "completed", "output": out, "cost": 0.25})
        raise AssertionError(kind)

    def submits(self) -> list[str]:
        return [
            json.loads(r.content)["99_text"] for k, _, r in self.script.requests if k == "submit"
        ]


def run_batch(
    kind: str, client: Client | AsyncClient, batch: Batch, stop_after: int = 0
) -> list[LineResult]:
    """Every line's result through the engine of ``kind``; ``stop_after`` stops it early."""
    seen: list[LineResult] = []
    if kind == "sync":
        assert isinstance(client, Client)
        for result in batch.run_sync(client):
            seen.append(result)
            if len(seen) == stop_after:
                break
        return seen
    assert isinstance(client, AsyncClient)

    async def main() -> None:
        async with aclosing(batch.run(client)) as results:
            async for result in results:
                seen.append(result)
                if len(seen) == stop_after:
                    break

    asyncio.run(main())
    return seen


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def client_for(kind: str, api: Api) -> Client | AsyncClient:
    return (scripted if kind == "sync" else scripted_async)(api.script)


def test_a_batch_runs_on_the_callers_own_client(kind: str, tmp_path: Path) -> None:
    api = Api(VirtualClock())
    client = client_for(kind, api)
    heard: list[int] = []
    client.response_listeners.append(lambda status, after: heard.append(status))
    states: list[tuple[int, str]] = []
    prompts = ["a", "b", "c", "d"]
    batch = Batch(
        lines_of(client, prompts),
        tmp_path / "out",
        concurrency=2,
        on_state=lambda n, s: states.append((n, s)),
    )
    results = run_batch(kind, client, batch)
    assert sorted(r.state for r in results) == ["downloaded"] * 4, results
    for result in results:
        assert [f.read_bytes() for f in result.files] == [BODY]
        assert result.cost == 0.25
        assert [s for n, s in states if n == result.line] == [
            "submitting",
            "submitted",
            "completed",
            "downloaded",
        ]
    assert sorted(api.submits()) == prompts  # each submitted once, through the caller's client
    assert heard.count(200) == len(api.script.requests) - 4  # downloads are not API answers
    assert client.response_listeners and batch.limit.peak <= 2


def test_an_uncertain_submit_is_recorded_and_never_resent(kind: str, tmp_path: Path) -> None:
    api = Api(VirtualClock())
    client = client_for(kind, api)
    lines = lines_of(client, ["a", "lost"])
    first = {r.name: r.state for r in run_batch(kind, client, Batch(lines, tmp_path / "out"))}
    assert first == {"line-1": "downloaded", "line-2": "uncertain"}
    again = {r.name: r.state for r in run_batch(kind, client, Batch(lines, tmp_path / "out"))}
    assert again == first
    assert sorted(api.submits()) == ["a", "lost"]  # the second run sent nothing


def test_a_failed_job_fails_its_own_line(kind: str, tmp_path: Path) -> None:
    api = Api(VirtualClock())
    client = client_for(kind, api)
    results = run_batch(kind, client, Batch(lines_of(client, ["fail", "ok"]), tmp_path / "out"))
    by_name = {r.name: r for r in results}
    assert by_name["line-1"].state == "failed" and "oom" in (by_name["line-1"].error or "")
    assert by_name["line-2"].state == "downloaded"


def test_a_rate_limited_submit_waits_and_goes_through(kind: str, tmp_path: Path) -> None:
    clock = VirtualClock()
    api = Api(clock)
    client = client_for(kind, api)
    [result] = run_batch(kind, client, Batch(lines_of(client, ["busy"]), tmp_path / "out"))
    assert result.state == "downloaded"
    assert api.submits() == ["busy", "busy"]
    assert 5.0 in clock.sleeps  # its Retry-After, on the client's clock


def test_a_stopped_batch_keeps_its_jobs_for_the_next_run(kind: str, tmp_path: Path) -> None:
    api = Api(VirtualClock())
    client = client_for(kind, api)
    lines = lines_of(client, ["after-slow", "slow"])
    batch = Batch(lines, tmp_path / "out", concurrency=2)
    [first] = run_batch(kind, client, batch, stop_after=1)
    assert first.name == "line-1" and first.state == "downloaded"
    report = {r.name: (r.state, r.request_id) for r in batch.report()}
    assert report["line-2"] == ("submitted", "r-slow")  # followed again by the next run
    api.script.answer = _finishes(api.script.answer)
    again = run_batch(kind, client, Batch(lines, tmp_path / "out"))
    assert {r.name: r.state for r in again} == {"line-1": "downloaded", "line-2": "downloaded"}
    assert sorted(api.submits()) == ["after-slow", "slow"]  # re-attached, never resubmitted


def _finishes(answer: Any) -> Any:
    def now_done(kind: str, request: httpx.Request, now: float) -> Any:
        if kind == "status":
            rid = request.url.path.split("/")[3]
            return ok({"request_id": rid, "status": "completed"})
        return answer(kind, request, now)

    return now_done
