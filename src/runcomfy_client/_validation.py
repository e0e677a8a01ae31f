"""Validation of a caller's inputs against a model's schema, before anything is sent.

Every problem is reported at once, each naming the field by readable name and wire key, saying
what is wrong and what is allowed. Defaults are never filled in: the payload holds exactly what
the caller set, under the wire keys.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._dialect import describe_range, is_url, number_text, show_value
from ._errors import InputValidationError
from ._naming import closest
from ._registry import Field, ModelSchema

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

__all__ = ["LocalFile", "Problem", "Validator"]

_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "null",
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the inputs.

    ``kind`` is one of: ``missing``, ``unknown``, ``duplicate``, ``type``, ``minimum``,
    ``maximum``, ``enum``, ``media``, ``invalid``.
    """

    kind: str
    message: str
    name: str | None = None
    key: str | None = None
    value: Any = None
    allowed: str | None = None

    @property
    def label(self) -> str:
        if self.name and self.key and self.name != self.key:
            return f"{self.name} ({self.key})"
        given = self.name or self.key
        if given is None:
            return "input"
        # A blank or unprintable name (from an unknown key) is shown quoted, so it is visible.
        return given if given.strip() and given.isprintable() else repr(given)

    def __str__(self) -> str:
        return f"{self.label}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "key": self.key,
            "message": self.message,
            "allowed": self.allowed,
        }


@dataclass(frozen=True)
class LocalFile:
    """A local file given for a media field, to be uploaded before the job is submitted."""

    key: str
    name: str
    path: str
    media: str | None


def _type_word(kind: Any) -> str:
    kinds = kind if isinstance(kind, list) else [kind]
    return " or ".join(_TYPE_WORDS.get(k, str(k)) for k in kinds)


def _value_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def allowed_text(f: Field) -> str | None:
    """What a field accepts, in words: its choices, range or type."""
    if f.enum is not None:
        return ", ".join(show_value(v) for v in f.enum)
    span = describe_range(f.schema)
    if span:
        return span
    if f.media:
        return f"a public http(s) URL of the {f.media}"
    return _type_word(f.type) if f.type else None


def _looks_like_path(value: str) -> bool:
    if "://" in value:
        return False
    return (
        value.startswith(("/", "./", "../", "~", "\\"))
        or (len(value) > 2 and value[1] == ":" and value[2] in "\\/")
        or os.path.exists(value)
        or "." in value.rsplit("/", 1)[-1]
    )


# Keywords that never change whether an instance is valid. jsonschema still visits each one of
# every property on every call, so the compiled copy leaves them out (about a tenth faster).
_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "$comment"})


# Keywords whose value maps names (of properties, definitions) to schemas: the names are kept.
_SCHEMA_MAPS = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
)


def _without_annotations(schema: Any) -> Any:
    """``schema`` without annotation keywords or ``x-`` extensions, at every level."""
    if isinstance(schema, list):
        return [_without_annotations(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    kept: dict[str, Any] = {}
    for k, v in schema.items():
        if k in _ANNOTATIONS or k.startswith("x-"):
            continue
        if k in _SCHEMA_MAPS and isinstance(v, dict):
            kept[k] = {name: _without_annotations(sub) for name, sub in v.items()}
        elif k in ("enum", "const", "required"):
            kept[k] = v  # values, not schemas
        else:
            kept[k] = _without_annotations(v)
    return kept


_MAY_HOLD_FLOATS = (float, list, tuple, dict)  # isinstance: numpy's float64 is a float


def _non_finite(value: Any) -> bool:
    """True when ``value`` holds a NaN or an infinity anywhere (JSON has no such numbers)."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return any(_non_finite(v) for v in value)
    if isinstance(value, Mapping):
        return any(_non_finite(v) for v in value.values())
    return False


def is_local_file(value: Any) -> bool:
    """True for a string naming an existing local file (``~`` expanded), never for a URL."""
    if not isinstance(value, str) or "://" in value or not value.strip():
        return False
    try:
        return os.path.isfile(os.path.expanduser(value))
    except (OSError, ValueError):  # a NUL byte or an over-long name
        return False


def _parse_dimensions(value: Any) -> tuple[int, int] | None:
    if isinstance(value, (tuple, list)) and len(value) == 2:
        w, h = value
        if all(isinstance(v, int) and not isinstance(v, bool) for v in (w, h)):
            return int(w), int(h)
        return None
    if isinstance(value, str):
        head = (
            value.strip().split(" ", 1)[0].lower().replace("\u00d7", "x")
        )  # the multiplication sign
        parts = head.split("x")
        if len(parts) == 2 and all(p.strip().isdigit() for p in parts):
            return int(parts[0]), int(parts[1])
    return None


def _nearest(value: Any, options: Sequence[Any]) -> list[str]:
    """Up to two allowed values closest to ``value``: by distance for numbers, else by spelling."""
    numbers = [o for o in options if isinstance(o, (int, float)) and not isinstance(o, bool)]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and numbers:
        return [show_value(o) for o in sorted(numbers, key=lambda o: abs(o - value))[:1]]
    return [repr(h) for h in closest(str(value), [str(o) for o in options], n=2)]


def dimensions_of(value: str) -> tuple[int, int] | None:
    """``"720x480 (3:2)"`` -> ``(720, 480)``: the pair a width x height enum value carries."""
    return _parse_dimensions(value)


class Validator:
    """Checks inputs for one model. Built once per model and cached by the registry."""

    def __init__(self, model: ModelSchema) -> None:
        from jsonschema import Draft202012Validator

        self.model = model
        self._compiled = Draft202012Validator(_without_annotations(model.schema))
        self._by_key = {f.key: f for f in model.fields}
        self._by_name = {f.name: f for f in model.fields}
        self._required = tuple(f for f in model.fields if f.required)
        self._media_keys = frozenset(f.key for f in model.fields if f.media)
        self._order = {f.key: i for i, f in enumerate(model.fields)}
        self._dimension_maps: dict[str, dict[tuple[int, int], Any]] = {}
        for f in model.fields:
            if f.dimensions and f.enum:
                pairs: dict[tuple[int, int], Any] = {}
                for option in f.enum:
                    pair = _parse_dimensions(option)
                    if pair is not None:
                        pairs.setdefault(pair, option)
                self._dimension_maps[f.key] = pairs

    def __repr__(self) -> str:
        return f"Validator({self.model.model_id!r})"

    def validate(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """The wire payload for ``inputs``, or :class:`InputValidationError` with every problem."""
        payload, problems = self.check(inputs)
        if problems:
            raise InputValidationError(self.model.model_id, problems)
        return payload

    def check_with_uploads(
        self, inputs: Mapping[str, Any]
    ) -> tuple[dict[str, Any], list[LocalFile]]:
        """Like :meth:`validate`, but local files for media fields are returned, not refused.

        Every other problem still raises :class:`InputValidationError` (so nothing is uploaded
        for inputs that cannot be sent); the caller uploads the files and puts their URLs in.
        """
        payload, problems = self.check(inputs)
        files, rest = self.split_local_files(problems)
        if rest:
            raise InputValidationError(self.model.model_id, rest)
        return payload, files

    def split_local_files(
        self, problems: Sequence[Problem]
    ) -> tuple[list[LocalFile], list[Problem]]:
        """Separate "this media field got a local file" (uploadable) from the other problems."""
        files: list[LocalFile] = []
        rest: list[Problem] = []
        for problem in problems:
            if problem.kind == "media" and problem.key and is_local_file(problem.value):
                f = self._by_key[problem.key]
                files.append(LocalFile(f.key, f.name, str(problem.value), f.media))
            else:
                rest.append(problem)
        return files, rest

    def check(self, inputs: Mapping[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
        """The wire payload and the list of problems (empty when the inputs are valid)."""
        if not isinstance(inputs, Mapping):
            problem = Problem(
                "invalid", f"inputs must be a mapping of field to value, not {_value_type(inputs)}"
            )
            return {}, [problem]
        payload: dict[str, Any] = {}
        problems: list[Problem] = []
        explained: set[str] = set()  # fields already reported: no second message from jsonschema
        by_key, by_name, dimension_maps = self._by_key, self._by_name, self._dimension_maps
        media_keys = self._media_keys
        # One pass over the inputs: map names to keys, then the checks JSON Schema cannot make
        # (NaN and infinities, which JSON cannot carry; media fields that are not URLs).
        for given, raw in inputs.items():
            f = by_key.get(given) or by_name.get(given) if isinstance(given, str) else None
            if f is None:
                problems.append(self._unknown(given))
                continue
            key = f.key
            if key in payload:
                problems.append(self._duplicate(f, inputs, given))
                continue
            value = self._coerce(f, raw) if key in dimension_maps else raw
            payload[key] = value
            if isinstance(value, _MAY_HOLD_FLOATS) and _non_finite(value):
                explained.add(key)
                problems.append(self._non_finite_problem(f, value))
            elif key in media_keys and isinstance(value, str) and not is_url(value):
                explained.add(key)
                problems.append(self._media(f, value))
        for f in self._required:
            if f.key not in payload:
                problems.append(
                    Problem(
                        "missing",
                        "is required but was not given",
                        f.name,
                        f.key,
                        allowed=allowed_text(f),
                    )
                )
        if not self._compiled.is_valid(payload):
            found = [self._translate(error) for error in self._compiled.iter_errors(payload)]
            # An enum miss already says what is allowed; a type error beside it is noise.
            enum_keys = {p.key for p in found if p is not None and p.kind == "enum"}
            problems.extend(
                p
                for p in found
                if p is not None
                and p.key not in explained
                and not (p.kind == "type" and p.key in enum_keys)
            )
        if problems:
            order = self._order
            problems.sort(key=lambda p: order.get(p.key, -1) if p.key else -1)
        return payload, problems

    def _non_finite_problem(self, f: Field, value: Any) -> Problem:
        return Problem(
            "invalid",
            f"{show_value(value)} is not a JSON number (NaN and infinities cannot be sent)",
            f.name,
            f.key,
            value,
            allowed=allowed_text(f),
        )

    def _duplicate(self, f: Field, inputs: Mapping[str, Any], again: str) -> Problem:
        first = next(given for given in inputs if given in (f.key, f.name))
        return Problem(
            "duplicate", f"given twice, as {first!r} and {again!r}; pass it once", f.name, f.key
        )

    def _unknown(self, given: Any) -> Problem:
        if not isinstance(given, str):
            return Problem("unknown", f"field names must be strings, not {given!r}")
        names = [f.name for f in self.model.fields] + [f.key for f in self.model.fields]
        hints = closest(given, names, n=1)
        if hints:
            f = self._by_key.get(hints[0]) or self._by_name[hints[0]]
            hint = f"did you mean {f.label}?"
        else:
            hint = "fields are " + ", ".join(f.name for f in self.model.fields)
        return Problem("unknown", f"unknown field; {hint}", given, None, allowed=hint)

    def _media(self, f: Field, value: str) -> Problem:
        if is_local_file(value):
            message = (
                f"{show_value(value)} is a local file; the API fetches {f.media} inputs from a "
                "public http(s) URL: pass a URL, or configure an uploader to upload the file "
                "first (Client(uploader=...), or --upload-to / RUNCOMFY_UPLOAD_TO in the CLI)"
            )
        elif _looks_like_path(value):
            message = (
                f"{show_value(value)} looks like a local file, but there is no such file; the "
                f"API needs a public http(s) URL of the {f.media}"
            )
        else:
            message = f"{show_value(value)} is not an http(s) URL; the API needs a public URL"
        return Problem("media", message, f.name, f.key, value, allowed="a public http(s) URL")

    def _coerce(self, f: Field, value: Any) -> Any:
        # A width x height enum also takes "720x480" or (720, 480): map it to the published value.
        pairs = self._dimension_maps.get(f.key)
        if pairs and not (f.enum and value in f.enum):
            pair = _parse_dimensions(value)
            if pair is not None and pair in pairs:
                return pairs[pair]
        return value

    def _translate(self, error: ValidationError) -> Problem | None:
        path = list(error.absolute_path)
        if not path:
            # Root-level problems are handled above (required) or are not about a field.
            if error.validator == "required":
                return None
            return Problem("invalid", error.message)
        key = str(path[0])
        f = self._by_key.get(key)
        if f is None:
            return Problem("invalid", error.message, key=key)
        value = error.instance
        where = "".join(f"[{p!r}]" for p in path[1:])
        prefix = f"{where}: " if where else ""
        allowed = allowed_text(f)
        validator = str(error.validator)
        rule = error.validator_value
        span = describe_range(f.schema)
        span_note = f" (allowed {span})" if span else ""
        if validator == "type":
            shown = show_value(value)
            got = shown if value is None else f"{shown} ({_value_type(value)})"
            message = f"expected {_type_word(rule)}, got {got}"
            kind = "type"
        elif validator == "minimum":
            message = f"{show_value(value)} is below the minimum {number_text(rule)}{span_note}"
            kind = "minimum"
        elif validator == "exclusiveMinimum":
            message = f"{show_value(value)} must be above {number_text(rule)}{span_note}"
            kind = "minimum"
        elif validator == "maximum":
            message = f"{show_value(value)} is above the maximum {number_text(rule)}{span_note}"
            kind = "maximum"
        elif validator == "exclusiveMaximum":
            message = f"{show_value(value)} must be below {number_text(rule)}{span_note}"
            kind = "maximum"
        elif validator == "enum":
            kind = "enum"
            options = list(rule) if isinstance(rule, Sequence) else []
            hints = _nearest(value, options)
            hint = "did you mean " + " or ".join(hints) + "? " if hints else ""
            message = (
                f"{show_value(value)} is not one of the allowed values; {hint}"
                f"allowed: {', '.join(show_value(o) for o in options)}"
            )
        elif validator in ("minLength", "maxLength", "pattern", "format", "const"):
            kind = "invalid"
            message = error.message
        else:
            kind = "invalid"
            message = error.message
        return Problem(kind, prefix + message, f.name, f.key, value, allowed=allowed)
