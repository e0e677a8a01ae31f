from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runcomfy_client import Registry

FUSIONX = "community/wan-2-1/fusionx/image-to-video"
INPAINT = "community/wan-2-2/fun-inpaint"


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.delenv("RUNCOMFY_SCHEMA_PATH", raising=False)
    return Registry()


def write_schema(folder: Path, model_id: str, schema: Any) -> Path:
    path = folder / f"{model_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(schema if isinstance(schema, str) else json.dumps(schema, indent=2))
    return path


def png_bytes(
    colour: tuple[int, int, int] = (200, 40, 40), size: tuple[int, int] = (64, 48)
) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def wait_for(predicate: Any, timeout: float = 10.0, step: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy (test helper, not product code)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")
