"""The pure decision objects: retry timing, error mapping, download naming (polling: test_polling.py)."""

from __future__ import annotations

import email.utils
import json
from pathlib import Path

import httpx
import pytest

from runcomfy_client import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    Client,
    InsufficientBalanceError,
    NotFoundError,
    PermissionDeniedError,
    ResponseDecodeError,
    RetryPolicy,
    ServerError,
    SubmissionUncertainError,
)
from runcomfy_client._download import plan_targets, safe_name
from runcomfy_client._protocol import Call, error_from_response
from runcomfy_client._retry import parse_retry_after

from .conftest import INPAINT
from .scripted import VirtualClock

# -- retry timing ----------------------------------------------------------------------------


def test_retry_after_both_forms() -> None:
    assert parse_retry_after("3") == 3.0
    when = email.utils.formatdate(1_000_010, usegmt=True)
    assert parse_retry_after(when, now=1_000_000) == pytest.approx(10.0)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_backoff_grows_is_capped_and_honours_retry_after_up_to_a_cap() -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_max=4, retry_after_max=30, jitter=False)
    assert [policy.delay(n) for n in (1, 2, 3, 4, 5, 9)] == [0.5, 1, 2, 4, 4, 4]
    assert policy.delay(1, retry_after=12) == 12
    assert policy.delay(1, retry_after=3600) == 30
    jittered = RetryPolicy(backoff_base=1, backoff_max=8)
    assert all(2 <= jittered.delay(3) <= 4 for _ in range(50))


# -- error mapping ---------------------------------------------------------------------------

CALL = Call("GET", "/v1/requests/r1/status", request_id="r1")


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (401, {"error_code": 400004, "error_message": "bad token"}, AuthenticationError),
        (403, {"error_code": 403001, "error_message": "no"}, PermissionDeniedError),
        (400, {"error_code": 400002, "error_message": "no money"}, InsufficientBalanceError),
        (400, {"error_code": 400001, "error_message": "bad model"}, NotFoundError),
        (404, {"error_code": 404001, "error_message": "gone"}, NotFoundError),
        (422, {"error_code": 422001, "error_message": "bad", "detail": [1]}, BadRequestError),
        (502, {"message": "Bad Gateway"}, ServerError),
        (200, {"error_code": 500001, "error_message": "oops"}, ServerError),
    ],
)
def test_error_classes(status: int, body: dict[str, object], cls: type[Exception]) -> None:
    error = error_from_response(status, body, CALL)
    assert type(error) is cls
    assert error.request_id == "r1"
    assert error.status_code == status


def _mock_client(handler: httpx.MockTransport, **kwargs: object) -> Client:
    http = httpx.Client(transport=handler)
    # A job's calls retry for the outage budget: a short one, on a virtual clock.
    policy = RetryPolicy(max_retries=2, backoff_base=0.001, outage_budget=60)
    client = Client(
        base_url="https://api.test", api_key="k", http_client=http, retry=policy, **kwargs
    )  # type: ignore[arg-type]
    clock = VirtualClock()
    client._clock, client._sleep = clock, clock.sleep
    return client


GOOD = {"prompt": "p", "start_image": "https://e.com/a.png", "end_image": "https://e.com/b.png"}


def test_garbled_json_is_retried_then_a_clear_error() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, content=b'{"request_id": "r1", "sta')

    with pytest.raises(ResponseDecodeError, match="not JSON") as info:
        _mock_client(httpx.MockTransport(handler)).status("r1")
    assert len(calls) > 3  # a job's read is retried for the outage budget
    assert "runcomfy-client wait r1" in str(info.value)


def test_garbled_submit_answer_is_uncertain_and_not_retried() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, content=b"\x00\xffnot json")

    with pytest.raises(SubmissionUncertainError):
        _mock_client(httpx.MockTransport(handler)).submit(INPAINT, GOOD)
    assert len(calls) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_submit_is_not_retried_when_the_job_may_exist(status: int) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(status, json={"message": "upstream"})

    with pytest.raises(SubmissionUncertainError, match=f"HTTP {status}"):
        _mock_client(httpx.MockTransport(handler)).submit(INPAINT, GOOD)
    assert len(calls) == 1


def test_submit_sends_only_what_the_caller_set_under_wire_keys() -> None:
    seen: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        assert request.headers["Authorization"] == "Bearer k"
        return httpx.Response(200, json={"request_id": "r9"})

    handle = _mock_client(httpx.MockTransport(handler)).submit(INPAINT, {**GOOD, "steps": 7})
    assert handle.request_id == "r9"
    assert seen == [
        {
            "99_text": "p",
            "110_image": "https://e.com/a.png",
            "112_image": "https://e.com/b.png",
            "96_steps": 7,
        }
    ]


def test_read_timeout_on_get_becomes_timeout_error_after_retries() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    from runcomfy_client import APITimeoutError

    with pytest.raises(APITimeoutError, match="unreachable for 60 s"):
        _mock_client(httpx.MockTransport(handler)).status("r1")


def test_connect_error_is_connection_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(APIConnectionError):
        _mock_client(httpx.MockTransport(handler)).status("r1")


# -- download naming -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://cdn.test/a/b/video.mp4?sig=1", "video.mp4"),
        ("https://cdn.test/..%2F..%2Fetc%2Fpasswd", "etc_passwd"),
        ("https://cdn.test/%2e%2e", "output"),
        ("https://cdn.test/", "output"),
        ("https://cdn.test/x/..\\..\\evil.sh", "evil.sh"),
    ],
)
def test_safe_names_stay_in_the_folder(url: str, name: str) -> None:
    assert safe_name(url).endswith(name)
    assert "/" not in safe_name(url)


def test_targets_never_overwrite_unless_asked(tmp_path: Path) -> None:
    (tmp_path / "out.mp4").write_bytes(b"old")
    urls = ["https://c.test/out.mp4", "https://d.test/out.mp4"]
    assert [p.name for p in plan_targets(urls, tmp_path)] == ["out-2.mp4", "out-3.mp4"]
    assert [p.name for p in plan_targets(urls, tmp_path, overwrite=True)] == [
        "out.mp4",
        "out-2.mp4",
    ]
    assert all(p.parent == tmp_path.resolve() for p in plan_targets(urls, tmp_path))
