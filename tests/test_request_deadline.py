"""``wait(timeout=)`` bounds every request it makes, not only the time between them.

httpx's timeouts are per read: a status answer that trickles a byte at a time never trips them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from runcomfy_client import AsyncClient, Client, DeadlineExceededError

from .hostile_http import HostileServer, head, json_answer, trickle


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with HostileServer() as s:
        yield s


def trickling_status(server: HostileServer) -> None:
    body = b'{"request_id": "job-16", "status": "in_progress"}'
    headers = {"Content-Length": len(body) + 1000, "Content-Type": "application/json"}
    server.routes["/v1/requests/job-16/status"] = lambda r: trickle(head(200, headers) + b" ")


@pytest.mark.parametrize("asynchronous", [False, True])
def test_a_trickling_status_answer_cannot_hold_wait_past_its_deadline(
    server: HostileServer, asynchronous: bool
) -> None:
    # Today: one byte every 20 ms kept wait(timeout=0.3) waiting for the whole 10 s answer.
    trickling_status(server)

    def wait() -> None:
        if asynchronous:

            async def run() -> None:
                async with AsyncClient(api_key="k", base_url=server.url("")) as client:
                    await client.wait("job-16", timeout=0.3)

            asyncio.run(run())
        else:
            with Client(api_key="k", base_url=server.url("")) as client:
                client.wait("job-16", timeout=0.3)

    started = time.monotonic()
    with pytest.raises(DeadlineExceededError) as caught:
        wait()
    assert time.monotonic() - started < 5  # the deadline and its grace, not the server
    assert "job-16" in str(caught.value)


def test_a_request_without_a_deadline_keeps_its_per_read_timeouts(server: HostileServer) -> None:
    server.routes["/v1/requests/job-16/status"] = lambda r: json_answer(
        {"request_id": "job-16", "status": "completed"}
    )
    with Client(api_key="k", base_url=server.url("")) as client:
        assert client.status("job-16").status == "completed"
