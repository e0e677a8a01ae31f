# examples/test_my_pipeline.py
from pathlib import Path
from typing import Any

import pytest

from runcomfy_client import Client
from runcomfy_client.emulator import Emulator


@pytest.fixture(scope="session")
def runcomfy_emulator_options() -> dict[str, Any]:
    return {"job_seconds": 0.05, "render": False}  # tiny stand-in clips: fast tests


def test_my_pipeline(runcomfy_client: Client, runcomfy_emulator: Emulator) -> None:
    png = Path("examples/images/valley-day.png").read_bytes()
    image = runcomfy_emulator.upload(png, "in.png")
    result = runcomfy_client.run(
        "community/wan-2-1/fusionx/image-to-video", {"prompt": "p", "image": image}
    )
    assert result.video
