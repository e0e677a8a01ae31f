"""Webhook events: parsed, deduplicated, kept in order, reconciled by polling."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from runcomfy_client import APIConnectionError, WebhookError
from runcomfy_client.emulator import Emulator
from runcomfy_client.webhooks import (
    PendingJob,
    Reconciler,
    WebhookEvent,
    WebhookInbox,
    parse_event,
    serve,
)

from .conftest import wait_for

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "workflows"
T2I = f"lighthouse={SAMPLES / 'text-to-image.json'}:{SAMPLES / 'object_info.json'}"


def event(request_id: str, status: str, **more: Any) -> dict[str, Any]:
    return {"request_id": request_id, "deployment_id": "d-1", "status": status, **more}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- parsing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "normalised", "final"),
    [
        ("in_queue", "in_queue", False),
        ("in_progress", "in_progress", False),
        ("succeeded", "completed", True),
        ("completed", "completed", True),
        ("failed", "failed", True),
        ("canceled", "cancelled", True),
        ("cancelled", "cancelled", True),
    ],
)
def test_statuses_are_normalised_by_the_one_table(sent: str, normalised: str, final: bool) -> None:
    parsed = parse_event(json.dumps(event("r1", sent)).encode())
    assert (parsed.status, parsed.sent_status, parsed.final) == (normalised, sent, final)
    assert parsed.deployment_id == "d-1"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not list"),
        (json.dumps({"status": "succeeded"}).encode(), "no request_id"),
        (json.dumps({"request_id": "r1"}).encode(), "has no status"),
        (b" " * (16 * 1024 * 1024 + 1), "larger than"),
    ],
)
def test_what_is_not_an_event_is_refused_by_name(body: bytes, words: str) -> None:
    with pytest.raises(WebhookError, match=words):
        parse_event(body)


def test_outputs_and_error_of_final_events() -> None:
    outputs = {"9": {"images": [{"filename": "a.png", "url": "https://x/a.png"}]}}
    done = parse_event(event("r1", "succeeded", outputs=outputs))
    assert done.outputs == outputs and done.error is None
    failed = parse_event(event("r2", "failed", error=[{"error": "out of memory"}]))
    assert failed.error == [{"error": "out of memory"}] and failed.outputs == {}


# -- the inbox --------------------------------------------------------------------------------


def test_duplicates_late_events_and_one_final_per_job(caplog: pytest.LogCaptureFixture) -> None:
    finals: list[WebhookEvent] = []
    inbox = WebhookInbox(on_final=finals.append)
    first = inbox.receive(json.dumps(event("r1", "in_queue")))
    assert first.applied and not first.new_final
    assert inbox.receive(json.dumps(event("r1", "in_queue"))).duplicate
    done = inbox.receive(event("r1", "succeeded", outputs={}))
    assert done.new_final
    late = inbox.receive(event("r1", "in_progress"))  # out of order: never replaces a final
    assert late.stale and not late.applied
    assert inbox.receive(event("r1", "succeeded")).duplicate
    with caplog.at_level(logging.WARNING, logger="runcomfy_client"):
        conflict = inbox.receive(event("r1", "failed"))
    assert conflict.stale and "second final state 'failed'" in caplog.text
    state = inbox.state("r1")
    assert state is not None and state.status == "completed"
    assert [e.request_id for e in finals] == ["r1"]
    # An earlier state after a later one, before any final: kept at the later one.
    inbox.receive(event("r2", "in_progress"))
    assert inbox.receive(event("r2", "in_queue")).stale
    r2 = inbox.state("r2")
    assert r2 is not None and r2.status == "in_progress"
    assert [p.request_id for p in inbox.pending()] == ["r2"]
    assert set(inbox.finals()) == {"r1"}


def test_concurrent_deliveries_give_one_final() -> None:
    finals: list[WebhookEvent] = []
    inbox = WebhookInbox(on_final=finals.append)
    bodies = [json.dumps(event(f"r{i % 5}", s)) for i in range(50) for s in ("succeeded", "failed")]
    threads = [threading.Thread(target=inbox.receive, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(e.request_id for e in finals) == [f"r{i}" for i in range(5)]


# -- reconciling by polling -------------------------------------------------------------------


def test_jobs_without_a_final_event_are_polled_after_a_quiet_while() -> None:
    clock = Clock()
    finals: list[WebhookEvent] = []
    inbox = WebhookInbox(on_final=finals.append, clock=clock)
    polled: list[PendingJob] = []
    answers: dict[str, Any] = {"r2": {"status": "in_progress"}}

    def poll(job: PendingJob) -> Mapping[str, Any]:
        polled.append(job)
        answer = answers[job.request_id]
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[no-any-return]

    reconciler = Reconciler(inbox, poll, after=60, every=30)
    inbox.track("r1", deployment_id="d-1")
    inbox.track("r2", deployment_id="d-1")
    inbox.receive(event("r1", "in_queue"))
    assert reconciler.run_once() == []  # nothing has been quiet long enough
    clock.now += 30
    inbox.receive(event("r1", "succeeded"))  # r1's final event came
    clock.now += 31
    found = reconciler.run_once()  # r2 heard nothing for 61 s
    assert [p.request_id for p in polled] == ["r2"]
    assert polled[0].deployment_id == "d-1"
    assert [d.event.status for d in found] == ["in_progress"]
    assert found[0].event.source == "poll"
    clock.now += 10
    assert reconciler.run_once() == []  # polled 10 s ago: not again yet
    clock.now += 60
    answers["r2"] = APIConnectionError("the network is down")
    assert reconciler.run_once() == []  # a failed poll is tried again later
    clock.now += 61
    answers["r2"] = {"status": "succeeded", "outputs": {"9": {"images": []}}}
    (last,) = reconciler.run_once()
    assert last.new_final and last.event.source == "poll"
    assert sorted(e.request_id for e in finals) == ["r1", "r2"]
    clock.now += 500
    assert reconciler.run_once() == [] and len(polled) == 3  # finished jobs are never polled


async def test_async_poll_functions() -> None:
    clock = Clock()
    inbox = WebhookInbox(clock=clock)
    inbox.track("r1")

    async def poll(job: PendingJob) -> Mapping[str, Any]:
        return {"status": "canceled"}

    reconciler = Reconciler(inbox, poll, after=0)
    (delivery,) = await reconciler.arun_once()
    assert delivery.event.status == "cancelled" and delivery.new_final
    inbox.track("r2")
    with pytest.raises(TypeError, match="arun_once"):
        reconciler.run_once()


# -- end to end: the emulator's faulty deliveries converge -----------------------------------


def test_duplicated_reordered_and_dropped_deliveries_converge_on_one_final_per_job() -> None:
    finals: list[WebhookEvent] = []
    inbox = WebhookInbox(on_final=finals.append)
    server = serve(inbox)
    hook = f"http://127.0.0.1:{server.server_address[1]}/runcomfy"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    faults = ["webhook_duplicate=0.3", "webhook_reorder=0.3", "webhook_drop=0.5"]
    try:
        with Emulator(
            deployments=[T2I], job_seconds=0.01, workers=4, faults=faults, seed=3, render=False
        ) as emu:
            deployment = emu.deployments["lighthouse"]
            http = httpx.Client(
                base_url=emu.base_url, headers={"Authorization": f"Bearer {emu.api_key}"}
            )
            jobs = []
            for i in range(16):
                answer = http.post(
                    f"/prod/v1/deployments/{deployment}/inference",
                    params={"webhook": hook, "webhook_intermediate_status": "true"},
                    json={"overrides": {"3": {"inputs": {"seed": i}}}},
                ).json()
                inbox.track(answer["request_id"], deployment_id=deployment)
                jobs.append(answer["request_id"])

            def poll(job: PendingJob) -> Mapping[str, Any]:
                path = f"/prod/v1/deployments/{job.deployment_id}/requests/{job.request_id}/result"
                return http.get(path).json()  # type: ignore[no-any-return]

            def settled() -> bool:
                stats = http.get("/_emulator/serverless/stats").json()
                ended = stats["states"].get("succeeded", 0) == len(jobs)
                events = stats["webhook_events"] == 3 * len(jobs)
                delivered = stats["webhook_delivered"] + stats["webhook_failed"]
                sent = (
                    delivered
                    == stats["webhook_events"]
                    - stats["webhook_dropped"]
                    + stats["webhook_duplicated"]
                )
                return ended and events and sent

            wait_for(settled, timeout=60)  # a ceiling for a loaded machine, not a wait
            by_webhook = set(inbox.finals())
            Reconciler(inbox, poll, after=0).run_once()
            stats = http.get("/_emulator/serverless/stats").json()
    finally:
        server.shutdown()
        server.server_close()
    assert stats["webhook_dropped"] and stats["webhook_duplicated"] and stats["webhook_reordered"]
    assert sorted(e.request_id for e in finals) == sorted(jobs)  # exactly one final each
    assert all(e.status == "completed" for e in finals)
    assert 0 < len(by_webhook) < len(jobs)  # some came by webhook, the rest by polling
    assert inbox.pending() == []


# -- the command line -------------------------------------------------------------------------


def test_cli_listen_prints_each_delivery_as_a_json_line() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "runcomfy_client.cli", "webhooks", "listen", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None and proc.stdout is not None
        banner = proc.stderr.readline().strip()
        assert banner.startswith("listening on http://127.0.0.1:")
        url = banner.removeprefix("listening on ")
        assert httpx.post(url + "hook", json=event("r1", "in_progress")).status_code == 200
        assert httpx.post(url, json=event("r1", "succeeded", outputs={})).status_code == 200
        assert httpx.post(url, json=event("r1", "succeeded")).status_code == 200
        bad = httpx.post(url, content=b"nope")
        assert bad.status_code == 400 and "not JSON" in bad.json()["error"]
        lines = [json.loads(proc.stdout.readline()) for _ in range(3)]
    finally:
        proc.terminate()
        proc.wait(10)
    assert [(x["sent_status"], x["duplicate"], x["new_final"]) for x in lines] == [
        ("in_progress", False, False),
        ("succeeded", False, True),
        ("succeeded", True, False),
    ]
    assert lines[1]["status"] == "completed" and lines[1]["body"]["outputs"] == {}
    assert lines[0]["received_at"].endswith("Z")


def test_the_sender_hears_200_only_after_on_delivery_ran() -> None:
    """RunComfy sends a job's next event once the last one was answered: told before the
    answer, ``on_delivery`` sees one job's events in the order they were sent (told after it,
    a second handler thread could overtake the first)."""
    entered, release, told = threading.Event(), threading.Event(), []

    def on_delivery(delivery: Any) -> None:
        entered.set()
        release.wait(10)
        told.append(delivery.event.sent_status)

    server = serve(WebhookInbox(), on_delivery=on_delivery)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    answers: list[int] = []
    sender = threading.Thread(
        target=lambda: answers.append(httpx.post(url, json=event("r1", "in_queue")).status_code)
    )
    try:
        sender.start()
        assert entered.wait(10)
        sender.join(0.2)
        assert answers == [] and sender.is_alive()  # no answer while on_delivery runs
        release.set()
        sender.join(10)
        assert answers == [200] and told == ["in_queue"]
    finally:
        release.set()
        server.shutdown()
        server.server_close()
