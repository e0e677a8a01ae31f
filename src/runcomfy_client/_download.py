"""Saving outputs: where each file goes, and the drivers that fetch it.

Every rule of a download (ranges, lengths, encodings, caps, redirects, retries, the deadline,
the temporary name) lives in ``_download_flow.Transfer``; where a file may come from lives in
``_download_policy``. This module picks a reader and runs the transfer with it:

- the fast reader (``_fast_get``) when the client made its own connections and no proxy from
  the environment applies: it connects to the very address that was checked. The async client
  runs it in a thread of its own (a cancel cuts the connection and waits for the thread to
  remove its partial file); progress callbacks still run on the event loop;
- otherwise httpx, through the client's ``httpx.Client``/``AsyncClient``, so a client passed
  in keeps its transport, proxies and certificates. When the connection is the client's own
  and not proxied, the host's addresses are checked before anything is sent and the connected
  peer once more; a transport passed in, or a proxy, resolves names itself (it may be a mock,
  or the only way to the host), so then only an address written in the URL is checked.

No path sends the API key: a request carries the transfer's headers only, and any
``Authorization`` or ``Cookie`` default of a client passed in is removed.
"""

from __future__ import annotations

import http.client
import re
import socket
import threading
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import httpx

from ._budget import cut_when_due, socket_of
from ._download_flow import ProgressCallback, RetryableError, Transfer
from ._download_policy import DownloadPolicy, addresses_of, resolve
from ._errors import DownloadError
from ._retry import RetryNotice, RetryPolicy
from ._types import DownloadProgress

if TYPE_CHECKING:
    import asyncio

__all__ = ["DownloadJob", "ProgressCallback", "download_async", "download_sync", "plan_targets"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# What a failed attempt may raise on each path, besides the transfer's own DownloadError.
_FAST_FAILURES = (OSError, http.client.HTTPException, RetryableError)
_HTTPX_FAILURES = (httpx.HTTPError, httpx.InvalidURL, OSError, RetryableError)
_SECRET_HEADERS = ("Authorization", "Proxy-Authorization", "Cookie")


def safe_name(url: str, fallback: str = "output") -> str:
    """A file name from a URL's last path segment that cannot leave its folder."""
    segment = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    segment = segment.replace("\\", "_").replace("/", "_")
    name = _UNSAFE.sub("_", segment).strip("._") or fallback
    return name[:150]


def plan_targets(urls: Iterable[str], directory: Path, *, overwrite: bool = False) -> list[Path]:
    """One path per URL inside ``directory``: unique, and new unless ``overwrite``."""
    directory = directory.resolve()
    chosen: list[Path] = []
    for url in urls:
        name = safe_name(url)
        stem, dot, ext = name.rpartition(".")
        if not dot:
            stem, ext = name, ""
        candidate = directory / name
        counter = 2
        while candidate in chosen or (not overwrite and candidate.exists()):
            candidate = directory / (f"{stem}-{counter}.{ext}" if ext else f"{stem}-{counter}")
            counter += 1
        if candidate.parent != directory:  # pragma: no cover - safe_name forbids separators
            raise DownloadError(f"refusing to write outside {directory}: {candidate}", url=url)
        chosen.append(candidate)
    return chosen


@dataclass(frozen=True)
class DownloadJob:
    """What every file of one ``download()`` call shares: rules, budget, progress callback."""

    policy: DownloadPolicy
    retry: RetryPolicy
    local: bool  # the client talks to a local emulator: loopback outputs are allowed
    timeout: httpx.Timeout
    owns_http: bool  # the client made its httpx client: the fast reader may be used
    deadline: float | None = None  # time.monotonic() by which every file must be saved
    budget: float | None = None  # the timeout that set it, in seconds (for messages)
    on_progress: ProgressCallback | None = None
    on_retry: Callable[[RetryNotice], None] | None = None  # told before each retry waits
    request_id: str | None = None

    def transfer(
        self,
        url: str,
        path: Path,
        label: str,
        on_progress: ProgressCallback | None,
        on_retry: Callable[[RetryNotice], None] | None,
    ) -> Transfer:
        return Transfer(
            url,
            path,
            policy=self.policy,
            retry=self.retry,
            local=self.local,
            deadline=self.deadline,
            budget=self.budget,
            read_timeout=self.timeout.read,
            connect_timeout=self.timeout.connect,
            on_progress=on_progress,
            on_retry=on_retry,
            request_id=self.request_id,
            label=label,
        )

    def fast(self, url: str) -> bool:
        """Whether the fast reader may fetch ``url`` (else httpx does)."""
        from ._fast_get import proxied

        return self.owns_http and self.policy.fast and not proxied(url)

    def peer_checked(self, url: str) -> bool:
        """Whether httpx's connected peer is the host itself (no proxy, no foreign transport)."""
        from ._fast_get import proxied

        return self.owns_http and not proxied(url)


# -- sync ---------------------------------------------------------------------------------------


def download_sync(
    http: httpx.Client, job: DownloadJob, url: str, path: Path, label: str = ""
) -> Path:
    """Fetch ``url`` to ``path``, verified (see ``_download_flow``)."""
    transfer = job.transfer(url, path, label, job.on_progress, job.on_retry)
    if job.fast(url):
        return _run_sync(transfer, _fast_attempt(), _FAST_FAILURES)
    return _run_sync(transfer, _httpx_attempt(http, job), _HTTPX_FAILURES)


def _run_sync(
    transfer: Transfer,
    attempt: Callable[[Transfer], None],
    failures: tuple[type[BaseException], ...],
) -> Path:
    try:
        transfer.path.parent.mkdir(parents=True, exist_ok=True)
        while not transfer.done:
            try:
                attempt(transfer)
            except failures as exc:
                transfer.pause(transfer.failed(exc))
        return transfer.finish()
    finally:
        transfer.close()


def _fast_attempt() -> Callable[[Transfer], None]:
    from ._fast_get import new_buffer, open_fast

    buffer = new_buffer()

    def attempt(transfer: Transfer) -> None:
        with open_fast(transfer, buffer) as answer:
            if transfer.head(answer.status, answer.headers):
                for chunk in answer.chunks():
                    transfer.body(chunk)
                transfer.end()

    return attempt


def _httpx_attempt(http: httpx.Client, job: DownloadJob) -> Callable[[Transfer], None]:
    def attempt(transfer: Transfer) -> None:
        strict = job.peer_checked(transfer.target.url)
        if strict:
            transfer.check_addresses(resolve(transfer.target))
        else:
            transfer.check_literal()
        response = http.send(_request(http, transfer), stream=True, follow_redirects=False)
        timer = cut_when_due(socket_of(response), transfer.remaining())
        try:
            if strict:
                _check_peer(transfer, response)
            if transfer.head(response.status_code, response.headers):
                # An answer built with its content (a mock transport's) is already read.
                chunks = [response.content] if response.is_stream_consumed else response.iter_raw()
                for chunk in chunks:
                    transfer.body(chunk)
                transfer.end()
        finally:
            if timer is not None:
                timer.cancel()
            response.close()

    return attempt


def _request(http: httpx.Client | httpx.AsyncClient, transfer: Transfer) -> httpx.Request:
    connect, read = transfer.timeouts()
    request = http.build_request(
        "GET",
        transfer.target.url,
        headers=transfer.request_headers(),
        timeout=httpx.Timeout(connect=connect, read=read, write=read, pool=connect),
    )
    for name in _SECRET_HEADERS:
        request.headers.pop(name, None)
    return request


def _check_peer(transfer: Transfer, response: httpx.Response) -> None:
    stream = response.extensions.get("network_stream")
    address = stream.get_extra_info("server_addr") if stream is not None else None
    if address:
        transfer.check_peer(str(address[0]))


# -- async --------------------------------------------------------------------------------------


async def download_async(
    http: httpx.AsyncClient, job: DownloadJob, url: str, path: Path, label: str = ""
) -> Path:
    """The async form of :func:`download_sync`: the same transfer, other I/O."""
    import asyncio

    loop = asyncio.get_running_loop()
    if job.fast(url):
        return await _fast_in_thread(loop, job, url, path, label)
    transfer = job.transfer(url, path, label, job.on_progress, job.on_retry)
    left = transfer.remaining()
    if left is None:
        return await _run_async(http, job, transfer)
    try:
        return await asyncio.wait_for(_run_async(http, job, transfer), max(left, 0.0))
    except asyncio.TimeoutError:
        transfer.check_deadline()
        raise


async def _run_async(http: httpx.AsyncClient, job: DownloadJob, transfer: Transfer) -> Path:
    import asyncio

    try:
        transfer.path.parent.mkdir(parents=True, exist_ok=True)
        while not transfer.done:
            try:
                await _attempt_async(http, job, transfer)
            except _HTTPX_FAILURES as exc:
                await asyncio.sleep(transfer.failed(exc))
        return transfer.finish()
    finally:
        transfer.close()


async def _attempt_async(http: httpx.AsyncClient, job: DownloadJob, transfer: Transfer) -> None:
    import asyncio

    target = transfer.target
    strict = job.peer_checked(target.url)
    if strict:
        infos = await asyncio.get_running_loop().getaddrinfo(
            target.host, target.port, type=socket.SOCK_STREAM
        )
        transfer.check_addresses(addresses_of(infos))
    else:
        transfer.check_literal()
    response = await http.send(_request(http, transfer), stream=True, follow_redirects=False)
    try:
        if strict:
            _check_peer(transfer, response)
        if transfer.head(response.status_code, response.headers):
            if response.is_stream_consumed:  # built with its content (a mock transport's)
                transfer.body(response.content)
            else:
                async for chunk in response.aiter_raw():
                    transfer.body(chunk)
            transfer.end()
    finally:
        await response.aclose()


async def _fast_in_thread(
    loop: asyncio.AbstractEventLoop, job: DownloadJob, url: str, path: Path, label: str
) -> Path:
    """The fast reader in a thread of its own; progress callbacks run on the event loop.

    A callback that raises stops the download and its exception reaches the caller, as it
    does when the callback runs in the download's own thread.
    """
    callback = job.on_progress
    raised: list[BaseException] = []
    relay: ProgressCallback | None = None
    transfer: Transfer

    def deliver(update: DownloadProgress) -> None:
        if raised or callback is None:
            return
        try:
            callback(update)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            raised.append(exc)
            transfer.cancel()

    if callback is not None:
        relay = lambda update: _post(loop, deliver, update)  # noqa: E731
    announce = job.on_retry
    notices = None if announce is None else lambda notice: _post(loop, announce, notice)
    transfer = job.transfer(url, path, label, relay, notices)
    attempt = _fast_attempt()
    try:
        saved = await _in_thread(
            loop, transfer, lambda: _run_sync(transfer, attempt, _FAST_FAILURES)
        )
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
