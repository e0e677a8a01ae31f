"""Batches end to end against the emulator: validation, resume, uncertain lines, 429 back-off."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from runcomfy_client import AsyncClient, Client
from runcomfy_client._journal import Journal
from runcomfy_client._throttle import AdaptiveLimit
from runcomfy_client.batch import Batch, check_batch, read_batch
from runcomfy_client.cli import cli
from runcomfy_client.emulator import Emulator

from .conftest import FUSIONX, INPAINT, png_bytes


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(workers=4, job_seconds=0.05, render=False) as emu:
        yield emu


@pytest.fixture(scope="module")
def image(emulator: Emulator) -> str:
    return emulator.upload(png_bytes(), "frame.png")


def env_for(emulator: Emulator) -> dict[str, str]:
    return {
        "RUNCOMFY_BASE_URL": emulator.base_url,
        "RUNCOMFY_API_KEY": emulator.api_key,
        "RUNCOMFY_API_KEY_FILE": "",
        "RUNCOMFY_UPLOAD_TO": "",
    }


def write_lines(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def fusionx_rows(image: str, count: int, tag: str) -> list[dict[str, Any]]:
    # A distinct prompt per line: the emulator counts identical payloads as duplicates.
    return [{"id": f"{tag}-{i}", "prompt": f"{tag} {i}", "image": image} for i in range(count)]


def run_batch(emulator: Emulator, args: list[str]) -> Result:
    return CliRunner().invoke(cli, ["batch", *args], env=env_for(emulator))


def submits(emulator: Emulator) -> int:
    return int(emulator.stats()["requests"]["submit"])


def journal_rows(path: Path) -> dict[str, dict[str, Any]]:
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        return {row["name"]: dict(row) for row in db.execute("SELECT * FROM lines")}


def test_every_invalid_line_is_reported_and_nothing_is_submitted(
    emulator: Emulator, image: str, tmp_path: Path
) -> None:
    rows: list[Any] = [
        {"id": "ok", "prompt": "fine", "image": image},
        {"id": "no-prompt", "image": image, "steps": 99},
        "not an object",
        {"id": "../escape", "prompt": "p", "image": image},
        {"id": "ok", "prompt": "again", "image": image},
        {"id": "other", "model": "acme/unknown", "prompt": "p"},
    ]
    path = tmp_path / "jobs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken\n")
    before = submits(emulator)
    result = run_batch(emulator, [str(path), "--out", str(tmp_path / "out"), "--model", FUSIONX])
    assert result.exit_code == 2
    err = result.stderr
    assert "6 lines are invalid; nothing was submitted" in err
    assert "line 2: no-prompt: prompt (600_prompt): is required" in err
    assert "line 2: no-prompt: steps (598_steps): 99 is above the maximum" in err
    assert "line 3: must be a JSON object" in err
    assert "line 4: id '../escape' cannot name a folder" in err
    assert "line 5: id 'ok' is also used by line 1" in err
    assert "line 6: unknown model 'acme/unknown'" in err
    assert "line 7: not JSON" in err
    assert submits(emulator) == before
    assert not (tmp_path / "out").exists()

    skipped = run_batch(
        emulator, [str(path), "--out", str(tmp_path / "out"), "--model", FUSIONX, "--skip-invalid"]
    )
    assert skipped.exit_code == 0, skipped.stderr
    assert "skipped: line 3: must be a JSON object" in skipped.stderr
    assert (tmp_path / "out" / "ok" / "output.mp4").is_file()
    assert submits(emulator) == before + 1


def test_run_then_resume_submits_nothing_twice_and_fetches_missing_files(
    emulator: Emulator, image: str, tmp_path: Path
) -> None:
    path = write_lines(tmp_path / "jobs.jsonl", fusionx_rows(image, 6, "resume"))
    out = tmp_path / "out"
    before = submits(emulator)
    first = run_batch(emulator, [str(path), "--out", str(out), "--model", FUSIONX, "--json"])
    assert first.exit_code == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["counts"] == {"downloaded": 6}
    assert report["journal"] == str(tmp_path / "out.batch.sqlite")
    assert submits(emulator) == before + 6
    files = {line["name"]: Path(line["files"][0]) for line in report["lines"]}
    assert all(p.is_file() and p.parent.name == name for name, p in files.items())

    files["resume-3"].unlink()
    untouched = files["resume-0"].stat().st_mtime_ns
    downloads = emulator.stats()["requests"]["download"]
    again = run_batch(emulator, [str(path), "--out", str(out), "--model", FUSIONX, "--json"])
    assert again.exit_code == 0, again.stderr
    assert submits(emulator) == before + 6  # nothing submitted again
    assert emulator.stats()["requests"]["download"] == downloads + 1  # only the missing file
    assert files["resume-3"].is_file() and files["resume-0"].stat().st_mtime_ns == untouched
    assert emulator.stats()["duplicate_payloads"] == 0


def test_a_changed_line_is_refused_on_resume(
    emulator: Emulator, image: str, tmp_path: Path
) -> None:
    rows = fusionx_rows(image, 2, "changed")
    path = write_lines(tmp_path / "jobs.jsonl", rows)
    out = tmp_path / "out"
    assert run_batch(emulator, [str(path), "--out", str(out), "--model", FUSIONX]).exit_code == 0
    rows[1]["prompt"] = "something else"
    write_lines(path, rows)
    changed = run_batch(emulator, [str(path), "--out", str(out), "--model", FUSIONX])
    assert changed.exit_code == 2 and "line(s) 2 of the batch changed" in changed.stderr


def test_one_failing_job_does_not_stop_the_others(
    emulator: Emulator, image: str, tmp_path: Path
) -> None:
    rows = fusionx_rows(image, 4, "mixed")
    rows[1]["image"] = f"{emulator.base_url}/_emulator/uploads/none--gone.png"  # 404: job fails
    path = write_lines(tmp_path / "jobs.jsonl", rows)
    result = run_batch(emulator, [str(path), "--out", str(tmp_path / "out"), "--model", FUSIONX])
    assert result.exit_code == 1
    assert "3 downloaded" in result.stdout and "1 failed" in result.stdout
    assert "mixed-1" in result.stdout and "failed" in result.stdout


def test_lost_submit_answer_is_uncertain_and_not_resubmitted_unless_asked(
    image: str, tmp_path: Path
) -> None:
    with Emulator(workers=4, job_seconds=0.05, render=False) as emu:
        frame = emu.upload(png_bytes(), "frame.png")
        path = write_lines(tmp_path / "jobs.jsonl", fusionx_rows(frame, 5, "lost"))
        out = tmp_path / "out"
        emu.set_faults(["lost_response:submit=@2"])
        first = run_batch(emu, [str(path), "--out", str(out), "--model", FUSIONX, "--json"])
        assert first.exit_code == 1
        report = json.loads(first.stdout)
        assert report["counts"] == {"downloaded": 4, "uncertain": 1}
        [uncertain] = [line for line in report["lines"] if line["state"] == "uncertain"]
        assert "may have been created" in uncertain["error"]["message"]
        assert uncertain["status"] is None  # no job is known to exist
        assert emu.stats()["jobs"] == 5  # the lost answer's job exists

        emu.set_faults([])
        again = run_batch(emu, [str(path), "--out", str(out), "--model", FUSIONX])
        assert again.exit_code == 1 and emu.stats()["jobs"] == 5
        assert "uncertain" in again.stdout

        forced = run_batch(
            emu, [str(path), "--out", str(out), "--model", FUSIONX, "--resubmit-uncertain"]
        )
        assert forced.exit_code == 0, forced.stderr
        rows = journal_rows(tmp_path / "out.batch.sqlite")
        resubmitted = sum(row["resubmitted"] for row in rows.values())
        # The journal and the emulator agree: exactly one line was paid for twice, on request.
        assert resubmitted == 1 == emu.stats()["duplicate_payloads"]
        assert {row["state"] for row in rows.values()} == {"downloaded"}


def test_a_crash_between_marking_and_recording_leaves_the_line_uncertain(
    emulator: Emulator, image: str, tmp_path: Path
) -> None:
    lines = read_batch(
        [json.dumps(row) for row in fusionx_rows(image, 3, "crash")],
        registry=Client(api_key="x").registry,
        model=FUSIONX,
    )
    out = tmp_path / "out"
    batch = Batch(lines, out, concurrency=2)
    with Journal(batch.journal_path) as journal:  # what a run killed mid-submit leaves behind
        journal.add([(ln.line, ln.name, ln.model_id, ln.digest, "pending") for ln in lines])
        journal.begin_submit(2)
    before = submits(emulator)

    async def main() -> list[Any]:
        async with AsyncClient(base_url=emulator.base_url, api_key=emulator.api_key) as client:
            return [r async for r in batch.run(client)]

    results = {r.name: r for r in asyncio.run(main())}
    assert batch.uncertain_found == [2]
    assert results["crash-1"].state == "uncertain" and "interrupted" in (
        results["crash-1"].error or ""
    )
    assert results["crash-0"].state == results["crash-2"].state == "downloaded"
    assert submits(emulator) == before + 2


def test_rate_limits_slow_the_whole_batch_then_it_recovers(image: str, tmp_path: Path) -> None:
    with Emulator(workers=8, job_seconds=0.05, render=False, retry_after=0.05) as emu:
        frame = emu.upload(png_bytes(), "frame.png")
        rows = [json.dumps(r) for r in fusionx_rows(frame, 16, "busy")]
        emu.set_faults(["rate_limit:submit=@1,2,3,4,5,6"])
        with Client(base_url=emu.base_url, api_key=emu.api_key) as client:
            batch = Batch(
                read_batch(rows, registry=client.registry, model=FUSIONX),
                tmp_path / "out",
                concurrency=8,
            )
            results = list(batch.run_sync(client))
        stats = emu.stats()
    assert {r.state for r in results} == {"downloaded"} and len(results) == 16
    assert batch.limit.rate_limited >= 6
    assert batch.limit.peak <= 8
    assert stats["jobs"] == 16 and stats["duplicate_payloads"] == 0


def test_adaptive_limit_pauses_on_any_429_and_cuts_only_when_they_are_sustained() -> None:
    now = [100.0]
    limit = AdaptiveLimit(16, cooldown=1.0, window=10, cut_share=0.25, clock=lambda: now[0])
    for _ in range(9):
        limit.on_response(200)
    limit.on_response(429, 2.0)  # a stray one: everyone waits, nobody is cut
    assert limit.allowed == 16 and limit.pause_left() == 2.0 and not limit.can_start()
    now[0] += 2.0
    assert limit.can_start()
    for _ in range(3):
        limit.on_response(429, 0.5)  # now 4 of the last 10: sustained
    assert limit.allowed == 8 and limit.cuts == 1  # one cut per cooldown, not per answer
    now[0] += 1.0
    limit.on_response(429, None)
    assert limit.allowed == 4 and limit.pause_left() == 1.0
    for _ in range(40):
        limit.accepted()
    assert 8 <= limit.allowed < 16  # additive: about one more per round of jobs
    for _ in range(400):
        limit.accepted()
    assert limit.allowed == 16
    for _ in range(20):
        now[0] += 2.0
        limit.on_response(429, 0.0)
    assert limit.allowed == 1  # never below one
    assert limit.rate_limited == 25


def test_library_form_yields_results_as_they_complete(
    emulator: Emulator, image: str, tmp_path: Path
) -> None:
    lines, problems = check_batch(
        [
            json.dumps(
                {"model": INPAINT, "prompt": f"p{i}", "start_image": image, "end_image": image}
            )
            for i in range(3)
        ],
        registry=Client(api_key="x").registry,
    )
    assert problems == []
    seen: list[tuple[int, str]] = []
    batch = Batch(lines, tmp_path / "out", concurrency=3, on_state=lambda n, s: seen.append((n, s)))

    async def main() -> list[Any]:
        async with AsyncClient(base_url=emulator.base_url, api_key=emulator.api_key) as client:
            return [r async for r in batch.run(client)]

    results = asyncio.run(main())
    assert sorted(r.name for r in results) == ["line-1", "line-2", "line-3"]
    for result in results:
        [file] = result.files
        body = httpx.get(f"{emulator.base_url}/_emulator/files/{result.request_id}/{file.name}")
        assert file.read_bytes() == body.content
    for n in (1, 2, 3):
        states = [s for line, s in seen if line == n]
        assert states == ["submitting", "submitted", "completed", "downloaded"]


# -- one poisoned job fails its own line, never the batch (issue 16 item 3) -------------------

POISON = b'{"request_id": "x", "status": "in_queue", "queue_position": 1' + b"0" * 5000 + b"}"


class _Poisoner(httpx.AsyncBaseTransport):
    """Passes everything to the emulator, except the status and result answers of the jobs
    whose prompt says "poison": those come back hostile."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.poisoned: set[str] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        path = request.url.path
        if request.method == "POST" and b"poison" in request.content:
            await response.aread()
            self.poisoned.add(json.loads(response.content)["request_id"])
            return httpx.Response(response.status_code, content=response.content)
        if any(f"/{rid}/" in path for rid in self.poisoned) and path.endswith(
            ("/status", "/result")
        ):
            await response.aread()
            return httpx.Response(200, content=POISON)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def _run_library_batch(
    emulator: Emulator, image: str, tmp_path: Path, prompts: list[str]
) -> list[Any]:
    lines, problems = check_batch(
        [json.dumps({"model": FUSIONX, "prompt": p, "image": image}) for p in prompts],
        registry=Client(api_key="x").registry,
    )
    assert problems == []
    batch = Batch(lines, tmp_path / "out", concurrency=4)

    async def main() -> list[Any]:
        http = httpx.AsyncClient(transport=_Poisoner())
        async with AsyncClient(
            base_url=emulator.base_url,
            api_key=emulator.api_key,
            http_client=http,
            outage_budget=0.2,
        ) as client:
            results = [r async for r in batch.run(client)]
        await http.aclose()
        return results

    return asyncio.run(main())


def test_a_poisoned_job_fails_its_own_line_never_the_batch(
    emulator: Emulator, image: str, tmp_path: Path
) -> None:
    prompts = ["fine 1", "poison", "fine 2", "fine 3"]
    results = {r.line: r for r in _run_library_batch(emulator, image, tmp_path, prompts)}
    assert [results[n].state for n in (1, 3, 4)] == ["downloaded"] * 3
    assert results[2].state == "submitted"  # re-attached by a later run, never resubmitted
    assert "outside this client's limits" in (results[2].error or "")


def test_an_unforeseen_error_in_one_line_is_recorded_on_that_line(
    emulator: Emulator, image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runcomfy_client._waiting import Waiter

    real = Waiter.changed

    def fragile(self: Waiter, status: Any) -> bool:
        if status.request_id in poisoned:
            raise RecursionError("maximum recursion depth exceeded (a bug this test plants)")
        return real(self, status)

    poisoned: set[str] = set()
    monkeypatch.setattr(Waiter, "changed", fragile)
    original = _Poisoner.handle_async_request

    async def spy(self: _Poisoner, request: httpx.Request) -> httpx.Response:
        response = await original(self, request)
        poisoned.update(self.poisoned)
        self.poisoned.clear()  # answers pass untouched: the planted bug does the harm
        return response

    monkeypatch.setattr(_Poisoner, "handle_async_request", spy)
    results = {
        r.line: r for r in _run_library_batch(emulator, image, tmp_path, ["ok", "poison", "ok 2"])
    }
    assert results[1].state == results[3].state == "downloaded"
    assert results[2].state == "submitted"
    assert "could not be handled: RecursionError" in (results[2].error or "")
