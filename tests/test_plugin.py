"""The pytest plugin users get with the package: its fixtures work as documented."""

from __future__ import annotations

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
