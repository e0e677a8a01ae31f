"""Reading a model's schemas out of a saved RunComfy API page (the page's text, as saved).

RunComfy serves its API pages in several layouts: numbered headings ("5. Schema", "Input
schema"), English prose without headings, localized prose (the schema's own ``title``
translated), and pages whose i18n keys were never translated (``modelApiDoc_...``). What they
share, and all this reader relies on:

- the model id is in the curl examples: ``--url https://.../v1/models/<model id>``, to the end
  of that line (ids may hold spaces: ``minimax/Hailuo Video 01 Live``);
- the first JSON object after ``--data`` is an example request body, never the schema;
- the input schema is a JSON object with ``"type": "object"`` and ``"properties"``, starting a
  line; the output schema, when shown, is ``{"output": {...}}``.

An id that cannot be read exactly is refused, never shortened; the JSON text is kept exactly as
published, so the schema file written from it is verbatim.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from ._errors import SchemaError
from ._model_ids import MODEL_ID_PATTERN, model_id_problem

__all__ = ["MAX_PAGE_BYTES", "MODEL_ID_PATTERN", "ApiPage", "is_model_id", "parse_api_page"]

MAX_PAGE_BYTES = 4 * 1024 * 1024
"""A saved page larger than this is refused (real pages are tens of kilobytes)."""
_MAX_ATTEMPTS = 500  # JSON objects tried per page: bounds the work on a hostile page

_CURL_URL = re.compile(r"--url[ \t]+(?P<url>[^\r\n]*)")
_MODELS_PATH = re.compile(r"^['\"]?https?://[^/\s'\"]+/v1/models/(?P<id>.*)$")
_EXAMPLE_BEFORE = re.compile(r"(?:--data(?:-raw|-binary)?|-d)[ \t]*['\"]?[ \t]*\Z")
_LINE_START_OBJECT = re.compile(r"^[ \t]*\{", re.MULTILINE)
_OUTPUT_KEYS = frozenset({"image", "images", "video", "videos", "audio", "audios"})


def is_model_id(text: str) -> bool:
    """True for an id that is also a safe relative path (see :mod:`._model_ids`)."""
    return model_id_problem(text) is None


@dataclass(frozen=True)
class ApiPage:
    """What a page says about its model. ``*_text`` is the JSON exactly as the page shows it."""

    model_id: str
    input_schema: dict[str, Any]
    input_text: str
    output_schema: dict[str, Any] | None
    output_text: str | None


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _read_id(url: str) -> str | None:
    """The model id in one ``--url`` argument, or None when it is not a models URL."""
    url = url.rstrip()
    if url.endswith("\\"):  # the shell's line continuation
        url = url[:-1].rstrip()
    match = _MODELS_PATH.match(url)
    if match is None:
        return None
    found = match.group("id")
    if url[:1] in "'\"" and found.endswith(url[0]):
        found = found[:-1]
    return unquote(found).strip("/")


def _model_id(text: str, source: str) -> str:
    ids: dict[str, int] = {}
    for match in _CURL_URL.finditer(text):
        found = _read_id(match.group("url"))
        if found is not None:
            ids.setdefault(found, _line_of(text, match.start()))
    if not ids:
        raise SchemaError(
            "no model id found (looked for a curl '--url .../v1/models/<model id>' line)",
            file=source,
        )
    if len(ids) > 1:
        listed = ", ".join(f"{i!r} (line {line})" for i, line in ids.items())
        raise SchemaError(f"the page names several models: {listed}", file=source)
    [(model_id, line)] = ids.items()
    problem = model_id_problem(model_id)
    if problem is None and any(mark in model_id for mark in ("'", '"', " --", "\t")):
        problem = "it runs into other text on its line"
    if problem is not None:
        raise SchemaError(
            f"cannot read the model id exactly from {model_id!r} (line {line}): {problem}; "
            "give the id as an argument and the schema with --from-file instead",
            file=source,
            line=line,
        )
    return model_id


@dataclass(frozen=True)
class _Object:
    value: Any
    start: int
    end: int
    example: bool


def _objects(text: str, source: str) -> tuple[list[_Object], tuple[int, str] | None]:
    """The JSON objects that start a line or follow ``--data``, in order, none inside another;
    and the first that does not parse (where it starts, and why), if one does not."""
    decoder = json.JSONDecoder()
    starts = sorted(
        {m.end() - 1 for m in _LINE_START_OBJECT.finditer(text)}
        | {m.end() for m in re.finditer(r"--data(?:-raw|-binary)?[ \t]*'", text)}
    )
    found: list[_Object] = []
    unfinished: tuple[int, str] | None = None
    covered = 0
    for attempt, start in enumerate(starts):
        if start < covered or start >= len(text) or text[start] != "{":
            continue
        if attempt >= _MAX_ATTEMPTS:
            raise SchemaError("the page holds too many JSON-like blocks to read", file=source)
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError as exc:
            if unfinished is None:
                reason = exc.msg.removesuffix(" at")
                unfinished = (start, f"{reason} at line {_line_of(text, exc.pos)}")
            continue
        except (RecursionError, ValueError):
            continue
        before = text[max(0, start - 20) : start]
        found.append(_Object(value, start, end, bool(_EXAMPLE_BEFORE.search(before))))
        covered = end
    return found, unfinished


def _is_schema(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and value.get("type") == "object"
        and isinstance(value.get("properties"), dict)
    )


def _wrapped_output(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict) and len(value) == 1 and _is_schema(value.get("output")):
        inner: dict[str, Any] = value["output"]
        return inner
    return None


def parse_api_page(text: str, *, source: str = "<page>") -> ApiPage:
    """The model id and schemas of a saved API page; SchemaError says what is missing."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_PAGE_BYTES:
        raise SchemaError(
            f"the page is larger than {MAX_PAGE_BYTES // (1024 * 1024)} MiB; refused", file=source
        )
    model_id = _model_id(text, source)
    objects, unfinished = _objects(text, source)
    outputs = [o for o in objects if not o.example and _wrapped_output(o.value) is not None]
    schemas = [o for o in objects if not o.example and _is_schema(o.value)]
    if not schemas:
        if unfinished is not None:
            line = _line_of(text, unfinished[0])
            raise SchemaError(
                f"no input schema found; the page looks cut short or damaged: the JSON object "
                f"at line {line} does not parse ({unfinished[1]}). Save the whole page (the "
                "schema comes near its end)",
                file=source,
                line=line,
            )
        raise SchemaError(
            'no input schema found: no JSON object with "type": "object" and "properties" '
            "besides the example request bodies",
            file=source,
        )
    found = schemas[0]
    for other in schemas[1:]:
        if set(other.value["properties"]) <= _OUTPUT_KEYS and not outputs:
            outputs.append(other)  # an output schema shown unwrapped
        else:
            raise SchemaError(
                f"the page holds several input schemas (lines {_line_of(text, found.start)} and "
                f"{_line_of(text, other.start)}); cannot tell which is the model's",
                file=source,
            )
    output = outputs[0] if outputs else None
    output_schema = None
    if output is not None:
        output_schema = _wrapped_output(output.value) or output.value
    return ApiPage(
        model_id=model_id,
        input_schema=found.value,
        input_text=text[found.start : found.end],
        output_schema=output_schema,
        output_text=text[output.start : output.end] if output is not None else None,
    )
