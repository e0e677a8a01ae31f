"""RunComfy's schema dialect: one normalisation step to JSON Schema, and a lint pass.

RunComfy publishes its input schemas in a dialect close to JSON Schema. The one known
difference, ``"type": "float"``, becomes ``"number"``; any other value that is not JSON Schema
stops loading with the file and JSON pointer. The normalised schema must pass Draft 2020-12's
``check_schema``. The lint pass reports, without failing, what a maintainer should know.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ._errors import SchemaError
from ._naming import assign_names
from ._schema_limits import check_schema_limits, schema_nodes
from ._schema_limits import pointer as _pointer

__all__ = [
    "JSON_TYPES",
    "MEDIA_KINDS",
    "MEDIA_RULES",
    "LintWarning",
    "Media",
    "MediaRule",
    "default_out_of_bounds",
    "dimension_pair",
    "lint",
    "media_kind",
    "media_of",
    "media_plural",
    "media_rules",
    "normalise",
]

JSON_TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})
# The dialect's type names that are not JSON Schema, and what they mean.
_TYPE_ALIASES = {"float": "number"}
_MEDIA_WORDS = ("image", "video", "audio", "mask")
MEDIA_KINDS = _MEDIA_WORDS


@dataclass(frozen=True)
class LintWarning:
    """Something a schema maintainer should know; never stops loading."""

    file: str | None
    pointer: str
    key: str | None
    rule: str
    message: str

    def __str__(self) -> str:
        where = self.file or "<schema>"
        field = f" [{self.key}]" if self.key else ""
        return f"{where} at {self.pointer or '/'}{field}: {self.message} ({self.rule})"


def normalise(raw: Any, *, file: str | None = None) -> dict[str, Any]:
    """Return the JSON Schema meaning of a published schema (the input is not changed).

    Raises :class:`SchemaError` naming the file and JSON pointer of the first thing that is not
    JSON Schema, that fails Draft 2020-12's own meta-schema, or that breaks the limits of
    :mod:`._schema_limits` (size, nesting, references that are not local or that loop).
    """
    if not isinstance(raw, dict):
        raise SchemaError(
            f"a model schema must be a JSON object, not {type(raw).__name__}", file=file, pointer=""
        )
    check_schema_limits(raw, file=file)
    schema = copy.deepcopy(raw)
    for node, path in schema_nodes(schema):
        kind = node.get("type")
        types = kind if isinstance(kind, list) else [kind] if kind is not None else []
        fixed: list[Any] = []
        for item in types:
            if isinstance(item, str) and item in _TYPE_ALIASES:
                fixed.append(_TYPE_ALIASES[item])
            elif isinstance(item, str) and item in JSON_TYPES:
                fixed.append(item)
            else:
                raise SchemaError(
                    f"type {item!r} is not JSON Schema and not a known RunComfy alias "
                    f"(allowed: {', '.join(sorted(JSON_TYPES | set(_TYPE_ALIASES)))})",
                    file=file,
                    pointer=_pointer((*path, "type")),
                )
        if kind is not None:
            node["type"] = fixed if isinstance(kind, list) else fixed[0]
    if schema.get("type", "object") != "object":
        raise SchemaError(
            f"a model's input schema must have type 'object', not {schema.get('type')!r}",
            file=file,
            pointer="/type",
        )
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        raise SchemaError(
            "a model's input schema needs a 'properties' object", file=file, pointer="/properties"
        )
    _check_meta(schema, file)
    return schema


def _check_meta(schema: dict[str, Any], file: str | None) -> None:
    """Draft 2020-12's ``check_schema``, one property shape at a time.

    The meta-schema check costs about a millisecond per property (its ``$dynamicRef``s), and a
    schema derived from a big workflow has hundreds. Properties differ mostly in annotations
    (title, description, default, ``x-`` notes), whose only meta rule is "title and description
    are strings": each distinct shape without them is checked once per process.
    """
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError as MetaError

    def check(part: Any, where: tuple[str | int, ...]) -> None:
        try:
            Draft202012Validator.check_schema(part)
        except MetaError as exc:
            raise SchemaError(
                f"not valid JSON Schema (Draft 2020-12): {exc.message}",
                file=file,
                pointer=_pointer((*where, *exc.absolute_path)),
            ) from None
        except (RecursionError, OverflowError, MemoryError) as exc:  # a pattern too deep
            raise SchemaError(
                f"not usable: checking it failed ({type(exc).__name__})",
                file=file,
                pointer=_pointer(where),
            ) from None

    def check_once(part: Any, where: tuple[str | int, ...]) -> None:
        digest = json.dumps(part, sort_keys=True, default=repr)
        if digest not in _META_CHECKED:
            check(part, where)
            if len(_META_CHECKED) >= _META_CACHE:
                _META_CHECKED.clear()
            _META_CHECKED.add(digest)

    def shape_of(part: Any, where: tuple[str | int, ...]) -> Any:
        """``part`` without its annotations (checked here: title and description are text)."""
        if not isinstance(part, dict):
            return part
        for word in ("title", "description"):
            if word in part and not isinstance(part[word], str):
                check({word: part[word]}, where)
        return {
            k: v
            for k, v in part.items()
            if k not in ("title", "description", "default") and not k.startswith("x-")
        }

    properties = schema["properties"]
    check_once(shape_of({**schema, "properties": {}}, ()), ())
    for key, prop in properties.items():
        check_once(shape_of(prop, ("properties", key)), ("properties", key))


# Shapes that passed the meta-schema check, kept for the process: a catalog of hundreds of
# models repeats the same few dozen field shapes (a sync of 500 checks each shape once).
_META_CHECKED: set[str] = set()
_META_CACHE = 20_000


@dataclass(frozen=True)
class Media:
    """What a media field takes: the kind of file, one URL or a list of them, and which rule of
    the dialect said so (``x-media``, ``format`` or ``name``, for ``describe``)."""

    kind: str
    many: bool
    rule: str


# The catalog marks media with format: image_uri (one URL), image_uris (an array of URLs), ...
_MEDIA_FORMAT = re.compile(r"^(image|video|audio|mask)_uri(s?)$")
_URL_WORDS = frozenset({"url", "urls", "uri", "uris"})


def _is_type(prop: Mapping[str, Any], kind: str) -> bool:
    declared = prop.get("type")
    return declared == kind or (isinstance(declared, list) and kind in declared)


def _format_media(prop: Mapping[str, Any]) -> Media | None:
    found = prop.get("format")
    match = _MEDIA_FORMAT.match(found) if isinstance(found, str) else None
    if match is not None:
        return Media(match.group(1), bool(match.group(2)) or _is_type(prop, "array"), "format")
    items = prop.get("items")
    if _is_type(prop, "array") and isinstance(items, dict):
        inner = _format_media(items)
        if inner is not None and not inner.many:
            return Media(inner.kind, True, "format")
    return None


def _name_media(key: str, prop: Mapping[str, Any]) -> Media | None:
    """The fallback: a key or title that ends in a media word (``start_image``, ``image_url_1``,
    ``promptImage``, "End Image"), on a free string field or an array of strings."""
    many = _is_type(prop, "array")
    items = prop.get("items")
    if many and not (items is None or (isinstance(items, dict) and _is_type(items, "string"))):
        return None
    if not many and (not _is_type(prop, "string") or "enum" in prop or "const" in prop):
        return None
    texts = [key.split("_", 1)[1] if key.split("_", 1)[0].isdigit() and "_" in key else key]
    title = prop.get("title")
    if isinstance(title, str):
        texts.append(title)
    for text in texts:
        words = [w for w in re.split(r"[^a-z0-9]+", _CAMEL_SPLIT.sub("_", text).lower()) if w]
        while words and words[-1].isdigit():
            words.pop()
        if len(words) > 1 and words[-1] in _URL_WORDS:
            words.pop()
        if not words:
            continue
        last = words[-1]
        for kind in _MEDIA_WORDS:
            if last in (kind, f"{kind}s"):
                return Media(kind, many, "name")
    return None


_CAMEL_SPLIT = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def media_of(key: str, prop: Mapping[str, Any]) -> Media | None:
    """The media a field takes, or None: the one rule for runtime, CLI and codegen.

    In order: ``x-media`` on the property (a kind, or ``false`` for "not media"); else a media
    ``format`` (``image_uri``, ``video_uris``, ... also on an array's ``items``); else, as a
    fallback for schemas that mark nothing, a key or title ending in a media word.
    """
    explicit = prop.get("x-media")
    if explicit is False or explicit == "":
        return None
    if isinstance(explicit, str):
        return Media(explicit, _is_type(prop, "array"), "x-media")
    return _format_media(prop) or _name_media(key, prop)


def media_plural(kind: str) -> str:
    """How a list of this kind of media reads: images, videos, audio clips, masks."""
    return "audio clips" if kind == "audio" else f"{kind}s"


def media_kind(key: str, prop: Mapping[str, Any]) -> str | None:
    """'image', 'video', 'audio' or 'mask' when the field takes media URLs, else None."""
    found = media_of(key, prop)
    return found.kind if found is not None else None


@dataclass(frozen=True)
class MediaRule:
    """One of a media field's ``validations``, checked on local files before any upload.

    ``rule`` is the published operator (``file_size_mb<``, ``width_pixels>``, ...), taken
    literally: ``width_pixels>`` 300 needs a width above 300. ``error`` is the schema's own text.
    """

    rule: str
    value: float
    error: str


# The rules the client can measure, and what each measures.
MEDIA_RULES: Mapping[str, str] = {
    "file_size_mb<": "file size (MB)",
    "width_pixels>": "width (pixels)",
    "height_pixels>": "height (pixels)",
    "width/height>": "aspect ratio (width/height)",
    "width/height<": "aspect ratio (width/height)",
}


def media_rules(prop: Mapping[str, Any]) -> tuple[MediaRule, ...]:
    """The well-formed, known rules of a field's ``validations`` (the lint pass reports the rest:
    a rule the client does not know is never enforced)."""
    found = prop.get("validations")
    if not isinstance(found, list):
        return ()
    rules = []
    for entry in found:
        parsed = _media_rule(entry)
        if isinstance(parsed, MediaRule) and parsed.rule in MEDIA_RULES:
            rules.append(parsed)
    return tuple(rules)


def _media_rule(entry: Any) -> MediaRule | str:
    """The rule, or why it cannot be read."""
    if not isinstance(entry, dict):
        return f"a validation must be an object, not {show_value(entry)}"
    rule, value = entry.get("validation_rule"), entry.get("validation_value")
    if not isinstance(rule, str) or not rule:
        return "a validation needs a validation_rule string"
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return f"validation {rule!r} has no numeric validation_value ({show_value(value)})"
    error = entry.get("validation_error")
    return MediaRule(rule, value, error if isinstance(error, str) else "")


def dimension_pair(key: str, prop: Mapping[str, Any]) -> bool:
    """True for the dialect's ``<n>_widthx<n>_height`` enum that carries two node inputs."""
    return "x" in key and "width" in key and "height" in key and isinstance(prop.get("enum"), list)


def is_url(value: Any) -> bool:
    """True for an absolute http(s) URL with a host."""
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def _type_ok(value: Any, kind: Any) -> bool:
    kinds = kind if isinstance(kind, list) else [kind]
    for k in kinds:
        if k == "null" and value is None:
            return True
        if k == "integer" and isinstance(value, float) and value.is_integer():
            return True
        allowed = _PY_TYPES.get(k)
        if (
            allowed
            and isinstance(value, allowed)
            and not (isinstance(value, bool) and k in ("integer", "number"))
        ):
            return True
    return False


def _enum_mark(value: Any) -> tuple[type, Any]:
    try:
        hash(value)
    except TypeError:  # a list or an object: compared by its JSON text
        return (type(value), json.dumps(value, sort_keys=True, default=repr))
    return (type(value), value)


def lint(schema: Mapping[str, Any], *, file: str | None = None) -> list[LintWarning]:
    """Warnings about a normalised schema: they never stop it from being used."""
    out: list[LintWarning] = []
    properties: Mapping[str, Any] = schema.get("properties", {})

    def warn(key: str | None, rule: str, message: str, *path: str) -> None:
        out.append(LintWarning(file, _pointer(tuple(path)), key, rule, message))

    for key in schema.get("required", []):
        if key not in properties:
            warn(key, "required-missing", f"required key {key!r} is not in properties", "required")
    for key, prop in properties.items():
        if isinstance(prop, dict):
            _lint_field(key, prop, warn)
    _, collisions = assign_names({k: v for k, v in properties.items() if isinstance(v, dict)})
    for collision in collisions:
        warn(None, "name-collision", str(collision), "properties")
    return out


Warn = Callable[..., None]


def _lint_field(key: str, prop: Mapping[str, Any], warn: Warn) -> None:
    base = ("properties", key)
    enum = prop.get("enum")
    if isinstance(enum, list):
        seen: set[tuple[type, Any]] = set()  # by type and value: 1, 1.0, True differ
        for value in enum:
            mark = _enum_mark(value)
            if mark in seen:
                warn(
                    key,
                    "enum-duplicate",
                    f"enum lists {show_value(value)} more than once",
                    *base,
                    "enum",
                )
            seen.add(mark)
    media = media_of(key, prop)
    _lint_media(key, prop, media, warn)
    if "default" not in prop:
        return
    default = prop["default"]
    shown = show_value(default)
    if "type" in prop and not _type_ok(default, prop["type"]):
        if default is None:
            message = (
                f"default null is not of type {show_value(prop['type'])}; the field has no "
                "usable default (the server picks one when it is omitted)"
            )
        else:
            message = f"default {shown} is not of type {show_value(prop['type'])}"
        warn(key, "default-type", message, *base, "default")
        return
    if isinstance(enum, list) and default not in enum:
        warn(key, "default-enum", f"default {shown} is not in its enum", *base, "default")
    if default_out_of_bounds(prop):
        warn(
            key,
            "default-out-of-range",
            f"default {shown} is outside its own bounds ({describe_range(prop)}); "
            "the server applies it when the field is omitted",
            *base,
            "default",
        )
    examples = default if isinstance(default, list) else [default]
    if media and default not in (None, "") and not all(is_url(v) for v in examples):
        warn(
            key,
            "media-example-not-url",
            f"{media.kind} field's example {shown} is not an http(s) URL; "
            "the API only fetches public URLs",
            *base,
            "default",
        )


def _lint_media(key: str, prop: Mapping[str, Any], media: Media | None, warn: Warn) -> None:
    base = ("properties", key)
    if media is not None and media.kind not in MEDIA_KINDS:
        warn(
            key,
            "media-unknown-kind",
            f"x-media {show_value(media.kind)} is not one of {', '.join(MEDIA_KINDS)}",
            *base,
            "x-media",
        )
    if media is not None and media.rule == "format" and media.many != _is_type(prop, "array"):
        shape = "an array" if media.many else "one URL"
        warn(
            key,
            "media-format-type",
            f"format {show_value(prop.get('format'))} means {shape}, but the type is "
            f"{show_value(prop.get('type'))}",
            *base,
            "format",
        )
    found = prop.get("validations")
    if found is None:
        return
    if not isinstance(found, list):
        warn(key, "validation-malformed", "validations must be a list", *base, "validations")
        return
    for index, entry in enumerate(found):
        where = (*base, "validations", str(index))
        parsed = _media_rule(entry)
        if isinstance(parsed, str):
            warn(key, "validation-malformed", f"{parsed}; not enforced", *where)
        elif parsed.rule not in MEDIA_RULES:
            known = ", ".join(MEDIA_RULES)
            warn(
                key,
                "validation-unknown-rule",
                f"validation rule {parsed.rule!r} is not one the client knows ({known}); "
                "not checked locally",
                *where,
            )
        elif media is None:
            warn(
                key,
                "validation-not-media",
                f"validation rule {parsed.rule!r} is on a field that takes no media; not checked",
                *where,
            )


def number_text(value: Any) -> str:
    """A number as a person writes it: 2 not 2.0, 0.6 not 0.6000000000000001."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def show_value(value: Any, limit: int = 80) -> str:
    """A schema value as a person reads it, in JSON's spelling (null, true; 2 not 2.0),
    strings quoted, long ones shortened: used by messages, CLI help and generated docs."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return number_text(value)
    text = repr(value)
    # JSON data is spelled as JSON inside too (null, true, "text"); anything else (a Python
    # object given by mistake) as Python shows it.
    if isinstance(value, (list, dict)):
        with contextlib.suppress(TypeError, ValueError):
            text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    if len(text) <= limit:
        return text
    # Cut in the middle: the end of a long value (a file's name at the end of its path, a
    # closing quote) says as much as its start.
    tail = (limit - 3) // 3
    return text[: limit - 3 - tail] + "..." + text[len(text) - tail :]


def default_out_of_bounds(prop: Mapping[str, Any]) -> bool:
    """True when a numeric default breaks its own field's bounds (fun-inpaint's ``96_steps``:
    default 4, minimum 6). The server still applies it when the field is left out, so it is
    documented, never offered as a value the client would accept."""
    default = prop.get("default")
    if not isinstance(default, (int, float)) or isinstance(default, bool):
        return False
    low, high = prop.get("minimum"), prop.get("maximum")
    xlow, xhigh = prop.get("exclusiveMinimum"), prop.get("exclusiveMaximum")
    try:
        return bool(
            (low is not None and default < low)
            or (high is not None and default > high)
            or (xlow is not None and default <= xlow)
            or (xhigh is not None and default >= xhigh)
            or (isinstance(default, float) and not math.isfinite(default))
        )
    except TypeError:  # a bound that is not a number: the lint pass reports that one
        return False


def describe_range(prop: Mapping[str, Any]) -> str:
    """'6 to 20', 'at least 6', 'above 0', ... or '' when the field has no bounds."""
    low = prop.get("minimum")
    high = prop.get("maximum")
    xlow = prop.get("exclusiveMinimum")
    xhigh = prop.get("exclusiveMaximum")
    lower = f"{number_text(low)}" if low is not None else None
    upper = f"{number_text(high)}" if high is not None else None
    if lower and upper:
        return f"{lower} to {upper}"
    parts = []
    if lower:
        parts.append(f"at least {lower}")
    if xlow is not None:
        parts.append(f"above {number_text(xlow)}")
    if upper:
        parts.append(f"at most {upper}")
    if xhigh is not None:
        parts.append(f"below {number_text(xhigh)}")
    return ", ".join(parts)


def describe_count(low: int | None, high: int | None) -> str:
    """'1 to 9', 'up to 9', 'at least 1', 'exactly 2' or '' (how many items a list may hold)."""
    if low and high is not None:
        return f"{low} to {high}" if low != high else f"exactly {low}"
    if high is not None:
        return f"up to {high}"
    return f"at least {low}" if low else ""
