"""The two drivers: the only code that differs between ``Client`` and ``AsyncClient``.

A driver performs the effects a flow yields (see ``_flow``): :class:`SyncDriver` with a blocking
``httpx.Client`` and ``time.sleep``, :class:`AsyncDriver` with an ``httpx.AsyncClient`` and
``asyncio.sleep``. Neither decides anything: what to send, when to retry, how long to sleep and
what an answer means are the flows' (``_lifecycle``, ``_download_flow``, ``_deployments``).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from . import _flow as f
from ._budget import bounded
from ._errors import DownloadError

if TYPE_CHECKING:
    import asyncio

    import httpx

    from ._download_flow import Transfer
    from ._types import DownloadProgress

__all__ = ["AsyncDriver", "SyncDriver"]

T = TypeVar("T")


class _Capped:
    """An answer's body, read until it grows past ``limit`` (then nothing more is read)."""

    def __init__(self, limit: int) -> None:
        self.body = bytearray()
        self.limit = limit

    def add(self, chunk: bytes) -> bool:
        self.body += chunk
        return len(self.body) <= self.limit

    def content(self) -> bytes | None:
        return bytes(self.body) if len(self.body) <= self.limit else None


class SyncDriver:
    """Performs effects with blocking I/O; ``sleep`` is the client's (a virtual one in tests)."""

    def __init__(self, http: httpx.Client | None, sleep: Callable[[float], None]) -> None:
        self.http = http
        self.sleep = sleep

    def run(self, flow: f.Flow[T], on_report: Callable[[Any], None] | None = None) -> T:
        """Drive ``flow`` to its value; what it reports goes to ``on_report``."""
        return f.run(flow, self.handle, on_report)

    def iterate(self, flow: f.Flow[object]) -> Iterator[Any]:
        """What ``flow`` reports, as it reports it."""
        return f.steps(flow, self.handle)

    def handle(self, effect: f.Effect) -> object:
        if isinstance(effect, f.Exchange):
            call = effect.call
            assert self.http is not None
            capped = _Capped(call.max_bytes)
            with (
                self.http.stream(
                    call.method,
                    effect.url,
                    headers=effect.headers,
                    json=call.json,
                    timeout=effect.timeout,
                ) as response,
                bounded(response, effect.budget),
            ):
                for chunk in response.iter_bytes():
                    if not capped.add(chunk):
                        break
            return f.Answer(response, capped.content())
        if isinstance(effect, f.Sleep):
            self.sleep(effect.seconds)
            return None
        if isinstance(effect, (f.Read, f.Close)):
            stream: Any = effect.stream
            return stream.read() if isinstance(effect, f.Read) else stream.close()
        if isinstance(effect, f.Open):
            if effect.addresses is not None:
                from ._fast_get import FastStream

                return FastStream(effect.transfer, effect.addresses)
            from ._download import HttpxStream

            assert self.http is not None
            return HttpxStream(self.http, effect.transfer)
        if isinstance(effect, f.Resolve):
            import socket

            from ._download_policy import addresses_of

            target = effect.target
            return addresses_of(socket.getaddrinfo(target.host, target.port, type=_STREAM))
        if isinstance(effect, f.Offload):
            return [task() for task in effect.tasks]
        if isinstance(effect, (f.Detach, f.Shielded)):
            return self.run(effect.flow)
        raise TypeError(f"no driver for {effect!r}")


class AsyncDriver:
    """Performs effects on the running event loop; ``sleep`` is the client's."""

    def __init__(self, http: httpx.AsyncClient, sleep: Callable[[float], Awaitable[None]]) -> None:
        self.http = http
        self.sleep = sleep

    async def run(self, flow: f.Flow[T], on_report: Callable[[Any], None] | None = None) -> T:
        return await f.arun(flow, self.handle, on_report)

    def iterate(self, flow: f.Flow[object]) -> AsyncIterator[Any]:
        return f.asteps(flow, self.handle)

    async def handle(self, effect: f.Effect) -> object:
        if isinstance(effect, f.Exchange):
            call = effect.call
            capped = _Capped(call.max_bytes)
            async with self.http.stream(
                call.method,
                effect.url,
                headers=effect.headers,
                json=call.json,
                timeout=effect.timeout,
            ) as response:
                with bounded(response, effect.budget):
                    async for chunk in response.aiter_bytes():
                        if not capped.add(chunk):
                            break
            return f.Answer(response, capped.content())
        if isinstance(effect, f.Sleep):
            await self.sleep(effect.seconds)
            return None
        if isinstance(effect, (f.Read, f.Close)):
            stream: Any = effect.stream
            return await (stream.read() if isinstance(effect, f.Read) else stream.close())
        if isinstance(effect, f.Open):
            from ._download import AsyncHttpxStream

            assert effect.addresses is None, "the fast reader runs detached"
            return await AsyncHttpxStream.open(self.http, effect.transfer)
        import asyncio

        if isinstance(effect, f.Resolve):
            from ._download_policy import addresses_of

            target = effect.target
            loop = asyncio.get_running_loop()
            infos = await loop.getaddrinfo(target.host, target.port, type=_STREAM)
            return addresses_of(infos)
        if isinstance(effect, f.Offload):
            return list(await asyncio.gather(*(asyncio.to_thread(t) for t in effect.tasks)))
        if isinstance(effect, f.Detach):
            return await _detached(effect.flow, effect.transfer)
        if isinstance(effect, f.Shielded):
            return await self._shielded(effect)
        raise TypeError(f"no driver for {effect!r}")

    async def _shielded(self, effect: f.Shielded[T]) -> T:
        """Run the flow as a task of its own; if this one is cancelled, give it ``grace``."""
        import asyncio

        task = asyncio.ensure_future(self.run(effect.flow))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            with suppress(Exception, asyncio.CancelledError):
                effect.late(await asyncio.wait_for(task, effect.grace))
            raise


_STREAM = 1  # socket.SOCK_STREAM, without importing socket for it


# -- the fast reader under an event loop ---------------------------------------------------------


async def _detached(flow: f.Flow[Path], transfer: Transfer) -> Path:
    """A transfer on a thread of its own, with a blocking driver; progress callbacks run on the
    event loop. A callback that raises stops the download and its exception reaches the caller,
    as it does when the callback runs in the download's own thread."""
    import asyncio

    loop = asyncio.get_running_loop()
    callback = transfer.on_progress
    raised: list[BaseException] = []

    def deliver(update: DownloadProgress) -> None:
        if raised or callback is None:
            return
        try:
            callback(update)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            raised.append(exc)
            transfer.cancel()

    if callback is not None:
        transfer.on_progress = lambda update: _post(loop, deliver, update)
    announce = transfer.on_retry
    if announce is not None:  # retry listeners, like progress callbacks, run on the loop
        transfer.on_retry = lambda notice: _post(loop, announce, notice)
    driver = SyncDriver(None, transfer.wait)  # a cancel ends its pauses at once
    try:
        saved = await _in_thread(loop, transfer, lambda: driver.run(flow))
    except DownloadError:
        if raised:
            raise raised[0] from None
        raise
    if raised:
        raise raised[0]
    return saved


async def _in_thread(
    loop: asyncio.AbstractEventLoop, transfer: Transfer, work: Callable[[], Path]
) -> Path:
    import asyncio

    future: asyncio.Future[Path] = loop.create_future()

    def settle(value: Path | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            assert value is not None
            future.set_result(value)

    def run() -> None:
        try:
            value = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task as it is
            _post(loop, settle, None, exc)
        else:
            _post(loop, settle, value, None)

    threading.Thread(target=run, name="runcomfy-download", daemon=True).start()
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        # Cut the connection and let the thread remove its partial file before going on.
        transfer.cancel()
        await asyncio.wait([future])
        raise


def _post(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: object) -> None:
    with suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
        loop.call_soon_threadsafe(fn, *args)
