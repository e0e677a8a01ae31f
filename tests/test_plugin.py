"""The pytest plugin users get with the package: its fixtures work as documented."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runcomfy_client import Client
from runcomfy_client.emulator import Emulator

from .conftest import FUSIONX, png_bytes


def test_fixtures_run_a_job_on_the_session_emulator(
    runcomfy_client: Client, runcomfy_emulator: Emulator
) -> None:
    assert runcomfy_client.base_url == runcomfy_emulator.base_url
    image = runcomfy_emulator.upload(png_bytes(), "in.png")
    result = runcomfy_client.run(FUSIONX, {"prompt": "p", "image": image, "resolution": "480x480"})
    assert result.video is not None
    assert result.video.startswith(runcomfy_emulator.base_url)


def test_the_fixtures_poll_at_the_emulators_pace(
    runcomfy_client: Client, runcomfy_emulator: Emulator
) -> None:
    # Emulator jobs take a fraction of real ones: polling them every 3 s would make each test
    # wait seconds per job.
    assert runcomfy_client.polling.settings.interval == runcomfy_emulator.config.job_seconds / 4


# -- without the emulator extra ----------------------------------------------------------------

_PROJECT_TESTS = """
def test_unrelated():
    assert 1 + 1 == 2

def test_wants_the_emulator(runcomfy_client):
    pass
"""

# Makes the emulator extra's packages unimportable, as in an install without it.
_BLOCK_EXTRA = """
import sys

class _NoExtra:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {"aiohttp", "av", "numpy", "PIL"}:
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, _NoExtra())
"""


def _run_pytest(
    python: str, project: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(project)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _check_outcome(run: subprocess.CompletedProcess[str]) -> None:
    out = run.stdout + run.stderr
    assert "Error while loading plugin" not in out, out
    assert "1 passed" in out and "1 error" in out, out
    assert "pip install 'runcomfy-client[emulator]'" in out, out


def test_plugin_loads_without_the_emulator_extra(tmp_path: Path) -> None:
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(_BLOCK_EXTRA)
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_theirs.py").write_text(_PROJECT_TESTS)
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    _check_outcome(_run_pytest(sys.executable, project, env))


@pytest.mark.slow
def test_plugin_in_a_fresh_venv_with_only_the_base_package(tmp_path: Path) -> None:
    """The shipped bug, reproduced as a user meets it: base install + pytest, nothing else."""
    root = Path(__file__).resolve().parents[1]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", str(root), "pytest"],
        check=True,
        timeout=900,
    )
    missing = subprocess.run([python, "-c", "import aiohttp"], capture_output=True, check=False)
    assert missing.returncode != 0  # the extra really is absent
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_theirs.py").write_text(_PROJECT_TESTS)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    _check_outcome(_run_pytest(python, project, env))
