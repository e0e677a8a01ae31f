"""Scripted API answers on a virtual clock: the lifecycle's branches without sockets or waiting.

A :class:`Script` is an ``httpx.MockTransport`` handler that answers each request from a
function of (request, virtual time); :func:`scripted` builds a Client (or AsyncClient) whose
sleeps advance the virtual clock instead of waiting.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx

from runcomfy_client import AsyncClient, Client, PollingPolicy
from runcomfy_client._polling import PollingSettings

Answer = httpx.Response | Exception


class VirtualClock:
    """Time that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0, seconds
        self.sleeps.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)  # no time passes, but other tasks get their turn, as they would


def ok(body: dict[str, Any], status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def raw(status: int, content: bytes, **headers: str) -> httpx.Response:
    return httpx.Response(status, content=content, headers=headers)


class Script:
    """Answers requests by ``answer(kind, request, now)``; records every request."""

    def __init__(self, clock: VirtualClock, answer: Callable[[str, httpx.Request, float], Answer]):
        self.clock = clock
        self.answer = answer
        self.requests: list[tuple[str, float, httpx.Request]] = []

    def kinds(self) -> list[str]:
        return [kind for kind, _, _ in self.requests]

    def count(self, kind: str) -> int:
        return self.kinds().count(kind)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/v1/models/"):
            kind = "submit" if request.method == "POST" else "model"
        else:
            kind = path.rsplit("/", 1)[-1]
        self.requests.append((kind, self.clock.now, request))
        answer = self.answer(kind, request, self.clock.now)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def body(self, index: int) -> Any:
        return json.loads(self.requests[index][2].content)


FAST_POLL = PollingPolicy(PollingSettings.with_interval(1.0), learn=False)


def scripted(script: Script, *, base_url: str = "https://api.test", **kwargs: Any) -> Client:
    """A Client on ``script``'s answers and virtual clock."""
    http = httpx.Client(transport=httpx.MockTransport(script))
    client = Client(
        base_url=base_url,
        api_key="sk-test-key-0123456789",
        http_client=http,
        **{"polling": FAST_POLL, **kwargs},
    )
    client._clock = script.clock
    client._sleep = script.clock.sleep
    return client


def scripted_async(script: Script, **kwargs: Any) -> AsyncClient:
    """An AsyncClient on ``script``'s answers and virtual clock."""

    async def handler(request: httpx.Request) -> httpx.Response:
        return script(request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    client = AsyncClient(
        base_url="https://api.test",
        api_key="sk-test-key-0123456789",
        http_client=http,
        **{"polling": FAST_POLL, **kwargs},
    )
    client._clock = script.clock
    client._sleep = script.clock.asleep
    return client
