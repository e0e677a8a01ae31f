"""Validation of a caller's inputs against a model's schema, before anything is sent.

Every problem is reported at once, each naming the field by readable name and wire key (and
the place inside a list or object: ``image_urls[2]``, ``loras[0].scale``), saying what is wrong
and what is allowed. Defaults are never filled in: the payload holds exactly what the caller
set, under the wire keys.

The schema is compiled with a reference registry that refuses to retrieve anything (no ``$ref``
is ever fetched) and, when it has ``pattern`` keywords, with a pattern check under a time limit
(a backtracking pattern cannot stall a run).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from ._dialect import (
    describe_count,
    describe_range,
    is_url,
    media_plural,
    number_text,
    show_value,
)
from ._errors import InputValidationError
from ._media_files import INLINE_CAPS, INLINE_MAX_REQUEST, kind_accepts, mib, parse_data_uri
from ._naming import closest
from ._problem import LocalFile, Problem, place
from ._registry import Field, ModelSchema

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator as SchemaValidator

__all__ = ["LocalFile", "Problem", "Validator", "apply_uploads"]

PATTERN_TIMEOUT = 0.1
"""Seconds one ``pattern`` check may take before the value is refused as uncheckable (a real
pattern on a real value takes microseconds)."""

_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "null",
}


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
    if f.media and f.media_array:
        many = describe_count(f.min_items, f.max_items)
        many = many + " " if many else ""
        return f"a list of {many}public http(s) URLs of {media_plural(f.media)}"
    if f.media:
        return f"a public http(s) URL of the {f.media}"
    if f.type == "array" and (f.min_items is not None or f.max_items is not None):
        return f"a list of {describe_count(f.min_items, f.max_items)} items"
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
_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "$comment", "validations"})


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


def _refuse_retrieval(uri: str) -> Any:
    from referencing.exceptions import NoSuchResource

    raise NoSuchResource(uri)


def _uses(schema: Any, words: Iterable[str]) -> bool:
    wanted = frozenset(words)
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if wanted & node.keys():
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


@cache
def _regex(pattern: str) -> Any:
    import regex

    return regex.compile(pattern)


@lru_cache(maxsize=256)
def _search(pattern: str, text: str) -> bool | None:
    """Whether ``pattern`` matches in ``text``; None when it did not finish in time.

    Remembered: one check of the inputs asks twice (is it valid? then, why not?), and a value
    that ran out of time must not cost that time again."""
    try:
        return _regex(pattern).search(text, timeout=PATTERN_TIMEOUT) is not None
    except TimeoutError:
        return None


def _timed_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    from jsonschema.exceptions import ValidationError

    if not isinstance(instance, str):
        return
    found = _search(pattern, instance)
    if found is None:
        yield ValidationError(
            f"could not be checked against the pattern {pattern!r} within {PATTERN_TIMEOUT} s "
            "(the schema's pattern backtracks too much on this value)"
        )
    elif not found:
        yield ValidationError(f"{show_value(instance)} does not match the pattern {pattern!r}")


def _timed_pattern_properties(
    validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Any
) -> Iterator[Any]:
    from jsonschema.exceptions import ValidationError

    if not isinstance(instance, dict):
        return
    for pattern, subschema in patterns.items():
        for name, value in instance.items():
            found = _search(pattern, name)
            if found is None:
                yield ValidationError(f"the name {name!r} could not be checked in time")
            elif found:
                yield from validator.descend(value, subschema, path=name, schema_path=pattern)


def compile_schema(schema: Mapping[str, Any]) -> SchemaValidator:
    """A Draft 2020-12 validator that never retrieves a reference and times its patterns."""
    from jsonschema import Draft202012Validator, validators
    from referencing import Registry

    cls: Any = Draft202012Validator
    if _uses(schema, ("pattern", "patternProperties")):
        cls = validators.extend(  # type: ignore[no-untyped-call]
            Draft202012Validator,
            {"pattern": _timed_pattern, "patternProperties": _timed_pattern_properties},
        )
    registry: Any = Registry(retrieve=_refuse_retrieval)  # type: ignore[call-arg]
    compiled: SchemaValidator = cls(schema, registry=registry)
    return compiled


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
        self.model = model
        self._compiled = compile_schema(_without_annotations(model.schema))
        self._by_key = {f.key: f for f in model.fields}
        self._by_name = {f.name: f for f in model.fields}
        self._required = tuple(f for f in model.fields if f.required)
        # Media fields by key, True for a list of media: one lookup per input on the valid path.
        self._media_fields = {f.key: f.media_array for f in model.fields if f.media}
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
        self, inputs: Mapping[str, Any], *, allow_any_file: bool = False
    ) -> tuple[dict[str, Any], list[LocalFile]]:
        """Like :meth:`validate`, but local files for media fields are returned, not refused.

        Every other problem still raises :class:`InputValidationError` (so nothing is uploaded
        for inputs that cannot be sent); then the files themselves are checked: content of the
        field's kind (unless ``allow_any_file``) and the field's ``validations`` rules. The
        caller uploads the files and puts their URLs in (:func:`apply_uploads`).
        """
        from ._file_checks import local_file_problems

        payload, problems = self.check(inputs)
        files, rest = self.split_local_files(problems)
        if rest:
            raise InputValidationError(self.model.model_id, rest)
        if files:
            found = local_file_problems(files, self._by_key, allow_any_file=allow_any_file)
            if found:
                raise InputValidationError(self.model.model_id, found)
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
                index = int(problem.path[1:-1]) if problem.path else None
                path = os.path.expanduser(str(problem.value))
                files.append(LocalFile(f.key, f.name, path, f.media, index))
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
        try:
            return self._check(inputs)
        except RecursionError:
            return {}, [Problem("invalid", "the inputs are nested too deeply to check")]

    def _check(self, inputs: Mapping[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
        payload: dict[str, Any] = {}
        problems: list[Problem] = []
        explained: set[str] = set()  # fields already reported: no second message from jsonschema
        by_key, by_name, dimension_maps = self._by_key, self._by_name, self._dimension_maps
        media = self._media_fields
        inline: list[tuple[Field, int | None, int]] = []  # data: URIs, for the request cap
        # One pass over the inputs: map names to keys, then the checks JSON Schema cannot make
        # (NaN and infinities, which JSON cannot carry; media values that are not URLs).
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
            elif key in media:
                if not media[key]:
                    if isinstance(value, str) and not is_url(value):
                        problem = self._media_value(f, value, None, inline)
                        if problem is not None:
                            explained.add(key)
                            problems.append(problem)
                elif isinstance(value, (list, tuple)):
                    problems += self._media_list(f, value, inline)
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
        if inline and sum(size for _, _, size in inline) > INLINE_MAX_REQUEST:
            problems.append(_request_too_large(inline))
        if not self._compiled.is_valid(payload):
            found = self._translate_all(self._compiled.iter_errors(payload))
            # An enum miss already says what is allowed; a type error beside it is noise.
            enum_keys = {p.key for p in found if p.kind == "enum" and not p.path}
            problems.extend(
                p
                for p in found
                if p.key not in explained and not (p.kind == "type" and p.key in enum_keys)
            )
        if problems:
            problems.sort(key=self.problem_order)
        return payload, problems

    def problem_order(self, problem: Problem) -> tuple[int, tuple[tuple[int, int | str], ...]]:
        """Problems in the schema's field order; inside a field, by place (``[2]`` before
        ``[10]``, an element before its own fields)."""
        index = self._order.get(problem.key, -1) if problem.key else -1
        return index, _place_key(problem.path)

    def _media_list(
        self, f: Field, values: Sequence[Any], inline: list[tuple[Field, int | None, int]]
    ) -> list[Problem]:
        """Every element of a media list: a URL, a data: URI, or a local file to upload."""
        problems = []
        for index, value in enumerate(values):
            if isinstance(value, str):
                if not is_url(value):
                    problem = self._media_value(f, value, index, inline)
                    if problem is not None:
                        problems.append(problem)
            elif f.items is None:  # with an items schema, jsonschema reports the type
                problems.append(
                    Problem(
                        "type",
                        f"expected a URL (a string), got {show_value(value)} "
                        f"({_value_type(value)})",
                        f.name,
                        f.key,
                        value,
                        allowed=f"a public http(s) URL of the {f.media}",
                        path=f"[{index}]",
                    )
                )
        return problems

    def _media_value(
        self,
        f: Field,
        value: str,
        index: int | None,
        inline: list[tuple[Field, int | None, int]],
    ) -> Problem | None:
        where = f"[{index}]" if index is not None else ""
        if value[:5].lower() != "data:":
            return self._media(f, value, where)
        data = parse_data_uri(value)
        inline.append((f, index, len(value)))
        kind = f.media or "media"
        cap = INLINE_CAPS.get(kind)
        if data.problem is not None:
            message = f"a data: URI, but {data.problem}"
        elif not kind_accepts(f.media, data.mime.split("/", 1)[0]):
            message = f"a data: URI of {data.mime}, but this field takes {kind} files"
        elif cap is not None and data.size > cap:
            message = (
                f"a data: URI of {mib(data.size)}; {kind}s sent inline are capped at "
                f"{mib(cap)}: send a public URL instead (upload the file with an S3 uploader: "
                "--upload-to s3://BUCKET, or S3Uploader)"
            )
        else:
            return None
        allowed = f"a public http(s) URL or a data: URI of the {kind}"
        return Problem("media", message, f.name, f.key, value[:40] + "...", allowed, path=where)

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

    def _media(self, f: Field, value: str, where: str = "") -> Problem:
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
            message = (
                f"{show_value(value)} is not an http(s) URL (nor a data: URI); the API needs a "
                "public URL"
            )
        return Problem(
            "media", message, f.name, f.key, value, allowed="a public http(s) URL", path=where
        )

    def _coerce(self, f: Field, value: Any) -> Any:
        # A width x height enum also takes "720x480" or (720, 480): map it to the published value.
        pairs = self._dimension_maps.get(f.key)
        if pairs and not (f.enum and value in f.enum):
            pair = _parse_dimensions(value)
            if pair is not None and pair in pairs:
                return pairs[pair]
        return value

    def _translate_all(self, errors: Iterable[ValidationError]) -> list[Problem]:
        found: list[Problem] = []
        seen: set[tuple[str | None, str, str]] = set()
        for error in errors:
            for problem in self._translate(error):
                mark = (problem.key, problem.path, problem.message)
                if mark not in seen:
                    seen.add(mark)
                    found.append(problem)
        return found

    def _translate(self, error: ValidationError) -> list[Problem]:
        path = list(error.absolute_path)
        if not path:
            # Root-level problems are handled above (required) or are not about a field.
            if error.validator == "required":
                return []
            return [Problem("invalid", error.message)]
        key = str(path[0])
        f = self._by_key.get(key)
        if f is None:
            return [Problem("invalid", error.message, key=key)]
        value = error.instance
        where = place(path[1:])
        # Inside a list or object the rule is the nested schema's, not the field's.
        schema = error.schema if where and isinstance(error.schema, Mapping) else f.schema
        allowed = allowed_text(f) if not where else _allowed_for(schema)
        validator = str(error.validator)
        rule = error.validator_value
        if validator == "required" and isinstance(value, Mapping):
            return _missing_inside(f, where, schema, rule, value)
        if validator == "additionalProperties" and isinstance(value, Mapping):
            known = _properties(schema)
            fields = ", ".join(known) or "none"
            return [
                Problem(
                    "unknown",
                    f"unknown field {n!r}; fields are {fields}",
                    f.name,
                    f.key,
                    path=where,
                    allowed=fields,
                )
                for n in value
                if n not in known
            ]
        kind, message = _message(validator, rule, value, schema, error.message)
        return [Problem(kind, message, f.name, f.key, value, allowed=allowed, path=where)]


def _missing_inside(
    f: Field, where: str, schema: Mapping[str, Any], rule: Any, value: Mapping[str, Any]
) -> list[Problem]:
    """A required property missing inside a field's object value (``loras[0].path``)."""
    missing = [n for n in rule if n not in value] if isinstance(rule, list) else []
    return [
        Problem(
            "missing",
            "is required but was not given",
            f.name,
            f.key,
            path=where + place([n]),
            allowed=_allowed_for(_property(schema, n)),
        )
        for n in missing
    ]


def _message(
    validator: str, rule: Any, value: Any, schema: Mapping[str, Any], fallback: str
) -> tuple[str, str]:
    """The problem's kind and message for one failed keyword."""
    span = describe_range(schema)
    span_note = f" (allowed {span})" if span else ""
    shown = show_value(value)
    if validator == "type":
        got = shown if value is None else f"{shown} ({_value_type(value)})"
        return "type", f"expected {_type_word(rule)}, got {got}"
    if validator == "minimum":
        return "minimum", f"{shown} is below the minimum {number_text(rule)}{span_note}"
    if validator == "exclusiveMinimum":
        return "minimum", f"{shown} must be above {number_text(rule)}{span_note}"
    if validator == "maximum":
        return "maximum", f"{shown} is above the maximum {number_text(rule)}{span_note}"
    if validator == "exclusiveMaximum":
        return "maximum", f"{shown} must be below {number_text(rule)}{span_note}"
    if validator == "enum":
        options = list(rule) if isinstance(rule, Sequence) else []
        hints = _nearest(value, options)
        hint = "did you mean " + " or ".join(hints) + "? " if hints else ""
        allowed = ", ".join(show_value(o) for o in options)
        return "enum", f"{shown} is not one of the allowed values; {hint}allowed: {allowed}"
    if validator in ("minItems", "maxItems") and isinstance(value, (list, tuple)):
        count = len(value)
        items = "item" if count == 1 else "items"
        if validator == "minItems":
            return "minimum", f"{count} {items} given; at least {rule} needed"
        return "maximum", f"{count} {items} given; at most {rule} allowed"
    return "invalid", fallback


_PLACE_PART = re.compile(r"\[(\d+)\]|\.(\w+)|\[(.+?)\]")


def _place_key(path: str) -> tuple[tuple[int, int | str], ...]:
    parts: list[tuple[int, int | str]] = []
    for index, name, quoted in _PLACE_PART.findall(path):
        parts.append((0, int(index)) if index else (1, name or quoted))
    return tuple(parts)


def _properties(schema: Mapping[str, Any]) -> list[str]:
    found = schema.get("properties")
    return list(found) if isinstance(found, Mapping) else []


def _property(schema: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    found = schema.get("properties")
    sub = found.get(name) if isinstance(found, Mapping) else None
    return sub if isinstance(sub, Mapping) else {}


def _allowed_for(schema: Mapping[str, Any]) -> str | None:
    """What a nested schema accepts, in words (the nested twin of :func:`allowed_text`)."""
    enum = schema.get("enum")
    if isinstance(enum, list):
        return ", ".join(show_value(v) for v in enum)
    span = describe_range(schema)
    if span:
        return span
    kind = schema.get("type")
    return _type_word(kind) if kind else None


def _request_too_large(inline: Sequence[tuple[Field, int | None, int]]) -> Problem:
    total = sum(size for _, _, size in inline)
    parts = ", ".join(
        f"{f.name}{f'[{i}]' if i is not None else ''} {mib(size)}" for f, i, size in inline
    )
    return Problem(
        "invalid",
        f"the data: URIs add up to {mib(total)} ({parts}); a request is capped at "
        f"{mib(INLINE_MAX_REQUEST)}: send large files as public URLs instead (an S3 uploader: "
        "--upload-to s3://BUCKET, or S3Uploader)",
    )


def apply_uploads(
    payload: Mapping[str, Any], files: Sequence[LocalFile], urls: Sequence[str]
) -> dict[str, Any]:
    """``payload`` with each local file replaced by the URL it was uploaded to (lists copied,
    so the caller's own lists are never changed)."""
    out = dict(payload)
    for local, url in zip(files, urls, strict=True):
        if local.index is None:
            out[local.key] = url
        else:
            items = out[local.key]
            if items is payload[local.key]:
                items = out[local.key] = list(items)
            items[local.index] = url
    return out
