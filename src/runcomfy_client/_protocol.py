"""The Model API's protocol, without I/O: settings, requests, answers, errors, retries.

``Client`` and ``AsyncClient`` are thin shells that send what this module builds and hand back
what they receive; every decision (which error, whether to retry, how long to wait) is made
here, once.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from . import _errors as e
from ._retry import RETRYABLE_STATUS, SUBMIT_RETRYABLE_STATUS, RetryPolicy, parse_retry_after
from ._version import __version__

__all__ = ["Call", "Settings", "decide", "error_from_response"]

logger = logging.getLogger("runcomfy_client")

DEFAULT_BASE_URL = "https://model-api.runcomfy.net"
API_KEY_ENV = "RUNCOMFY_API_KEY"
BASE_URL_ENV = "RUNCOMFY_BASE_URL"


class Secret:
    """Holds the API key so that no repr, str or log line can show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(url: str) -> str:
    """The base URL without a trailing slash; plain http is refused except on loopback."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise e.ConfigurationError(f"base_url must be an http(s) URL, not {url!r}")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise e.ConfigurationError(
            f"refusing plain http to {parts.hostname}: the API key would cross the network "
            "unencrypted; use https (plain http is allowed only on loopback)"
        )
    if parts.username or parts.password:
        raise e.ConfigurationError("base_url must not carry credentials")
    return url.rstrip("/")


@dataclass(frozen=True)
class Settings:
    """A client's configuration, resolved from arguments and the environment."""

    api_key: Secret
    base_url: str
    timeout: httpx.Timeout
    retry: RetryPolicy

    @classmethod
    def resolve(
        cls,
        api_key: str | None,
        base_url: str | None,
        timeout: float | httpx.Timeout | None,
        retry: RetryPolicy | None,
    ) -> Settings:
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV, "")
        url = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        if isinstance(timeout, httpx.Timeout):
            resolved_timeout = timeout
        else:
            # Reads are short for this API: every call answers at once, the job runs async.
            resolved_timeout = httpx.Timeout(timeout if timeout is not None else 30.0, connect=10.0)
        return cls(
            Secret(key.strip()), check_base_url(url), resolved_timeout, retry or RetryPolicy()
        )

    def headers(self) -> dict[str, str]:
        if not self.api_key:
            raise e.AuthenticationError(
                f"no API key: pass api_key= or set {API_KEY_ENV}", status_code=None
            )
        return {
            "Authorization": f"Bearer {self.api_key.reveal()}",
            "Accept": "application/json",
            "User-Agent": f"runcomfy-client/{__version__}",
        }


@dataclass(frozen=True)
class Call:
    """One API call to make: method, path, JSON body, and whether it may be repeated."""

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

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


def submit_call(model_id: str, payload: Mapping[str, Any]) -> Call:
    return Call("POST", f"/v1/models/{quote(model_id, safe='/')}", dict(payload), is_submit=True)


def status_call(request_id: str) -> Call:
    return Call("GET", f"/v1/requests/{quote(request_id, safe='')}/status", request_id=request_id)


def result_call(request_id: str) -> Call:
    return Call("GET", f"/v1/requests/{quote(request_id, safe='')}/result", request_id=request_id)


def cancel_call(request_id: str) -> Call:
    # Cancelling twice is harmless, so it may be retried like a GET.
    return Call("POST", f"/v1/requests/{quote(request_id, safe='')}/cancel", request_id=request_id)


def model_call(model_id: str) -> Call:
    return Call("GET", f"/v1/models/{quote(model_id, safe='/')}")


def decode_body(content: bytes, call: Call) -> Any:
    """The JSON of an answer, or ResponseDecodeError saying what came instead."""
    try:
        return json.loads(content) if content else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        shown = content[:120].decode("utf-8", "replace")
        raise e.ResponseDecodeError(
            f"{call.name} answered something that is not JSON: {shown!r}",
            request_id=call.request_id,
        ) from None


def _error_fields(body: Any) -> tuple[int | None, str | None, Any]:
    if not isinstance(body, Mapping):
        return None, None, None
    code = body.get("error_code")
    message = body.get("error_message") or body.get("message") or body.get("error")
    code_int = code if isinstance(code, int) and not isinstance(code, bool) else None
    if code_int is None and isinstance(code, str) and code.isdigit():
        code_int = int(code)
    return code_int, str(message) if message is not None else None, body.get("detail")


def is_error_body(body: Any) -> bool:
    """An answer that carries RunComfy's error fields (even with HTTP 200)."""
    return isinstance(body, Mapping) and ("error_code" in body or "error_message" in body)


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
    elif code in (400002, 10001):  # 10001: the Serverless API's "insufficient funds"
        cls = e.InsufficientBalanceError
    elif code == 10002:
        cls = e.PermissionDeniedError
        message = (
            f"the deployment is disabled: {message} "
            "(enable it with `runcomfy-client deployments enable ID`)"
        )
    elif code == 10003:
        cls = e.NotFoundError
        message = f"the deployment was deleted: {message}"
    elif code == 400004 or status == 401:
        cls = e.AuthenticationError
    elif code == 403001 or status == 403:
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
    lines = _detail_lines(detail) if code == 422001 or status == 422 else []
    if lines:  # the Serverless API's validation errors: one line per field
        message += ":\n" + "\n".join(f"  - {line}" for line in lines)
    return cls(message, **kwargs)


def _detail_lines(detail: Any, limit: int = 50) -> list[str]:
    """A 422 answer's ``detail``, one line per problem: ``overrides.6.inputs.text: msg``."""
    if isinstance(detail, str):
        return [detail] if detail.strip() else []
    if isinstance(detail, Mapping):
        return [f"{key}: {value}" for key, value in list(detail.items())[:limit]]
    if not isinstance(detail, list):
        return []
    lines = []
    for item in detail[:limit]:
        if isinstance(item, Mapping) and "msg" in item:
            loc = item.get("loc")
            parts = (
                [str(p) for p in loc if p not in ("body", "query")] if isinstance(loc, list) else []
            )
            lines.append(f"{'.'.join(parts)}: {item['msg']}" if parts else str(item["msg"]))
        else:
            lines.append(str(item))
    if len(detail) > limit:
        lines.append(f"... and {len(detail) - limit} more")
    return lines


@dataclass(frozen=True)
class Retry:
    delay: float
    reason: str


def decide(
    call: Call,
    attempt: int,
    policy: RetryPolicy,
    *,
    response: httpx.Response | None = None,
    exc: Exception | None = None,
) -> Retry | Exception | Any:
    """What to do after attempt ``attempt`` (1-based) of ``call``.

    Returns a :class:`Retry` to wait and try again, an exception to raise, or the decoded JSON
    body to hand back.
    """
    retries_left = attempt <= policy.max_retries
    if exc is not None:
        return _after_exception(call, attempt, policy, exc, retries_left)
    assert response is not None
    status = response.status_code
    try:
        body = decode_body(response.content, call)
    except e.ResponseDecodeError as bad:
        if status < 400:
            # A 2xx that is not JSON: cut off or garbled in transit. Safe to repeat a read;
            # a submit's job may exist.
            if call.is_submit:
                return e.SubmissionUncertainError(
                    f"the submit's answer could not be read ({bad}); the job may exist and "
                    "was not resubmitted",
                )
            if retries_left:
                return Retry(policy.delay(attempt), "an unreadable answer")
            return bad
        body = {"message": response.text[:200]}
    if status < 400 and not is_error_body(body):
        if isinstance(body, list) and call.list_key is not None:
            return {call.list_key: body}
        if not isinstance(body, Mapping):
            return e.ResponseDecodeError(
                f"{call.name} answered {type(body).__name__}, not a JSON object",
                request_id=call.request_id,
            )
        return body
    error = error_from_response(status, body, call)
    retryable = (
        status in SUBMIT_RETRYABLE_STATUS if call.is_submit else status in RETRYABLE_STATUS
    ) or (not call.is_submit and isinstance(error, e.ServerError))
    if retryable and retries_left:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return Retry(policy.delay(attempt, retry_after), f"HTTP {status}")
    if retryable and isinstance(error, (e.RateLimitError, e.ServerError)):
        error.message = f"{error.message} (gave up after {attempt} attempts)"
        error.args = (f"{error}; gave up after {attempt} attempts",)
    return error


def _after_exception(
    call: Call, attempt: int, policy: RetryPolicy, exc: Exception, retries_left: bool
) -> Retry | Exception:
    # Never connected: nothing reached the server, so even a submit is safe to repeat.
    never_sent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
    if call.is_submit and not never_sent:
        return e.SubmissionUncertainError(
            f"the submit was sent but its answer was lost ({type(exc).__name__}); the job may "
            "have been created and was NOT resubmitted, so nothing is paid for twice. Check "
            "your RunComfy requests before submitting again."
        )
    if retries_left and isinstance(exc, httpx.TransportError):
        return Retry(policy.delay(attempt), type(exc).__name__)
    if isinstance(exc, httpx.TimeoutException):
        return e.APITimeoutError(
            f"{call.name} timed out after {attempt} attempts", request_id=call.request_id
        )
    if isinstance(exc, httpx.TransportError):
        return e.APIConnectionError(
            f"{call.name} failed after {attempt} attempts: {type(exc).__name__}: {exc}",
            request_id=call.request_id,
        )
    return exc


def log_retry(call: Call, attempt: int, policy: RetryPolicy, retry: Retry) -> None:
    logger.warning(
        "retrying %s after %s (attempt %d of %d) in %.2fs",
        call.name,
        retry.reason,
        attempt + 1,
        policy.max_retries + 1,
        retry.delay,
    )
