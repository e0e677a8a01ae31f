"""Money: prices, estimates, reported costs, a batch's cost cap and a spent balance.

The emulator charges each completed job from its model's record (per output, or per second of
the asked duration) and, with a balance, answers 402 once it is spent: the client's estimate and
the emulator's charge are two separate readings of the same price.
"""

from __future__ import annotations

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
from runcomfy_client.cli import cli
from runcomfy_client.emulator import Emulator

CLIP = "acme/clip/text-to-video"  # $0.10 per second, duration 5 or 10 (default 5)
PICTURE = "acme/picture/text-to-image"  # $0.04 per output, num_images
FREE = "acme/unpriced/text-to-video"  # no price published


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
    assert sorted(p.name for p in out.iterdir()) == ["job-0", "job-1"]


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
