"""One output fetched and verified: every decision of a download, apart from the network I/O.

:func:`fetch` is the transfer as a flow (see ``_flow``): it asks its driver to resolve the
host, open the GET (the fast reader in ``_fast_get`` or httpx, sync or async, in ``_download``),
read the body piece by piece and close, and shows each step to :class:`Transfer`, which holds
every rule. So the rules below hold on every path:

- a 206 must carry a ``Content-Range`` that starts exactly where the file was cut, and no 206
  is accepted for a request that asked for the whole file; a resume answered from byte 0 (200)
  restarts the file; a mismatched range restarts it without ranges;
- ``Accept-Encoding: identity`` is asked for; a gzip or deflate body is decoded anyway (and not
  resumed by range), any other encoding is refused: compressed bytes are never saved as media;
- the announced length is checked before reading, and the bytes are counted against
  ``Content-Length``, ``Content-Range`` and the size cap while reading, and once more at the end;
- redirects are followed up to the policy's limit, each hop checked like the first URL;
- transient trouble (cuts, timeouts, 408/429/5xx) is retried, resuming with ``Range``, until
  the deadline, or without one for ``retry.max_retries`` failures in a row with no new bytes;
- the file is written under a temporary name in the target folder and renamed only when
  complete; every other way out of the call (error, deadline, cancel, Ctrl-C) removes it.
  Nothing is kept for a later call: a partial file never outlives the call that wrote it.
"""

from __future__ import annotations

import errno
import http.client
import os
import re
import ssl
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from ._download_policy import (
    Address,
    DownloadPolicy,
    check_address,
    check_addresses,
    check_literal,
    check_url,
    proxied,
)
from ._errors import DownloadError
from ._flow import Close, Detach, Flow, Open, Read, Resolve, Sleep
from ._retry import (
    RETRYABLE_STATUS,
    Attempts,
    Deadline,
    RetryNotice,
    RetryPolicy,
    clip,
    parse_retry_after,
)
from ._types import DownloadProgress, ProgressCallback
from ._version import __version__

if TYPE_CHECKING:
    import httpx

__all__ = ["DownloadJob", "ProgressCallback", "RetryableError", "Transfer", "fetch", "save"]


REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
MAX_RESTARTS = 3  # from byte 0, after an answer that did not continue where the file was cut
_CONTENT_RANGE = re.compile(r"bytes[ \t]+(\d{1,19})-(\d{1,19})/(\d{1,19}|\*)", re.ASCII)
_UNSATISFIED_RANGE = re.compile(r"bytes[ \t]+\*/(\d{1,19})", re.ASCII)
_DIGITS = re.compile(r"\d{1,19}", re.ASCII)
_SENDABLE = re.compile(r"[\x21-\x7e][\x20-\x7e]{0,199}", re.ASCII)  # printable, one line
_DECODE_STEP = 1 << 20  # at most this many decoded bytes per step: a gzip bomb stays small
_DECODABLE = {"gzip": 47, "x-gzip": 47, "deflate": 47}  # zlib wbits: gzip or zlib header


class Headers(Protocol):
    """Case-insensitive header lookup: httpx.Headers and http.client's message both fit."""

    def get(self, name: str) -> str | None: ...


class RetryableError(Exception):
    """A failure worth another attempt (a cut, a 5xx, a range the server could not honour)."""

    def __init__(
        self, reason: str, *, retry_after: float | None = None, restart: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.restart = restart


def _length(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip()
    return int(value) if _DIGITS.fullmatch(value) else None


def _header_safe(value: str | None) -> str | None:
    """A server's header value fit to be sent back (If-Range), else None."""
    value = (value or "").strip()
    return value if _SENDABLE.fullmatch(value) else None


def temp_for(path: Path) -> Path:
    """The temporary name a download is written under, beside its final name."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")


_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def _transient(exc: BaseException) -> bool:
    """A failure of the network or of the server's framing: worth another attempt."""
    import httpx

    if isinstance(exc, (http.client.InvalidURL, httpx.InvalidURL)):
        return False
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
        return False  # our own disk, not the network: another attempt meets it again
    return isinstance(exc, (OSError, http.client.HTTPException, httpx.TransportError))


def _shown(exc: BaseException, transfer: Transfer) -> str:
    """An exception's text without the URL's query string, on one line, not too long."""
    text = str(exc).replace(transfer.url, transfer.first.shown)
    return "".join(c if c.isprintable() else " " for c in text)[:300]


class Transfer:
    """The state of one download: where it is, what it has, and what it may do next."""

    def __init__(
        self,
        url: str,
        path: Path,
        *,
        policy: DownloadPolicy,
        retry: RetryPolicy,
        local: bool,
        deadline: float | None = None,
        budget: float | None = None,
        read_timeout: float | None = 30.0,
        connect_timeout: float | None = 10.0,
        on_progress: ProgressCallback | None = None,
        on_retry: Callable[[RetryNotice], None] | None = None,
        request_id: str | None = None,
        label: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.path = path
        self.policy = policy
        self.retry = retry
        self.local = local
        self.deadline = deadline
        self.budget = budget  # the caller's timeout in seconds, as they gave it: for messages
        self.read_timeout = read_timeout
        self.connect_timeout = connect_timeout
        self.on_progress = on_progress
        self.on_retry = on_retry
        self.request_id = request_id
        self.clock = clock
        self._started = clock()
        self.first = check_url(url, policy, local=local)
        self.label = f"{label}{self.first.shown}"
        self.target = self.first
        self.hops = 0
        self.received = 0  # bytes of the file written so far (decoded)
        self.total: int | None = None  # the file's size, once an answer says it
        self.done = False
        self.saved = False
        self._tmp = temp_for(path)
        self._out: BinaryIO | None = None
        self._use_ranges = True
        self._validator: str | None = None  # ETag or Last-Modified, sent as If-Range
        self._expect: int | None = None  # bytes this answer's body should carry
        self._got = 0  # bytes of this answer's body so far (as sent, maybe encoded)
        self._decoder: zlib._Decompress | None = None
        self._attempts = self._new_attempts()
        self._restarts = 0
        self._high_water = 0
        self._stop = threading.Event()
        self._abort: Callable[[], None] | None = None
        self._lock = threading.Lock()

    # -- budget -----------------------------------------------------------------------------

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - self.clock()

    def timeouts(self) -> tuple[float | None, float | None]:
        """(connect, read) timeouts for the next network step, never past the deadline."""
        left = self.remaining()
        return clip(self.connect_timeout, left), clip(self.read_timeout, left)

    def check_deadline(self) -> None:
        left = self.remaining()
        if left is not None and left <= 0:
            budget = self.budget if self.budget is not None else self.clock() - self._started
            of = f" of {self.total:,}" if self.total is not None else ""
            raise DownloadError(
                f"{self.label}: the deadline ({budget:.3g} s) passed after "
                f"{self.received:,}{of} bytes",
                url=self.first.shown,
            )

    # -- cancelling from another thread ----------------------------------------------------

    def watch(self, abort: Callable[[], None] | None) -> None:
        """Register how to cut the current connection (None when it is closed)."""
        with self._lock:
            self._abort = abort
        if abort is not None and self._stop.is_set():
            abort()

    def cancel(self) -> None:
        """Stop as soon as possible (from any thread): cut the connection, end any pause."""
        self._stop.set()
        with self._lock:
            abort = self._abort
        if abort is not None:
            abort()

    @property
    def cancelled(self) -> bool:
        return self._stop.is_set()

    def wait(self, seconds: float) -> None:
        """Sleep before the next attempt, unless a cancel (from another thread) ends it first."""
        if seconds > 0:
            self._stop.wait(seconds)

    def check_cancelled(self) -> None:
        if self.cancelled:
            raise DownloadError(f"{self.label}: cancelled", url=self.first.shown)

    # -- one attempt ------------------------------------------------------------------------

    def request_headers(self) -> dict[str, str]:
        headers = {
            "User-Agent": f"runcomfy-client/{__version__}",
            "Accept": "*/*",
            # Media is sent as is; asking for gzip would only make the bytes need decoding.
            "Accept-Encoding": "identity",
        }
        if self.received and self._use_ranges:
            headers["Range"] = f"bytes={self.received}-"
            if self._validator is not None:
                headers["If-Range"] = self._validator
        return headers

    def check_addresses(self, addresses: Sequence[Address]) -> list[Address]:
        """The resolved addresses of the current hop, if every one is allowed."""
        return check_addresses(addresses, self.target, self.policy, local=self.local)

    def check_literal(self) -> None:
        """Check the current hop's host when the URL itself says its address (no lookup)."""
        check_literal(self.target, self.policy, local=self.local)

    def check_peer(self, ip: str) -> None:
        """The address actually connected to must be allowed too (DNS may have changed)."""
        check_address(ip, self.target, self.policy, local=self.local)

    def head(self, status: int, headers: Headers) -> bool:
        """Judge an answer's status and headers; True when its body is to be read."""
        self.check_deadline()
        if status in REDIRECT_STATUS:
            self._redirect(headers.get("location"))
            return False
        if status == 416 and self.received and self._use_ranges:
            self._unsatisfiable(headers)
            return False
        if status in RETRYABLE_STATUS:
            raise RetryableError(
                f"HTTP {status}",
                retry_after=parse_retry_after(
                    headers.get("retry-after"), cap=self.retry.retry_after_max
                ),
            )
        if status not in (200, 206):
            raise DownloadError(f"{self.label}: answered HTTP {status}", url=self.first.shown)
        encoding = (headers.get("content-encoding") or "identity").strip().lower()
        if encoding not in ("identity", "") and encoding not in _DECODABLE:
            raise DownloadError(
                f"{self.label}: the body is encoded as {encoding!r}, which this client "
                "does not decode; refused rather than saved still encoded",
                url=self.first.shown,
            )
        encoded = encoding in _DECODABLE
        length = _length(headers.get("content-length"))
        if status == 206:
            self._partial(headers, length, encoded)
        else:
            self._whole(headers, length, encoded)
        limit = self.policy.max_bytes
        if self.total is not None and self.total > limit:
            raise DownloadError(
                f"{self.label}: the file is {self.total:,} bytes, over the {limit:,}-byte cap "
                "(raise it with max_bytes= or --max-download-size)",
                url=self.first.shown,
            )
        self._got = 0
        return True

    def _redirect(self, location: str | None) -> None:
        if not location:
            raise DownloadError(
                f"{self.label}: a redirect without a Location header", url=self.first.shown
            )
        from urllib.parse import urljoin

        self.hops += 1
        if self.hops > self.policy.max_redirects:
            raise DownloadError(
                f"{self.label}: more than {self.policy.max_redirects} redirects",
                url=self.first.shown,
            )
        location = urljoin(self.target.url, location.strip())
        self.target = check_url(location, self.policy, local=self.local)

    def _unsatisfiable(self, headers: Headers) -> None:
        match = _UNSATISFIED_RANGE.fullmatch((headers.get("content-range") or "").strip())
        if (
            match is not None
            and int(match.group(1)) == self.received
            and self.total in (None, self.received)
        ):
            # Everything was there already: the cut came right after the last byte.
            self.total = self.received
            self.done = True
            return
        raise RetryableError("the server could not serve the rest of the file", restart=True)

    def _whole(self, headers: Headers, length: int | None, encoded: bool) -> None:
        # The whole file (also what a server that ignores Range sends): start it again.
        out = self._file()
        out.seek(0)
        out.truncate()
        self.received = 0
        self._expect = length
        if encoded:
            self._use_ranges = False  # a range of encoded bytes cannot be trusted to resume
            self._decoder = zlib.decompressobj(47)
            self.total = None
        else:
            self._decoder = None
            self.total = length
        etag = _header_safe(headers.get("etag"))
        modified = _header_safe(headers.get("last-modified"))
        self._validator = etag if etag and not etag.startswith("W/") else modified

    def _partial(self, headers: Headers, length: int | None, encoded: bool) -> None:
        if not self.received or not self._use_ranges:
            raise DownloadError(
                f"{self.label}: answered 206 Partial Content to a request for the whole "
                "file; refused",
                url=self.first.shown,
            )
        content_range = (headers.get("content-range") or "").strip()
        match = _CONTENT_RANGE.fullmatch(content_range)
        asked = f"bytes={self.received}-"
        if match is None or encoded:
            raise RetryableError(
                f"a 206 answer with Content-Range {content_range!r} for {asked}", restart=True
            )
        start, end = int(match.group(1)), int(match.group(2))
        size = None if match.group(3) == "*" else int(match.group(3))
        if (
            start != self.received
            or end < start
            or (size is not None and end >= size)
            or (length is not None and length != end - start + 1)
        ):
            raise RetryableError(
                f"Content-Range {content_range!r} does not match the request for {asked}",
                restart=True,
            )
        if size is not None and self.total is not None and size != self.total:
            raise RetryableError(
                f"the file changed on the server (was {self.total:,} bytes, now {size:,})",
                restart=True,
            )
        if size is not None:
            self.total = size
        self._expect = end - start + 1
        self._file().seek(self.received)

    def body(self, data: bytes | memoryview) -> None:
        """Write a piece of the body (decoded), counting it against every limit."""
        self._got += len(data)
        if self._expect is not None and self._got > self._expect:
            raise DownloadError(
                f"{self.label}: the server sent more than the {self._expect:,} bytes it announced",
                url=self.first.shown,
            )
        out = self._file()
        if self._decoder is None:
            self._count(len(data))
            out.write(data)
        else:
            self._decode(data, out)
        self._report(done=False)
        self.check_deadline()

    def _decode(self, data: bytes | memoryview, out: BinaryIO) -> None:
        assert self._decoder is not None
        pending: bytes | memoryview = data
        try:
            while pending:
                piece = self._decoder.decompress(pending, _DECODE_STEP)
                self._count(len(piece))
                out.write(piece)
                pending = self._decoder.unconsumed_tail
                if self._decoder.eof:
                    break
        except zlib.error as exc:
            raise DownloadError(
                f"{self.label}: the compressed body is corrupt ({exc})", url=self.first.shown
            ) from None

    def _count(self, n: int) -> None:
        self.received += n
        if self.received > self.policy.max_bytes:
            raise DownloadError(
                f"{self.label}: more than the {self.policy.max_bytes:,}-byte cap arrived; "
                "refused (raise it with max_bytes= or --max-download-size)",
                url=self.first.shown,
            )

    def end(self) -> None:
        """The body ended: complete, or cut (retry), or one range of several (go on)."""
        self.check_deadline()
        if self._expect is not None and self._got < self._expect:
            raise RetryableError(f"cut off after {self._got:,} of {self._expect:,} bytes")
        if self._decoder is not None:
            if not self._decoder.eof:
                raise RetryableError("the compressed body ended early", restart=True)
            if self._decoder.unused_data:
                raise DownloadError(
                    f"{self.label}: data after the end of the compressed body",
                    url=self.first.shown,
                )
        if self.total is not None and self.received > self.total:
            raise DownloadError(
                f"{self.label}: got {self.received:,} bytes of a {self.total:,}-byte file",
                url=self.first.shown,
            )
        if self.total is None or self.received == self.total:
            self.done = True
        else:
            self._next_attempt()  # the server sent one range of several: ask for the rest

    def finish(self) -> Path:
        """Check the written file once more and give it its final name."""
        out = self._file()
        out.flush()
        size = os.fstat(out.fileno()).st_size
        if size != self.received or (self.total is not None and size != self.total):
            raise DownloadError(
                f"{self.label}: wrote {size:,} bytes, expected {self.total or self.received:,}",
                url=self.first.shown,
            )
        out.close()
        self._out = None
        os.replace(self._tmp, self.path)
        self.saved = True
        self._report(done=True)
        return self.path

    def close(self) -> None:
        """Release the file; unless it was saved, remove what was written."""
        if self._out is not None:
            self._out.close()
            self._out = None
        if not self.saved:
            self._tmp.unlink(missing_ok=True)

    # -- after a failure --------------------------------------------------------------------

    def failed(self, exc: BaseException) -> float:
        """Seconds to wait before trying again, or DownloadError when it is time to stop.

        The file belongs to a job that was paid for, so transient trouble is retried as the
        client retries a job's status (``RetryPolicy``): until the deadline, or without one
        for the policy's outage budget of failures with no new bytes. A cut after progress
        resumes at once.
        """
        if self.cancelled:
            raise DownloadError(f"{self.label}: cancelled", url=self.first.shown) from None
        if isinstance(exc, DownloadError):
            raise exc
        self.check_deadline()
        reason, retry_after, restart = self._reason(exc)
        progressed = self.received > self._high_water
        self._high_water = max(self._high_water, self.received)
        if progressed:
            self._attempts = self._new_attempts()
        if restart:
            self._restarts += 1
            if self._restarts > MAX_RESTARTS:
                raise DownloadError(
                    f"{self.label}: {reason} (gave up after {self._restarts} restarts)",
                    url=self.first.shown,
                )
            self._use_ranges = False
            self.received = 0
            self.total = None
        self._next_attempt()
        if progressed or restart:
            return 0.0  # a cut after progress is no sign of overload: resume at once
        attempts = self._attempts
        delay = attempts.next_delay(retry_after)
        if delay is None or (self.deadline is not None and delay >= (self.remaining() or 0)):
            if self.deadline is not None:
                ended = "the deadline leaves no time to try again"
            else:
                ended = (
                    f"gave up after {attempts.attempt} attempts over "
                    f"{attempts.failing_for():.0f} s, the outage budget"
                )
            raise DownloadError(f"{self.label}: {reason}; {ended}", url=self.first.shown)
        attempts.advance()
        if self.on_retry is not None:
            self.on_retry(
                RetryNotice(
                    "download",
                    self.request_id,
                    reason,
                    attempts.failing_for(),
                    delay,
                    retry_after is not None,
                )
            )
        return delay

    def _new_attempts(self) -> Attempts:
        deadline = None
        if self.deadline is not None:
            seconds = self.budget if self.budget is not None else self.deadline - self._started
            deadline = Deadline(self.deadline, seconds)
        return Attempts(self.retry, persistent=True, clock=self.clock, deadline=deadline)

    def _reason(self, exc: BaseException) -> tuple[str, float | None, bool]:
        if isinstance(exc, RetryableError):
            return exc.reason, exc.retry_after, exc.restart
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
            raise DownloadError(
                f"{self.label}: the disk is full ({exc.strerror or exc})", url=self.first.shown
            ) from exc  # chained: a batch stops on it (every other line would meet it too)
        if not _transient(exc):
            raise DownloadError(
                f"{self.label}: {type(exc).__name__}: {_shown(exc, self)}", url=self.first.shown
            ) from None
        if isinstance(exc, ssl.SSLCertVerificationError) or (
            "CERTIFICATE_VERIFY_FAILED" in str(exc)
        ):
            raise DownloadError(
                f"{self.label}: the TLS certificate could not be verified ({exc})",
                url=self.first.shown,
            ) from None
        if isinstance(exc, http.client.IncompleteRead):
            return f"cut off after {len(exc.partial):,} bytes of a chunk", None, False
        return f"{type(exc).__name__}: {_shown(exc, self)}", None, False

    def _next_attempt(self) -> None:
        self.target = self.first
        self.hops = 0
        self._decoder = None
        self._expect = None

    # -- helpers ----------------------------------------------------------------------------

    def _file(self) -> BinaryIO:
        if self._out is None:
            self._out = self._tmp.open("wb")
        return self._out

    def _report(self, *, done: bool) -> None:
        if self.on_progress is not None:
            self.on_progress(DownloadProgress(self.url, self.path, self.received, self.total, done))


# -- the transfer as a flow ----------------------------------------------------------------------

# What a failed attempt may raise on either reader, besides the transfer's own DownloadError:
# Transfer.failed() judges whether it is worth another attempt.
_FAILURES: tuple[type[BaseException], ...] = (OSError, http.client.HTTPException, RetryableError)


def _failures() -> tuple[type[BaseException], ...]:
    import httpx

    return (*_FAILURES, httpx.HTTPError, httpx.InvalidURL)


def fetch(transfer: Transfer, *, strict: bool, fast: bool) -> Flow[Path]:
    """Attempts until the file is complete, then its final name (no partial file is left).

    ``strict``: the host's addresses are looked up and checked first (and httpx's connected
    peer after); ``fast``: the fast reader connects to exactly those addresses.
    """
    failures = _failures()
    try:
        transfer.path.parent.mkdir(parents=True, exist_ok=True)
        while not transfer.done:
            try:
                yield from _attempt(transfer, strict=strict, fast=fast)
            except failures as exc:
                yield Sleep(transfer.failed(exc))
                transfer.check_cancelled()  # a cancel ends the pause, and the download
        return transfer.finish()
    finally:
        transfer.close()


def _attempt(transfer: Transfer, *, strict: bool, fast: bool) -> Flow[None]:
    addresses = None
    if strict:
        addresses = transfer.check_addresses((yield Resolve(transfer.target)))
    else:
        transfer.check_literal()
    stream = yield Open(transfer, addresses if fast else None)
    try:
        if strict and stream.peer:
            transfer.check_peer(stream.peer)
        if transfer.head(stream.status, stream.headers):
            while (piece := (yield Read(stream))) is not None:
                transfer.body(piece)
            transfer.end()
    finally:
        yield Close(stream)


@dataclass(frozen=True)
class DownloadJob:
    """What every file of one ``download()`` call shares: rules, budget, progress callback."""

    policy: DownloadPolicy
    retry: RetryPolicy
    local: bool  # the client talks to a local emulator: loopback outputs are allowed
    timeout: httpx.Timeout
    owns_http: bool  # the client made its httpx client: the fast reader may be used
    deadline: float | None = None  # on ``clock``, by which every file must be saved
    budget: float | None = None  # the timeout that set it, in seconds (for messages)
    on_progress: ProgressCallback | None = None
    on_retry: Callable[[RetryNotice], None] | None = None  # told before each retry waits
    request_id: str | None = None
    clock: Callable[[], float] = time.monotonic
    proxies: Mapping[str, str] = field(default_factory=dict)  # the client's, from its environment

    def transfer(self, url: str, path: Path, label: str) -> Transfer:
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
            on_progress=self.on_progress,
            on_retry=self.on_retry,
            request_id=self.request_id,
            label=label,
            clock=self.clock,
        )

    def fast(self, url: str) -> bool:
        """Whether the fast reader may fetch ``url`` (else httpx does)."""
        return self.owns_http and self.policy.fast and not proxied(url, self.proxies)

    def peer_checked(self, url: str) -> bool:
        """Whether httpx's connected peer is the host itself (no proxy, no foreign transport)."""
        return self.owns_http and not proxied(url, self.proxies)


def save(job: DownloadJob, url: str, path: Path, label: str = "") -> Flow[Path]:
    """Fetch ``url`` to ``path``, verified; the fast reader's blocking reads are detached."""
    transfer = job.transfer(url, path, label)
    if job.fast(url):
        saved: Path = yield Detach(fetch(transfer, strict=True, fast=True), transfer)
        return saved
    return (yield from fetch(transfer, strict=job.peer_checked(url), fast=False))
