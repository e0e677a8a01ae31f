"""A plain HTTP/1.1 GET for large bodies: the default reader of downloads.

httpx reads 64 KiB per ``recv`` and parses every piece in Python, which holds a large download
to about half of curl's speed. This reader uses ``http.client`` (headers, chunked bodies) over a
socket connected to an address the download policy checked (so DNS cannot change between the
check and the connection), and reads the body with ``readinto`` into one 1 MiB buffer: one
``recv_into`` per piece, no copy, flat memory. TLS uses httpx's own default context (certifi,
``SSL_CERT_FILE``), so both paths trust the same certificates.

It is used only when the client owns its HTTP connections and no proxy applies; otherwise
downloads go through httpx (see ``_download.py``). Every check stays in ``Transfer``; the
flow that drives it is ``_download_flow.fetch``.
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator

from ._budget import cut, cut_when_due
from ._download_flow import Transfer
from ._download_policy import Address, Target
from ._tls import shared_context

__all__ = ["FastStream"]

BUFFER_BYTES = 1 << 20


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
                sock = shared_context().wrap_socket(sock, server_hostname=self.host)
            except BaseException:
                sock.close()
                raise
        self.sock = sock


class FastStream:
    """One GET on a pinned connection; its body is read into one buffer, a ``recv`` at a time.

    The connection is cut at the transfer's deadline, or when the transfer is cancelled from
    another thread. :meth:`close` releases it (the flow always asks for it).
    """

    peer: str | None = None  # the connection was made to a checked address: nothing to check

    def __init__(self, transfer: Transfer, addresses: list[Address]) -> None:
        target = transfer.target
        connect_timeout, read_timeout = transfer.timeouts()
        self._transfer = transfer
        self._conn = _PinnedConnection(target, addresses, connect_timeout)
        self._watchdog: threading.Timer | None = None
        self._buffer = memoryview(bytearray(BUFFER_BYTES))
        try:
            conn = self._conn
            conn.connect()
            sock = conn.sock
            sock.settimeout(read_timeout)
            transfer.watch(lambda: cut(sock))
            # Per-read timeouts cannot bound a body that trickles: the deadline cuts it.
            self._watchdog = cut_when_due(sock, transfer.remaining())
            conn.putrequest("GET", target.request_target, skip_accept_encoding=True)
            for name, value in transfer.request_headers().items():
                conn.putheader(name, value)
            conn.putheader("Connection", "close")
            conn.endheaders()
            self.response = conn.getresponse()
        except BaseException:
            self.close()
            raise
        self.status = self.response.status
        self.headers = self.response.headers
        self._chunks = self._body()

    def read(self) -> bytes | memoryview | None:
        """The next piece of the body (handed on at once: progress, deadline), None at its end."""
        return next(self._chunks, None)

    def _body(self) -> Iterator[bytes | memoryview]:
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

    def close(self) -> None:
        self._transfer.watch(None)
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._conn.close()
