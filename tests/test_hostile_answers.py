"""Hostile answers are parsed within limits (size, depth, digits) and become the client's own
ResponseDecodeError naming the call, never a traceback, a hang or a MemoryError (issue 16.3)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from click.testing import CliRunner

from runcomfy_client import ResponseDecodeError, RetryPolicy, SubmissionUncertainError
from runcomfy_client.cli import cli

from .conftest import INPAINT
from .hostile_http import HostileServer, answer
from .scripted import Script, VirtualClock, raw, scripted

GOOD = {"prompt": "p", "start_image": "https://e.com/a.png", "end_image": "https://e.com/b.png"}

HOSTILE: dict[str, bytes] = {
    "digits": b'{"request_id": "r1", "status": "in_queue", "queue_position": 1'
    + b"0" * 4400
    + b"}",
    "queue_position_10e400": b'{"request_id": "r1", "status": "in_queue", "queue_position": 1'
    + b"0" * 400
    + b"}",
    "deep": b"[" * 100_000 + b"]" * 100_000,
    "deep_enough_to_hurt_later": b'{"a":' * 200 + b"1" + b"}" * 200,
    "huge_float": b'{"request_id": "r1", "status": "in_queue", "queue_position": 1e999}',
    "nan": b'{"request_id": "r1", "status": "in_queue", "queue_position": NaN}',
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_status_answer_is_a_decode_error_naming_the_call(name: str) -> None:
    clock = VirtualClock()
    script = Script(clock, lambda kind, request, now: raw(200, HOSTILE[name]))
    with (
        scripted(script, retry=RetryPolicy.none()) as client,
        pytest.raises(ResponseDecodeError) as info,
    ):
        client.status("r1")
    assert "GET /v1/requests/r1/status" in str(info.value)
    assert info.value.request_id == "r1"
    assert len(str(info.value)) < 400


def test_a_hostile_answer_to_a_submit_is_uncertain_never_resent() -> None:
    clock = VirtualClock()
    script = Script(clock, lambda kind, request, now: raw(200, HOSTILE["digits"]))
    with scripted(script) as client, pytest.raises(SubmissionUncertainError):
        client.submit(INPAINT, GOOD)
    assert script.kinds() == ["submit"]


class _Endless(httpx.SyncByteStream):
    """A body that never ends: 1 MiB pieces for ever (counts how many were read)."""

    def __init__(self) -> None:
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        while True:
            self.sent += 1
            yield b'{"pad": "' + b"x" * (1 << 20)


def test_an_endless_answer_is_cut_at_the_size_limit() -> None:
    clock = VirtualClock()
    streams: list[_Endless] = []

    def endless(kind: str, request: httpx.Request, now: float) -> httpx.Response:
        streams.append(_Endless())
        return httpx.Response(200, stream=streams[-1])

    with (
        scripted(Script(clock, endless), retry=RetryPolicy.none()) as client,
        pytest.raises(ResponseDecodeError, match="answered more than 8,388,608 bytes"),
    ):
        client.result("r1")
    assert streams[0].sent <= 10  # stopped reading, never held the whole thing


def test_a_poisoned_job_is_retried_for_its_budget_then_reported_with_its_id() -> None:
    clock = VirtualClock()
    script = Script(clock, lambda kind, request, now: raw(200, HOSTILE["queue_position_10e400"]))
    with scripted(script, outage_budget=30) as client, pytest.raises(ResponseDecodeError) as info:
        client.wait("r1")
    assert 30 <= clock.now <= 31
    assert "runcomfy-client wait r1" in str(info.value)


# -- a real hostile server, for the CLI --------------------------------------------------------


@pytest.mark.parametrize("name", ["digits", "deep", "queue_position_10e400"])
def test_the_cli_reports_a_hostile_answer_without_a_traceback(name: str) -> None:
    route = {"/v1/requests/r1/status": lambda request: [answer(200, HOSTILE[name])]}
    with HostileServer(routes=route) as server:
        env = {
            "RUNCOMFY_BASE_URL": server.url(""),
            "RUNCOMFY_API_KEY": "k",
            "RUNCOMFY_OUTAGE_BUDGET": "0",
        }
        result = CliRunner().invoke(cli, ["status", "r1"], env=env)
    assert result.exit_code == 5, result.output
    assert "Traceback" not in result.output
    assert "error: GET /v1/requests/r1/status answered" in result.stderr
