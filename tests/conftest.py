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
