"""A job's inputs from the command line: an --input document, --set pairs and per-field flags.

Text from the command line is converted to each field's JSON type here; the schema's rules
(ranges, choices, required fields, media URLs) stay with the runtime's validator, so the CLI says
exactly what the library would. Every problem is collected and reported at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from .._dialect import show_value
from .._errors import InputValidationError
from .._registry import Field, ModelSchema
from .._validation import Problem, allowed_text

__all__ = ["gather_inputs", "parse_value", "parse_values"]

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
_WORDS = {
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a JSON list",
    "object": "a JSON object",
}


class _NotJSONError(ValueError):
    """Text for a list or object field that does not parse: the message says where."""


def _types(f: Field) -> list[str]:
    kinds = f.type if isinstance(f.type, list) else [f.type] if f.type else []
    # Try the strict types first: "5" for ["integer", "string"] is the integer 5.
    return sorted(kinds, key=lambda k: k == "string")


def _convert(kind: str, text: str) -> Any:
    if kind == "integer":
        return int(text.strip())
    if kind == "number":
        value = float(text.strip())
        return int(value) if value.is_integer() and "." not in text and "e" not in text else value
    if kind == "boolean":
        word = text.strip().lower()
        if word in _TRUE | _FALSE:
            return word in _TRUE
        raise ValueError(text)
    if kind in ("array", "object"):
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise _NotJSONError(f"{_WORDS[kind]}, got {text!r} (not JSON: {exc})") from None
        if not isinstance(value, list if kind == "array" else dict):
            raise ValueError(text)
        return value
    if kind == "null":
        if text.strip() == "null":
            return None
        raise ValueError(text)
    return text


def parse_value(f: Field, text: str) -> Any:
    """Turn command-line text into the JSON value ``f`` takes; ValueError says what was wrong.

    An enum option is matched by its text (``5``, ``"720x480 (3:2)"``); a list of media takes a
    JSON list or one URL or path (a list of one); structured values (lists, objects) are JSON;
    anything else is converted by the field's type and left to the validator to judge.
    """
    if f.media_array and not text.lstrip().startswith("["):
        return [text]
    if f.enum is not None:
        for option in f.enum:
            if text in (str(option), show_value(option), json.dumps(option)):
                return option
    kinds = _types(f)
    if not kinds:
        try:
            return json.loads(text)
        except ValueError:
            return text
    detail: _NotJSONError | None = None
    for kind in kinds:
        try:
            return _convert(kind, text)
        except _NotJSONError as exc:
            detail = exc
        except ValueError:
            continue
    if detail is not None and len(kinds) == 1:
        raise ValueError(f"expected {detail}") from None
    words = " or ".join(_WORDS.get(k, f"a {k}") for k in kinds)
    raise ValueError(f"expected {words}, got {text!r}")


def parse_values(f: Field, texts: Iterable[str]) -> Any:
    """A repeated flag (``--images a.png --images b.png``): the values of a list, joined."""
    joined: list[Any] = []
    for text in texts:
        value = parse_value(f, text)
        joined += value if isinstance(value, list) else [value]
    return joined


def _canonical(model: ModelSchema, given: str) -> str:
    found = model.find(given)
    return found.key if found is not None else given


def gather_inputs(
    model: ModelSchema,
    *,
    document: Mapping[str, Any] | None = None,
    sets: Iterable[str] = (),
    flags: Mapping[str, Any] | None = None,
    uploads: bool = False,
) -> dict[str, Any]:
    """Merge the sources (later ones win: document, then --set, then flags) and validate.

    ``flags`` maps wire keys to the text (or bool) given on a field's own flag. With ``uploads``
    a local file for a media field is accepted (the client uploads it). Raises
    :class:`InputValidationError` with every problem, conversion and schema alike.
    """
    merged: dict[str, Any] = {}
    problems: list[Problem] = []
    failed: set[str] = set()

    def put(source: dict[str, str], given: str, value: Any) -> None:
        key = _canonical(model, given)
        if key in source:
            f = model.find(key)
            problems.append(
                Problem(
                    "duplicate",
                    f"given twice, as {source[key]!r} and {given!r}; pass it once",
                    f.name if f else given,
                    key if f else None,
                )
            )
            return
        source[key] = given
        failed.discard(key)
        merged[key] = value

    from_document: dict[str, str] = {}
    for given, value in (document or {}).items():
        put(from_document, str(given), value)

    from_sets: dict[str, str] = {}
    for item in sets:
        given, sep, text = item.partition("=")
        given = given.strip()
        if not sep or not given:
            problems.append(Problem("invalid", f"takes NAME=VALUE, not {item!r}", "--set"))
            continue
        f = model.find(given)
        if f is None:
            put(from_sets, given, text)  # the validator names it unknown, with a hint
            continue
        try:
            put(from_sets, given, parse_value(f, text))
        except ValueError as exc:
            problems.append(_conversion_problem(f, exc))
            failed.add(f.key)
            merged.pop(f.key, None)

    for key, raw in (flags or {}).items():
        f = model.find(key)
        assert f is not None, key
        try:
            merged[key] = _flag_value(f, raw)
            failed.discard(key)
        except ValueError as exc:
            problems.append(_conversion_problem(f, exc))
            failed.add(key)
            merged.pop(key, None)

    validator = model.validator
    _, found = validator.check(merged)
    if uploads:
        _, found = validator.split_local_files(found)
    # A field whose text could not be converted is reported once, not also as missing.
    problems += [p for p in found if not (p.kind == "missing" and p.key in failed)]
    if problems:
        problems.sort(key=validator.problem_order)
        raise InputValidationError(model.model_id, problems)
    return merged


def _flag_value(f: Field, raw: Any) -> Any:
    """A field flag's value: a switch's bool, a repeated flag's list, or one converted text."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, (tuple, list)):
        return parse_values(f, raw)
    return parse_value(f, raw)


def _conversion_problem(f: Field, exc: ValueError) -> Problem:
    return Problem("type", str(exc), f.name, f.key, allowed=allowed_text(f))
