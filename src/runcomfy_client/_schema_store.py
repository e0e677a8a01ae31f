"""How schema folders are written: the one writer of ``schema add``, ``schema sync`` and derive.

- A schema fetched from the API is stored as the API gave it, as JSON text (``schema_text``);
  a schema read from a file or a page keeps its own text.
- Every file is written to a temporary name beside it and renamed into place, so an interrupted
  run leaves each file whole: the old one or the new one.
- A file that already holds exactly the new bytes is not written again (its mtime is kept), so
  tools that look at files (``make generate``, editors, build caches) see only real changes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._errors import SchemaError

__all__ = ["input_schema_of", "schema_text", "write_text"]


def schema_text(schema: Mapping[str, Any]) -> str:
    """A schema object as its file holds it: indented JSON, non-ASCII kept, one final newline."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def input_schema_of(body: Mapping[str, Any], model_id: str) -> dict[str, Any]:
    """The ``input_schema`` object of an API record (some APIs send it as a JSON string);
    SchemaError when there is none."""
    schema = body.get("input_schema")
    if isinstance(schema, str):  # some APIs return the schema as a JSON string
        from ._registry import parse_json

        schema = parse_json(schema, file=f"the API's answer for {model_id}")
    if not isinstance(schema, dict):
        raise SchemaError(f"the API's answer for {model_id} has no input_schema object")
    return schema


def write_text(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` through a temporary name; False (nothing touched) when the
    file already holds exactly these bytes."""
    data = text.encode("utf-8")
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except OSError:
        pass  # missing or unreadable: write it
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temp.write_bytes(data)
        temp.replace(path)
    finally:
        temp.unlink(missing_ok=True)
    return True
