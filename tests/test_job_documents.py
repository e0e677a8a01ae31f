"""Failed jobs through the handle, the one JSON document per job, and hostile server text.

Failed jobs run on a real emulator (an input it cannot fetch fails the job, as the real service
does); answers no honest server gives come from a scripted server on loopback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from runcomfy_client import (
    AsyncClient,
    Client,
    ErrorInfo,
    Failed,
    JobError,
    JobFailedError,
    PollingPolicy,
    Result,
    job_document,
)
from runcomfy_client._polling import PollingSettings
from runcomfy_client.cli import cli
from runcomfy_client.emulator import Emulator

from .conftest import FUSIONX, png_bytes
from .hostile_http import HostileServer, json_answer

JOB_KEYS = {"request_id", "status", "queue_position", "output", "files", "error", "cost"}
CANNOT_RUN = 500101  # the emulator's error code for a job whose inputs cannot be fetched


def fast() -> PollingPolicy:
    return PollingPolicy(PollingSettings.with_interval(0.02))


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(workers=2, job_seconds=0.05, render=False) as emulator:
        yield emulator


@pytest.fixture
def client(emu: Emulator) -> Iterator[Client]:
    with Client(base_url=emu.base_url, api_key=emu.api_key, polling=fast()) as c:
        yield c


def failing_inputs(emu: Emulator) -> dict[str, str]:
    return {"prompt": "p", "image": f"{emu.base_url}/_emulator/uploads/not-there.png"}


def env_for(emu: Emulator) -> dict[str, str]:
    return {
        "RUNCOMFY_BASE_URL": emu.base_url,
        "RUNCOMFY_API_KEY": emu.api_key,
        "RUNCOMFY_API_KEY_FILE": "",
        "RUNCOMFY_UPLOAD_TO": "",
        "RUNCOMFY_POLL_INTERVAL": "0.02",
    }


def run(args: list[str], env: dict[str, str]) -> Any:
    return CliRunner().invoke(cli, args, env=env)


# -- failed jobs through the handle ----------------------------------------------------------


def test_wait_and_result_raise_job_failed_with_the_servers_code_and_message(
    client: Client, emu: Emulator
) -> None:
    handle = client.submit(FUSIONX, failing_inputs(emu))
    with pytest.raises(JobFailedError) as waited:
        handle.wait(timeout=60)
    error = waited.value
    assert error.request_id == handle.request_id
    assert isinstance(error.error, ErrorInfo)
    assert error.error_code == CANNOT_RUN
    assert error.error_message is not None and "cannot fetch input" in error.error_message
    assert "{" not in str(error), "a dict's repr in the message"
    assert str(error).endswith(f"(error_code {CANNOT_RUN})")
    with pytest.raises(JobFailedError) as fetched:
        handle.result()
    assert fetched.value.error == error.error


def test_a_failed_status_carries_the_reason(client: Client, emu: Emulator) -> None:
    handle = client.submit(FUSIONX, failing_inputs(emu))
    seen = list(handle.iter_status(timeout=60))
    last = seen[-1]
    assert isinstance(last, Failed)
    assert last.error is not None and last.error.code == CANNOT_RUN
    again = client.status(handle.request_id)
    assert isinstance(again, Failed) and again.error == last.error


def test_download_of_a_failed_result_says_it_failed(client: Client, tmp_path: Path) -> None:
    body = {
        "request_id": "r1",
        "status": "failed",
        "error": {"error_code": 7, "error_message": "boom"},
    }
    with pytest.raises(JobFailedError, match=r"job r1 failed: boom \(error_code 7\)"):
        client.download(Result.from_body(body, "r1"), tmp_path)
    running = Result.from_body({"request_id": "r2", "status": "in_progress"}, "r2")
    with pytest.raises(JobError, match=r"has not finished .*wait for it first"):
        client.download(running, tmp_path)
    assert not any(tmp_path.iterdir())


async def test_the_async_client_raises_the_same(emu: Emulator) -> None:
    async with AsyncClient(base_url=emu.base_url, api_key=emu.api_key, polling=fast()) as c:
        handle = await c.submit(FUSIONX, failing_inputs(emu))
        with pytest.raises(JobFailedError) as waited:
            await handle.wait(timeout=60)
        assert waited.value.error_code == CANNOT_RUN
        with pytest.raises(JobFailedError):
            await handle.result()


def test_a_failure_without_a_reason_says_so() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"request_id": "r1", "status": "failed"})

    http = httpx.Client(transport=httpx.MockTransport(answer))
    with Client(api_key="k", base_url="http://127.0.0.1:9", http_client=http) as c:
        status = c.status("r1")
        assert isinstance(status, Failed) and status.error is None
        with pytest.raises(JobFailedError, match="failed; the server gave no reason") as caught:
            c.wait("r1")
    assert caught.value.error is None and caught.value.error_code is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"error_code": 400002, "error_message": "no balance"}, ErrorInfo(400002, "no balance")),
        ({"message": "gateway timeout"}, ErrorInfo(None, "gateway timeout")),
        ("it broke", ErrorInfo(None, "it broke")),
        (
            [{"errorCode": 500001, "error": "node 7 crashed", "debugInfo": ""}],
            ErrorInfo(500001, "node 7 crashed"),
        ),
        ({"error_code": 1, "error_message": "m", "detail": {"k": 1}}, ErrorInfo(1, "m", {"k": 1})),
        (None, None),
        ({}, None),
        ("", None),
    ],
)
def test_error_info_reads_every_shape_of_server_error(value: Any, expected: Any) -> None:
    assert ErrorInfo.from_body(value) == expected


def test_error_info_without_a_message_keeps_what_was_said() -> None:
    info = ErrorInfo.from_body({"error_code": 9, "why": "unknown"})
    assert info is not None and info.code == 9 and '"why": "unknown"' in info.message


# -- one JSON document per job ----------------------------------------------------------------


def test_every_json_document_about_a_failed_job_has_the_same_keys(emu: Emulator) -> None:
    env = env_for(emu)
    ran = run(
        ["run", FUSIONX, "--prompt", "p", "--image", failing_inputs(emu)["image"], "--json"], env
    )
    assert ran.exit_code == 1, ran.stderr
    document = json.loads(ran.stdout)
    assert set(document) == JOB_KEYS
    assert document["status"] == "failed"
    assert document["error"]["code"] == CANNOT_RUN
    assert set(document["error"]) == {"code", "message", "detail"}
    request_id = document["request_id"]
    for verb, code in (("wait", 1), ("result", 1), ("status", 0)):
        answer = run([verb, request_id, "--json"], env)
        assert answer.exit_code == code, (verb, answer.stderr)
        again = json.loads(answer.stdout)
        assert set(again) == JOB_KEYS, verb
        assert (again["status"], again["error"]) == ("failed", document["error"]), verb
    plain = run(["result", request_id], env)
    assert plain.exit_code == 1
    assert plain.stdout.startswith(f"{request_id}  failed: cannot fetch input")


def test_completed_cancelled_and_batch_documents_share_the_shape(
    emu: Emulator, tmp_path: Path
) -> None:
    env = env_for(emu)
    image = emu.upload(png_bytes(), "frame.png")
    done = run(
        ["run", FUSIONX, "--prompt", "p", "--image", image, "--out", str(tmp_path), "--json"], env
    )
    assert done.exit_code == 0, done.stderr
    document = json.loads(done.stdout)
    assert set(document) == JOB_KEYS and document["error"] is None
    assert document["output"]["video"] and len(document["files"]) == 1
    cancel = run(["cancel", document["request_id"], "--json"], env)
    assert cancel.exit_code == 1  # it has already ended
    cancelled = json.loads(cancel.stdout)
    assert set(cancelled) == {*JOB_KEYS, "outcome"}
    assert (cancelled["status"], cancelled["outcome"]) == ("completed", "not_cancellable")
    lines = tmp_path / "jobs.jsonl"
    lines.write_text(json.dumps({"model": FUSIONX, "prompt": "p", "image": image}) + "\n")
    batch = run(["batch", str(lines), "--out", str(tmp_path / "batch"), "--json"], env)
    assert batch.exit_code == 0, batch.stderr
    [line] = json.loads(batch.stdout)["lines"]
    assert set(line) == {*JOB_KEYS, "line", "name", "state"}
    assert (line["state"], line["status"]) == ("downloaded", "completed")


def test_job_document_is_the_one_shape() -> None:
    assert set(job_document("r", "in_queue", queue_position=2)) == JOB_KEYS
    result = Result.from_body(
        {
            "request_id": "r",
            "status": "succeeded",
            "output": {"image": "https://x/y.png"},
            "cost": 0.25,
        },
        "r",
    )
    assert result.as_dict() == {
        "request_id": "r",
        "status": "completed",
        "queue_position": None,
        "output": {"image": "https://x/y.png"},
        "files": [],
        "error": None,
        "cost": 0.25,
    }


# -- server text never drives the terminal ----------------------------------------------------

HOSTILE = "boom\x1b[2J\x1b]0;owned\x07\r\x9b31m\u202eevil"


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    with HostileServer() as server:
        failed = {"request_id": "job-9", "status": "failed"}
        result = {**failed, "error": {"error_code": 1, "error_message": HOSTILE}}
        server.routes["/v1/requests/job-9/status"] = lambda r: json_answer(failed)
        server.routes["/v1/requests/job-9/result"] = lambda r: json_answer(result)
        odd = {"request_id": "job-8", "status": f"in_progress{HOSTILE}"}
        server.routes["/v1/requests/job-8/status"] = lambda r: json_answer(odd)
        server.routes["/v1/requests/job-7/status"] = lambda r: json_answer(
            {"error_code": 400001, "error_message": HOSTILE}, status=400
        )
        yield server


def _clean(text: str) -> None:
    for raw in ("\x1b", "\x07", "\r", "\x9b", "\u202e"):
        assert raw not in text, f"{raw!r} reached the terminal"


@pytest.mark.parametrize(
    "args",
    [
        ["status", "job-9"],
        ["wait", "job-9"],
        ["result", "job-9"],
        ["status", "job-8"],
        ["status", "job-7"],
        ["wait", "job-9", "--json"],
        ["result", "job-9", "--json"],
    ],
)
def test_control_characters_from_the_server_are_shown_not_obeyed(
    hostile: HostileServer, args: list[str]
) -> None:
    env = {
        "RUNCOMFY_BASE_URL": hostile.url(""),
        "RUNCOMFY_API_KEY": "k",
        "RUNCOMFY_API_KEY_FILE": "",
    }
    answer = run(args, env)
    _clean(answer.stdout)
    _clean(answer.stderr)
    if "--json" in args:
        assert json.loads(answer.stdout)["error"]["message"] == HOSTILE  # intact, escaped
    else:
        shown = (answer.stdout + answer.stderr).lower()  # a status is read lowercased
        assert "\\x1b[2j" in shown  # visible as an escape


def test_a_batch_table_shows_server_text_literally(tmp_path: Path) -> None:
    message = "[bold red]owned[/] \x1b[31mred"
    with HostileServer() as server:
        server.routes[f"/v1/models/{FUSIONX}"] = lambda r: json_answer({"request_id": "job-5"})
        failed = {"request_id": "job-5", "status": "failed"}
        server.routes["/v1/requests/job-5/status"] = lambda r: json_answer(failed)
        server.routes["/v1/requests/job-5/result"] = lambda r: json_answer(
            {**failed, "error": {"error_code": 3, "error_message": message}}
        )
        lines = tmp_path / "jobs.jsonl"
        lines.write_text(json.dumps({"prompt": "p", "image": "https://example.com/a.png"}) + "\n")
        env = {
            "RUNCOMFY_BASE_URL": server.url(""),
            "RUNCOMFY_API_KEY": "k",
            "RUNCOMFY_API_KEY_FILE": "",
            "RUNCOMFY_UPLOAD_TO": "",
            "RUNCOMFY_POLL_INTERVAL": "0.02",
        }
        args = ["batch", str(lines), "--out", str(tmp_path / "out"), "--model", FUSIONX]
        answer = run(args, env)
    assert answer.exit_code == 1, answer.output
    _clean(answer.stdout + answer.stderr)
    assert "[bold red]owned[/]" in answer.stdout  # shown, not read as markup
    assert "\\x1b[31mred" in answer.stdout
