"""One HTTP exchange bounded by a deadline, not only by per-read timeouts.

httpx's timeouts apply to each connect, write and read: a server that sends a byte every few
seconds never trips them. So a request made under a deadline gets every phase's timeout clipped
to the time left, and its connection is cut when the deadline passes (``shutdown`` of the
socket wakes a read blocked in another thread at once).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Protocol

import httpx

from ._retry import clip

__all__ = ["bounded", "clip_timeout", "cut", "cut_when_due", "socket_of"]


def clip_timeout(timeout: httpx.Timeout, left: float | None) -> httpx.Timeout:
    """``timeout`` with each phase clipped to the ``left`` seconds."""
    if left is None:
        return timeout
    return httpx.Timeout(
        connect=clip(timeout.connect, left),
        read=clip(timeout.read, left),
        write=clip(timeout.write, left),
        pool=clip(timeout.pool, left),
    )


class _Shuttable(Protocol):
    def shutdown(self, how: int, /) -> None: ...


def cut(sock: _Shuttable) -> None:
    """Wake whoever reads ``sock`` with an end of stream, from any thread."""
    # socket.socket.shutdown, not SSLSocket's override (which is not meant for other threads);
    # close() from another thread would not be safe either.
    with suppress(OSError):
        if isinstance(sock, socket.socket):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        else:  # asyncio's TransportSocket (httpx's async connections): the same shutdown(2)
            sock.shutdown(socket.SHUT_RDWR)


def socket_of(response: httpx.Response) -> _Shuttable | None:
    """The socket an httpx answer arrives on, when its transport has one."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    return sock if callable(getattr(sock, "shutdown", None)) else None


def cut_when_due(sock: _Shuttable | None, left: float | None) -> threading.Timer | None:
    """A started timer that cuts ``sock`` in ``left`` seconds (cancel it when done)."""
    if sock is None or left is None:
        return None
    timer = threading.Timer(max(left, 0.0), cut, (sock,))
    timer.daemon = True
    timer.start()
    return timer


@contextmanager
def bounded(response: httpx.Response, left: float | None) -> Iterator[None]:
    """While reading ``response``: its connection is cut if ``left`` seconds pass."""
    timer = cut_when_due(socket_of(response), left)
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()
