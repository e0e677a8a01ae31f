"""Money: prices, estimates, reported costs, a batch's cost cap and a spent balance.

The emulator charges each completed job from its model's record (per output, or per second of
the asked duration) and, with a balance, answers 402 once it is spent: the client's estimate and
the emulator's charge are two separate readings of the same price.
"""

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

from runcomfy_client import Client, InsufficientBalanceError, Registry
from runcomfy_client._journal import Journal
from runcomfy_client._pricing import CostUnknownError, estimate
from runcomfy_client.batch import Batch, LineResult, check_batch
from runcomfy_client.cli import cli
from runcomfy_client.emulator import Emulator

from .scripted import Script, VirtualClock, ok, scripted_async

CLIP = "acme/clip/text-to-video"  # $0.10 per second, duration 5 or 10 (default 5)
PICTURE = "acme/picture/text-to-image"  # $0.04 per output, num_images
FREE = "acme/unpriced/text-to-video"  # no price published
IMG = "https://example.com/in.png"


def _write(folder: Path, model_id: str, schema: dict[str, Any], record: dict[str, Any]) -> None:
    path = folder / f"{model_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(schema))
    path.with_name(path.name[: -len(".json")] + ".info.json").write_text(json.dumps(record))


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("priced")
    clip = {
        "type": "object",
        "required": ["prompt"],
        "properties": {
            "prompt": {"type": "string"},
            "duration": {"type": "string", "enum": ["5", "10", "auto"], "default": "5"},
        },
    }
    picture = {
        "type": "object",
        "required": ["prompt"],
        "properties": {
            "prompt": {"type": "string"},
            "num_images": {"type": "integer", "minimum": 1, "maximum": 4, "default": 1},
        },
    }
    video = {"categories": ["video"], "kind": "model", "price_unit": "second"}
    _write(folder, CLIP, clip, {**video, "base_price_usd": 0.1, "pricing_note": "720p"})
    _write(
        folder,
        PICTURE,
        picture,
        {"categories": ["image"], "base_price_usd": 0.04, "price_unit": "output"},
    )
    _write(folder, FREE, clip, {"categories": ["video"], "base_price_usd": None})
    return folder


@pytest.fixture
def registry(schemas: Path) -> Registry:
    return Registry([schemas], use_env=False, include_bundled=False)


@pytest.fixture(scope="module")
def emu(schemas: Path) -> Iterator[Emulator]:
    with Emulator(schema_dirs=[schemas], render=False, job_seconds=0) as emulator:
        yield emulator


def client_for(emu: Emulator, schemas: Path) -> Client:
    return Client(base_url=emu.base_url, api_key=emu.api_key, schema_dirs=[schemas])


# -- estimates ---------------------------------------------------------------------------------


def test_estimates_per_second_and_per_output(registry: Registry) -> None:
    clip, picture = registry.get(CLIP), registry.get(PICTURE)
    assert estimate(clip, {"prompt": "x"}).how == "$0.10 per second x 5 s"  # the default
    ten = estimate(clip, {"prompt": "x", "duration": "10"})
    assert ten.usd == pytest.approx(1.0)
    # "auto" is not a number of seconds: the longest choice, so the cap is never undershot.
    assert estimate(clip, {"prompt": "x", "duration": "auto"}).how == (
        "$0.10 per second x up to 10 s"
    )
    three = estimate(picture, {"prompt": "x", "num_images": 3})
    assert (three.usd, three.how) == (pytest.approx(0.12), "$0.04 per output x 3 outputs")
    with pytest.raises(CostUnknownError, match=f"{FREE} has no known price"):
        estimate(registry.get(FREE), {"prompt": "x"})


# -- the emulator charges, the client reads the cost ----------------------------------------------


def test_results_carry_the_cost_the_emulator_charged(emu: Emulator, schemas: Path) -> None:
    with client_for(emu, schemas) as client:
        clip = client.run(CLIP, {"prompt": "a boat", "duration": "10"})
        pictures = client.run(PICTURE, {"prompt": "a boat", "num_images": 2})
        free = client.run(FREE, {"prompt": "a boat"})
    assert clip.cost == pytest.approx(1.0) and pictures.cost == pytest.approx(0.08)
    assert free.cost is None
    assert clip.as_dict()["cost"] == pytest.approx(1.0)
    # Only asked for: the result's answer without include_cost carries no cost.
    headers = {"Authorization": f"Bearer {emu.api_key}"}
    plain = httpx.get(f"{emu.base_url}/v1/requests/{clip.request_id}/result", headers=headers)
    assert "cost" not in plain.json()


def test_a_spent_balance_answers_402_and_says_where_to_top_up(schemas: Path) -> None:
    with Emulator(schema_dirs=[schemas], render=False, job_seconds=0, balance=0.5) as emu:
        with client_for(emu, schemas) as client:
            client.run(CLIP, {"prompt": "one"})  # $0.50: the balance is now spent
            with pytest.raises(InsufficientBalanceError) as caught:
                client.submit(CLIP, {"prompt": "two"})
        assert emu.stats()["spent"] == pytest.approx(0.5)
        assert emu.stats()["jobs"] == 1
    text = str(caught.value)
    assert caught.value.status_code == 402 and caught.value.error_code == 400002
    assert "top it up on https://www.runcomfy.com" in text


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (402, {"message": "Payment Required"}),  # the HTTP status alone
        (400, {"error_code": 400002, "error_message": "insufficient balance"}),  # the code alone
        (200, {"error_code": "400002", "error_message": "insufficient balance"}),
    ],
)
def test_402_and_error_400002_both_mean_a_spent_balance(status: int, body: dict[str, Any]) -> None:
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        return httpx.Response(status, json=body)

    http = httpx.Client(transport=httpx.MockTransport(handler))
    client = Client(base_url="https://api.test", api_key="k", http_client=http)
    with client, pytest.raises(InsufficientBalanceError) as caught:
        client.submit("community/wan-2-1/fusionx/image-to-video", {"prompt": "p", "image": IMG})
    assert "top it up on https://www.runcomfy.com" in str(caught.value)
    assert len(sent) == 1  # nothing was created: refused, never resent


# -- the command line shows what a job cost ---------------------------------------------------


def cli_for(emu: Emulator, schemas: Path, *args: str) -> Result:
    env = {
        "RUNCOMFY_API_KEY": emu.api_key,
        "RUNCOMFY_BASE_URL": emu.base_url,
        "RUNCOMFY_SCHEMA_PATH": str(schemas),
    }
    return CliRunner().invoke(cli, list(args), env=env)


def test_run_wait_and_result_show_the_cost(emu: Emulator, schemas: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    ran = cli_for(
        emu, schemas, "run", CLIP, "--prompt", "a boat", "--duration", "10", "--out", str(out)
    )
    assert ran.exit_code == 0, ran.output
    assert "cost: $1.00" in ran.stderr and "cost" not in ran.stdout  # stdout: the saved paths
    as_json = cli_for(emu, schemas, "run", CLIP, "--prompt", "a boat", "--out", str(out), "--json")
    document = json.loads(as_json.stdout)
    assert document["status"] == "completed" and document["cost"] == pytest.approx(0.5)
    rid = document["request_id"]
    shown = cli_for(emu, schemas, "result", rid)
    assert shown.exit_code == 0 and f"{rid}  completed  cost: $0.50" in shown.stdout
    assert json.loads(cli_for(emu, schemas, "result", rid, "--json").stdout)["cost"] == 0.5
    waited = cli_for(emu, schemas, "wait", rid)
    assert "cost: $0.50" in waited.stderr
    assert json.loads(cli_for(emu, schemas, "wait", rid, "--json").stdout)["cost"] == 0.5
    # A model without a price: the API reports no cost, and the CLI says nothing about it.
    free = cli_for(emu, schemas, "run", FREE, "--prompt", "a boat", "--out", str(out))
    assert free.exit_code == 0 and "cost" not in free.output
    free_doc = cli_for(emu, schemas, "run", FREE, "--prompt", "x", "--out", str(out), "--json")
    assert json.loads(free_doc.stdout)["cost"] is None  # the key is always there


# -- batches: the cost recorded, capped, and a spent balance ---------------------------------------


def _batch_file(tmp_path: Path, count: int, model: str = CLIP) -> Path:
    path = tmp_path / "jobs.jsonl"
    lines = [
        json.dumps({"id": f"job-{n}", "model": model, "prompt": f"p{n}"}) for n in range(count)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_batch(emu: Emulator, schemas: Path, *args: str) -> Result:
    env = {
        "RUNCOMFY_API_KEY": emu.api_key,
        "RUNCOMFY_BASE_URL": emu.base_url,
        "RUNCOMFY_SCHEMA_PATH": str(schemas),
    }
    return CliRunner().invoke(cli, ["batch", *args], env=env)


def test_max_cost_never_goes_past_the_cap_and_resumes_with_a_higher_one(
    schemas: Path, tmp_path: Path
) -> None:
    file, out = _batch_file(tmp_path, 5), tmp_path / "out"
    with Emulator(schema_dirs=[schemas], render=False, job_seconds=0) as emu:
        first = run_batch(emu, schemas, str(file), "--out", str(out), "--max-cost", "1.2", "--json")
        assert first.exit_code == 1, first.output
        report = json.loads(first.stdout)
        # $0.50 each: two fit under $1.20, a third would make $1.50.
        assert report["counts"] == {"downloaded": 2, "pending": 3}
        assert report["cost"] == {"total": pytest.approx(1.0), "lines": 2, "max_cost": 1.2}
        assert report["stopped"].startswith("--max-cost: line")
        assert len(report["unsubmitted"]) == 3
        pending = [line for line in report["lines"] if line["state"] == "pending"]
        assert all(
            line["error"]["message"].startswith("not submitted: --max-cost") for line in pending
        )
        assert emu.stats()["jobs"] == 2
        with Journal(tmp_path / "out.batch.sqlite") as journal:
            costs = sorted(row.cost for row in journal.rows() if row.cost is not None)
        assert costs == [pytest.approx(0.5)] * 2

        # The journal's earlier costs count: the same cap submits nothing more.
        again = run_batch(emu, schemas, str(file), "--out", str(out), "--max-cost", "1.2")
        assert again.exit_code == 1 and emu.stats()["jobs"] == 2
        assert "3 line(s) left unsubmitted" in again.stderr
        assert "cost $1.00 (2 lines reported one)" in again.stdout
        raised = run_batch(emu, schemas, str(file), "--out", str(out), "--max-cost", "5")
        assert raised.exit_code == 0, raised.output
        assert emu.stats()["jobs"] == 5


def test_max_cost_refuses_up_front_a_model_without_a_price(schemas: Path, tmp_path: Path) -> None:
    file = _batch_file(tmp_path, 2, model=FREE)
    with Emulator(schema_dirs=[schemas], render=False, job_seconds=0) as emu:
        result = run_batch(emu, schemas, str(file), "--out", str(tmp_path / "o"), "--max-cost", "9")
        assert result.exit_code == 2
        assert f"{FREE} has no known price" in result.stderr and "lines 1, 2" in result.stderr
        assert emu.stats()["submissions"] == 0


def test_a_spent_balance_stops_submitting_and_keeps_what_is_in_flight(
    schemas: Path, tmp_path: Path
) -> None:
    file, out = _batch_file(tmp_path, 4), tmp_path / "out"
    with Emulator(schema_dirs=[schemas], render=False, job_seconds=0, balance=1.0) as emu:
        result = run_batch(emu, schemas, str(file), "--out", str(out), "--concurrency", "1")
        assert result.exit_code == 1
        assert emu.stats()["jobs"] == 2  # $0.50 each: the third submit met the 402
    assert "stopped submitting: the balance is spent" in result.stderr
    assert "2 line(s) left unsubmitted (lines 3, 4)" in result.stderr
    assert "top it up" in result.stderr
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "job-0",
        "job-1",
    ]


def test_a_journal_from_before_costs_opens_and_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.batch.sqlite"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE lines (line INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, model_id TEXT "
        "NOT NULL, digest TEXT NOT NULL, state TEXT NOT NULL, request_id TEXT, files TEXT, "
        "error TEXT, resubmitted INTEGER NOT NULL DEFAULT 0, updated REAL NOT NULL)"
    )
    db.execute("INSERT INTO lines VALUES (1, 'a', 'm/x', 'd', 'downloaded', 'r', '[]', NULL, 0, 0)")
    db.commit()
    db.close()
    with Journal(path) as journal:
        assert journal.rows()[0].cost is None
        journal.set_state(1, "downloaded", cost=0.25)
        assert journal.rows()[0].cost == 0.25


class _TakingTurns(VirtualClock):
    """A virtual clock whose sleeps let the batch's other jobs run (as a real wait would)."""

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)


def test_a_spent_balance_mid_batch_keeps_the_jobs_in_flight(
    registry: Registry, tmp_path: Path
) -> None:
    clock = _TakingTurns()
    submits: list[str] = []

    def answer(kind: str, request: httpx.Request, now: float) -> httpx.Response:
        if kind == "submit":
            submits.append(request.url.path)
            if len(submits) == 3:  # the balance ran out with two jobs running
                return ok({"error_code": 400002, "error_message": "insufficient balance"}, 402)
            return ok({"request_id": f"r{len(submits)}", "status": "in_queue"})
        rid = request.url.path.split("/")[3]
        if kind == "status":  # the two jobs run on after the refusal, then finish
            return ok(
                {"request_id": rid, "status": "completed" if len(submits) >= 3 else "in_progress"}
            )
        return ok({"request_id": rid, "status": "completed", "output": {}, "cost": 0.5})

    script = Script(clock, answer)
    lines, problems = check_batch(
        [json.dumps({"id": f"job-{n}", "model": CLIP, "prompt": f"p{n}"}) for n in range(4)],
        registry=registry,
    )
    assert problems == []
    batch = Batch(lines, tmp_path / "out", concurrency=3)

    async def main() -> list[LineResult]:
        async with scripted_async(script, registry=registry) as client:
            return [line async for line in batch.run(client)]

    results = {r.name: r for r in asyncio.run(main())}
    assert len(submits) == 3  # nothing submitted after the refusal
    kinds = script.kinds()
    refused = [n for n, kind in enumerate(kinds) if kind == "submit"][2]
    # The two jobs accepted before the refusal were followed to their end after it.
    assert kinds[refused + 1 :].count("result") == 2
    finished = [r for r in results.values() if r.request_id is not None]
    assert sorted(r.request_id for r in finished) == ["r1", "r2"]
    assert all(r.state == "downloaded" and r.cost == 0.5 for r in finished)  # kept, not abandoned
    left = [r for r in results.values() if r.request_id is None]
    assert len(left) == 2 and all(r.state == "pending" for r in left)
    assert batch.stop_reason is not None and "balance is spent" in batch.stop_reason
