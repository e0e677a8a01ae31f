"""A scripted HTTP/1.1 server on loopback, for answers no honest server gives.

Each route is a function of the request that returns the raw bytes to send (status line,
headers, body) as an iterable: it may stop early (a cut), trickle, lie about lengths and ranges,
or redirect anywhere. Every request is recorded with its headers.
"""

from __future__ import annotations

import gzip
import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""

    @property
    def range_start(self) -> int | None:
        value = self.headers.get("range", "")
        if not value.startswith("bytes=") or not value.endswith("-"):
            return None
        return int(value[6:-1])


Route = Callable[[Request], Iterable[bytes]]


def head(status: int, headers: dict[str, str | int] | None = None, *, reason: str = "X") -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def answer(status: int, body: bytes = b"", headers: dict[str, str | int] | None = None) -> bytes:
    return head(status, {"Content-Length": len(body), **(headers or {})}) + body


def serve_file(payload: bytes, request: Request, **extra: str | int) -> list[bytes]:
    """An honest answer: 200, or 206 with the right Content-Range for ``bytes=N-``."""
    start = request.range_start
    if start is None:
        return [answer(200, payload, dict(extra))]
    part = payload[start:]
    content_range = f"bytes {start}-{len(payload) - 1}/{len(payload)}"
    return [answer(206, part, {"Content-Range": content_range, **extra})]


def json_answer(data: Any, status: int = 200) -> list[bytes]:
    return [answer(status, json.dumps(data).encode(), {"Content-Type": "application/json"})]


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def trickle(
    first: bytes, piece: bytes = b"x", every: float = 0.02, limit: int = 500
) -> Iterator[bytes]:
    """Send ``first``, then ``piece`` every ``every`` seconds (bounded, so the thread ends)."""
    yield first
    for _ in range(limit):
        time.sleep(every)
        yield piece


@dataclass
class HostileServer:
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    _server: socketserver.ThreadingTCPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def hits(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path.split("?")[0] == path]

    def __enter__(self) -> HostileServer:
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                sock.settimeout(10)
                data = b""
                while b"\r\n\r\n" not in data:
                    piece = sock.recv(65536)
                    if not piece:
                        return
                    data += piece
                head_bytes, _, rest = data.partition(b"\r\n\r\n")
                lines = head_bytes.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0") or 0)
                while len(rest) < length:
                    rest += sock.recv(65536)
                request = Request(method, target, headers, rest)
                outer.requests.append(request)
                route = outer.routes.get(target.split("?")[0])
                pieces = route(request) if route else [answer(404, b"no route")]
                try:
                    for piece in pieces:
                        sock.sendall(piece)
                except OSError:
                    return  # the client went away: fine, that is often the point
                finally:
                    close = getattr(pieces, "close", None)
                    if close is not None:
                        close()

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
