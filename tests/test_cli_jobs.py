"""The job verbs (status, wait, result, cancel) end to end against the emulator over sockets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from runcomfy_client import Client, job_document
from runcomfy_client.cli import cli
from runcomfy_client.emulator import Emulator

from .conftest import INPAINT, png_bytes


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(workers=1, job_seconds=0.01, render=False) as emu:
        yield emu


@pytest.fixture
def env(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.delenv("RUNCOMFY_API_KEY_FILE", raising=False)
    return {"RUNCOMFY_BASE_URL": emulator.base_url, "RUNCOMFY_API_KEY": emulator.api_key}


def submit(emulator: Emulator) -> str:
    image = emulator.upload(png_bytes(), "frame.png")
    with Client(base_url=emulator.base_url, api_key=emulator.api_key) as client:
        inputs = {"prompt": "p", "start_image": image, "end_image": image}
        return client.submit(INPAINT, inputs).request_id


def run(args: list[str], env: dict[str, str], stdin: str | None = None) -> object:
    return CliRunner().invoke(cli, args, env=env, input=stdin)


def test_wait_status_and_result_with_download(
    emulator: Emulator, env: dict[str, str], tmp_path: Path
) -> None:
    request_id = submit(emulator)
    waited = run(["wait", request_id], env)
    assert waited.exit_code == 0, waited.output
    assert "completed" in waited.stderr and waited.stdout.strip().endswith(".mp4")

    status = run(["status", request_id, "--json"], env)
    assert json.loads(status.stdout) == job_document(request_id, "completed")

    result = run(["result", request_id, "--out", str(tmp_path), "--json"], env)
    record = json.loads(result.stdout)
    assert record["status"] == "completed" and record["request_id"] == request_id
    assert [Path(p).parent for p in record["files"]] == [tmp_path]
    assert Path(record["files"][0]).stat().st_size > 0
    assert emulator.api_key not in result.output + result.stderr


def test_cancel_a_queued_job_then_a_finished_one() -> None:
    # Its own emulator, whose one worker is held on the first job: the second one stays queued
    # until the test lets the first one end, however slow the machine.
    with Emulator(workers=1, job_seconds=0, render=False) as emulator:
        emulator.hold("running")
        _cancel_a_queued_job_then_a_finished_one(
            emulator,
            {
                "RUNCOMFY_BASE_URL": emulator.base_url,
                "RUNCOMFY_API_KEY": emulator.api_key,
                "RUNCOMFY_API_KEY_FILE": "",
            },
        )


def _cancel_a_queued_job_then_a_finished_one(emulator: Emulator, env: dict[str, str]) -> None:
    running = submit(emulator)
    queued = submit(emulator)  # one worker: this one waits behind the first
    status = run(["status", queued], env)
    assert "in_queue" in status.stdout
    cancelled = run(["cancel", queued, "--json"], env)
    assert cancelled.exit_code == 0
    assert json.loads(cancelled.stdout)["outcome"] == "cancelled"
    emulator.release()
    assert run(["wait", running], env).exit_code == 0
    too_late = run(["cancel", running], env)
    assert too_late.exit_code == 1 and "not cancellable" in too_late.stdout
    after = run(["result", queued], env)
    assert after.exit_code == 1 and "cancelled" in after.stdout


def test_exit_codes_for_unknown_request_and_bad_key(
    emulator: Emulator, env: dict[str, str]
) -> None:
    missing = run(["status", "no-such-request"], env)
    assert missing.exit_code == 4 and "error:" in missing.stderr
    wrong = run(["status", "x"], dict(env, RUNCOMFY_API_KEY="wrong-key-123"))
    assert wrong.exit_code == 3
    assert "wrong-key-123" not in wrong.output + wrong.stderr
    none = run(["status", "x"], dict(env, RUNCOMFY_API_KEY=""))
    assert none.exit_code == 3 and "RUNCOMFY_API_KEY" in none.stderr


def test_api_key_from_a_file_or_stdin(
    emulator: Emulator, env: dict[str, str], tmp_path: Path
) -> None:
    request_id = submit(emulator)
    no_env_key = dict(env, RUNCOMFY_API_KEY="")
    key_file = tmp_path / "key"
    key_file.write_text(emulator.api_key + "\n")
    from_file = run(["--api-key-file", str(key_file), "status", request_id], no_env_key)
    assert from_file.exit_code == 0, from_file.stderr
    from_stdin = run(["--api-key-file", "-", "status", request_id], no_env_key, emulator.api_key)
    assert from_stdin.exit_code == 0, from_stdin.stderr
    from_env_file = run(
        ["status", request_id], dict(no_env_key, RUNCOMFY_API_KEY_FILE=str(key_file))
    )
    assert from_env_file.exit_code == 0
    unreadable = run(["--api-key-file", str(tmp_path / "nope"), "status", request_id], no_env_key)
    assert unreadable.exit_code == 2 and "cannot read the API key file" in unreadable.stderr


def test_wait_deadline_exits_6_and_prints_the_id(emulator: Emulator, env: dict[str, str]) -> None:
    slow = Emulator(workers=1, job_seconds=0, render=False)
    with slow:
        slow.hold()  # the job never ends on its own: only the deadline can end the wait
        request_id = submit(slow)
        outcome = run(
            ["wait", request_id, "--timeout", "0.3"],
            {"RUNCOMFY_BASE_URL": slow.base_url, "RUNCOMFY_API_KEY": slow.api_key},
        )
    assert outcome.exit_code == 6
    assert request_id in outcome.stderr
