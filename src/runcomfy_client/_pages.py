"""Reading a model's schemas out of a saved RunComfy API page (the page's text, as the seeds are).

A page names its model in the submit example (``--url .../v1/models/<id>``) and shows the schemas
under the headings "Input schema" and "Output schema", each followed by a JSON object. The JSON
text is kept exactly as published, so the schema file written from it is verbatim.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ._errors import SchemaError

__all__ = ["MODEL_ID_PATTERN", "ApiPage", "is_model_id", "parse_api_page"]

_URL_ID = re.compile(r"/v1/models/([A-Za-z0-9][A-Za-z0-9._/-]*[A-Za-z0-9])")
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
MODEL_ID_PATTERN = "segments of letters, digits, '.', '_' or '-' joined by '/'"


def is_model_id(text: str) -> bool:
    """True for an id that is also a safe relative path (no ``..``, no hidden segments)."""
    parts = text.split("/")
    return bool(parts) and all(_SEGMENT.match(p) and ".." not in p for p in parts)


@dataclass(frozen=True)
class ApiPage:
    """What a page says about its model. ``*_text`` is the JSON exactly as the page shows it."""

    model_id: str
    input_schema: dict[str, Any]
    input_text: str
    output_schema: dict[str, Any] | None
    output_text: str | None


def _json_after(text: str, heading: str, source: str) -> tuple[dict[str, Any], str] | None:
    match = re.search(rf"^[ \t]*{re.escape(heading)}[ \t]*\r?$", text, re.MULTILINE)
    if match is None:
        return None
    start = text.find("{", match.end())
    between = text[match.end() : start] if start >= 0 else ""
    if start < 0 or between.strip():
        raise SchemaError(f"no JSON object follows the {heading!r} heading", file=source)
    try:
        value, end = json.JSONDecoder().raw_decode(text, start)
    except json.JSONDecodeError as exc:
        line = text.count("\n", 0, exc.pos) + 1
        raise SchemaError(
            f"the JSON under {heading!r} does not parse: {exc.msg}", file=source, line=line
        ) from None
    if not isinstance(value, dict):
        raise SchemaError(f"the {heading!r} is not a JSON object", file=source)
    return value, text[start:end]


def parse_api_page(text: str, *, source: str = "<page>") -> ApiPage:
    """The model id and schemas of a saved API page; SchemaError says what is missing."""
    ids = list(dict.fromkeys(m.group(1) for m in _URL_ID.finditer(text)))
    if not ids:
        raise SchemaError(
            "no model id found (looked for a '/v1/models/<model id>' URL in the examples)",
            file=source,
        )
    if len(ids) > 1:
        raise SchemaError(f"the page names several models: {', '.join(ids)}", file=source)
    found = _json_after(text, "Input schema", source)
    if found is None:
        raise SchemaError("no 'Input schema' heading followed by a JSON object", file=source)
    output = _json_after(text, "Output schema", source)
    output_schema = None
    if output is not None:
        output_schema = output[0]
        wrapped = output_schema.get("output")
        if isinstance(wrapped, dict) and len(output_schema) == 1:
            output_schema = wrapped
    return ApiPage(
        model_id=ids[0],
        input_schema=found[0],
        input_text=found[1],
        output_schema=output_schema,
        output_text=output[1] if output is not None else None,
    )
