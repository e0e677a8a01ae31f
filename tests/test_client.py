"""The executor against the emulator, over real sockets."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runcomfy_client import (
    APIConnectionError,
    AsyncClient,
    AuthenticationError,
    Client,
    Completed,
    ConfigurationError,
    DeadlineExceededError,
    InProgress,
    InputValidationError,
    JobFailedError,
    NotFoundError,
    PollingPolicy,
    PollingSettings,
    Queued,
    RetryPolicy,
    RunComfyError,
    SubmissionUncertainError,
)
from runcomfy_client.emulator import Emulator

from .conftest import INPAINT, idle, png_bytes, wait_for

FAST_POLL = PollingPolicy(PollingSettings.with_interval(0.02), learn=False)
FAST_RETRY = RetryPolicy(max_retries=6, backoff_base=0.01, backoff_max=0.05, retry_after_max=0.05)


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(
        workers=2, job_seconds=0.02, render=False, retry_after=1, slow_seconds=0.2
    ) as emulator:
        yield emulator


@pytest.fixture
def client(emu: Emulator) -> Iterator[Client]:
    emu.set_faults([])
    idle(emu)
    with Client(
        base_url=emu.base_url, api_key=emu.api_key, polling=FAST_POLL, retry=FAST_RETRY
    ) as c:
        yield c


@pytest.fixture(scope="module")
def url(emu: Emulator) -> str:
    return emu.upload(png_bytes(), "in.png")


_seed = iter(range(10_000, 99_999))


def inputs(url: str, **extra: Any) -> dict[str, Any]:
    # A fresh seed per job, so the emulator's duplicate counter only counts real duplicates.
    return {"prompt": "a cat", "start_image": url, "end_image": url, "seed": next(_seed), **extra}


def test_run_then_download(client: Client, url: str, tmp_path: Path, emu: Emulator) -> None:
    before = emu.stats()
    result = client.run(INPAINT, inputs(url))
    assert result.status == "completed"
    assert result.video is not None
    assert result.urls == [result.video]
    files = result.download(tmp_path)
    assert [f.name for f in files] == ["output.mp4"]
    assert files[0].stat().st_size > 100
    after = emu.stats()
    assert after["jobs"] - before["jobs"] == 1
    assert after["duplicate_payloads"] == before["duplicate_payloads"]


async def test_async_run_then_download(emu: Emulator, url: str, tmp_path: Path) -> None:
    async with AsyncClient(base_url=emu.base_url, api_key=emu.api_key, polling=FAST_POLL) as client:
        seen: list[str] = []
        result = await client.run(
            INPAINT, inputs(url), on_status=lambda s: seen.append(s.status), download_to=tmp_path
        )
        assert seen[-1] == "completed"
        assert result.files[0].parent == tmp_path.resolve()
        again = await result.download(tmp_path)
        assert again[0].name == "output-2.mp4"


def test_statuses_are_typed_and_queue_position_reported(
    client: Client, emu: Emulator, url: str
) -> None:
    # The test moves the job: queued behind two others, then running, then done.
    emu.hold()
    ahead = [client.submit(INPAINT, inputs(url)) for _ in range(2)]
    watched = client.submit(INPAINT, inputs(url))
    seen = []
    for status in watched.iter_status():
        seen.append(status)
        if isinstance(status, Queued) and ahead:
            assert status.position == 2
            for handle in ahead:  # out of the way, still queued: the watched job runs next
                assert handle.cancel().cancelled
            ahead = []
            emu.release("queued")
        elif isinstance(status, InProgress):
            emu.release()
    assert isinstance(seen[0], Queued)
    assert any(isinstance(s, InProgress) for s in seen)
    assert isinstance(seen[-1], Completed)


def test_invalid_input_sends_nothing(client: Client, emu: Emulator, url: str) -> None:
    before = emu.stats()["requests"]["submit"]
    with pytest.raises(InputValidationError) as info:
        client.submit(INPAINT, {"prompt": "x", "start_image": "./a.png", "steps": 4})
    assert {p.key for p in info.value.problems} == {"110_image", "112_image", "96_steps"}
    assert emu.stats()["requests"]["submit"] == before


def test_cancel_queued_and_running(client: Client, emu: Emulator, url: str) -> None:
    emu.hold("running")  # the two workers keep the first two jobs running; the third waits
    handles = [client.submit(INPAINT, inputs(url)) for _ in range(3)]
    wait_for(lambda: isinstance(handles[0].status(), InProgress))
    assert handles[0].cancel().outcome == "not_cancellable"
    queued = handles[2]
    outcome = queued.cancel()
    assert outcome.cancelled
    assert queued.status().status == "cancelled"
    with pytest.raises(RunComfyError, match="was cancelled"):
        queued.wait()
    emu.release()
    handles[0].wait()
    handles[1].wait()


def test_reattach_from_request_id(client: Client, emu: Emulator, url: str) -> None:
    request_id = client.submit(INPAINT, inputs(url)).request_id
    with Client(base_url=emu.base_url, api_key=emu.api_key, polling=FAST_POLL) as other:
        result = other.attach(request_id).wait()
    assert result.request_id == request_id
    assert result.status == "completed"


def test_deadline_cancels_a_queued_job(emu: Emulator, url: str) -> None:
    with Emulator(workers=1, job_seconds=0, render=False) as slow:
        slow.hold("running")  # the first job runs until the test ends; the others stay queued
        image = slow.upload(png_bytes(), "a.png")
        with Client(base_url=slow.base_url, api_key=slow.api_key, polling=FAST_POLL) as client:
            first = client.submit(INPAINT, inputs(image))
            second = client.submit(INPAINT, inputs(image))
            with pytest.raises(DeadlineExceededError) as info:
                second.wait(timeout=0.3)
            assert info.value.cancelled
            assert info.value.request_id == second.request_id
            assert "has been cancelled" in str(info.value)
            assert second.status().status == "cancelled"
            wait_for(lambda: isinstance(first.status(), InProgress))
            with pytest.raises(DeadlineExceededError) as running:
                first.wait(timeout=0.2)
            assert not running.value.cancelled
            assert first.request_id in str(running.value)
            assert "keeps running" in str(running.value)
            third = client.submit(INPAINT, inputs(image))
            with pytest.raises(DeadlineExceededError) as kept:
                third.wait(timeout=0.2, cancel_on_timeout=False)
            assert not kept.value.cancelled
            assert third.status().status == "in_queue"


def test_failed_job_raises_with_server_error(client: Client, emu: Emulator) -> None:
    missing = f"{emu.base_url}/_emulator/uploads/x--gone.png"
    with pytest.raises(JobFailedError) as info:
        client.run(INPAINT, inputs(missing))
    assert "cannot fetch input" in str(info.value)
    assert info.value.request_id


def test_wrong_key_is_authentication_error(emu: Emulator, url: str) -> None:
    with (
        Client(base_url=emu.base_url, api_key="wrong-key-123") as client,
        pytest.raises(AuthenticationError) as info,
    ):
        client.submit(INPAINT, inputs(url))
    assert (info.value.status_code, info.value.error_code) == (401, 400004)
    assert "wrong-key-123" not in str(info.value)


def test_missing_key_fails_before_sending(
    emu: Emulator, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUNCOMFY_API_KEY", raising=False)
    before = emu.stats()["submissions"]
    with (
        Client(base_url=emu.base_url) as client,
        pytest.raises(AuthenticationError, match="RUNCOMFY_API_KEY"),
    ):
        client.submit(INPAINT, inputs(url))
    assert emu.stats()["submissions"] == before


def test_unknown_request_is_not_found_with_id(client: Client) -> None:
    with pytest.raises(NotFoundError) as info:
        client.status("no-such-request")
    assert info.value.request_id == "no-such-request"
    assert info.value.error_code == 404001


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, emu: Emulator) -> None:
    monkeypatch.setenv("RUNCOMFY_API_KEY", emu.api_key)
    monkeypatch.setenv("RUNCOMFY_BASE_URL", emu.base_url + "/")
    with Client() as client:
        assert client.base_url == emu.base_url
        with pytest.raises(NotFoundError):
            client.status("x")


@pytest.mark.parametrize(
    "base", ["http://api.example.com", "http://10.0.0.5:8000", "ftp://localhost"]
)
def test_plain_http_refused_off_loopback(base: str) -> None:
    with pytest.raises(ConfigurationError):
        Client(base_url=base, api_key="k")


@pytest.mark.parametrize(
    "base", ["http://127.0.0.1:1", "http://localhost:1", "http://[::1]:1", "https://x.example"]
)
def test_loopback_and_https_accepted(base: str) -> None:
    Client(base_url=base, api_key="k").close()


def test_key_never_shown(emu: Emulator, url: str, caplog: pytest.LogCaptureFixture) -> None:
    secret = emu.api_key
    caplog.set_level(logging.DEBUG)
    emu.set_faults(["server_error:status=@1", "rate_limit:result=@1"])
    with Client(
        base_url=emu.base_url, api_key=secret, polling=FAST_POLL, retry=FAST_RETRY
    ) as client:
        handle = client.submit(INPAINT, inputs(url))
        result = handle.wait()
        texts = [repr(client), str(client), repr(handle), repr(result)]
    with (
        Client(base_url=emu.base_url, api_key=secret + "x") as bad,
        pytest.raises(AuthenticationError) as info,
    ):
        bad.status("x")
    texts += [str(info.value), repr(info.value), caplog.text]
    assert "(attempt 2;" in caplog.text
    for text in texts:
        assert secret not in text


# -- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        "rate_limit=0.3",
        "server_error=0.3",
        "drop:status,result,cancel=0.3",
        "slow=0.3",
        "error_200=0.3",
        "truncate=0.5",
    ],
)
def test_each_fault_kind_ends_in_a_correct_result(
    client: Client, emu: Emulator, url: str, tmp_path: Path, fault: str
) -> None:
    before = emu.stats()
    emu.set_faults([fault])
    files: list[Path] = []
    for _ in range(3):
        try:
            result = client.run(INPAINT, inputs(url))
        except RunComfyError as exc:
            # Only a submit hit before processing may fail, and it must say so clearly.
            assert fault.startswith(("server_error", "error_200")), (fault, exc)
            continue
        files += result.download(tmp_path)
    emu.set_faults([])
    after = emu.stats()
    assert after["duplicate_payloads"] == before["duplicate_payloads"]
    assert not list(tmp_path.glob(".*.part"))
    for path in files:
        assert path.read_bytes()[4:8] == b"ftyp"


def test_truncated_download_resumes_with_range(
    client: Client, emu: Emulator, url: str, tmp_path: Path
) -> None:
    result = client.run(INPAINT, inputs(url))
    whole = Client(base_url=emu.base_url, api_key=emu.api_key)._http.get(result.video or "").content
    emu.set_faults(["truncate=@1,2"])
    progress: list[int] = []
    [path] = result.download(tmp_path, on_progress=lambda p: progress.append(p.received))
    assert path.read_bytes() == whole
    assert progress[-1] == len(whole)
    assert emu.stats()["requests"]["download"] >= 3


def test_lost_submit_response_is_reported_never_resubmitted(
    client: Client, emu: Emulator, url: str
) -> None:
    before = emu.stats()
    emu.set_faults(["lost_response=@1"])
    with pytest.raises(SubmissionUncertainError, match="may have been created"):
        client.submit(INPAINT, inputs(url))
    after = emu.stats()
    assert after["jobs"] - before["jobs"] == 1
    assert after["submissions"] - before["submissions"] == 1


def test_rate_limited_submit_is_retried_once_created(
    client: Client, emu: Emulator, url: str
) -> None:
    before = emu.stats()
    emu.set_faults(["rate_limit:submit=@1,2"])
    client.submit(INPAINT, inputs(url)).wait()
    after = emu.stats()
    assert after["submissions"] - before["submissions"] == 3
    assert after["jobs"] - before["jobs"] == 1


def test_retry_after_is_honoured(emu: Emulator, url: str) -> None:
    emu.set_faults(["rate_limit:status=@1"])
    policy = RetryPolicy(max_retries=2, backoff_base=0.01, retry_after_max=5)
    with Client(base_url=emu.base_url, api_key=emu.api_key, retry=policy) as client:
        started = time.monotonic()
        with pytest.raises(NotFoundError):
            client.status("nothing")
        assert time.monotonic() - started >= 0.9


def test_connection_refused_on_loopback_fails_at_once_and_says_where(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("RUNCOMFY_BASE_URL", f"http://127.0.0.1:{port}")
    with Client(api_key="k") as client:
        started = time.monotonic()
        with pytest.raises(APIConnectionError) as status:
            client.status("x")
        with pytest.raises(APIConnectionError) as submit:
            client.submit(
                INPAINT,
                {
                    "prompt": "p",
                    "start_image": "https://e.com/a.png",
                    "end_image": "https://e.com/b.png",
                },
            )
        assert time.monotonic() - started < 5  # no retries: nothing listens there
    for error in (status.value, submit.value):
        text = str(error)
        assert f"127.0.0.1:{port} (from RUNCOMFY_BASE_URL)" in text
        assert "is the emulator running" in text
    assert status.value.request_id == "x"


def test_https_to_the_emulator_says_tls_to_a_plain_http_server(emu: Emulator) -> None:
    url = emu.base_url.replace("http://", "https://")
    with (
        Client(base_url=url, api_key=emu.api_key) as client,
        pytest.raises(APIConnectionError, match="TLS to a plain-http server") as info,
    ):
        client.status("x")
    assert f"use {emu.base_url}" in str(info.value)


@pytest.mark.parametrize(
    "base",
    [
        "https://model-api.runcomfy.net/v1",
        "https://model-api.runcomfy.net/v1/",
        "http://127.0.0.1:8000/v1/models",
        "https://model-api.runcomfy.net/?x=1",
    ],
)
def test_a_base_url_with_an_api_path_is_refused_with_the_fix(base: str) -> None:
    with pytest.raises(ConfigurationError, match="without /v1") as info:
        Client(base_url=base, api_key="k")
    root = base.split("/v1", maxsplit=1)[0].split("/?", maxsplit=1)[0]
    assert f"e.g. {root}" in str(info.value)


def test_a_base_url_behind_a_proxy_prefix_is_kept() -> None:
    with Client(base_url="https://gateway.example/runcomfy/", api_key="k") as client:
        assert client.base_url == "https://gateway.example/runcomfy"


def test_mixed_faults_end_in_results_or_clear_errors(
    emu: Emulator, url: str, tmp_path: Path
) -> None:
    kinds = ["rate_limit", "server_error", "drop", "lost_response", "slow", "truncate", "error_200"]
    before = emu.stats()
    emu.set_faults([f"{kind}=0.15" for kind in kinds])
    outcomes: list[str] = []
    try:
        with Client(
            base_url=emu.base_url, api_key=emu.api_key, polling=FAST_POLL, retry=FAST_RETRY
        ) as client:
            for _ in range(8):
                try:
                    result = client.run(INPAINT, inputs(url), timeout=30)
                    for path in result.download(tmp_path):
                        assert path.read_bytes()[4:8] == b"ftyp"
                    outcomes.append("ok")
                except RunComfyError as exc:
                    outcomes.append(f"{type(exc).__name__}: {exc}")
    finally:
        emu.set_faults([])
    after = emu.stats()
    assert after["duplicate_payloads"] == before["duplicate_payloads"]
    assert "ok" in outcomes
    assert not list(tmp_path.glob(".*.part"))
