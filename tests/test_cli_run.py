"""`runcomfy-client run MODEL_ID` end to end against the emulator over real sockets.

In-process runs use click's CliRunner (stdout and stderr kept apart); Ctrl-C is tested on a real
subprocess sent SIGINT.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from runcomfy_client import Client, job_document
from runcomfy_client.cli import cli
from runcomfy_client.emulator import Emulator

from .conftest import FUSIONX, INPAINT, png_bytes, wait_for


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(workers=2, job_seconds=0.01, render=False) as emu:
        yield emu


def env_for(emulator: Emulator, **extra: str) -> dict[str, str]:
    return {
        "RUNCOMFY_BASE_URL": emulator.base_url,
        "RUNCOMFY_API_KEY": emulator.api_key,
        "RUNCOMFY_API_KEY_FILE": "",
        "RUNCOMFY_UPLOAD_TO": "",
        **extra,
    }


@pytest.fixture
def env(emulator: Emulator) -> dict[str, str]:
    return env_for(emulator)


@pytest.fixture
def images(tmp_path: Path) -> tuple[Path, Path]:
    day, night = tmp_path / "day.png", tmp_path / "night.png"
    day.write_bytes(png_bytes((230, 180, 40)))
    night.write_bytes(png_bytes((20, 30, 90)))
    return day, night


def run(args: list[str], env: dict[str, str], stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, args, env=env, input=stdin)


def submissions(emulator: Emulator) -> int:
    return int(emulator.stats()["requests"]["submit"])


def test_run_help_lists_models_and_a_models_fields(env: dict[str, str]) -> None:
    listing = run(["run", "--help"], env)
    assert listing.exit_code == 0
    assert FUSIONX in listing.stdout and INPAINT in listing.stdout
    one = run(["run", INPAINT, "--help"], env)
    assert one.exit_code == 0
    text = " ".join(one.stdout.split())  # help is wrapped to the terminal width
    for flag in ("--prompt", "--start-image", "--end-image", "--resolution", "--steps"):
        assert flag in text
    assert "One of: 81, 141" in text  # number_of_frames choices
    # fun-inpaint publishes steps with default 4 below its minimum 6: help says it is the server's.
    assert "Allowed: 6 to 20. Server default: 4, outside the allowed range" in text
    assert "Wire key: 96_steps." in text
    assert "'720x480 (3:2)'" in text and "Exit codes:" in text


def test_run_with_local_files_uploaded_and_json_output(
    emulator: Emulator, env: dict[str, str], images: tuple[Path, Path], tmp_path: Path
) -> None:
    day, night = images
    out = tmp_path / "out"
    args = ["run", INPAINT, "--prompt", "dusk", "--start-image", str(day)]
    args += ["--end-image", str(night), "--resolution", "720x480", "--frames-per-second", "12"]
    result = run([*args, "--upload-to", "emulator", "--out", str(out), "--json"], env)
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)  # one object and nothing else
    assert set(record) == set(job_document(None, None))  # the one shape of a job's document
    assert record["status"] == "completed"
    [saved] = record["files"]
    assert Path(saved).parent == out and Path(saved).stat().st_size > 0
    assert record["output"]["video"].startswith(emulator.base_url)
    job = next(j for j in emulator.jobs() if j["request_id"] == record["request_id"])
    payload = job["payload"]
    assert payload["110_image"].startswith(f"{emulator.base_url}/_emulator/uploads/")
    assert payload["112_image"] != payload["110_image"]
    assert payload["111_widthx111_height"] == "720x480 (3:2)"
    assert payload["159_frame_rate"] == 12
    assert set(payload) == {
        "99_text",
        "110_image",
        "112_image",
        "111_widthx111_height",
        "159_frame_rate",
    }
    assert emulator.api_key not in result.output + result.stderr


def test_run_plain_text_shows_progress_on_stderr_and_paths_on_stdout(
    emulator: Emulator, env: dict[str, str], tmp_path: Path
) -> None:
    image = emulator.upload(png_bytes(), "still.png")
    result = run(
        ["run", FUSIONX, "--prompt", "a lighthouse", "--image", image, "--out", str(tmp_path)],
        env,
    )
    assert result.exit_code == 0, result.stderr
    [line] = result.stdout.splitlines()
    assert Path(line).parent == tmp_path and line.endswith(".mp4")
    assert "submitted: request id" in result.stderr
    assert "completed" in result.stderr and "downloaded" in result.stderr
    assert "\x1b[" not in result.output + result.stderr  # no terminal codes when piped


def test_invalid_input_reports_every_problem_and_sends_nothing(
    emulator: Emulator, env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A short relative path: messages shorten long values, and tmp_path's length varies.
    monkeypatch.chdir(tmp_path)
    before = submissions(emulator)
    args = ["run", INPAINT, "--steps", "50", "--seed", "abc", "--resolution", "700x480"]
    args += ["--start-image", "./missing.png", "--set", "gudance_scale=1"]
    result = run(args, env)
    assert result.exit_code == 2
    err = result.stderr
    assert "invalid input for community/wan-2-2/fun-inpaint (7 problems)" in err
    assert "prompt (99_text): is required" in err
    assert "end_image (112_image): is required" in err
    assert "seed (96_noise_seed): expected an integer, got 'abc'" in err
    assert "steps (96_steps): 50 is above the maximum 20 (allowed 6 to 20)" in err
    assert "did you mean '720x480 (3:2)'?" in err
    assert "missing.png' looks like a local file, but there is no such file" in err
    assert "gudance_scale: unknown field; did you mean guidance_scale (96_cfg)?" in err
    assert result.stdout == ""
    assert submissions(emulator) == before


def test_local_file_without_uploader_says_how_to_configure_one(
    emulator: Emulator, env: dict[str, str], images: tuple[Path, Path]
) -> None:
    before = submissions(emulator)
    day, _ = images
    result = run(["run", FUSIONX, "--prompt", "p", "--image", str(day)], env)
    assert result.exit_code == 2
    assert "image (608_image):" in result.stderr and "is a local file" in result.stderr
    assert "--upload-to" in result.stderr and "RUNCOMFY_UPLOAD_TO" in result.stderr
    assert submissions(emulator) == before


def test_input_file_stdin_and_set_merge_with_flags_winning(
    emulator: Emulator, env: dict[str, str], tmp_path: Path
) -> None:
    image = emulator.upload(png_bytes(), "still.png")
    document = {"prompt": "from the file", "608_image": image, "steps": 8, "598_cfg": 1.5}
    path = tmp_path / "inputs.json"
    path.write_text(json.dumps(document))
    args = ["run", FUSIONX, "--input", str(path), "--set", "598_seed=7", "--set", "steps=9"]
    result = run([*args, "--prompt", "from the flag", "--no-wait", "--json"], env)
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    job = next(j for j in emulator.jobs() if j["request_id"] == record["request_id"])
    assert job["payload"] == {
        "600_prompt": "from the flag",
        "608_image": image,
        "598_steps": 9,
        "598_seed": 7,
        "598_cfg": 1.5,
    }

    from_stdin = run(["run", FUSIONX, "--input", "-", "--no-wait"], env, json.dumps(document))
    assert from_stdin.exit_code == 0, from_stdin.stderr
    assert "runcomfy-client wait" in from_stdin.stderr

    twice = dict(document, **{"600_prompt": "again"})
    doubled = tmp_path / "doubled.json"
    doubled.write_text(json.dumps(twice))
    duplicate = run(["run", FUSIONX, "--input", str(doubled)], env)
    assert duplicate.exit_code == 2
    assert "given twice, as 'prompt' and '600_prompt'" in duplicate.stderr

    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    bad = run(["run", FUSIONX, "--input", str(broken)], env)
    assert bad.exit_code == 2 and "is not JSON" in bad.stderr


def test_no_wait_then_wait_by_id(emulator: Emulator, env: dict[str, str]) -> None:
    image = emulator.upload(png_bytes(), "still.png")
    submitted = run(["run", FUSIONX, "--prompt", "p", "--image", image, "--no-wait"], env)
    assert submitted.exit_code == 0, submitted.stderr
    request_id = submitted.stdout.strip()
    waited = run(["wait", request_id, "--json"], env)
    assert waited.exit_code == 0
    assert json.loads(waited.stdout)["status"] == "completed"


def test_failed_job_exits_1_with_json_record(emulator: Emulator, env: dict[str, str]) -> None:
    gone = f"{emulator.base_url}/_emulator/uploads/nothing--here.png"  # a 404 for the worker
    result = run(["run", FUSIONX, "--prompt", "p", "--image", gone, "--json"], env)
    assert result.exit_code == 1
    record = json.loads(result.stdout)
    assert record["status"] == "failed" and record["files"] == []
    assert record["error"]["code"] == 500101  # the emulator's "cannot run" code, as an object
    assert "cannot fetch input" in record["error"]["message"]
    assert record["request_id"] in result.stderr


def test_auth_and_unknown_model_exit_codes(emulator: Emulator, env: dict[str, str]) -> None:
    image = emulator.upload(png_bytes(), "still.png")
    args = ["run", FUSIONX, "--prompt", "p", "--image", image]
    wrong = run(args, dict(env, RUNCOMFY_API_KEY="sk-wrong-9f8e7d"))
    assert wrong.exit_code == 3
    assert "sk-wrong-9f8e7d" not in wrong.output + wrong.stderr
    unknown = run(["run", "community/wan-2-2/fun-inpaintt", "--prompt", "p"], env)
    assert unknown.exit_code == 4 and "did you mean" in unknown.stderr


def test_rate_limited_after_retries_exits_5(tmp_path: Path) -> None:
    with Emulator(faults=["rate_limit:submit=1"], retry_after=0.01, render=False) as limited:
        image = limited.upload(png_bytes(), "still.png")
        result = run(["run", FUSIONX, "--prompt", "p", "--image", image], env_for(limited))
        assert result.exit_code == 5, result.stderr
        assert limited.stats()["jobs"] == 0


def test_deadline_while_running_exits_6_with_the_id(images: tuple[Path, Path]) -> None:
    with Emulator(workers=1, job_seconds=0, render=False) as slow:
        slow.hold("running")  # the job starts and stays running until the deadline
        image = slow.upload(png_bytes(), "still.png")
        args = ["run", FUSIONX, "--prompt", "p", "--image", image, "--timeout", "1", "--json"]
        result = run(args, env_for(slow))
    assert result.exit_code == 6, result.stderr
    record = json.loads(result.stdout)
    assert record["status"] == "in_progress"
    assert f"runcomfy-client wait {record['request_id']}" in result.stderr


# -- Ctrl-C on a real process ------------------------------------------------------------------


def start_cli(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "runcomfy_client.cli", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def interrupt_when(process: subprocess.Popen[str], marker: str) -> tuple[int, str, str]:
    """Send SIGINT once ``marker`` shows on stderr; return exit code, stdout, stderr."""
    seen: list[str] = []
    found = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            seen.append(line)
            if marker in line:
                found.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert found.wait(30), "".join(seen)
    process.send_signal(signal.SIGINT)
    assert process.stdout is not None
    stdout = process.stdout.read()
    process.wait(timeout=30)
    reader.join(10)
    return process.returncode, stdout, "".join(seen)


@pytest.fixture
def one_worker() -> Iterator[Emulator]:
    # Its one worker starts a job and holds it: the next one stays queued, this one running.
    with Emulator(workers=1, job_seconds=0, render=False) as emu:
        emu.hold("running")
        yield emu


def test_ctrl_c_while_queued_cancels_the_job(one_worker: Emulator) -> None:
    image = one_worker.upload(png_bytes(), "still.png")
    with Client(base_url=one_worker.base_url, api_key=one_worker.api_key) as client:
        client.submit(FUSIONX, {"prompt": "ahead", "image": image})  # holds the only worker
    process = start_cli(["run", FUSIONX, "--prompt", "p", "--image", image], env_for(one_worker))
    code, stdout, stderr = interrupt_when(process, "queued")
    assert code == 130 and stdout == ""  # no saved paths: nothing was produced
    assert "was still queued and has been cancelled" in stderr
    request_id = stderr.split("submitted: request id ")[1].split()[0]
    assert wait_for(lambda: one_worker_status(one_worker, request_id) == "cancelled")


def test_ctrl_c_while_running_says_how_to_reattach(one_worker: Emulator) -> None:
    image = one_worker.upload(png_bytes(), "still.png")
    process = start_cli(["run", FUSIONX, "--prompt", "p", "--image", image], env_for(one_worker))
    code, _, stderr = interrupt_when(process, "in progress")
    assert code == 130
    request_id = stderr.split("submitted: request id ")[1].split()[0]
    assert "is running and cannot be cancelled" in stderr
    assert f"runcomfy-client wait {request_id}" in stderr
    assert one_worker_status(one_worker, request_id) == "in_progress"


def one_worker_status(emulator: Emulator, request_id: str) -> Any:
    return next(j["status"] for j in emulator.jobs() if j["request_id"] == request_id)
