"""A batch killed with SIGKILL at random moments, twice, then resumed: nothing paid for twice.

The batch runs as a real `runcomfy-client batch` process against the emulator. After the kills
and a resume, every line is downloaded or reported uncertain, the emulator saw no duplicate job,
the journal resubmitted nothing, and every file under its final name is complete.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from runcomfy_client.emulator import Emulator

from .conftest import FUSIONX, png_bytes, wait_for

LINES = 30


def batch_process(emulator: Emulator, args: list[str]) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "RUNCOMFY_BASE_URL": emulator.base_url,
        "RUNCOMFY_API_KEY": emulator.api_key,
        "RUNCOMFY_API_KEY_FILE": "",
        "RUNCOMFY_UPLOAD_TO": "",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "runcomfy_client.cli", "batch", *args, "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def api_calls(emulator: Emulator) -> int:
    return sum(emulator.stats()["requests"].values())


def batch_process_busy(emulator: Emulator, args: list[str], calls: int) -> subprocess.Popen[bytes]:
    """A batch process, returned once it has made ``calls`` API calls (or has ended)."""
    target = api_calls(emulator) + calls
    process = batch_process(emulator, args)
    wait_for(lambda: process.poll() is not None or api_calls(emulator) >= target, timeout=60)
    return process


def kill_after(process: subprocess.Popen[bytes], seconds: float) -> None:
    time.sleep(seconds)
    process.kill()  # SIGKILL: no cleanup, no finally blocks
    process.wait(10)


def rows(journal: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(journal) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("SELECT * FROM lines ORDER BY line")]


def check_files(emulator: Emulator, out: Path, journal_rows: list[dict[str, Any]]) -> None:
    """Every file under a final name is a whole output; stray temp files are all '.part'."""
    by_name = {row["name"]: row for row in journal_rows}
    for folder in out.iterdir():
        if folder.name == ".runcomfy-batch.lock":  # the folder's claim (one journal per folder)
            continue
        row = by_name[folder.name]
        for path in folder.iterdir():
            if path.name.startswith("."):
                assert path.name.endswith(".part")
                continue
            assert row["request_id"], path
            served = httpx.get(
                f"{emulator.base_url}/_emulator/files/{row['request_id']}/{path.name}"
            )
            assert path.read_bytes() == served.content, f"{path} is not the whole output"


@pytest.mark.parametrize("faults", [[], ["lost_response:submit=0.15"]], ids=["kill", "kill+lost"])
def test_killed_twice_then_resumed(tmp_path: Path, faults: list[str]) -> None:
    chooser = random.Random(len(faults) * 7 + 3)
    with Emulator(workers=4, job_seconds=0.25, render=False, faults=faults, seed=5) as emu:
        image = emu.upload(png_bytes(), "frame.png")
        path = tmp_path / "jobs.jsonl"
        path.write_text(
            "".join(
                json.dumps({"id": f"job-{i}", "prompt": f"shot {i}", "image": image}) + "\n"
                for i in range(LINES)
            )
        )
        out = tmp_path / "out"
        journal = tmp_path / "out.batch.sqlite"
        args = [str(path), "--out", str(out), "--model", FUSIONX, "--concurrency", "8"]
        for _ in range(2):
            # Kill mid-work whatever the machine's speed: after a random number of API calls
            # from this process (submits, polls, downloads), plus a random moment.
            kill_after(
                batch_process_busy(emu, args, chooser.randint(1, 60)), chooser.uniform(0, 0.3)
            )
        killed_states = {row["state"] for row in rows(journal)}
        assert killed_states - {"downloaded"}, "the kills came too late to interrupt anything"

        final = batch_process(emu, args)
        stdout, _ = final.communicate(timeout=120)
        report = json.loads(stdout)
        stats = emu.stats()
        journal_rows = rows(journal)
        check_files(emu, out, journal_rows)

        states = [row["state"] for row in journal_rows]
        assert set(states) <= {"downloaded", "uncertain"}, report["counts"]
        uncertain = states.count("uncertain")
        downloaded = states.count("downloaded")
        assert final.returncode == (0 if uncertain == 0 else 1)
        assert stats["duplicate_payloads"] == 0
        assert sum(row["resubmitted"] for row in journal_rows) == 0
        # Each job the emulator made belongs to one line: downloaded, or uncertain (its job may
        # exist; the submit's answer was lost or the process died before writing it down).
        assert downloaded <= stats["jobs"] <= downloaded + uncertain
        assert stats["faults"].get("lost_response", 0) <= uncertain
        assert report["counts"].get("downloaded", 0) == downloaded


def test_ctrl_c_stops_the_batch_and_the_same_command_resumes_it(tmp_path: Path) -> None:
    # Slow submits: the Ctrl-C lands while POSTs are on the wire. Their answers are still
    # recorded, so the resume has nothing uncertain and submits nothing twice.
    slow = ["slow:submit=1"]
    with Emulator(workers=2, job_seconds=0.02, render=False, faults=slow, slow_seconds=1.5) as emu:
        image = emu.upload(png_bytes(), "frame.png")
        path = tmp_path / "jobs.jsonl"
        path.write_text(
            "".join(json.dumps({"prompt": f"shot {i}", "image": image}) + "\n" for i in range(12))
        )
        args = [str(path), "--out", str(tmp_path / "out"), "--model", FUSIONX]
        process = batch_process(emu, args)
        wait_for(lambda: emu.stats()["requests"]["submit"] >= 8)  # all eight on the wire
        process.send_signal(signal.SIGINT)
        stdout, _ = process.communicate(timeout=30)
        assert process.returncode == 130
        assert stdout == b""  # no report: the run did not finish
        states = [row["state"] for row in rows(tmp_path / "out.batch.sqlite")]
        assert states.count("submitted") == 8 and states.count("pending") == 4

        emu.set_faults([])
        final = batch_process(emu, args)
        report = json.loads(final.communicate(timeout=60)[0])
        assert final.returncode == 0 and report["counts"] == {"downloaded": 12}
        assert emu.stats()["jobs"] == 12 and emu.stats()["duplicate_payloads"] == 0
