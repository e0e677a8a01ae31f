"""`make soak`: 2,000 jobs through the emulator with every fault kind on, about 10 % each, and a
20 s outage (every request, downloads too, fails) in the middle of the library's part.

Half from the library (one AsyncClient: 100 submits, then 100 jobs followed, at a time), half from
the batch command, which
is killed with SIGKILL twice at random moments and then run again to the end. Reported: jobs
completed, outputs downloaded and verified by length against what the emulator serves, duplicate
jobs created, files left half-written under their final names, and the errors the caller saw,
by kind. Goal: every job completed or explicitly reported, no duplicate, nothing half-written,
and every library job whose request id the client received completed and downloaded (a job is
never abandoned once paid; a submit whose answer was lost is reported uncertain, never resent).

Writes bench/soak-results.md.
"""

from __future__ import annotations

import asyncio
import collections
import io
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
MODEL = "community/wan-2-1/fusionx/image-to-video"
FAULTS = [
    "rate_limit=0.1",
    "server_error=0.1",
    "drop=0.1",
    "lost_response=0.1",
    "slow=0.1",
    "truncate=0.1",
    "error_200=0.1",
    "created_then_503=0.1",
    "outage=15+20",  # from 15 s after the emulator starts, for 20 s
]


def png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (40, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


async def library_part(base: str, key: str, image: str, jobs: int, out: Path) -> dict[str, Any]:
    from runcomfy_client import AsyncClient, RunComfyError, SubmissionUncertainError

    outcomes: collections.Counter[str] = collections.Counter()
    errors: collections.Counter[str] = collections.Counter()
    saved: dict[str, list[Path]] = {}
    with_id = 0
    # 100 submits at a time, then 100 jobs followed at a time: the submits are done within
    # seconds, so the outage falls on jobs that have a request id (status, result, downloads).
    submitting, following = asyncio.Semaphore(100), asyncio.Semaphore(100)

    async with AsyncClient(base_url=base, api_key=key, timeout=30) as client:

        async def one(i: int) -> None:
            nonlocal with_id
            async with submitting:
                try:
                    handle = await client.submit(MODEL, {"prompt": f"library {i}", "image": image})
                except SubmissionUncertainError:
                    outcomes["submit uncertain (reported, not resent)"] += 1
                    return
                except RunComfyError as exc:
                    errors[f"submit: {type(exc).__name__}"] += 1
                    outcomes["submit refused (nothing created)"] += 1
                    return
            with_id += 1
            async with following:
                try:
                    result = await handle.wait(timeout=600)
                    files = await client.download(result, out / f"job-{i}")
                except RunComfyError as exc:
                    errors[f"after the submit: {type(exc).__name__}: {str(exc)[:80]}"] += 1
                    outcomes["had a request id, not downloaded"] += 1
                    return
                saved[result.request_id] = files
                outcomes["downloaded"] += 1

        await asyncio.gather(*(one(i) for i in range(jobs)))
    return {"outcomes": outcomes, "errors": errors, "saved": saved, "with_id": with_id}


def batch_part(base: str, key: str, image: str, lines: int, tmp: Path) -> dict[str, Any]:
    rng = random.Random(7)
    path = tmp / "soak.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": f"line-{i}", "prompt": f"batch {i}", "image": image}) + "\n"
            for i in range(lines)
        )
    )
    out = tmp / "batch-out"
    env = {**os.environ, "RUNCOMFY_BASE_URL": base, "RUNCOMFY_API_KEY": key}
    args = [sys.executable, "-m", "runcomfy_client.cli", "batch", str(path), "--out", str(out),
            "--model", MODEL, "--concurrency", "64", "--json"]  # fmt: skip
    for _ in range(2):
        process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(rng.uniform(3.0, 8.0))
        process.kill()
        process.wait(10)
    final = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    report = json.loads(final.stdout)
    with sqlite3.connect(tmp / "batch-out.batch.sqlite") as db:
        db.row_factory = sqlite3.Row
        rows = [dict(r) for r in db.execute("SELECT * FROM lines")]
    errors: collections.Counter[str] = collections.Counter()
    for row in rows:
        if row["state"] != "downloaded":
            errors[f"{row['state']}: {_kind(row['error'] or '')}"] += 1
    saved = {
        row["request_id"]: [out / row["name"] / f for f in json.loads(row["files"] or "[]")]
        for row in rows
        if row["state"] == "downloaded"
    }
    return {
        "outcomes": collections.Counter(row["state"] for row in rows),
        "errors": errors,
        "saved": saved,
        "resubmitted": sum(row["resubmitted"] for row in rows),
        "exit": final.returncode,
        "counts": report["counts"],
    }


def verify(emu: Any, parts: list[dict[str, Any]], folders: list[Path]) -> dict[str, int]:
    """Lengths against the emulator's own files; and any final-named file not recorded."""
    emu.set_faults([])
    served: dict[str, int] = {}
    with httpx.Client(timeout=30) as http:
        for part in parts:
            for request_id, files in part["saved"].items():
                for path in files:
                    url = f"{emu.base_url}/_emulator/files/{request_id}/{path.name}"
                    served[str(path)] = int(http.head(url).headers["Content-Length"])
    verified = wrong = stray = 0
    for folder in folders:
        for path in folder.rglob("*"):
            if not path.is_file() or path.name.startswith(".") or path.suffix == ".sqlite":
                continue
            if str(path) not in served:
                stray += 1  # under a final name, but no record says it is complete
            elif path.stat().st_size == served[str(path)]:
                verified += 1
            else:
                wrong += 1
    return {"verified": verified, "wrong_length": wrong, "unrecorded": stray}


def main() -> None:
    import logging

    from runcomfy_client.emulator import Emulator

    logging.getLogger("runcomfy_client").setLevel(logging.ERROR)  # thousands of retry notes

    started = time.perf_counter()
    per_part = 1000
    with (
        tempfile.TemporaryDirectory() as tmp_name,
        Emulator(
            workers=32,
            job_seconds=0.05,
            render=False,
            faults=FAULTS,
            seed=11,
            retry_after=0.2,
            slow_seconds=1.0,
        ) as emu,  # fmt: skip
    ):
        tmp = Path(tmp_name)
        image = emu.upload(png(), "soak.png")
        library = asyncio.run(
            library_part(emu.base_url, emu.api_key, image, per_part, tmp / "library-out")
        )
        batch = batch_part(emu.base_url, emu.api_key, image, per_part, tmp)
        checked = verify(emu, [library, batch], [tmp / "library-out", tmp / "batch-out"])
        stats = emu.stats()
    jobs_made = stats["jobs"]
    completed = stats["states"].get("completed", 0)
    rows = [
        ("jobs asked for", f"{2 * per_part} ({per_part} library, {per_part} batch)"),
        ("jobs the emulator created", f"{jobs_made} ({completed} completed)"),
        ("library: outcomes", _counts(library["outcomes"])),
        (
            "library: jobs whose request id the client received, ended downloaded",
            f"{len(library['saved'])} of {library['with_id']}",
        ),
        ("library: errors surfaced to the caller, by kind", _counts(library["errors"])),
        ("batch (killed twice, then resumed): line states", _counts(batch["outcomes"])),
        ("batch: lines not downloaded, by state and reason", _counts(batch["errors"])),
        ("batch: lines resubmitted after an uncertain submit", str(batch["resubmitted"])),
        ("outputs downloaded and verified by length", str(checked["verified"])),
        ("files under a final name with a wrong length", str(checked["wrong_length"])),
        ("files under a final name that no record accounts for", str(checked["unrecorded"])),
        ("duplicate jobs (identical payloads) created", str(stats["duplicate_payloads"])),
        ("faults injected", _counts(stats["faults"])),
    ]
    accounted = sum(library["outcomes"].values()) + sum(batch["outcomes"].values())
    ok = (
        stats["duplicate_payloads"] == 0
        and checked["wrong_length"] == 0
        and checked["unrecorded"] == 0
        and accounted == 2 * per_part
        and len(library["saved"]) == library["with_id"]
    )
    text = "\n".join(
        [
            "# Soak results",
            "",
            f"`make soak`, {time.perf_counter() - started:.0f} s; faults: {', '.join(FAULTS)}.",
            "",
            "| figure | value |",
            "|---|---|",
            *[f"| {a} | {b} |" for a, b in rows],
            "",
            f"Goal (every job completed or explicitly reported, no duplicates, nothing "
            f"half-written, every library job with a request id downloaded): "
            f"**{'met' if ok else 'MISSED'}**.",
            "",
        ]
    )
    (HERE / "soak-results.md").write_text(text)
    print(text)
    sys.exit(0 if ok else 1)


def _kind(error: str) -> str:
    """A short name for why a batch line is where it is, from its recorded error."""
    kinds = [
        ("answer was lost", "the submit's answer was lost"),
        ("answered with an error", "the submit was answered with an error (5xx or 200+error)"),
        ("interrupted between", "killed between marking the submit and recording its id"),
        ("HTTP 200", "an error answered with HTTP 200 to the submit"),
        ("server error", "a 5xx answer to the submit"),
        ("failed after", "status or result unavailable after retries; re-attach later"),
        ("did not finish", "deadline"),
    ]
    for needle, name in kinds:
        if needle in error:
            return name
    return error[:80] or "no error recorded"


def _counts(counter: Any) -> str:
    items = sorted(dict(counter).items(), key=lambda kv: -kv[1])
    return ", ".join(f"{k} {v}" for k, v in items) or "none"


if __name__ == "__main__":
    main()
