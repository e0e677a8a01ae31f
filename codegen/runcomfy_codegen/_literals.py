"""Turning schema text into Python source that can only ever mean that text.

Every title, description, enum value, default and key reaches generated code through one of
these functions, never pasted raw. Each result is checked by parsing it back.
"""

from __future__ import annotations

import ast
import json
import math
from typing import Any

__all__ = ["comment_text", "docstring", "py_literal"]


def py_literal(value: Any) -> str:
    """Python source for a JSON value (``repr``), verified to evaluate back to it."""
    _check_json(value)
    text = repr(value)
    if ast.literal_eval(text) != value:  # pragma: no cover - repr of JSON data round-trips
        raise ValueError(f"cannot write {value!r} as a Python literal")
    return text


def docstring(text: str) -> str:
    """A triple-quoted literal whose value is exactly ``text``.

    Backslashes, quotes and anything unprintable are escaped, so no schema text can end the
    string early or smuggle in code; newlines stay real newlines, for reading. Falls back to
    ``repr`` if the escaped form does not parse back to the same text.
    """
    escaped = []
    for char in text:
        if char == "\\":
            escaped.append("\\\\")
        elif char == '"':
            escaped.append('\\"')
        elif char == "\n":
            escaped.append(char)
        elif not char.isprintable():
            escaped.append(char.encode("unicode_escape").decode("ascii"))
        else:
            escaped.append(char)
    literal = '"""' + "".join(escaped) + '"""'
    try:
        parsed = ast.literal_eval(literal)
    except (SyntaxError, ValueError):  # pragma: no cover - the escaping above prevents it
        parsed = None
    return literal if parsed == text else repr(text)


def comment_text(text: str) -> str:
    """Text safe inside a ``#`` comment: one line, ASCII, quoted (JSON string syntax)."""
    return json.dumps(text, ensure_ascii=True)


def _check_json(value: Any) -> None:
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a JSON number")
        return
    if isinstance(value, list):
        for item in value:
            _check_json(item)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys are strings, not {key!r}")
            _check_json(item)
        return
    raise TypeError(f"{type(value).__name__} is not JSON data")
