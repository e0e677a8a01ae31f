"""Batches against a hostile world (issue 16 item 6): a malformed key, a full disk, a corrupt or
foreign journal, renumbered lines, two journals on one folder, many same-named outputs."""

from __future__ import annotations

import errno
import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from runcomfy_client import Client, _download
from runcomfy_client._download import plan_targets
from runcomfy_client._download_flow import Transfer
from runcomfy_client._journal import Journal
from runcomfy_client._polling_memory import PollingMemory
from runcomfy_client.cli import cli
from runcomfy_client.emulator import Emulator

from .conftest import FUSIONX, png_bytes
from .test_batch import fusionx_rows, journal_rows, run_batch, submits, write_lines


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(workers=4, job_seconds=0.02, render=False) as emu:
        yield emu


@pytest.fixture(scope="module")
def image(emulator: Emulator) -> str:
    return emulator.upload(png_bytes(), "frame.png")


def batch_args(path: Path, out: Path, *more: str) -> list[str]:
    return [str(path), "--out", str(out), "--model", FUSIONX, *more]


# -- a malformed key fails before any line is touched ------------------------------------------


def test_a_malformed_key_touches_no_line(emulator: Emulator, image: str, tmp_path: Path) -> None:
    # Before item 1: every line was marked "uncertain" although nothing had been sent.
    path = write_lines(tmp_path / "jobs.jsonl", fusionx_rows(image, 2, "key"))
    out = tmp_path / "out"
    assert run_batch(emulator, batch_args(path, out)).exit_code == 0
    journal = tmp_path / "out.batch.sqlite"
    path.write_text(
        path.read_text() + json.dumps({"id": "new", "prompt": "p", "image": image}) + "\n"
    )
    before, written = submits(emulator), journal.read_bytes()
    env = {
        "RUNCOMFY_BASE_URL": emulator.base_url,
        "RUNCOMFY_API_KEY": "sk-new\n# old key: sk-old",  # a pasted line too many
        "RUNCOMFY_API_KEY_FILE": "",
    }
    result = CliRunner().invoke(cli, ["batch", *batch_args(path, out)], env=env)
    assert result.exit_code == 2
    assert "line break" in result.stderr and "sk-old" not in result.output + result.stderr
    assert submits(emulator) == before
    assert journal.read_bytes() == written  # not a line marked, not a byte changed


# -- a corrupt or foreign journal is refused, left as it was -----------------------------------


def _refused(emulator: Emulator, path: Path, out: Path, *more: str) -> str:
    before = submits(emulator)
    result = run_batch(emulator, batch_args(path, out, *more))
    assert result.exit_code == 2, result.output + result.stderr
    assert "Traceback" not in result.stderr
    assert submits(emulator) == before
    return " ".join(result.stderr.split())


def test_garbage_and_truncated_journals_are_refused_untouched(
    emulator: Emulator, image: str, tmp_path: Path
) -> None:
    path = write_lines(tmp_path / "jobs.jsonl", fusionx_rows(image, 3, "corrupt"))
    journal = tmp_path / "garbage.sqlite"
    journal.write_bytes(b"\x00\xffnot a database at all" * 50)
    said = _refused(emulator, path, tmp_path / "a", "--journal", str(journal))
    assert f"the journal {journal} is not a batch journal" in said
    assert journal.read_bytes() == b"\x00\xffnot a database at all" * 50

    # A real journal, cut in half (a copy that stopped, a disk that failed).
    good = tmp_path / "b.batch.sqlite"
    assert run_batch(emulator, batch_args(path, tmp_path / "b")).exit_code == 0
    with sqlite3.connect(good) as db:  # fold the WAL in, so the file holds every page
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = good.read_bytes()
    cut = tmp_path / "cut.batch.sqlite"
    cut.write_bytes(data[: len(data) // 2])
    said = _refused(emulator, path, tmp_path / "cut", "--journal", str(cut))
    assert f"the journal {cut} is damaged" in said
    assert cut.read_bytes() == data[: len(data) // 2]


def test_another_programs_database_is_refused_untouched(
    emulator: Emulator, image: str, tmp_path: Path
) -> None:
    # Before: the batch created its table inside the other program's database and ran.
    path = write_lines(tmp_path / "jobs.jsonl", fusionx_rows(image, 2, "foreign"))
    other = tmp_path / "app.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO users (name) VALUES ('ada')")
    before = other.read_bytes()
    said = _refused(emulator, path, tmp_path / "out", "--journal", str(other))
    assert f"the journal {other} is an SQLite database of another program (tables: users)" in said
    assert other.read_bytes() == before


def test_a_journal_of_another_output_folder_is_refused(
    emulator: Emulator, image: str, tmp_path: Path
) -> None:
    path = write_lines(tmp_path / "jobs.jsonl", fusionx_rows(image, 2, "elsewhere"))
    journal = tmp_path / "j.sqlite"
    assert (
        run_batch(emulator, batch_args(path, tmp_path / "a", "--journal", str(journal))).exit_code
        == 0
    )
    said = _refused(emulator, path, tmp_path / "b", "--journal", str(journal))
    assert f"belongs to the batch writing to {(tmp_path / 'a').resolve()}" in said
    assert not list((tmp_path / "b").glob("elsewhere-*"))


def test_an_edited_input_file_is_refused(emulator: Emulator, image: str, tmp_path: Path) -> None:
    rows = fusionx_rows(image, 3, "edited")
    path = write_lines(tmp_path / "jobs.jsonl", rows)
    assert run_batch(emulator, batch_args(path, tmp_path / "out")).exit_code == 0
    rows[1]["prompt"] = "something else"
    write_lines(path, rows)
    said = _refused(emulator, path, tmp_path / "out")
    assert "line(s) 2 of the batch changed since the journal" in said


# -- renumbered lines ----------------------------------------------------------------------------


def test_renumbered_lines_are_refused_and_nothing_is_paid_twice(
    emulator: Emulator, image: str, tmp_path: Path
) -> None:
    # Before: a blank line above shifted every number: AssertionError (row not found); a line
    # inserted above ran as new lines while the journal kept the old numbers' jobs.
    rows = fusionx_rows(image, 3, "renumbered")
    path = write_lines(tmp_path / "jobs.jsonl", rows)
    out = tmp_path / "out"
    assert run_batch(emulator, batch_args(path, out)).exit_code == 0
    ids = {
        name: row["request_id"] for name, row in journal_rows(tmp_path / "out.batch.sqlite").items()
    }
    path.write_text("\n" + path.read_text())  # a blank line on top
    said = _refused(emulator, path, out)
    assert "lines were renumbered" in said
    assert "line 2 ('renumbered-0') was line 1" in said
    path.write_text(path.read_text()[1:])  # restored: the run resumes, nothing is submitted
    before = submits(emulator)
    assert run_batch(emulator, batch_args(path, out)).exit_code == 0
    assert submits(emulator) == before
    after = journal_rows(tmp_path / "out.batch.sqlite")
    assert {name: row["request_id"] for name, row in after.items()} == ids


# -- one output folder, one journal -----------------------------------------------------------


def test_a_second_journal_on_a_running_folder_is_refused(
    emulator: Emulator, image: str, tmp_path: Path
) -> None:
    path = write_lines(tmp_path / "jobs.jsonl", fusionx_rows(image, 2, "locked"))
    out = tmp_path / "out"
    running = tmp_path / "first.sqlite"
    with Journal(running, folder=out):  # the first batch is running
        said = _refused(emulator, path, out, "--journal", str(tmp_path / "second.sqlite"))
    assert (
        f"the output folder {out} is in use by another batch (journal {running.resolve()}" in said
    )
    assert "pay for every line twice" in said


def test_a_folder_reached_through_a_symlink_keeps_its_journal(
    emulator: Emulator, image: str, tmp_path: Path
) -> None:
    # Before: out/ and link/ -> out/ had two default journals, and every line was paid twice.
    path = write_lines(tmp_path / "jobs.jsonl", fusionx_rows(image, 2, "symlink"))
    out = tmp_path / "out"
    assert run_batch(emulator, batch_args(path, out)).exit_code == 0
    link = tmp_path / "link"
    link.symlink_to(out, target_is_directory=True)
    said = _refused(emulator, path, link)
    assert f"belongs to the batch journal {(tmp_path / 'out.batch.sqlite').resolve()}" in said


# -- a full disk: the journal, the outputs ---------------------------------------------------


class _FullDisk:
    """A journal connection whose disk fills up when a job's request id is to be recorded."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql.startswith("UPDATE lines SET") and "request_id = ?" in sql:
            raise sqlite3.OperationalError("database or disk is full")
        return self._db.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def test_a_full_disk_under_the_journal_loses_no_job(
    emulator: Emulator, image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: the failed write was "a poisoned line", whose own record failed again: traceback.
    path = write_lines(tmp_path / "jobs.jsonl", fusionx_rows(image, 3, "full"))
    out = tmp_path / "out"
    connect = Journal._connect
    monkeypatch.setattr(Journal, "_connect", lambda self: _FullDisk(connect(self)))
    before = submits(emulator)
    said = _refused_after_submit(emulator, path, out)
    assert "the disk is full: the journal" in said
    created = re.findall(r"line (\d+): ([0-9a-f-]{8,})", said)
    assert len(created) == 1 and submits(emulator) == before + 1  # concurrency 1: one job
    line, request_id = created[0]
    with Client(base_url=emulator.base_url, api_key=emulator.api_key) as client:
        assert client.status(request_id) is not None  # the printed id is the real job's

    monkeypatch.undo()  # space freed: the same command resumes
    result = run_batch(emulator, batch_args(path, out, "--concurrency", "1"))
    assert submits(emulator) == before + 3  # the unrecorded job was not submitted again
    rows = journal_rows(tmp_path / "out.batch.sqlite")
    assert rows[f"full-{int(line) - 1}"]["state"] == "uncertain"
    assert result.exit_code == 1  # one line uncertain: said so, its id printed before


def _refused_after_submit(emulator: Emulator, path: Path, out: Path) -> str:
    result = run_batch(emulator, batch_args(path, out, "--concurrency", "1"))
    assert result.exit_code == 2, result.output + result.stderr
    assert "Traceback" not in result.stderr
    return " ".join(result.stderr.split())


def test_a_full_disk_under_the_outputs_stops_the_batch_and_keeps_the_jobs(
    emulator: Emulator, image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: ENOSPC was retried as a network fault, then every line failed in turn.
    path = write_lines(tmp_path / "jobs.jsonl", fusionx_rows(image, 3, "nospace"))
    out = tmp_path / "out"

    def full(self: Transfer, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Transfer, "body", full)
    before = submits(emulator)
    said = _refused_after_submit(emulator, path, out)
    assert "the disk is full: line 1's outputs" in said and "free some space" in said
    rows = journal_rows(tmp_path / "out.batch.sqlite")
    assert rows["nospace-0"]["state"] == "completed" and rows["nospace-0"]["request_id"]

    monkeypatch.undo()
    result = run_batch(emulator, batch_args(path, out, "--concurrency", "1"))
    assert result.exit_code == 0, result.stderr
    assert submits(emulator) == before + 3  # every line paid for once
    assert all(
        row["state"] == "downloaded" for row in journal_rows(tmp_path / "out.batch.sqlite").values()
    )


# -- output naming: N same-named outputs in O(N) tries ----------------------------------------


def _count_tries(monkeypatch: pytest.MonkeyPatch, directory: Path) -> list[int]:
    """Counts the candidate paths plan_targets builds (one ``directory / name`` per try)."""
    tries = [0]
    cls = type(directory.resolve())
    joined = cls.__truediv__

    def counting(self: Path, other: str) -> Path:
        tries[0] += 1
        return joined(self, other)

    monkeypatch.setattr(cls, "__truediv__", counting)
    return tries


@pytest.mark.parametrize("overwrite", [False, True])
def test_same_named_outputs_cost_linear_tries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overwrite: bool
) -> None:
    # Before: the n-th same-named output tried every earlier number again (n tries, each a
    # scan of the list of chosen paths): 1,000 outputs took 46 s of CPU.
    count = 300
    (tmp_path / "output.png").write_bytes(b"x")  # an existing file is skipped unless overwrite
    tries = _count_tries(monkeypatch, tmp_path)
    paths = plan_targets(
        ["https://cdn.example/a/output.png"] * count, tmp_path, overwrite=overwrite
    )
    assert len(set(paths)) == count
    assert tries[0] <= 2 * count + 2


def test_twenty_thousand_colliding_names_are_unique_and_in_order(tmp_path: Path) -> None:
    urls = [f"https://cdn.example/{i}/output.png" for i in range(20_000)]
    urls += ["https://cdn.example/x/output-2.png"]  # collides with a numbered name
    paths = plan_targets(urls, tmp_path)
    names = [p.name for p in paths]
    assert len(set(names)) == len(names)
    assert names[:3] == ["output.png", "output-2.png", "output-3.png"]
    assert names[-2] == "output-20000.png"
    assert names[-1].startswith("output-2") and names[-1] not in names[:-1]
    assert all(p.parent == tmp_path.resolve() for p in paths)
    assert _download.safe_name(urls[0]) == "output.png"


# -- the learned running time has a ceiling, in the memory's file too --------------------------


def test_a_runaway_job_is_learned_with_a_ceiling_that_survives_the_file(tmp_path: Path) -> None:
    # The policy caps what it records (test_polling); a memory fed directly capped nothing, and
    # a mean past a week is refused when read back: the model's learning was lost.
    path = tmp_path / "polling.json"
    memory = PollingMemory(path, clock=lambda: 1_000_000.0)
    memory.record_running("m", 60.0)
    memory.record_running("m", 1e12, unsure=1e12)  # a job "running" for 30,000 years
    memory.flush()
    again = PollingMemory(path, clock=lambda: 1_000_000.0).running_time("m")
    assert again is not None
    mean, spread = again
    assert mean <= 7 * 86400.0 and spread <= 7 * 86400.0
