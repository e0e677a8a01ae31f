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
import ssl
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
    tls: ssl.SSLContext | None = None  # serve https with this context
    _server: socketserver.ThreadingTCPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def hits(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path.split("?")[0] == path]

    def __enter__(self) -> HostileServer:
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                sock.settimeout(10)
                if outer.tls is not None:
                    try:
                        sock = outer.tls.wrap_socket(sock, server_side=True)
                    except (OSError, ssl.SSLError):
                        return  # the client refused the certificate
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


def fake_api(server: HostileServer, model_id: str, outputs: dict[str, Any]) -> None:
    """Routes of a Model API whose one job completes at once with ``outputs``."""
    body = {"request_id": "job-16", "status": "completed", "output": outputs}
    server.routes[f"/v1/models/{model_id}"] = lambda r: json_answer({"request_id": "job-16"})
    server.routes["/v1/requests/job-16/status"] = lambda r: json_answer(
        {"request_id": "job-16", "status": "completed"}
    )
    server.routes["/v1/requests/job-16/result"] = lambda r: json_answer(body)


def self_signed(folder: Any, *names: str) -> tuple[ssl.SSLContext, str]:
    """A server TLS context for ``names`` (and 127.0.0.1), and the path of its certificate."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hostile test server")])
    now = datetime.datetime.now(datetime.timezone.utc)
    alt = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = folder / "cert.pem"
    key_path = folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context, str(cert_path)
