"""Every answer the real API can give, scripted, on a virtual clock: no hang, no abandoned job,
no double payment (issue 15)."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from runcomfy_client import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadRequestError,
    Cancelled,
    CancelOutcome,
    Completed,
    DeadlineExceededError,
    Failed,
    InProgress,
    NotFoundError,
    PermissionDeniedError,
    Queued,
    RetryPolicy,
    RunComfyError,
    ServerError,
    SubmissionUncertainError,
)
from runcomfy_client._protocol import payload_fingerprint
from runcomfy_client._types import UnknownStatus, parse_status
from runcomfy_client.batch import BatchLine

from .conftest import INPAINT
from .scripted import Script, VirtualClock, ok, raw, scripted, scripted_async

GOOD = {"prompt": "p", "start_image": "https://e.com/a.png", "end_image": "https://e.com/b.png"}
WIRE = {"99_text": "p", "110_image": "https://e.com/a.png", "112_image": "https://e.com/b.png"}
DONE = {
    "request_id": "r1",
    "status": "completed",
    "output": {"video": "https://cdn.test/r1/out.mp4"},
    "error": None,
}


def job_script(
    clock: VirtualClock,
    statuses: list[dict[str, Any]],
    final: dict[str, Any] | None = None,
    **overrides: Any,
) -> Script:
    """A job whose status answers follow ``statuses`` (the last one repeats)."""
    seen = {"status": 0}

    def answer(kind: str, request: httpx.Request, now: float) -> Any:
        if kind in overrides:
            return overrides[kind](request, now)
        if kind == "submit":
            return ok({"request_id": "r1"})
        if kind == "status":
            body = statuses[min(seen["status"], len(statuses) - 1)]
            seen["status"] += 1
            return ok({"request_id": "r1", **body})
        if kind == "result":
            return ok(final or DONE)
        if kind == "cancel":
            return ok({"request_id": "r1", "status": "in_queue", "outcome": "cancelled"})
        raise AssertionError(kind)

    return Script(clock, answer)


# -- states: one table of spellings -----------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "cls", "state"),
    [
        ("in_queue", Queued, "in_queue"),
        ("queued", Queued, "in_queue"),
        ("IN_QUEUE", Queued, "in_queue"),
        ("in_progress", InProgress, "in_progress"),
        ("running", InProgress, "in_progress"),
        ("completed", Completed, "completed"),
        ("succeeded", Completed, "completed"),
        ("success", Completed, "completed"),
        ("failed", Failed, "failed"),
        ("error", Failed, "failed"),
        ("cancelled", Cancelled, "cancelled"),
        ("canceled", Cancelled, "cancelled"),
    ],
)
def test_every_status_spelling_means_one_state(spelling: str, cls: type, state: str) -> None:
    status = parse_status({"status": spelling}, "r1")
    assert type(status) is cls
    assert status.status == state


@pytest.mark.parametrize("text", ["finished_ok", "", None, 7, "x" * 5000])
def test_an_unknown_status_is_typed_with_the_servers_text(text: Any) -> None:
    status = parse_status({"status": text}, "r1")
    assert isinstance(status, UnknownStatus)
    assert not status.done
    assert len(status.status) <= 100


def test_succeeded_ends_a_wait_and_its_result_downloads() -> None:
    clock = VirtualClock()
    script = job_script(
        clock,
        [{"status": "queued"}, {"status": "running"}, {"status": "succeeded"}],
        {**DONE, "status": "succeeded"},
    )
    with scripted(script) as client:
        seen = list(client.attach("r1").iter_status())
        result = client.wait("r1")
    assert [type(s) for s in seen] == [Queued, InProgress, Completed]
    assert result.status == "completed"
    assert result.urls == ["https://cdn.test/r1/out.mp4"]


def test_an_unknown_status_asks_result_reports_once_and_ends_with_its_output(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = VirtualClock()
    results = iter([{"request_id": "r1", "status": "finished_ok", "output": None}] * 3)

    def result(request: httpx.Request, now: float) -> httpx.Response:
        return ok(next(results, {**DONE, "status": "finished_ok"}))

    script = job_script(clock, [{"status": "finished_ok"}], result=result)
    caplog.set_level(logging.WARNING, logger="runcomfy_client")
    with scripted(script) as client:
        seen = list(client.attach("r1").iter_status())
        final = client.wait("r1")
    assert isinstance(seen[0], UnknownStatus) and seen[0].status == "finished_ok"
    assert isinstance(seen[-1], Completed)
    assert sum(1 for s in seen if isinstance(s, UnknownStatus)) == 1
    assert script.count("result") >= 4  # asked while unknown, not only at the end
    assert caplog.text.count("'finished_ok'") == 2  # once per wait, not once per poll
    assert final.status == "completed" and final.urls


def test_an_unknown_status_with_an_error_in_its_result_ends_as_failed() -> None:
    clock = VirtualClock()
    failed = {"request_id": "r1", "status": "kaput", "error": {"error_message": "GPU fell over"}}
    script = job_script(clock, [{"status": "kaput"}], failed)
    with scripted(script) as client:
        seen = list(client.attach("r1").iter_status())
    assert isinstance(seen[-1], Failed)
    assert clock.now < 10


# -- errors only when they are errors ---------------------------------------------------------


def test_null_error_fields_on_a_success_are_not_an_error() -> None:
    clock = VirtualClock()

    def answer(kind: str, request: httpx.Request, now: float) -> Any:
        nulls = {"error_code": None, "error_message": None, "error": None}
        if kind == "submit":
            return ok({"request_id": "r1", **nulls})
        if kind == "status":
            return ok({"request_id": "r1", "status": "completed", **nulls})
        return ok({**DONE, **nulls})

    with scripted(Script(clock, answer)) as client:
        handle = client.submit(INPAINT, GOOD)
        assert handle.request_id == "r1"
        assert handle.wait().status == "completed"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, {"error_code": 400004, "error_message": "bad token"}),
        (200, {"error": "Unauthorized"}),
        (401, {"message": "Unauthorized"}),
    ],
)
def test_error_fields_with_a_value_are_an_error(status: int, body: dict[str, Any]) -> None:
    clock = VirtualClock()
    script = Script(clock, lambda kind, request, now: ok(body, status))
    with scripted(script) as client, pytest.raises(APIError) as info:
        client.status("r1")
    assert script.count("status") == 1  # permanent: not retried
    assert info.value.request_id == "r1"


def test_detail_is_kept_and_shown_field_by_field() -> None:
    clock = VirtualClock()
    detail = [
        {"loc": ["body", "99_text"], "msg": "field required", "type": "missing"},
        {"loc": ["body", "96_steps"], "msg": "must be >= 6", "type": "range"},
    ]
    body = {"error_code": 422001, "error_message": "invalid input", "detail": detail}
    script = Script(clock, lambda kind, request, now: ok(body, 422))
    with scripted(script) as client, pytest.raises(BadRequestError) as info:
        client.submit(INPAINT, GOOD)
    assert info.value.detail == detail
    text = str(info.value)
    assert "\n  - 99_text: field required" in text
    assert "\n  - 96_steps: must be >= 6" in text


@pytest.mark.parametrize(
    ("detail", "shown"),
    [
        ("the prompt is too long", ": the prompt is too long"),
        ({"seed": "must be an integer"}, "\n  - seed: must be an integer"),
    ],
)
def test_detail_as_text_or_object(detail: Any, shown: str) -> None:
    error = ServerError("it failed", detail=detail)
    assert str(error).endswith(shown)


# -- cancel -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        ({"outcome": "cancelled"}, "cancelled"),
        ({"outcome": "canceled"}, "cancelled"),
        ({"status": "cancelled"}, "cancelled"),
        ({"status": "canceled", "outcome": None}, "cancelled"),
        ({"outcome": "cancellation_requested", "status": "in_queue"}, "cancellation_requested"),
        ({"outcome": "not_cancellable", "status": "in_progress"}, "not_cancellable"),
    ],
)
def test_cancel_outcomes(body: dict[str, Any], outcome: str) -> None:
    parsed = CancelOutcome.from_body(body, "r1")
    assert parsed.outcome == outcome
    assert parsed.accepted == (outcome != "not_cancellable")


def test_a_requested_cancel_is_followed_until_the_job_ends() -> None:
    clock = VirtualClock()
    script = job_script(
        clock,
        [{"status": "in_queue"}, {"status": "in_queue"}, {"status": "canceled"}],
        cancel=lambda request, now: ok(
            {"request_id": "r1", "status": "in_queue", "outcome": "cancellation_requested"}
        ),
    )
    with scripted(script) as client:
        outcome = client.cancel("r1")
    assert outcome.cancelled
    assert script.count("status") == 3


def test_a_requested_cancel_that_loses_the_race_is_not_cancellable() -> None:
    clock = VirtualClock()
    script = job_script(
        clock,
        [{"status": "in_progress"}, {"status": "completed"}],
        cancel=lambda request, now: ok({"outcome": "cancellation_requested"}),
    )
    with scripted(script) as client:
        outcome = client.cancel("r1")
    assert outcome.outcome == "not_cancellable" and outcome.status == "completed"


def test_deadline_with_a_requested_cancel_never_says_it_keeps_running() -> None:
    clock = VirtualClock()
    script = job_script(
        clock,
        [{"status": "in_queue", "queue_position": 3}],
        cancel=lambda request, now: ok({"status": "in_queue", "outcome": "cancellation_requested"}),
    )
    with scripted(script) as client, pytest.raises(DeadlineExceededError) as info:
        client.wait("r1", timeout=20)
    assert not info.value.cancelled
    assert info.value.status == "cancellation requested"
    assert "keeps running" not in str(info.value)
    assert "cancellation was accepted" in str(info.value)


# -- never pay twice --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        ok({"message": "Service Unavailable"}, 503),
        ok({"message": "upstream"}, 500),
        ok({"message": "Bad Gateway"}, 502),
        ok({"message": "Gateway Timeout"}, 504),
        ok({"message": "Request Timeout"}, 408),
        ok({"error_code": 500001, "error_message": "internal"}, 200),
        raw(200, b'{"request_id": "r1", "sta'),
        ok({"status_url": "https://x"}),  # no request id
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("connection reset"),
    ],
    ids=lambda a: type(a).__name__ if isinstance(a, Exception) else str(a.status_code),
)
def test_a_submit_that_may_have_created_the_job_is_never_resent(answer: Any) -> None:
    clock = VirtualClock()
    script = Script(clock, lambda kind, request, now: answer)
    with scripted(script) as client, pytest.raises(SubmissionUncertainError) as info:
        client.submit(INPAINT, GOOD)
    assert script.kinds() == ["submit"]
    error = info.value
    assert error.model_id == INPAINT
    assert error.fingerprint == payload_fingerprint(INPAINT, WIRE)[:16]
    assert INPAINT in str(error) and error.fingerprint in str(error)
    assert "NOT resubmitted" in str(error) and "before submitting again" in str(error)


def test_the_fingerprint_is_the_batch_journals_digest() -> None:
    line = BatchLine(1, "a", INPAINT, WIRE)
    assert line.digest == payload_fingerprint(INPAINT, WIRE)


@pytest.mark.parametrize(
    "first",
    [
        ok({"error_code": 429001, "error_message": "slow down"}, 429, **{"Retry-After": "2"}),
        httpx.ConnectError("connection refused"),
        httpx.ConnectTimeout("no answer to SYN"),
    ],
    ids=["429", "ConnectError", "ConnectTimeout"],
)
def test_a_submit_that_certainly_created_nothing_is_retried(first: Any) -> None:
    clock = VirtualClock()
    answers = iter([first, ok({"request_id": "r1"})])
    script = Script(clock, lambda kind, request, now: next(answers))
    with scripted(script) as client:
        assert client.submit(INPAINT, GOOD).request_id == "r1"
    assert script.kinds() == ["submit", "submit"]


def test_a_refused_submit_is_raised_as_it_is() -> None:
    clock = VirtualClock()
    body = {"error_code": 400002, "error_message": "insufficient balance"}
    script = Script(clock, lambda kind, request, now: ok(body, 400))
    with scripted(script) as client, pytest.raises(Exception, match="insufficient balance"):
        client.submit(INPAINT, GOOD)
    assert script.kinds() == ["submit"]


# -- never abandon a paid job -----------------------------------------------------------------


def outage(until: float, kinds: tuple[str, ...] = ("status", "result")) -> Any:
    """Every request of ``kinds`` fails (5xx, drops, 429, timeouts in turn) until ``until``."""
    failures = [
        lambda r: ok({"message": "Bad Gateway"}, 502),
        lambda r: httpx.ReadError("connection reset by peer"),
        lambda r: ok({"error_code": 429001, "error_message": "slow"}, 429),
        lambda r: httpx.ReadTimeout("no answer"),
        lambda r: ok({"error_code": 500001, "error_message": "internal"}, 200),
        lambda r: raw(200, b"<html>maintenance</html>"),
        lambda r: httpx.ConnectError("connection refused"),
    ]
    counter = {"n": 0}

    def wrap(normal: Any) -> Any:
        def answer(request: httpx.Request, now: float) -> Any:
            if now < until:
                counter["n"] += 1
                return failures[counter["n"] % len(failures)](request)
            return normal(request, now)

        return answer

    return wrap


def test_a_job_is_followed_through_a_ten_minute_outage() -> None:
    clock = VirtualClock()
    down = outage(until=600)
    script = job_script(
        clock,
        [{"status": "completed"}],
        status=down(lambda r, now: ok({"request_id": "r1", "status": "completed"})),
        result=down(lambda r, now: ok(DONE)),
    )
    notices: list[str] = []
    with scripted(script) as client:
        client.retry_listeners.append(lambda notice: notices.append(str(notice)))
        result = client.wait("r1")
    assert result.status == "completed"
    assert clock.now >= 600
    assert max(clock.sleeps) <= RetryPolicy().backoff_max  # capped backoff, not a stall
    assert any("retrying status (API unreachable for 4" in n for n in notices), notices[:5]


def test_past_the_outage_budget_the_error_carries_the_request_id_and_how_to_reattach() -> None:
    clock = VirtualClock()
    down = outage(until=10_000)
    script = job_script(clock, [{}], status=down(lambda r, now: ok({})))
    with scripted(script, outage_budget=120) as client, pytest.raises(RunComfyError) as info:
        client.wait("r1")
    assert 120 <= clock.now <= 130
    text = str(info.value)
    assert info.value.request_id == "r1"  # type: ignore[attr-defined]
    assert "runcomfy-client wait r1" in text and "client.attach('r1')" in text
    assert "unreachable for 12" in text  # ~120 s


def test_the_default_outage_budget_is_fifteen_minutes() -> None:
    clock = VirtualClock()
    script = job_script(clock, [{}], status=lambda r, now: ok({"message": "down"}, 503))
    with scripted(script) as client, pytest.raises(ServerError, match="runcomfy-client wait r1"):
        client.status("r1")
    assert 900 <= clock.now <= 910


def test_with_a_deadline_the_outage_is_retried_until_the_deadline() -> None:
    clock = VirtualClock()
    down = outage(until=10_000)
    script = job_script(clock, [{}], status=down(lambda r, now: ok({})))
    with scripted(script) as client, pytest.raises(DeadlineExceededError) as info:
        client.wait("r1", timeout=60)
    assert 60 <= clock.now <= 61
    assert info.value.request_id == "r1" and info.value.status == "unknown"
    assert "runcomfy-client wait r1" in str(info.value)


@pytest.mark.parametrize(
    ("answer", "cls"),
    [
        (ok({"error_code": 400004, "error_message": "invalid token"}, 401), AuthenticationError),
        (
            ok({"error_code": 403001, "error_message": "permission denied"}, 403),
            PermissionDeniedError,
        ),
        (ok({"error_code": 404001, "error_message": "unknown request"}, 404), NotFoundError),
    ],
)
def test_permanent_answers_fail_at_once(answer: httpx.Response, cls: type[Exception]) -> None:
    clock = VirtualClock()
    script = job_script(clock, [{}], status=lambda r, now: answer)
    with scripted(script) as client, pytest.raises(cls):
        client.wait("r1")
    assert script.count("status") == 1 and clock.now == 0


def test_cancel_and_result_are_retried_through_an_outage_too() -> None:
    clock = VirtualClock()
    down = outage(until=300, kinds=("cancel", "result"))
    script = job_script(
        clock,
        [{"status": "in_queue"}],
        cancel=down(lambda r, now: ok({"outcome": "cancelled"})),
        result=down(lambda r, now: ok(DONE)),
    )
    with scripted(script) as client:
        assert client.cancel("r1").cancelled
        assert clock.now >= 300
        assert client.result("r1").status == "completed"


def test_retry_after_is_honoured_and_capped() -> None:
    clock = VirtualClock()
    answers = iter(
        [
            ok({"message": "busy"}, 503, **{"Retry-After": "7"}),
            ok({"message": "busy"}, 429, **{"Retry-After": "inf"}),
            ok({"message": "busy"}, 429, **{"Retry-After": "99999999"}),
            ok({"request_id": "r1", "status": "in_queue"}),
        ]
    )
    script = Script(clock, lambda kind, request, now: next(answers))
    with scripted(script) as client:
        client.status("r1")
    assert clock.sleeps == [7.0, 60.0, 60.0]


async def test_the_async_client_follows_a_job_through_an_outage() -> None:
    clock = VirtualClock()
    down = outage(until=400)
    script = job_script(
        clock,
        [{"status": "completed"}],
        status=down(lambda r, now: ok({"request_id": "r1", "status": "completed"})),
        result=down(lambda r, now: ok(DONE)),
    )
    async with scripted_async(script) as client:
        result = await client.wait("r1")
        assert result.status == "completed"
    assert clock.now >= 400


# -- timeouts ---------------------------------------------------------------------------------


def test_submit_waits_120_s_for_its_answer_and_status_30_s() -> None:
    clock = VirtualClock()
    script = job_script(clock, [{"status": "completed"}])
    with scripted(script) as client:
        client.submit(INPAINT, GOOD).status()
    timeouts = {kind: request.extensions["timeout"]["read"] for kind, _, request in script.requests}
    assert timeouts == {"submit": 120.0, "status": 30.0}


def test_timeouts_are_configurable() -> None:
    clock = VirtualClock()
    script = job_script(clock, [{"status": "completed"}])
    with scripted(script, timeout=5, submit_timeout=300) as client:
        client.submit(INPAINT, GOOD).status()
    timeouts = {kind: request.extensions["timeout"]["read"] for kind, _, request in script.requests}
    assert timeouts == {"submit": 300.0, "status": 5.0}


def test_a_connection_failure_names_host_port_and_the_setting_that_chose_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = VirtualClock()
    script = Script(
        clock, lambda kind, request, now: httpx.ConnectError("Name or service not known")
    )
    monkeypatch.setenv("RUNCOMFY_BASE_URL", "https://api.test:8443")
    with (
        scripted(script, base_url=None, max_retries=1) as client,
        pytest.raises(APIConnectionError) as info,
    ):
        client.fetch_model(INPAINT)
    assert "api.test:8443 (from RUNCOMFY_BASE_URL)" in str(info.value)
    assert "gave up after 2 attempts" in str(info.value)


# -- every wait has a cap (issue 16 item 2) ----------------------------------------------------


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("5", 5.0),
        ("inf", 60.0),
        ("Infinity", 60.0),
        ("1e999", 60.0),
        ("999999999", 60.0),
        ("-3", 0.0),
        ("nan", None),
        ("Fri, 31 Dec 9999 23:59:59 GMT", 60.0),
        ("x" * 10_000, None),
    ],
)
def test_retry_after_is_a_finite_capped_number_of_seconds(
    header: str, seconds: float | None
) -> None:
    from runcomfy_client._retry import parse_retry_after

    assert parse_retry_after(header, cap=60.0) == seconds


def test_the_batch_pause_on_new_submits_is_capped_and_announced() -> None:
    from runcomfy_client._throttle import AdaptiveLimit
    from runcomfy_client.cli._batch_cmd import _Counts

    now = [0.0]
    pauses: list[float] = []
    limit = AdaptiveLimit(8, clock=lambda: now[0], on_pause=pauses.append)
    for hostile in (float("inf"), float("nan"), 1e12):
        limit.on_response(429, hostile)
    assert pauses == [60.0]  # capped; the later ones do not extend it
    assert limit.pause_left() == 60.0
    assert not limit.can_start(submitting=True)
    assert "new submits paused 60 s (Retry-After)" in f"{_Counts({1: 'pending'}, limit)}"
    now[0] = 60.0
    assert limit.can_start(submitting=True)


def test_listeners_hear_a_capped_retry_after() -> None:
    clock = VirtualClock()
    answers = iter([ok({"message": "slow"}, 429, **{"Retry-After": "999999999"}), ok(DONE)])
    heard: list[tuple[int, float | None]] = []
    script = Script(clock, lambda kind, request, now: next(answers))
    with scripted(script) as client:
        client.response_listeners.append(lambda status, after: heard.append((status, after)))
        client.result("r1")
    assert heard == [(429, 60.0), (200, None)]
    assert clock.sleeps == [60.0]


def test_a_retry_notice_says_what_is_retried_and_why() -> None:
    from runcomfy_client._retry import RetryNotice

    assert str(RetryNotice("status", "r1", "HTTP 503", 40.2, 8.0)) == (
        "retrying status (API unreachable for 40 s: HTTP 503; next try in 8 s)"
    )
    assert str(RetryNotice("result", "r1", "HTTP 429", 0, 12, retry_after=True)) == (
        "retrying result after HTTP 429 (next try in 12 s (Retry-After))"
    )
