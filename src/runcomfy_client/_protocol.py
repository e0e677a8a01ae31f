"""The Model API's protocol, without I/O: settings, requests, answers, errors, retries.

``Client`` and ``AsyncClient`` are thin shells that send what this module builds and hand back
what they receive; every decision (which error, whether to retry, how long to wait) is made
here, once.

The two promises, as rules:

- **Never pay twice.** A submit is sent again only when it certainly created nothing: the API
  answered 429, or the connection failed before the request was sent. Any other trouble after
  sending (a 5xx, 503 included, a timeout, a cut connection, an unreadable answer) raises
  :class:`SubmissionUncertainError` naming the model and the payload's fingerprint.
- **Never abandon a paid job.** A call about a job that has a request id is retried through
  transient trouble (5xx, 429, 408, dropped connections, timeouts, unreadable answers) until
  the caller's deadline, else for the outage budget; permanent answers (401, 403, 404, other
  4xx) fail at once. The error that ends it carries the request id and how to re-attach.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import math
import os
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from . import _errors as e
from ._keys import KEY_ENVS, Secret, resolve_key
from ._retry import RETRYABLE_STATUS, Attempts, RetryNotice, RetryPolicy, parse_retry_after
from ._version import __version__

__all__ = ["Call", "Secret", "Settings", "decide", "error_from_response", "payload_fingerprint"]

logger = logging.getLogger("runcomfy_client")

DEFAULT_BASE_URL = "https://model-api.runcomfy.net"
API_KEY_ENV = KEY_ENVS[0]
BASE_URL_ENV = "RUNCOMFY_BASE_URL"
# Every call answers at once (the job runs asynchronously), but a submit may wait for the
# inputs to be accepted: RunComfy's own clients give it 60-120 s.
SUBMIT_TIMEOUT = 120.0
READ_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0
# Limits on an answer: a job's answers are small; a model's record carries its schema.
JOB_ANSWER_BYTES = 8 * 1024 * 1024
OTHER_ANSWER_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 64
MAX_INT_DIGITS = 30
TOP_UP = (
    "your RunComfy balance does not cover this job: top it up on https://www.runcomfy.com "
    "(your account's billing page), then run it again"
)


@lru_cache(maxsize=256)  # asked for every request and every file; ipaddress parses slowly
def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(url: str, source: str = "base_url=") -> str:
    """The base URL without a trailing slash; refused (with the fix) when it cannot work."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise e.ConfigurationError(
            f"the base URL from {source} must be an http(s) URL such as "
            f"{DEFAULT_BASE_URL}, not {url!r}"
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise e.ConfigurationError(
            f"refusing plain http to {parts.hostname} (from {source}): the API key would cross "
            "the network unencrypted; use https (plain http is allowed only on loopback)"
        )
    if parts.username or parts.password:
        raise e.ConfigurationError(f"the base URL from {source} must not carry credentials")
    root = f"{parts.scheme}://{parts.netloc}"
    segments = [s for s in parts.path.split("/") if s]
    if parts.query or parts.fragment or any(s.lower() in ("v1", "v2") for s in segments):
        raise e.ConfigurationError(
            f"the base URL from {source} is {url!r}: give the API's root, without /v1 or any "
            f"endpoint path (the client adds those), e.g. {root}"
        )
    return url.strip().rstrip("/")


OUTAGE_BUDGET_ENV = "RUNCOMFY_OUTAGE_BUDGET"


def outage_budget_from_env() -> float | None:
    """``RUNCOMFY_OUTAGE_BUDGET`` in seconds (for the CLI and scripts), or None when unset."""
    text = os.environ.get(OUTAGE_BUDGET_ENV, "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not (math.isfinite(seconds) and seconds >= 0):
        raise e.ConfigurationError(
            f"{OUTAGE_BUDGET_ENV} must be a number of seconds (0 or more), not {text[:40]!r}"
        )
    return seconds


@dataclass(frozen=True)
class Settings:
    """A client's configuration, resolved from arguments and the environment.

    ``key_source`` and ``base_url_source`` say which setting chose each (``RUNCOMFY_API_TOKEN``,
    ``--base-url``, ``default`` ...), for ``runcomfy-client config`` and for error messages.
    """

    api_key: Secret
    base_url: str
    timeout: httpx.Timeout
    retry: RetryPolicy
    submit_timeout: httpx.Timeout = field(
        default_factory=lambda: httpx.Timeout(SUBMIT_TIMEOUT, connect=CONNECT_TIMEOUT)
    )
    key_source: str = ""
    base_url_source: str = "default"
    # What to tell someone with no key: the library's ways, or the CLI's own.
    missing_key_help: str = (
        f"pass api_key= or set {API_KEY_ENV} (or RUNCOMFY_API_TOKEN / RUNCOMFY_TOKEN)"
    )

    @classmethod
    def resolve(
        cls,
        api_key: str | None,
        base_url: str | None,
        timeout: float | httpx.Timeout | None,
        retry: RetryPolicy | None,
        submit_timeout: float | None = None,
    ) -> Settings:
        key, key_source = resolve_key(api_key)
        if base_url:
            url, url_source = base_url, "base_url="
        elif os.environ.get(BASE_URL_ENV):
            url, url_source = os.environ[BASE_URL_ENV], BASE_URL_ENV
        else:
            url, url_source = DEFAULT_BASE_URL, "default"
        if isinstance(timeout, httpx.Timeout):
            resolved_timeout = timeout
        else:
            seconds = timeout if timeout is not None else READ_TIMEOUT
            resolved_timeout = httpx.Timeout(seconds, connect=min(CONNECT_TIMEOUT, seconds))
        submit = submit_timeout if submit_timeout is not None else SUBMIT_TIMEOUT
        return cls(
            key,
            check_base_url(url, url_source),
            resolved_timeout,
            retry or RetryPolicy(),
            httpx.Timeout(submit, connect=min(CONNECT_TIMEOUT, submit)),
            key_source,
            url_source,
        )

    def relabel(self, **changes: Any) -> Settings:
        """The same settings with other sources or help (the CLI names its own options)."""
        return replace(self, **changes)

    def headers(self) -> dict[str, str]:
        if not self.api_key:
            raise e.AuthenticationError(f"no API key: {self.missing_key_help}", status_code=None)
        return {
            "Authorization": f"Bearer {self.api_key.reveal()}",
            "Accept": "application/json",
            "User-Agent": f"runcomfy-client/{__version__}",
        }

    def endpoint(self, base_url: str | None = None) -> str:
        """``host:port (from SOURCE)``: where requests go and which setting chose it
        (``base_url``: another API's, the Serverless API's)."""
        parts = urlsplit(base_url or self.base_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        source = "the Serverless API's base URL" if base_url else self.base_url_source
        return f"{parts.hostname}:{port} (from {source})"

    def loopback(self, base_url: str | None = None) -> bool:
        return is_loopback(urlsplit(base_url or self.base_url).hostname or "")


@dataclass(frozen=True)
class Call:
    """One API call to make: method, path, JSON body, and what it is about."""

    method: str
    path: str
    json: Any = None
    request_id: str | None = None
    is_submit: bool = False
    base_url: str | None = None
    """Another API's base URL (the Serverless API's); None: the client's own."""
    authenticated: bool = True
    """False for a link to another host (a deployment's object_info): the key stays home."""
    list_key: str | None = None
    """An answer that is a bare JSON array is handed back as ``{list_key: [...]}``."""
    kind: str = "call"  # submit, status, result, cancel, model: for messages and progress
    model_id: str | None = None

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def persistent(self) -> bool:
        """A call about a job that exists: retried until the deadline or the outage budget."""
        return self.request_id is not None and not self.is_submit

    @property
    def max_bytes(self) -> int:
        return (
            JOB_ANSWER_BYTES
            if self.request_id is not None or self.is_submit
            else (OTHER_ANSWER_BYTES)
        )

    def fingerprint(self) -> str | None:
        if not self.is_submit or self.model_id is None:
            return None
        return payload_fingerprint(self.model_id, self.json)[:16]


def payload_fingerprint(model_id: str, payload: Any) -> str:
    """SHA-256 of the model id and payload, as canonical JSON: the same inputs, the same text.

    The batch journal keys its lines on it too, so a line and its uncertain submit agree.
    """
    text = json.dumps([model_id, payload], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def submit_call(model_id: str, payload: Mapping[str, Any]) -> Call:
    return Call(
        "POST",
        f"/v1/models/{quote(model_id, safe='/')}",
        dict(payload),
        is_submit=True,
        kind="submit",
        model_id=model_id,
    )


def status_call(request_id: str) -> Call:
    return Call(
        "GET",
        f"/v1/requests/{quote(request_id, safe='')}/status",
        request_id=request_id,
        kind="status",
    )


def result_call(request_id: str) -> Call:
    # include_cost: a finished job's answer says what it cost (Result.cost).
    return Call(
        "GET",
        f"/v1/requests/{quote(request_id, safe='')}/result?include_cost=true",
        request_id=request_id,
        kind="result",
    )


def cancel_call(request_id: str) -> Call:
    # Cancelling twice is harmless, so it may be retried like a GET.
    return Call(
        "POST",
        f"/v1/requests/{quote(request_id, safe='')}/cancel",
        request_id=request_id,
        kind="cancel",
    )


def model_call(model_id: str) -> Call:
    return Call("GET", f"/v1/models/{quote(model_id, safe='/')}", kind="model")


# -- reading answers ---------------------------------------------------------------------------


class _RefusedError(ValueError):
    """A value in an answer outside the parser's limits."""


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _RefusedError(f"a number of {len(text)} digits")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _RefusedError(f"a number too large for a float ({text[:20]}...)")
    return value


def _parse_constant(text: str) -> Any:
    raise _RefusedError(f"{text}, which is not JSON")


def _too_deep(value: Any) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return False


def decode_body(content: bytes | None, call: Call) -> Any:
    """The JSON of an answer within the limits, or ResponseDecodeError naming the call."""
    if content is None:
        raise e.ResponseDecodeError(
            f"{call.name} answered more than {call.max_bytes:,} bytes; not read",
            request_id=call.request_id,
        )
    if not content:
        return None
    try:
        body = json.loads(
            content,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except _RefusedError as refused:
        raise e.ResponseDecodeError(
            f"{call.name} answered JSON outside this client's limits: {refused}",
            request_id=call.request_id,
        ) from None
    except RecursionError:
        raise e.ResponseDecodeError(
            f"{call.name} answered JSON nested too deeply to read", request_id=call.request_id
        ) from None
    except (ValueError, UnicodeDecodeError):
        shown = content[:120].decode("utf-8", "replace")
        raise e.ResponseDecodeError(
            f"{call.name} answered something that is not JSON: {shown!r}",
            request_id=call.request_id,
        ) from None
    if _too_deep(body):
        raise e.ResponseDecodeError(
            f"{call.name} answered JSON nested deeper than {MAX_DEPTH} levels",
            request_id=call.request_id,
        )
    return body


def _present(value: Any) -> bool:
    return value is not None and value not in ("", {}, [])


def _error_fields(body: Any) -> tuple[int | None, str | None, Any]:
    if not isinstance(body, Mapping):
        return None, None, None
    code = body.get("error_code")
    message = body.get("error_message") or body.get("message")
    error = body.get("error")
    if not message and isinstance(error, str):
        message = error
    elif not message and isinstance(error, Mapping):
        message = error.get("message") or error.get("error_message")
    code_int = code if isinstance(code, int) and not isinstance(code, bool) else None
    if code_int is None and isinstance(code, str) and code.strip().isdigit():
        code_int = int(code.strip()[:12])
    detail = body.get("detail")
    return code_int, str(message)[:1000] if message is not None else None, detail


def is_error_body(body: Any) -> bool:
    """An answer that is an error whatever its HTTP status: it carries RunComfy's error fields
    with a value. ``"error_code": null`` on a success is not an error; nor is a job document's
    own ``error`` (a failed job's reason, read by the job's typed state)."""
    if not isinstance(body, Mapping):
        return False
    if _present(body.get("error_code")):
        return True
    if "status" in body or "request_id" in body:
        return False
    return _present(body.get("error_message")) or _present(body.get("error"))


def error_from_response(status: int, body: Any, call: Call) -> e.APIError:
    """The exception class for an error answer, by RunComfy error_code, then HTTP status."""
    code, message, detail = _error_fields(body)
    if message is None:
        message = f"{call.name} failed"
    kwargs: dict[str, Any] = {
        "status_code": status,
        "error_code": code,
        "detail": detail,
        "request_id": call.request_id,
    }
    cls: type[e.APIError]
    if code == 400001:
        cls = e.NotFoundError
        message = f"unknown model: {message}"
    elif code in (400002, 10001) or status == 402:  # 10001: the Serverless API's way to say it
        cls = e.InsufficientBalanceError
        message = f"{message} ({TOP_UP})"
    elif code == 10002:
        cls = e.PermissionDeniedError
        message = (
            f"the deployment is disabled: {message} "
            "(enable it with `runcomfy-client deployments enable ID`)"
        )
    elif code == 10003:
        cls = e.NotFoundError
        message = f"the deployment was deleted: {message}"
    elif code in (400004, 401001) or status == 401:  # 401001: the Serverless API's
        cls = e.AuthenticationError
    elif code in (403001, 403003) or status == 403:
        cls = e.PermissionDeniedError
    elif code == 404001 or status == 404:
        cls = e.NotFoundError
    elif status == 429:
        cls = e.RateLimitError
    elif status >= 500 or (code is not None and code >= 500000):
        cls = e.ServerError
    elif status in (400, 422) or (code is not None and 400000 <= code < 500000):
        cls = e.BadRequestError
        if call.is_submit:
            message = f"the server rejected the input: {message}"
    else:
        cls = e.APIError
    return cls(message, **kwargs)  # its message lists ``detail`` field by field


# -- deciding ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Retry:
    delay: float
    reason: str
    retry_after: bool = False

    def notice(self, call: Call, attempts: Attempts) -> RetryNotice:
        return RetryNotice(
            call.kind,
            call.request_id,
            self.reason,
            attempts.failing_for(),
            self.delay,
            self.retry_after,
        )


def decide(
    call: Call,
    attempts: Attempts,
    settings: Settings,
    *,
    response: httpx.Response | None = None,
    content: bytes | None = None,
    exc: Exception | None = None,
) -> Retry | Exception | Mapping[str, Any]:
    """What to do after an attempt of ``call``: its answer (``response`` with its ``content``,
    None when over the size limit) or the exception it raised.

    Returns a :class:`Retry` to wait and try again, an exception to raise, or the decoded JSON
    body to hand back.
    """
    if exc is not None:
        return _after_exception(call, attempts, settings, exc)
    assert response is not None
    status = response.status_code
    try:
        body = decode_body(content, call)
    except e.ResponseDecodeError as unreadable:
        if status < 400:
            # A 2xx that cannot be read: cut off, garbled or hostile. A read may be repeated;
            # a submit's job may exist.
            if call.is_submit:
                return _uncertain(call, f"the answer could not be read ({unreadable})")
            return _transient(call, attempts, unreadable, "an unreadable answer")
        body = {"message": f"HTTP {status} with an unreadable body"}
    if status < 400 and not is_error_body(body):
        if isinstance(body, list) and call.list_key is not None:
            return {call.list_key: body}
        if not isinstance(body, Mapping):
            bad = e.ResponseDecodeError(
                f"{call.name} answered {type(body).__name__}, not a JSON object",
                request_id=call.request_id,
            )
            if call.is_submit:
                return _uncertain(call, f"its answer was a {type(body).__name__}, not an object")
            return _transient(call, attempts, bad, "an answer that is not an object")
        return body
    error = error_from_response(status, body, call)
    transient = status in RETRYABLE_STATUS or isinstance(error, (e.ServerError, e.RateLimitError))
    if not transient:
        return error  # a permanent answer (400, 401, 403, 404 ...): retrying cannot help
    retry_after = parse_retry_after(
        response.headers.get("Retry-After"), cap=settings.retry.retry_after_max
    )
    if call.is_submit and status != 429:
        # The server answered after reading the request: it may have created the job.
        return _uncertain(call, f"it was answered with an error ({error})")
    reason = f"HTTP {status}" if status >= 400 else f"an error answered with HTTP {status}"
    return _transient(call, attempts, error, reason, retry_after)


def _transient(
    call: Call,
    attempts: Attempts,
    error: Exception,
    reason: str,
    retry_after: float | None = None,
) -> Retry | Exception:
    delay = attempts.next_delay(retry_after)
    if delay is not None:
        return Retry(delay, reason, retry_after is not None)
    return _gave_up(call, attempts, error)


def _gave_up(call: Call, attempts: Attempts, error: Exception) -> Exception:
    """The error that ends a call's retries, saying for how long and, for a job, what next."""
    if not call.persistent:
        note = f" (gave up after {attempts.attempt} attempts)" if attempts.attempt > 1 else ""
        _add_note(error, note)
        return error
    assert call.request_id is not None
    seconds = attempts.failing_for()
    if attempts.deadline is not None:
        return e.DeadlineExceededError(
            call.request_id,
            deadline=attempts.deadline.seconds,
            cancelled=False,
            status="unknown",
            unreachable=f"the API did not answer its {call.kind} request usably for the last "
            f"{seconds:.0f} s ({_first_line(error)})",
        )
    _add_note(
        error,
        f"; the API has been unreachable for {seconds:.0f} s ({attempts.attempt} attempts, "
        f"outage budget {attempts.policy.outage_budget:g} s). The job is not lost: "
        f"{e.reattach_hint(call.request_id)}",
    )
    return error


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0][:200] if str(error) else type(error).__name__


def _add_note(error: Exception, note: str) -> None:
    if not note:
        return
    if isinstance(error, e.APIError):
        error.add_note_to_message(note)
    else:
        error.args = (f"{error}{note}",)


def _uncertain(call: Call, reason: str) -> e.SubmissionUncertainError:
    """A submit (or another request that may not be sent twice) that may have taken effect."""
    if call.model_id is None:
        return e.SubmissionUncertainError(
            f"{call.name} was sent and {reason}; it may have taken effect and was NOT sent again"
        )
    return e.SubmissionUncertainError(
        f"the submit was sent and {reason}", model_id=call.model_id, fingerprint=call.fingerprint()
    )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _connect_problem(exc: Exception, settings: Settings, call: Call) -> tuple[str, bool]:
    """What went wrong connecting, and whether it is permanent (retrying cannot help)."""
    where = settings.endpoint(call.base_url)
    if any(isinstance(c, ssl.SSLCertVerificationError) for c in _chain(exc)):
        return f"the TLS certificate of {where} was refused: {exc}", True
    tls = any(isinstance(c, ssl.SSLError) for c in _chain(exc)) or "SSL" in str(exc)
    if settings.loopback(call.base_url):
        # Nothing on this machine answers: waiting will not make it appear.
        if tls:
            plain = (call.base_url or settings.base_url).replace("https://", "http://", 1)
            return (
                f"TLS to a plain-http server? {where} did not speak TLS ({exc}); the emulator "
                f"serves plain http: use {plain}",
                True,
            )
        return (
            f"cannot connect to {where}: {exc}. Nothing is listening there: is the emulator "
            f"running? (`runcomfy-client emulator` prints its URL; set {BASE_URL_ENV} to it)",
            True,
        )
    return f"cannot connect to {where}: {type(exc).__name__}: {exc}", False


def _after_exception(
    call: Call, attempts: Attempts, settings: Settings, exc: Exception
) -> Retry | Exception:
    if isinstance(exc, (httpx.LocalProtocolError, httpx.UnsupportedProtocol, httpx.InvalidURL)):
        # Refused before sending; its text may quote a header (the key): never shown.
        return e.ConfigurationError(
            f"{call.name} could not be sent: the request was refused before sending "
            f"({type(exc).__name__}; its text is not shown, as it may quote a header)"
        )
    if isinstance(exc, httpx.DecodingError):
        # An answer came (its Content-Encoding could not be undone): a submit's job may exist;
        # any other call is asked again, as for an unreadable answer.
        if call.is_submit:
            return _uncertain(call, f"its answer could not be decoded ({type(exc).__name__})")
        unreadable = e.ResponseDecodeError(
            f"{call.name} answered a body that could not be decoded: {exc}",
            request_id=call.request_id,
        )
        return _transient(call, attempts, unreadable, "an undecodable answer")
    if not isinstance(exc, httpx.TransportError):
        return exc
    never_sent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
    if never_sent:
        text, permanent = _connect_problem(exc, settings, call)
        error: Exception = (
            e.APITimeoutError(text, request_id=call.request_id)
            if isinstance(exc, httpx.TimeoutException)
            else e.APIConnectionError(text, request_id=call.request_id)
        )
        if permanent:
            return error
        # Nothing reached the server, so even a submit is safe to repeat.
        where = settings.endpoint(call.base_url)
        return _transient(call, attempts, error, f"{type(exc).__name__} to {where}")
    if call.is_submit:
        return _uncertain(call, f"its answer was lost ({type(exc).__name__})")
    where = settings.endpoint(call.base_url)
    if isinstance(exc, httpx.TimeoutException):
        error = e.APITimeoutError(
            f"{call.name} to {where} timed out ({type(exc).__name__})",
            request_id=call.request_id,
        )
    else:
        error = e.APIConnectionError(
            f"{call.name} to {where} failed: {type(exc).__name__}: {exc}",
            request_id=call.request_id,
        )
    return _transient(call, attempts, error, type(exc).__name__)


def log_retry(call: Call, attempts: Attempts, retry: Retry) -> None:
    logger.warning(
        "retrying %s after %s (attempt %d; failing for %.0f s) in %.2fs",
        call.name,
        retry.reason,
        attempts.attempt + 1,
        attempts.failing_for(),
        retry.delay,
    )
