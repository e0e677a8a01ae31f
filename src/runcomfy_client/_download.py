"""Saving outputs: where each file goes, and the httpx streams a transfer reads.

Every rule of a download (ranges, lengths, encodings, caps, redirects, retries, the deadline,
the temporary name) lives in ``_download_flow.Transfer``, driven by ``_download_flow.fetch``;
where a file may come from lives in ``_download_policy``. The reader of each attempt is:

- the fast reader (``_fast_get``) when the client made its own connections and no proxy from
  the environment applies: it connects to the very address that was checked. The async client
  runs that transfer in a thread of its own (a cancel cuts the connection and waits for the
  thread to remove its partial file); progress callbacks still run on the event loop;
- otherwise httpx (:class:`HttpxStream`, :class:`AsyncHttpxStream` below), through the client's
  ``httpx.Client``/``AsyncClient``, so a client passed in keeps its transport, proxies and
  certificates. When the connection is the client's own and not proxied, the host's addresses
  are checked before anything is sent and the connected peer once more; a transport passed in,
  or a proxy, resolves names itself (it may be a mock, or the only way to the host), so then
  only an address written in the URL is checked.

No path sends the API key: a request carries the transfer's headers only, and any
``Authorization`` or ``Cookie`` default of a client passed in is removed.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

import httpx

from ._budget import cut_when_due, socket_of
from ._download_flow import ProgressCallback, Transfer
from ._errors import DownloadError

__all__ = ["AsyncHttpxStream", "HttpxStream", "ProgressCallback", "plan_targets", "safe_name"]

_T = TypeVar("_T")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SECRET_HEADERS = ("Authorization", "Proxy-Authorization", "Cookie")


def safe_name(url: str, fallback: str = "output") -> str:
    """A file name from a URL's last path segment that cannot leave its folder."""
    segment = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    segment = segment.replace("\\", "_").replace("/", "_")
    name = _UNSAFE.sub("_", segment).strip("._") or fallback
    return name[:150]


def plan_targets(urls: Iterable[str], directory: Path, *, overwrite: bool = False) -> list[Path]:
    """One path per URL inside ``directory``: unique, and new unless ``overwrite``.

    Same-named outputs become ``name.png``, ``name-2.png``, ``name-3.png``...: each name
    remembers its next number, so N same-named outputs cost O(N) tries, not O(N^2), and each
    try is a set lookup (20,000 outputs called ``output.png`` are named at once).
    """
    directory = directory.resolve()
    chosen: list[Path] = []
    taken: set[Path] = set()
    next_number: dict[str, int] = {}
    for url in urls:
        name = safe_name(url)
        stem, dot, ext = name.rpartition(".")
        if not dot:
            stem, ext = name, ""
        candidate = directory / name
        counter = next_number.get(name, 2)
        while candidate in taken or (not overwrite and candidate.exists()):
            candidate = directory / (f"{stem}-{counter}.{ext}" if ext else f"{stem}-{counter}")
            counter += 1
        next_number[name] = counter
        if candidate.parent != directory:  # pragma: no cover - safe_name forbids separators
            raise DownloadError(f"refusing to write outside {directory}: {candidate}", url=url)
        chosen.append(candidate)
        taken.add(candidate)
    return chosen


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


def peer_of(response: httpx.Response) -> str | None:
    """The address an answer came from, when its transport says (a mock's does not)."""
    stream = response.extensions.get("network_stream")
    address = stream.get_extra_info("server_addr") if stream is not None else None
    return str(address[0]) if address else None


class _Answer:
    """What both httpx streams show the transfer: status, headers, the peer connected to."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.status = response.status_code
        self.headers = response.headers
        self.peer = peer_of(response)
        # An answer built with its content (a mock transport's) is already read.
        self.read_already = response.is_stream_consumed


class HttpxStream(_Answer):
    """A transfer's GET through a blocking ``httpx.Client``; cut when the deadline passes."""

    def __init__(self, http: httpx.Client, transfer: Transfer) -> None:
        super().__init__(http.send(_request(http, transfer), stream=True, follow_redirects=False))
        # Per-read timeouts cannot bound a body that trickles: the deadline cuts it.
        self._timer = cut_when_due(socket_of(self.response), transfer.remaining())
        chunks = [self.response.content] if self.read_already else self.response.iter_raw()
        self._chunks: Iterator[bytes] = iter(chunks)

    def read(self) -> bytes | None:
        return next(self._chunks, None)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.response.close()


class AsyncHttpxStream(_Answer):
    """A transfer's GET through an ``httpx.AsyncClient``; each step bounded by the deadline."""

    def __init__(self, response: httpx.Response, transfer: Transfer) -> None:
        super().__init__(response)
        self._transfer = transfer
        chunks = response.aiter_raw() if not self.read_already else _once(response.content)
        self._chunks: AsyncIterator[bytes] = chunks

    @classmethod
    async def open(cls, http: httpx.AsyncClient, transfer: Transfer) -> AsyncHttpxStream:
        request = _request(http, transfer)
        send = http.send(request, stream=True, follow_redirects=False)
        return cls(await within(transfer, send), transfer)

    async def read(self) -> bytes | None:
        try:
            return await within(self._transfer, self._chunks.__anext__())
        except StopAsyncIteration:
            return None

    async def close(self) -> None:
        await self.response.aclose()


async def _once(content: bytes) -> AsyncIterator[bytes]:
    yield content


async def within(transfer: Transfer, step: Awaitable[_T]) -> _T:
    """``step``, cut off when the transfer's deadline passes (DownloadError says so)."""
    left = transfer.remaining()
    if left is None:
        return await step
    import asyncio

    try:
        return await asyncio.wait_for(step, max(left, 0.0))
    except asyncio.TimeoutError:
        transfer.check_deadline()
        raise
