"""A plain HTTP/1.1 GET for large bodies: the default reader of downloads.

httpx reads 64 KiB per ``recv`` and parses every piece in Python, which holds a large download
to about half of curl's speed. This reader uses ``http.client`` (headers, chunked bodies) over a
socket connected to an address the download policy checked (so DNS cannot change between the
check and the connection), and reads the body with ``readinto`` into one 1 MiB buffer: one
``recv_into`` per piece, no copy, flat memory. TLS uses httpx's own default context (certifi,
``SSL_CERT_FILE``), so both paths trust the same certificates.

It is used only when the client owns its HTTP connections and no proxy applies; otherwise
downloads go through httpx (see ``_download.py``). Every check stays in ``Transfer``.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

from ._budget import cut, cut_when_due
from ._download_flow import Transfer
from ._download_policy import Address, Target, resolve

__all__ = ["FastAnswer", "open_fast", "proxied"]

BUFFER_BYTES = 1 << 20


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    import httpx

    return httpx.create_ssl_context()


def proxied(url: str) -> bool:
    """A proxy from the environment applies to ``url`` (as httpx would read it)."""
    proxies = getproxies()
    if not proxies:
        return False
    parts = urlsplit(url)
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not proxy_bypass(parts.hostname or "")


def _connect(addresses: list[Address], timeout: float | None) -> socket.socket:
    """A connection to the first address that answers (each was checked before)."""
    error: OSError | None = None
    for family, sockaddr in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(sockaddr)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    assert error is not None
    raise error


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection to a given address, whatever DNS would say now."""

    def __init__(self, target: Target, addresses: list[Address], connect_timeout: float | None):
        super().__init__(target.host, target.port)
        self._addresses = addresses
        self._connect_timeout = connect_timeout
        self._tls = target.scheme == "https"

    def connect(self) -> None:
        sock = _connect(self._addresses, self._connect_timeout)
        if self._tls:
            try:
                sock = _tls_context().wrap_socket(sock, server_hostname=self.host)
            except BaseException:
                sock.close()
                raise
        self.sock = sock


class FastAnswer:
    """An answer whose body is read into one reusable buffer, a ``recv`` at a time."""

    def __init__(self, response: http.client.HTTPResponse, buffer: memoryview) -> None:
        self.response = response
        self.status = response.status
        self.headers = response.headers
        self._buffer = buffer

    def chunks(self) -> Iterator[bytes | memoryview]:
        """The body as it arrives: each piece is handed on at once (progress, deadline)."""
        response, buffer = self.response, self._buffer
        if response.chunked:
            # Rare for media; http.client decodes the framing, a piece per call.
            while data := response.read1(len(buffer)):
                yield data
            return
        stream = response.fp
        left = response.length  # None: the body ends when the connection does
        while stream is not None and (left is None or left > 0):
            view = buffer if left is None or left >= len(buffer) else buffer[:left]
            n = stream.readinto1(view)
            if not n:
                return  # the connection ended: the transfer judges whether that was early
            if left is not None:
                left -= n
            yield buffer[:n]


@contextmanager
def open_fast(transfer: Transfer, buffer: memoryview) -> Iterator[FastAnswer]:
    """GET the transfer's current target; the connection is cut at the deadline or a cancel."""
    target = transfer.target
    addresses = transfer.check_addresses(resolve(target))
    connect_timeout, read_timeout = transfer.timeouts()
    conn = _PinnedConnection(target, addresses, connect_timeout)
    watchdog: threading.Timer | None = None
    try:
        conn.connect()
        sock = conn.sock
        sock.settimeout(read_timeout)
        transfer.watch(lambda: cut(sock))
        # Per-read timeouts cannot bound a body that trickles: the deadline cuts it.
        watchdog = cut_when_due(sock, transfer.remaining())
        conn.putrequest("GET", target.request_target, skip_accept_encoding=True)
        for name, value in transfer.request_headers().items():
            conn.putheader(name, value)
        conn.putheader("Connection", "close")
        conn.endheaders()
        yield FastAnswer(conn.getresponse(), buffer)
    finally:
        transfer.watch(None)
        if watchdog is not None:
            watchdog.cancel()
        conn.close()


def new_buffer() -> memoryview:
    return memoryview(bytearray(BUFFER_BYTES))
