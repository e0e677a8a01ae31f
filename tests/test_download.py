"""Downloads against a hostile server: every answer is verified, on every reader.

Each test runs on the four paths a download can take: the fast reader (sync, and in a thread
for the async client) and httpx (sync and async, what a client with its own ``http_client`` or
behind a proxy uses).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from runcomfy_client import (
    AsyncClient,
    Client,
    DownloadError,
    DownloadPolicy,
    DownloadProgress,
    Output,
    Result,
    RetryPolicy,
)

from .hostile_http import (
    HostileServer,
    Request,
    answer,
    gzipped,
    head,
    serve_file,
    trickle,
)

PAYLOAD = random.Random(16).randbytes(300_000)
LOCAL = "http://127.0.0.1:1"  # a loopback API: emulator mode, loopback outputs allowed
REMOTE = "https://model-api.runcomfy.net"
# A file's transient trouble is retried for the outage budget (15 minutes by default): a tiny
# one here, so that giving up is tested without waiting.
FAST_RETRY = RetryPolicy(
    backoff_base=0.001, backoff_max=0.01, retry_after_max=0.01, outage_budget=0.1
)
MODES = ["fast", "httpx", "async-fast", "async-httpx"]


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with HostileServer() as s:
        yield s


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def fetch(
    mode: str,
    url: str | list[str],
    folder: Path,
    *,
    policy: DownloadPolicy | None = None,
    base_url: str = LOCAL,
    http_client: Any = None,
    retry: RetryPolicy = FAST_RETRY,
    **kwargs: Any,
) -> list[Path]:
    """``client.download`` of a result whose outputs are ``url``, on the given path."""
    urls = [url] if isinstance(url, str) else url
    result = Result("job-16", "completed", Output.from_body({"videos": urls}))
    policy = replace(policy or DownloadPolicy(), fast=mode.endswith("fast"))
    options: dict[str, Any] = {
        "api_key": "sk-test-key",
        "base_url": base_url,
        "downloads": policy,
        "retry": retry,
    }
    if mode.startswith("async"):

        async def run() -> list[Path]:
            async with AsyncClient(**options, http_client=http_client) as client:
                return await client.download(result, folder, **kwargs)

        return asyncio.run(run())
    with Client(**options, http_client=http_client) as client:
        return client.download(result, folder, **kwargs)


def no_partials(folder: Path) -> bool:
    return not list(folder.glob(".*.part")) if folder.exists() else True


# -- ranges and lengths -------------------------------------------------------------------------


def cut_once(payload: bytes, at: int) -> Any:
    """A route that sends the first ``at`` bytes of the whole file once, then cuts."""
    calls = {"n": 0}

    def route(request: Request) -> Iterable[bytes]:
        calls["n"] += 1
        if calls["n"] == 1:
            return [head(200, {"Content-Length": len(payload)}) + payload[:at]]
        return serve_file(payload, request)

    return route


def test_a_cut_download_resumes_with_a_matching_range(
    server: HostileServer, mode: str, tmp_path: Path
) -> None:
    server.routes["/v.mp4"] = cut_once(PAYLOAD, 100_000)
    progress: list[DownloadProgress] = []
    [path] = fetch(mode, server.url("/v.mp4"), tmp_path, on_progress=progress.append)
    assert path.read_bytes() == PAYLOAD
    assert [r.headers.get("range") for r in server.hits("/v.mp4")] == [None, "bytes=100000-"]
    assert progress[-1].done and progress[-1].received == len(PAYLOAD)
    assert no_partials(tmp_path)


def test_a_resume_answered_with_another_range_restarts_without_ranges(
    server: HostileServer, mode: str, tmp_path: Path
) -> None:
    # Today a 206 for bytes 0-99 after asking for bytes=100000- was saved as the whole file.
    calls = {"n": 0}

    def route(request: Request) -> Iterable[bytes]:
        calls["n"] += 1
        if request.range_start is not None:
            rng = f"bytes 0-99/{len(PAYLOAD)}"
            return [answer(206, PAYLOAD[:100], {"Content-Range": rng})]
        if calls["n"] == 1:
            return [head(200, {"Content-Length": len(PAYLOAD)}) + PAYLOAD[:100_000]]
        return [answer(200, PAYLOAD)]

    server.routes["/v.mp4"] = route
    [path] = fetch(mode, server.url("/v.mp4"), tmp_path)
    assert path.read_bytes() == PAYLOAD
    ranges = [r.headers.get("range") for r in server.hits("/v.mp4")]
    assert ranges == [None, "bytes=100000-", None]


def test_a_resume_answered_from_byte_zero_with_200_restarts_the_file(
    server: HostileServer, mode: str, tmp_path: Path
) -> None:
    calls = {"n": 0}

    def route(request: Request) -> Iterable[bytes]:
        calls["n"] += 1
        if calls["n"] == 1:
            return [head(200, {"Content-Length": len(PAYLOAD)}) + PAYLOAD[:100_000]]
        return [answer(200, PAYLOAD)]  # ignores Range

    server.routes["/v.mp4"] = route
    [path] = fetch(mode, server.url("/v.mp4"), tmp_path)
    assert path.read_bytes() == PAYLOAD


def test_a_206_to_a_plain_get_is_refused(server: HostileServer, mode: str, tmp_path: Path) -> None:
    rng = f"bytes 0-99/{len(PAYLOAD)}"
    server.routes["/v.mp4"] = lambda r: [answer(206, PAYLOAD[:100], {"Content-Range": rng})]
    with pytest.raises(DownloadError, match="206 Partial Content to a request for the whole"):
        fetch(mode, server.url("/v.mp4"), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_206_whose_range_is_longer_than_its_body_is_resumed(
    server: HostileServer, mode: str, tmp_path: Path
) -> None:
    # The range promises the rest of the file but the body stops short: a cut, resumed.
    def route(request: Request) -> Iterable[bytes]:
        start = request.range_start or 0
        if start == 0:
            return [head(200, {"Content-Length": len(PAYLOAD)}) + PAYLOAD[:1000]]
        rng = f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}"
        length = len(PAYLOAD) - start
        return [
            head(206, {"Content-Range": rng, "Content-Length": length}) + PAYLOAD[start:][:50_000]
        ]

    server.routes["/v.mp4"] = route
    [path] = fetch(mode, server.url("/v.mp4"), tmp_path)
    assert path.read_bytes() == PAYLOAD


def test_a_file_that_changes_size_between_attempts_is_fetched_again_whole(
    server: HostileServer, mode: str, tmp_path: Path
) -> None:
    new = PAYLOAD + b"more"

    def route(request: Request) -> Iterable[bytes]:
        start = request.range_start
        if start is None and not server.hits("/v.mp4")[:-1]:
            return [head(200, {"Content-Length": len(PAYLOAD)}) + PAYLOAD[:1000]]
        return serve_file(new, request)

    server.routes["/v.mp4"] = route
    [path] = fetch(mode, server.url("/v.mp4"), tmp_path)
    assert path.read_bytes() == new


def test_a_short_body_never_becomes_a_file(
    server: HostileServer, mode: str, tmp_path: Path
) -> None:
    server.routes["/v.mp4"] = lambda r: [head(200, {"Content-Length": len(PAYLOAD)}) + b"x" * 10]
    with pytest.raises(
        DownloadError,
        match=r"; gave up after \d+ attempts over 0 s, the outage budget",
    ):
        fetch(mode, server.url("/v.mp4"), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_range_past_the_end_means_the_file_was_complete(
    server: HostileServer, mode: str, tmp_path: Path
) -> None:
    calls = {"n": 0}

    def route(request: Request) -> Iterable[bytes]:
        calls["n"] += 1
        if calls["n"] == 1:
            # Every byte arrives, then the connection breaks before the (chunked) end.
            return [
                head(200, {"Transfer-Encoding": "chunked", "X-Total": len(PAYLOAD)}),
                f"{len(PAYLOAD):x}\r\n".encode() + PAYLOAD + b"\r\n",
            ]
        return [answer(416, b"", {"Content-Range": f"bytes */{len(PAYLOAD)}"})]

    server.routes["/v.mp4"] = route
    [path] = fetch(mode, server.url("/v.mp4"), tmp_path)
    assert path.read_bytes() == PAYLOAD


def test_if_range_carries_the_strong_etag(server: HostileServer, mode: str, tmp_path: Path) -> None:
    calls = {"n": 0}

    def route(request: Request) -> Iterable[bytes]:
        calls["n"] += 1
        if calls["n"] == 1:
            return [head(200, {"Content-Length": len(PAYLOAD), "ETag": '"v1"'}) + PAYLOAD[:5000]]
        return serve_file(PAYLOAD, request)

    server.routes["/v.mp4"] = route
    fetch(mode, server.url("/v.mp4"), tmp_path)
    assert server.hits("/v.mp4")[1].headers.get("if-range") == '"v1"'


def test_a_hostile_etag_is_not_sent_back(server: HostileServer, mode: str, tmp_path: Path) -> None:
    # An ETag carrying a line break must not become a header of ours (nor crash the request).
    calls = {"n": 0}

    def route(request: Request) -> Iterable[bytes]:
        calls["n"] += 1
        if calls["n"] == 1:
            headers = {"Content-Length": len(PAYLOAD), "ETag": '"v1"\x0bX-Injected: 1'}
            return [head(200, headers) + PAYLOAD[:5000]]
        return serve_file(PAYLOAD, request)

    server.routes["/v.mp4"] = route
    [path] = fetch(mode, server.url("/v.mp4"), tmp_path)
    assert path.read_bytes() == PAYLOAD
    second = server.hits("/v.mp4")[1].headers
    assert "if-range" not in second and "x-injected" not in second


def test_a_malformed_host_is_a_download_error(mode: str, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"'exa mple\.localhost' is not a valid host name"):
        fetch(mode, "http://exa mple.localhost/v.mp4", tmp_path)


# -- encodings ----------------------------------------------------------------------------------


def test_identity_is_asked_for_and_a_gzip_body_is_saved_decoded(
    server: HostileServer, mode: str, tmp_path: Path
) -> None:
    # Today the client asked for gzip and saved the compressed bytes as the video.
    body = gzipped(PAYLOAD)
    server.routes["/v.mp4"] = lambda r: [answer(200, body, {"Content-Encoding": "gzip"})]
    [path] = fetch(mode, server.url("/v.mp4"), tmp_path)
    assert path.read_bytes() == PAYLOAD
    assert server.hits("/v.mp4")[0].headers.get("accept-encoding") == "identity"


def test_a_cut_gzip_body_is_fetched_again_whole(
    server: HostileServer, mode: str, tmp_path: Path
) -> None:
    body = gzipped(PAYLOAD)
    calls = {"n": 0}

    def route(request: Request) -> Iterable[bytes]:
        calls["n"] += 1
        headers = {"Content-Encoding": "gzip", "Content-Length": len(body)}
        return [head(200, headers) + (body[:2000] if calls["n"] == 1 else body)]

    server.routes["/v.mp4"] = route
    [path] = fetch(mode, server.url("/v.mp4"), tmp_path)
    assert path.read_bytes() == PAYLOAD
    assert [r.headers.get("range") for r in server.hits("/v.mp4")] == [None, None]


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress"])
def test_an_encoding_it_cannot_decode_is_refused(
    server: HostileServer, tmp_path: Path, encoding: str
) -> None:
    server.routes["/v.mp4"] = lambda r: [answer(200, b"\x1b\x00", {"Content-Encoding": encoding})]
    with pytest.raises(DownloadError, match=f"encoded as '{encoding}'.*refused"):
        fetch("fast", server.url("/v.mp4"), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_gzip_bomb_stops_at_the_cap(server: HostileServer, mode: str, tmp_path: Path) -> None:
    body = gzipped(bytes(20_000_000))  # 20 MB of zeros in about 20 KB
    server.routes["/v.mp4"] = lambda r: [answer(200, body, {"Content-Encoding": "gzip"})]
    with pytest.raises(DownloadError, match="more than the 1,000,000-byte cap"):
        fetch(mode, server.url("/v.mp4"), tmp_path, max_bytes=1_000_000)
    assert list(tmp_path.iterdir()) == []


# -- size cap -----------------------------------------------------------------------------------


def test_an_announced_size_over_the_cap_is_refused_before_reading(
    server: HostileServer, mode: str, tmp_path: Path
) -> None:
    server.routes["/v.mp4"] = lambda r: [head(200, {"Content-Length": 3 * 1024**3}) + b"x" * 10]
    with pytest.raises(DownloadError, match="3,221,225,472 bytes, over the 2,147,483,648-byte cap"):
        fetch(mode, server.url("/v.mp4"), tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("framing", ["close", "chunked"])
def test_an_endless_body_stops_at_the_cap(
    server: HostileServer, mode: str, tmp_path: Path, framing: str
) -> None:
    def route(request: Request) -> Iterator[bytes]:
        if framing == "chunked":
            yield head(200, {"Transfer-Encoding": "chunked"})
            for _ in range(200):
                yield b"10000\r\n" + bytes(0x10000) + b"\r\n"
        else:
            yield head(200, {})
            for _ in range(200):
                yield bytes(0x10000)

    server.routes["/v.mp4"] = route
    with pytest.raises(DownloadError, match="more than the 1,000,000-byte cap arrived"):
        fetch(mode, server.url("/v.mp4"), tmp_path, max_bytes=1_000_000)
    assert list(tmp_path.iterdir()) == []


def test_the_cap_is_set_per_client(server: HostileServer, tmp_path: Path) -> None:
    server.routes["/v.mp4"] = lambda r: [answer(200, PAYLOAD)]
    with pytest.raises(DownloadError, match="over the 1,000-byte cap"):
        fetch("fast", server.url("/v.mp4"), tmp_path, policy=DownloadPolicy(max_bytes=1000))
    [path] = fetch(
        "fast",
        server.url("/v.mp4"),
        tmp_path,
        policy=DownloadPolicy(max_bytes=1000),
        max_bytes=len(PAYLOAD),
    )
    assert path.read_bytes() == PAYLOAD


def test_policy_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="max_bytes must be positive"):
        DownloadPolicy(max_bytes=0)
    with pytest.raises(TypeError, match="max_bytes must be an int"):
        DownloadPolicy(max_bytes=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not a str"):
        DownloadPolicy(allowed_hosts="*.runcomfy.net")  # type: ignore[arg-type]
    assert DownloadPolicy(allowed_hosts=["CDN.Example.COM."]).allowed_hosts == ("cdn.example.com",)


# -- redirects ----------------------------------------------------------------------------------


def test_redirects_are_followed_up_to_five_hops(
    server: HostileServer, mode: str, tmp_path: Path
) -> None:
    # Today a redirect was an error: "answered HTTP 302".
    for hop in range(5):
        target = f"/hop{hop + 1}" if hop < 4 else "/v.mp4"
        location = target if hop % 2 else server.url(target)  # relative and absolute
        server.routes[f"/hop{hop}"] = lambda r, loc=location: [answer(302, b"", {"Location": loc})]
    server.routes["/v.mp4"] = lambda r: serve_file(PAYLOAD, r)
    [path] = fetch(mode, server.url("/hop0"), tmp_path)
    assert path.read_bytes() == PAYLOAD
    assert all("authorization" not in r.headers for r in server.requests)


def test_a_sixth_redirect_is_refused(server: HostileServer, mode: str, tmp_path: Path) -> None:
    for hop in range(6):
        server.routes[f"/hop{hop}"] = lambda r, n=hop: [
            answer(307, b"", {"Location": f"/hop{n + 1}"})
        ]
    server.routes["/hop6"] = lambda r: serve_file(PAYLOAD, r)
    with pytest.raises(DownloadError, match="more than 5 redirects"):
        fetch(mode, server.url("/hop0"), tmp_path)
    assert not server.hits("/hop6")


@pytest.mark.parametrize(
    ("location", "problem"),
    [
        ("http://example.com/v.mp4", "plain http"),
        ("http://169.254.169.254/latest/meta-data/", "plain http"),
        ("https://169.254.169.254/latest/meta-data/", "169.254.169.254, a link-local address"),
        ("https://10.1.2.3/v.mp4", "10.1.2.3, a private address"),
        ("https://[::ffff:192.168.0.1]/v.mp4", "192.168.0.1, a private address"),
        ("https://0.0.0.0/v.mp4", "unspecified"),
        ("ftp://example.com/v.mp4", "not an http"),
        ("https://user:pw@example.com/v.mp4", "credentials"),
    ],
)
def test_a_redirect_to_a_forbidden_place_is_refused_before_connecting(
    server: HostileServer, mode: str, tmp_path: Path, location: str, problem: str
) -> None:
    server.routes["/v.mp4"] = lambda r: [answer(302, b"", {"Location": location})]
    with pytest.raises(DownloadError, match=problem):
        fetch(mode, server.url("/v.mp4"), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_redirect_without_location_is_an_error(
    server: HostileServer, mode: str, tmp_path: Path
) -> None:
    server.routes["/v.mp4"] = lambda r: [answer(301, b"")]
    with pytest.raises(DownloadError, match="without a Location"):
        fetch(mode, server.url("/v.mp4"), tmp_path)


# -- hosts and addresses ------------------------------------------------------------------------


def test_outputs_on_loopback_are_refused_unless_the_client_is_local(
    server: HostileServer, mode: str, tmp_path: Path
) -> None:
    server.routes["/v.mp4"] = lambda r: serve_file(PAYLOAD, r)
    # Today an output on plain http or on loopback was fetched from any client.
    with pytest.raises(DownloadError, match="plain http"):
        fetch(mode, server.url("/v.mp4"), tmp_path, base_url=REMOTE)
    with pytest.raises(DownloadError, match=r"127\.0\.0\.1, a loopback address"):
        fetch(mode, f"https://127.0.0.1:{server.port}/v.mp4", tmp_path, base_url=REMOTE)
    assert server.requests == []


def test_http_is_for_loopback_only_even_for_a_local_client(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="plain http"):
        fetch("fast", "http://example.com/v.mp4", tmp_path)


def test_allowed_hosts_restrict_where_outputs_come_from(
    server: HostileServer, mode: str, tmp_path: Path
) -> None:
    from runcomfy_client import RUNCOMFY_OUTPUT_HOSTS

    server.routes["/v.mp4"] = lambda r: serve_file(PAYLOAD, r)
    policy = DownloadPolicy(allowed_hosts=RUNCOMFY_OUTPUT_HOSTS)
    with pytest.raises(DownloadError, match=r"not among the allowed download hosts \(\*\.runcomfy"):
        fetch(mode, server.url("/v.mp4"), tmp_path, policy=policy)
    policy = DownloadPolicy(allowed_hosts=("localhost",))
    [path] = fetch(mode, server.url("/v.mp4", host="localhost"), tmp_path, policy=policy)
    assert path.read_bytes() == PAYLOAD


def test_host_patterns() -> None:
    from runcomfy_client._download_policy import host_allowed

    patterns = ("*.runcomfy.net", "cdn.example.com")
    assert host_allowed("runcomfy.net", patterns)
    assert host_allowed("a.b.runcomfy.net", patterns)
    assert host_allowed("CDN.example.com.", patterns)
    assert not host_allowed("evilruncomfy.net", patterns)
    assert not host_allowed("runcomfy.net.evil.com", patterns)
    assert not host_allowed("x.cdn.example.com", patterns)


def test_private_addresses_need_allow_private(
    server: HostileServer, mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "media.lan" resolves to a private address, here served by the test server on loopback.
    import socket

    real = socket.getaddrinfo

    def fake(host: str, *args: Any, **kwargs: Any) -> Any:
        if host == "media.lan":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.9.8.7", args[0]))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    url = f"https://media.lan:{server.port}/v.mp4"
    with pytest.raises(
        DownloadError, match=r"media\.lan resolves to 10\.9\.8\.7, a private address"
    ):
        fetch(mode, url, tmp_path, base_url=REMOTE)
    assert server.requests == []


def test_every_resolved_address_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def fake(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    with pytest.raises(DownloadError, match=r"169\.254\.169\.254, a link-local address"):
        fetch("fast", "https://cdn.example.com/v.mp4", tmp_path, base_url=REMOTE)


def test_the_fast_reader_connects_to_the_address_it_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DNS rebinding: the second lookup would say 127.0.0.1; nothing may look it up again.
    import socket

    from runcomfy_client import _fast_get

    answers = iter(["93.184.216.34"])

    def fake(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        ip = next(answers, "127.0.0.1")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]

    connected: list[Any] = []

    def connect(addresses: Any, timeout: Any) -> Any:
        connected.append([a[1][0] for a in addresses])
        raise ConnectionRefusedError("not in tests")

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    monkeypatch.setattr(_fast_get, "_connect", connect)
    with pytest.raises(DownloadError):
        fetch(
            "fast",
            "https://cdn.example.com/v.mp4",
            tmp_path,
            base_url=REMOTE,
            retry=RetryPolicy.none(),
        )
    assert connected == [["93.184.216.34"]]


def test_httpx_checks_the_peer_it_connected_to() -> None:
    from runcomfy_client._download import peer_of
    from runcomfy_client._download_flow import Transfer

    class Stream:
        def get_extra_info(self, name: str) -> Any:
            return ("127.0.0.1", 443) if name == "server_addr" else None

    transfer = Transfer(
        "https://cdn.example.com/v.mp4",
        Path("v.mp4"),
        policy=DownloadPolicy(),
        retry=RetryPolicy(),
        local=False,
    )
    response = httpx.Response(200, extensions={"network_stream": Stream()})
    with pytest.raises(DownloadError, match=r"127\.0\.0\.1, a loopback address"):
        transfer.check_peer(peer_of(response) or "")


# -- no key, no secrets -------------------------------------------------------------------------


@pytest.mark.parametrize("mode_", ["httpx", "async-httpx"])
def test_a_client_passed_in_never_sends_its_authorization_header(
    server: HostileServer, tmp_path: Path, mode_: str
) -> None:
    # Today a default Authorization header of the http_client went out with every download.
    server.routes["/v.mp4"] = lambda r: serve_file(PAYLOAD, r)
    headers = {"Authorization": "Bearer sk-secret", "Cookie": "session=1"}
    http: Any = (
        httpx.AsyncClient(headers=headers)
        if mode_.startswith("async")
        else httpx.Client(headers=headers)
    )
    [path] = fetch(mode_, server.url("/v.mp4"), tmp_path, http_client=http)
    assert path.read_bytes() == PAYLOAD
    sent = server.hits("/v.mp4")[0].headers
    assert "authorization" not in sent and "cookie" not in sent


def test_no_path_sends_the_api_key(server: HostileServer, mode: str, tmp_path: Path) -> None:
    server.routes["/v.mp4"] = lambda r: serve_file(PAYLOAD, r)
    fetch(mode, server.url("/v.mp4"), tmp_path)
    assert all("sk-test-key" not in str(r.headers) for r in server.requests)


def test_messages_never_show_the_query_string(
    server: HostileServer, mode: str, tmp_path: Path
) -> None:
    # Today: "http://.../v.mp4?X-Amz-Signature=... answered HTTP 403".
    server.routes["/v.mp4"] = lambda r: [answer(403, b"expired")]
    url = server.url("/v.mp4?X-Amz-Signature=s3cr3t&X-Amz-Credential=AKIA")
    with pytest.raises(DownloadError) as caught:
        fetch(mode, url, tmp_path)
    assert "s3cr3t" not in str(caught.value) and "AKIA" not in str(caught.value)
    assert "s3cr3t" not in (caught.value.url or "")
    assert f"job job-16: http://127.0.0.1:{server.port}/v.mp4?...: answered HTTP 403" == str(
        caught.value
    )


# -- retries and deadlines ----------------------------------------------------------------------


def test_transient_answers_are_retried(server: HostileServer, mode: str, tmp_path: Path) -> None:
    # Today a 503 (or 429) from the file host ended the download at once.
    calls = {"n": 0}

    def route(request: Request) -> Iterable[bytes]:
        calls["n"] += 1
        if calls["n"] == 1:
            return [answer(503, b"busy", {"Retry-After": "0"})]
        if calls["n"] == 2:
            return [answer(429, b"slow down")]
        return serve_file(PAYLOAD, request)

    server.routes["/v.mp4"] = route
    [path] = fetch(mode, server.url("/v.mp4"), tmp_path)
    assert path.read_bytes() == PAYLOAD


def test_retries_are_announced_to_the_retry_listeners(
    server: HostileServer, mode: str, tmp_path: Path
) -> None:
    import threading

    from runcomfy_client._retry import RetryNotice

    calls = {"n": 0}

    def route(request: Request) -> Iterable[bytes]:
        calls["n"] += 1
        return [answer(503, b"")] if calls["n"] == 1 else serve_file(PAYLOAD, request)

    server.routes["/v.mp4"] = route
    seen: list[tuple[RetryNotice, int]] = []
    result = Result("job-16", "completed", Output.from_body({"video": server.url("/v.mp4")}))
    options: dict[str, Any] = {
        "api_key": "k",
        "base_url": LOCAL,
        "retry": FAST_RETRY,
        "downloads": DownloadPolicy(fast=mode.endswith("fast")),
    }
    if mode.startswith("async"):

        async def run() -> None:
            async with AsyncClient(**options) as client:
                client.retry_listeners.append(lambda n: seen.append((n, threading.get_ident())))
                await client.download(result, tmp_path)

        asyncio.run(run())
    else:
        with Client(**options) as client:
            client.retry_listeners.append(lambda n: seen.append((n, threading.get_ident())))
            client.download(result, tmp_path)
    [(notice, thread)] = seen
    assert (notice.kind, notice.request_id, notice.reason) == ("download", "job-16", "HTTP 503")
    assert thread == threading.get_ident()  # on the caller's thread (the event loop's)


def test_a_permanent_answer_is_not_retried(
    server: HostileServer, mode: str, tmp_path: Path
) -> None:
    server.routes["/v.mp4"] = lambda r: [answer(404, b"gone")]
    with pytest.raises(DownloadError, match="answered HTTP 404"):
        fetch(mode, server.url("/v.mp4"), tmp_path)
    assert len(server.hits("/v.mp4")) == 1


def test_with_a_deadline_transient_trouble_is_retried_until_it(
    server: HostileServer, mode: str, tmp_path: Path
) -> None:
    # More failures than max_retries, but a deadline: a paid job's file is not given up early.
    calls = {"n": 0}

    def route(request: Request) -> Iterable[bytes]:
        calls["n"] += 1
        return [answer(502, b"")] if calls["n"] <= 6 else serve_file(PAYLOAD, request)

    server.routes["/v.mp4"] = route
    [path] = fetch(mode, server.url("/v.mp4"), tmp_path, timeout=30)
    assert path.read_bytes() == PAYLOAD


def test_a_trickling_body_is_bounded_by_the_deadline(
    server: HostileServer, mode: str, tmp_path: Path
) -> None:
    # Today the timeout was per read: one byte every 20 ms kept a download alive for ever.
    server.routes["/v.mp4"] = lambda r: trickle(head(200, {"Content-Length": 10_000}) + b"x")
    started = time.monotonic()
    # Under load the deadline may pass before the headers are read (then no total is known).
    with pytest.raises(DownloadError, match=r"deadline \(0.3 s\) passed after \d+( of 10,000)? b"):
        fetch(mode, server.url("/v.mp4"), tmp_path, timeout=0.3)
    assert time.monotonic() - started < 5  # the budget, not the server, ended it
    assert no_partials(tmp_path)


def test_a_silent_server_is_bounded_by_the_deadline(
    server: HostileServer, mode: str, tmp_path: Path
) -> None:
    server.routes["/v.mp4"] = lambda r: trickle(b"", piece=b"", limit=100)
    with pytest.raises(DownloadError, match="deadline"):
        fetch(mode, server.url("/v.mp4"), tmp_path, timeout=0.2)
    assert no_partials(tmp_path)


# -- partial files ------------------------------------------------------------------------------


def test_ctrl_c_during_a_download_leaves_no_partial_file(
    server: HostileServer, mode: str, tmp_path: Path
) -> None:
    server.routes["/v.mp4"] = lambda r: trickle(head(200, {"Content-Length": 10_000}) + b"x" * 100)

    def interrupt(update: DownloadProgress) -> None:
        assert list(tmp_path.glob(".*.part"))  # it was there while downloading
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fetch(mode, server.url("/v.mp4"), tmp_path, on_progress=interrupt)
    assert no_partials(tmp_path)


def test_an_error_in_the_progress_callback_stops_the_download(
    server: HostileServer, mode: str, tmp_path: Path
) -> None:
    server.routes["/v.mp4"] = lambda r: trickle(head(200, {"Content-Length": 10_000}) + b"x" * 100)

    def broken(update: DownloadProgress) -> None:
        raise ValueError("the callback's own bug")

    with pytest.raises(ValueError, match="the callback's own bug"):
        fetch(mode, server.url("/v.mp4"), tmp_path, on_progress=broken)
    assert no_partials(tmp_path)


@pytest.mark.parametrize("mode_", ["async-fast", "async-httpx"])
async def test_cancelling_an_async_download_leaves_no_partial_file(
    server: HostileServer, tmp_path: Path, mode_: str
) -> None:
    server.routes["/v.mp4"] = lambda r: trickle(head(200, {"Content-Length": 10_000}) + b"x" * 100)
    result = Result("job-16", "completed", Output.from_body({"video": server.url("/v.mp4")}))
    started = asyncio.Event()
    seen: list[DownloadProgress] = []

    def progress(update: DownloadProgress) -> None:
        seen.append(update)
        started.set()

    policy = DownloadPolicy(fast=mode_ == "async-fast")
    async with AsyncClient(api_key="k", base_url=LOCAL, downloads=policy) as client:
        task = asyncio.create_task(client.download(result, tmp_path, on_progress=progress))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert no_partials(tmp_path)
    assert seen and not seen[-1].done


async def test_async_progress_callbacks_run_on_the_event_loop(
    server: HostileServer, tmp_path: Path
) -> None:
    import threading

    server.routes["/v.mp4"] = lambda r: serve_file(PAYLOAD, r)
    result = Result("job-16", "completed", Output.from_body({"video": server.url("/v.mp4")}))
    threads: set[int] = set()
    async with AsyncClient(api_key="k", base_url=LOCAL) as client:
        await client.download(
            result, tmp_path, on_progress=lambda u: threads.add(threading.get_ident())
        )
    assert threads == {threading.get_ident()}


def test_an_error_on_the_second_file_keeps_the_first_and_no_partial(
    server: HostileServer, mode: str, tmp_path: Path
) -> None:
    server.routes["/a.mp4"] = lambda r: serve_file(PAYLOAD, r)
    server.routes["/b.mp4"] = lambda r: [answer(404, b"")]
    with pytest.raises(DownloadError):
        fetch(mode, [server.url("/a.mp4"), server.url("/b.mp4")], tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["a.mp4"]


# -- the whole-job deadline ---------------------------------------------------------------------

INPAINT_INPUTS = {
    "prompt": "a fox",
    "start_image": "https://example.com/a.png",
    "end_image": "https://example.com/b.png",
}


@pytest.mark.parametrize("asynchronous", [False, True])
def test_run_timeout_bounds_the_download_too(
    server: HostileServer, tmp_path: Path, asynchronous: bool
) -> None:
    # Today run(timeout=) stopped counting when the job completed: a slow file ran for ever.
    from .conftest import INPAINT
    from .hostile_http import fake_api

    fake_api(server, INPAINT, {"video": server.url("/v.mp4")})
    server.routes["/v.mp4"] = lambda r: trickle(head(200, {"Content-Length": 10_000}) + b"x")
    options: dict[str, Any] = {
        "api_key": "k",
        "base_url": server.url(""),
    }

    def run() -> None:
        if asynchronous:

            async def run_async() -> None:
                async with AsyncClient(**options) as client:
                    await client.run(INPAINT, INPAINT_INPUTS, timeout=0.5, download_to=tmp_path)

            asyncio.run(run_async())
        else:
            with Client(**options) as client:
                client.run(INPAINT, INPAINT_INPUTS, timeout=0.5, download_to=tmp_path)

    started = time.monotonic()
    with pytest.raises(DownloadError, match=r"job job-16: .*deadline"):
        run()
    assert time.monotonic() - started < 5
    assert no_partials(tmp_path)


# -- https --------------------------------------------------------------------------------------


@pytest.fixture
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HostileServer, str]]:
    pytest.importorskip("cryptography")
    from .hostile_http import self_signed

    context, cert = self_signed(tmp_path_factory.mktemp("tls"), "cdn.test")
    with HostileServer(tls=context) as s:
        yield s, cert


@pytest.fixture
def trust(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Trust a certificate file the way httpx does (SSL_CERT_FILE), for both readers: the
    shared TLS context follows the variable (no cache to clear)."""

    def trust_file(path: str | None) -> None:
        if path is None:
            monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        else:
            monkeypatch.setenv("SSL_CERT_FILE", path)

    return trust_file


def test_https_downloads_on_every_reader(
    tls_server: tuple[HostileServer, str], trust: Any, mode: str, tmp_path: Path
) -> None:
    server, cert = tls_server
    trust(cert)
    server.routes["/v.mp4"] = cut_once(PAYLOAD, 123_456)
    policy = DownloadPolicy(allow_private=True)  # the test server is on loopback
    [path] = fetch(mode, server.url("/v.mp4"), tmp_path, base_url=REMOTE, policy=policy)
    assert path.read_bytes() == PAYLOAD


def test_an_untrusted_certificate_fails_at_once(
    tls_server: tuple[HostileServer, str], trust: Any, mode: str, tmp_path: Path
) -> None:
    server, _ = tls_server
    trust(None)
    server.routes["/v.mp4"] = lambda r: serve_file(PAYLOAD, r)
    policy = DownloadPolicy(allow_private=True)
    with pytest.raises(DownloadError, match="certificate"):
        fetch(mode, server.url("/v.mp4"), tmp_path, base_url=REMOTE, policy=policy, timeout=30)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mode_", ["httpx", "async-httpx"])
def test_httpx_refuses_a_peer_that_dns_rebinding_swapped_in(
    tls_server: tuple[HostileServer, str],
    trust: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mode_: str,
) -> None:
    # cdn.test resolves to a public address when checked, to loopback when httpx connects.
    import socket

    server, cert = tls_server
    trust(cert)
    server.routes["/v.mp4"] = lambda r: serve_file(PAYLOAD, r)
    lookups: list[str] = []
    real = socket.getaddrinfo

    def fake(host: str | bytes, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in ("cdn.test", b"cdn.test"):  # anyio asks with bytes
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        ip = "93.184.216.34" if len(lookups) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    url = server.url("/v.mp4", host="cdn.test")
    with pytest.raises(DownloadError, match=r"resolves to 127\.0\.0\.1, a loopback address"):
        fetch(mode_, url, tmp_path, base_url=REMOTE, retry=RetryPolicy.none())
    assert len(lookups) == 2
    assert list(tmp_path.iterdir()) == []


# -- proxies ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode_", ["fast", "async-fast"])
def test_a_proxy_from_the_environment_is_honoured(
    server: HostileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode_: str
) -> None:
    # The fast reader cannot speak to proxies: with one configured, downloads go through httpx.
    origin = "http://127.0.0.1:9/v.mp4"  # nothing listens there: only the proxy can answer
    server.routes[origin] = lambda r: serve_file(PAYLOAD, r)
    for name in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, server.url(""))
    for name in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    [path] = fetch(mode_, origin, tmp_path)
    assert path.read_bytes() == PAYLOAD
    assert [r.path for r in server.requests] == [origin]


@pytest.mark.parametrize("mode_", ["httpx", "async-httpx"])
def test_a_transport_passed_in_resolves_names_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode_: str
) -> None:
    # A mock, a proxy or a socket file: no lookup of ours; an address in the URL is still checked.
    import socket

    looked_up: list[Any] = []
    real = socket.getaddrinfo
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda *a, **k: looked_up.append(a[0]) or real(*a, **k)
    )

    def answer_(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=PAYLOAD)

    transport: Any = httpx.MockTransport(answer_)
    http: Any = (
        httpx.AsyncClient(transport=transport)
        if mode_.startswith("async")
        else httpx.Client(transport=transport)
    )
    [path] = fetch(mode_, "https://cdn.test/v.mp4", tmp_path, base_url=REMOTE, http_client=http)
    assert path.read_bytes() == PAYLOAD
    assert looked_up == []
    with pytest.raises(DownloadError, match=r"10\.0\.0\.1, a private address"):
        fetch(mode_, "https://10.0.0.1/v.mp4", tmp_path, base_url=REMOTE, http_client=http)
