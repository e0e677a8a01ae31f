"""Batches against a hostile world (issue 16 item 6): a malformed key, a full disk, a corrupt or
foreign journal, renumbered lines, two journals on one folder, many same-named outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from runcomfy_client import _download
from runcomfy_client._download import plan_targets
from runcomfy_client._polling_memory import PollingMemory

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
