"""What polling learned, kept across processes in the user's cache folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from runcomfy_client import Client, ConfigurationError, PollingMemory, PollingPolicy
from runcomfy_client._polling import default_policy
from runcomfy_client._polling_memory import (
    FIRST_SPREAD,
    MAX_AGE,
    MAX_FILE_BYTES,
    MAX_MODELS,
    cache_dir,
)

DAY = 86400.0


class WallClock:
    def __init__(self, now: float = 1.8e9) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "polling.json"


def test_what_one_process_learns_the_next_one_knows(path: Path) -> None:
    first = PollingMemory(path, scope="api")
    first.record_running("m", 150.0)
    first.record_queue_rate("m", 0.25)
    first.flush()
    second = PollingMemory(path, scope="api")
    assert second.running_time("m") == pytest.approx((150.0, 150 * FIRST_SPREAD))
    assert second.queue_rate("m") == pytest.approx(0.25)
    assert PollingMemory(path, scope="another api").running_time("m") is None


def test_the_file_is_small_json_written_whole(path: Path) -> None:
    memory = PollingMemory(path, scope="api", save_every=0)
    for i in range(20):
        memory.record_running(f"model/{i}", 10.0 + i)
    data = json.loads(path.read_text())
    assert data["format"] == 1
    assert len(data["scopes"]["api"]) == 20
    assert [p.name for p in path.parent.iterdir()] == ["polling.json"]  # no temporary left


def test_writes_are_throttled_and_flush_writes_the_rest(path: Path) -> None:
    memory = PollingMemory(path, scope="api", save_every=3600)
    memory.record_running("a", 10.0)  # the first is written at once
    memory.record_running("b", 20.0)
    assert set(json.loads(path.read_text())["scopes"]["api"]) == {"a"}
    memory.flush()
    assert set(json.loads(path.read_text())["scopes"]["api"]) == {"a", "b"}


def test_two_processes_keep_each_others_models(path: Path) -> None:
    one, two = PollingMemory(path, scope="api"), PollingMemory(path, scope="api")
    one.running_time("x")  # both read the (empty) file first
    two.running_time("x")
    one.record_running("a", 10.0)
    two.record_running("b", 20.0)
    one.flush()
    two.flush()
    fresh = PollingMemory(path, scope="api")
    assert fresh.running_time("a") is not None
    assert fresh.running_time("b") is not None


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\xff\xfe not json",
        b"[1, 2, 3]",
        b'{"format": 99, "scopes": {}}',
        b'{"format": 1, "scopes": []}',
        b"[" * 100_000,
        b'{"format": 1, "scopes": {"api": {"m": {"mean": 1' + b"0" * 5000 + b"}}}}",
        b" " * (MAX_FILE_BYTES + 1),
    ],
    ids=["empty", "binary", "list", "future", "bad-scopes", "deep", "huge-number", "oversized"],
)
def test_an_unreadable_file_is_ignored_then_replaced(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    memory = PollingMemory(path, scope="api")
    assert memory.running_time("m") is None
    memory.record_running("m", 30.0)
    memory.flush()
    assert PollingMemory(path, scope="api").running_time("m") == pytest.approx(
        (30.0, 30 * FIRST_SPREAD)
    )


@pytest.mark.parametrize(
    "entry",
    [
        {"mean": -5, "updated": 1.8e9},
        {"mean": float("inf"), "updated": 1.8e9},
        {"mean": 1e12, "updated": 1.8e9},
        {"mean": "150", "updated": 1.8e9},
        {"mean": 150, "spread": -1, "updated": 1.8e9},
        {"mean": 150, "count": True, "updated": 1.8e9},
        {"rate": 0, "updated": 1.8e9},
        {"mean": 150},
        "150",
    ],
)
def test_entries_that_make_no_sense_are_dropped(path: Path, entry: object) -> None:
    path.parent.mkdir(parents=True)
    good = {"mean": 60.0, "spread": 1.0, "count": 3, "rate": None, "updated": 1.8e9}
    raw = json.dumps({"format": 1, "scopes": {"api": {"bad": entry, "good": good}}})
    path.write_text(raw.replace("Infinity", "1e999"))
    memory = PollingMemory(path, scope="api", clock=WallClock())
    assert memory.running_time("bad") is None
    assert memory.queue_rate("bad") is None
    assert memory.running_time("good") == (60.0, 1.0)


def test_the_file_is_bounded(path: Path) -> None:
    clock = WallClock()
    memory = PollingMemory(path, scope="api", clock=clock, save_every=3600)
    for i in range(MAX_MODELS + 40):
        clock.now += 1
        memory.record_running(f"model/{i}", 10.0)
    memory.flush()
    kept = json.loads(path.read_text())["scopes"]["api"]
    assert len(kept) == MAX_MODELS
    assert "model/0" not in kept  # the least recently seen go first
    assert f"model/{MAX_MODELS + 39}" in kept
    assert path.stat().st_size < MAX_FILE_BYTES


def test_models_not_seen_for_months_are_forgotten(path: Path) -> None:
    clock = WallClock()
    PollingMemory(path, scope="api", clock=clock).record_running("m", 100.0)
    clock.now += MAX_AGE + DAY
    assert PollingMemory(path, scope="api", clock=clock).running_time("m") is None


def test_old_knowledge_counts_for_less() -> None:
    clock = WallClock()
    fresh, stale = PollingMemory(clock=clock), PollingMemory(clock=clock)
    for memory in (fresh, stale):
        memory.record_running("m", 150.0)
    clock.now += 60 * DAY
    stale.record_running("m", 40.0)
    clock.now -= 60 * DAY
    fresh.record_running("m", 40.0)
    fresh_mean = (fresh.running_time("m") or (0.0, 0.0))[0]
    stale_mean = (stale.running_time("m") or (0.0, 0.0))[0]
    assert fresh_mean == pytest.approx(150 - 0.3 * 110)
    assert stale_mean < 60  # a model that got faster while unused is relearned at once


def test_a_folder_that_cannot_be_written_costs_only_a_cold_start(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    memory = PollingMemory(blocked / "polling.json", scope="api")
    memory.record_running("m", 10.0)  # no error
    memory.flush()
    assert memory.running_time("m") is not None


# -- where the file lives ----------------------------------------------------------------------


def test_the_folder_follows_runcomfy_cache_dir_and_can_be_turned_off(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RUNCOMFY_CACHE_DIR", str(tmp_path / "moved"))
    assert cache_dir() == tmp_path / "moved"
    monkeypatch.setenv("RUNCOMFY_NO_CACHE", "1")
    assert cache_dir() is None
    assert PollingMemory.user_cache("api").path is None
    monkeypatch.setenv("RUNCOMFY_NO_CACHE", "0")
    assert cache_dir() == tmp_path / "moved"


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="XDG layout")
def test_the_default_folder_is_the_users_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNCOMFY_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere/cache")
    assert cache_dir() == Path("/somewhere/cache/runcomfy-client")


def test_tests_never_touch_the_real_cache() -> None:
    folder = cache_dir()
    assert folder is not None
    assert not folder.is_relative_to(Path.home() / ".cache")
    assert "user-cache" in folder.name


def test_clients_keep_what_they_learn_about_the_api_not_the_emulator() -> None:
    api = default_policy("https://model-api.runcomfy.net")
    assert api.memory.path == cache_dir() / "polling.json"  # type: ignore[operator]
    assert api.memory.scope == "model-api.runcomfy.net"
    assert default_policy("http://127.0.0.1:8000").memory.path is None


def test_runcomfy_poll_interval_scales_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNCOMFY_POLL_INTERVAL", "0.3")
    assert default_policy("https://api.test").settings.near_end_interval == pytest.approx(0.2)
    monkeypatch.setenv("RUNCOMFY_POLL_INTERVAL", "often")
    with pytest.raises(ConfigurationError, match=r"RUNCOMFY_POLL_INTERVAL.*'often'"):
        default_policy("https://api.test")


# -- end to end: a short script, then another, starts warm ----------------------------------------


def scripted_api() -> httpx.MockTransport:
    """Answers for one job at a time: queued, running, then done."""
    polls: dict[str, int] = {}

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST":
            rid = f"r{len(polls)}"
            polls[rid] = 0
            return httpx.Response(200, json={"request_id": rid})
        rid = path.split("/")[3]
        if path.endswith("/result"):
            return httpx.Response(
                200, json={"request_id": rid, "status": "completed", "output": {}}
            )
        polls[rid] += 1
        state = ["in_queue", "in_progress", "in_progress"]
        status = state[polls[rid] - 1] if polls[rid] <= len(state) else "completed"
        return httpx.Response(200, json={"request_id": rid, "status": status, "queue_position": 0})

    return httpx.MockTransport(answer)


@pytest.fixture
def transport() -> httpx.MockTransport:
    return scripted_api()


def test_a_client_writes_what_it_learned_when_closed_and_the_next_starts_warm(
    transport: httpx.MockTransport, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from .conftest import INPAINT

    monkeypatch.setenv("RUNCOMFY_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("RUNCOMFY_POLL_INTERVAL", "0.003")
    inputs = {
        "99_text": "x",
        "110_image": "https://a.test/1.png",
        "112_image": "https://a.test/2.png",
    }
    with Client(
        base_url="https://api.test", api_key="k", http_client=httpx.Client(transport=transport)
    ) as first:
        assert first.polling.expected(INPAINT) is None
        first.run(INPAINT, inputs)
    assert (tmp_path / "polling.json").exists()
    # A new process: nothing shared but the file.
    code = (
        "from runcomfy_client import Client\n"
        f"c = Client(base_url='https://api.test', api_key='k')\n"
        f"print(c.polling.expected({INPAINT!r}) is not None)\n"
    )
    env = {**os.environ, "RUNCOMFY_CACHE_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert out.stdout.strip() == "True", out.stderr


def test_a_policy_given_to_a_client_keeps_its_own_memory(transport: httpx.MockTransport) -> None:
    mine = PollingPolicy(memory=PollingMemory())
    with Client(
        base_url="https://api.test",
        api_key="k",
        http_client=httpx.Client(transport=transport),
        polling=mine,
    ) as client:
        assert client.polling is mine
        assert mine.memory.path is None


def test_config_shows_the_polling_pace_and_where_learning_is_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from runcomfy_client.cli import cli

    monkeypatch.setenv("RUNCOMFY_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("RUNCOMFY_POLL_INTERVAL")
    env = {"RUNCOMFY_API_KEY": "k", "RUNCOMFY_BASE_URL": "https://api.test"}
    out = CliRunner().invoke(cli, ["config", "--json"], env=env).output
    assert json.loads(out)["polling"] == {
        "interval": 3.0,
        "cache": str(tmp_path / "polling.json"),
    }
    out = CliRunner().invoke(cli, ["config"], env={**env, "RUNCOMFY_NO_CACHE": "1"}).output
    assert "at most every 3 s on average; learned running times kept in this process only" in out
