"""The emulator's other dialects and faults, and the client against each, over real sockets.

Short jobs (0.1-0.3 s) and tiny retry waits: every test here ends in about a second.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runcomfy_client import (
    Client,
    NotFoundError,
    PermissionDeniedError,
    PollingPolicy,
    RetryPolicy,
    SubmissionUncertainError,
)
from runcomfy_client._polling import PollingSettings
from runcomfy_client.emulator import Emulator, parse_fault
from runcomfy_client.emulator._dialects import restyle

from .conftest import INPAINT, png_bytes

POLL = PollingPolicy(PollingSettings.with_interval(0.02), learn=False)
RETRY = RetryPolicy(backoff_base=0.01, backoff_max=0.05, retry_after_max=0.05)
_seed = iter(range(50_000, 99_999))


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(workers=1, job_seconds=0.02, render=False, retry_after=0.01) as emulator:
        yield emulator


@pytest.fixture
def client(emu: Emulator) -> Iterator[Client]:
    emu.set_faults([])
    emu.set_answers([])
    emu.release()
    with Client(base_url=emu.base_url, api_key=emu.api_key, polling=POLL, retry=RETRY) as c:
        yield c
    emu.set_faults([])
    emu.set_answers([])


@pytest.fixture(scope="module")
def url(emu: Emulator) -> str:
    return emu.upload(png_bytes(), "in.png")


def inputs(url: str) -> dict[str, Any]:
    return {"prompt": "p", "start_image": url, "end_image": url, "seed": next(_seed)}


def test_other_spellings_and_null_error_fields(client: Client, emu: Emulator, url: str) -> None:
    emu.set_answers(["succeeded", "canceled", "null_errors"])
    http = client._http
    headers = {"Authorization": f"Bearer {emu.api_key}"}
    emu.hold("running")  # the one worker keeps the first job: the second stays queued
    running = client.submit(INPAINT, inputs(url))
    queued = client.submit(INPAINT, inputs(url))
    # What the wire says: the other dialect.
    raw = http.post(f"{emu.base_url}/v1/requests/{queued.request_id}/cancel", headers=headers)
    assert raw.json()["outcome"] == "canceled"
    assert raw.json()["error_code"] is None
    assert queued.status().status == "cancelled"
    emu.release()
    result = running.wait()
    assert result.status == "completed"
    assert result.raw["status"] == "succeeded"
    assert result.raw["error_code"] is None


def test_cancellation_requested_is_followed_to_its_end(
    client: Client, emu: Emulator, url: str
) -> None:
    emu.set_answers(["cancellation_requested"])
    emu.hold("running")  # held until the cancel request ends it
    running = client.submit(INPAINT, inputs(url))
    queued = client.submit(INPAINT, inputs(url))
    assert queued.cancel().cancelled  # accepted, then followed until it read cancelled
    outcome = running.cancel()  # a running job: this dialect ends it cancelled too
    assert outcome.cancelled
    assert running.status().status == "cancelled"


def test_detail_lists_are_shown(client: Client, emu: Emulator) -> None:
    emu.set_answers(["detail_lists"])
    with pytest.raises(NotFoundError) as info:
        client.status("no-such-job")
    assert isinstance(info.value.detail, list)
    assert "\n  - path.request_id: request no-such-job is unknown" in str(info.value)


def test_forbidden_fails_at_once(client: Client, emu: Emulator) -> None:
    emu.set_faults(["forbidden:status=1"])
    before = emu.stats()["requests"]["status"]
    with pytest.raises(PermissionDeniedError) as info:
        client.status("any")
    assert info.value.error_code == 403001
    assert emu.stats()["requests"]["status"] - before == 1


def test_created_then_503_is_reported_uncertain_and_never_resent(
    client: Client, emu: Emulator, url: str
) -> None:
    emu.set_faults(["created_then_503=@1"])
    before = emu.stats()
    with pytest.raises(SubmissionUncertainError) as info:
        client.submit(INPAINT, inputs(url))
    after = emu.stats()
    assert after["jobs"] - before["jobs"] == 1  # the job exists
    assert after["submissions"] - before["submissions"] == 1  # and was not paid for twice
    assert info.value.model_id == INPAINT and info.value.fingerprint


def test_a_job_is_followed_through_an_outage_and_downloaded(
    client: Client, emu: Emulator, url: str, tmp_path: Path
) -> None:
    handle = client.submit(INPAINT, inputs(url))
    emu.set_faults(["outage=0+0.6"])
    notices: list[str] = []
    client.retry_listeners.append(lambda notice: notices.append(str(notice)))
    result = handle.wait()
    files = result.download(tmp_path)
    assert files and files[0].stat().st_size > 0
    assert emu.stats()["faults"]["outage"] >= 3
    assert any(n.startswith("retrying status") for n in notices)


def test_an_outage_answers_like_a_gateway_or_not_at_all(emu: Emulator) -> None:
    emu.set_faults(["outage=0+5"])
    seen = set()
    try:
        with httpx.Client(base_url=emu.base_url, timeout=5) as http:
            for _ in range(12):
                try:
                    response = http.get("/v1/requests/x/status")
                    seen.add(response.status_code)
                    assert "error_code" not in response.json()
                except httpx.TransportError:
                    seen.add("dropped")
    finally:
        emu.set_faults([])
    assert "dropped" in seen and seen & {502, 503, 504}


def test_outage_and_answer_specs_are_checked() -> None:
    assert parse_fault("outage=5+20").window == (5.0, 20.0)
    for bad in ("outage=0.5", "outage=x+1", "outage=1+0", "rate_limit=1+2"):
        with pytest.raises(ValueError, match=r"must be|not a number"):
            parse_fault(bad)
    with pytest.raises(ValueError, match="unknown answer switch"):
        Emulator(answers=["succeded"])


def test_restyle_leaves_errors_answered_with_200_alone() -> None:
    body = {"error_code": 500001, "error_message": "x"}
    assert restyle("/v1/requests/r/status", 200, body, frozenset({"null_errors"})) == body


def test_the_cli_says_what_it_is_retrying_during_an_outage(
    client: Client, emu: Emulator, url: str
) -> None:
    from click.testing import CliRunner

    from runcomfy_client.cli import cli

    request_id = client.submit(INPAINT, inputs(url)).request_id
    emu.set_faults(["outage=0+1"])
    env = {"RUNCOMFY_BASE_URL": emu.base_url, "RUNCOMFY_API_KEY": emu.api_key}
    result = CliRunner().invoke(cli, ["wait", request_id], env=env)
    assert result.exit_code == 0, result.output
    assert "retrying status" in result.stderr
    assert result.stdout.strip().endswith(".mp4")


def test_a_download_is_retried_through_an_outage_not_given_up_after_a_few_tries(
    client: Client, emu: Emulator, url: str, tmp_path: Path
) -> None:
    result = client.submit(INPAINT, inputs(url)).wait()
    emu.set_faults(["outage=0+1"])
    before = emu.stats()["faults"].get("outage", 0)
    files = result.download(tmp_path)  # max_retries (4) failures in a row come within 0.3 s
    assert files[0].stat().st_size > 0
    assert emu.stats()["faults"]["outage"] - before > RETRY.max_retries + 1
