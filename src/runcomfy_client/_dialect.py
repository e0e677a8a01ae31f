"""RunComfy's schema dialect: one normalisation step to JSON Schema, and a lint pass.

RunComfy publishes its input schemas in a dialect close to JSON Schema. The one known
difference, ``"type": "float"``, becomes ``"number"``; any other value that is not JSON Schema
stops loading with the file and JSON pointer. The normalised schema must pass Draft 2020-12's
``check_schema``. The lint pass reports, without failing, what a maintainer should know.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ._errors import SchemaError
from ._naming import assign_names

__all__ = [
    "JSON_TYPES",
    "LintWarning",
    "dimension_pair",
    "lint",
    "media_kind",
    "normalise",
]

JSON_TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})
# The dialect's type names that are not JSON Schema, and what they mean.
_TYPE_ALIASES = {"float": "number"}
# Keywords whose value is a schema, a list of schemas or a map of schemas: walked for "type".
_SUBSCHEMA = ("items", "additionalProperties", "not", "if", "then", "else", "contains")
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions")
_MEDIA_WORDS = ("image", "video", "audio", "mask")


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


def _pointer(parts: tuple[str | int, ...]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _walk(
    node: Any, path: tuple[str | int, ...]
) -> Iterator[tuple[dict[str, Any], tuple[str | int, ...]]]:
    """Every subschema (a dict in schema position) with its path."""
    if not isinstance(node, dict):
        return
    yield node, path
    for word in _SUBSCHEMA:
        if word in node:
            yield from _walk(node[word], (*path, word))
    for word in _SUBSCHEMA_LISTS:
        value = node.get(word)
        if isinstance(value, list):
            for i, item in enumerate(value):
                yield from _walk(item, (*path, word, i))
    for word in _SUBSCHEMA_MAPS:
        value = node.get(word)
        if isinstance(value, dict):
            for name, item in value.items():
                yield from _walk(item, (*path, word, name))


def normalise(raw: Any, *, file: str | None = None) -> dict[str, Any]:
    """Return the JSON Schema meaning of a published schema (the input is not changed).

    Raises :class:`SchemaError` naming the file and JSON pointer of the first thing that is not
    JSON Schema, or that fails Draft 2020-12's own meta-schema.
    """
    if not isinstance(raw, dict):
        raise SchemaError(
            f"a model schema must be a JSON object, not {type(raw).__name__}", file=file, pointer=""
        )
    schema = copy.deepcopy(raw)
    for node, path in _walk(schema, ()):
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
    are strings": each distinct shape without them is checked once.
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

    properties = schema["properties"]
    check({**schema, "properties": {}}, ())
    seen: set[str] = set()
    for key, prop in properties.items():
        shape = prop
        if isinstance(prop, dict):
            for word in ("title", "description"):
                if word in prop and not isinstance(prop[word], str):
                    check({word: prop[word]}, ("properties", key))
            shape = {
                k: v
                for k, v in prop.items()
                if k not in ("title", "description", "default") and not k.startswith("x-")
            }
        digest = json.dumps(shape, sort_keys=True, default=repr)
        if digest not in seen:
            seen.add(digest)
            check(shape, ("properties", key))


def media_kind(key: str, prop: Mapping[str, Any]) -> str | None:
    """'image', 'video', 'audio' or 'mask' when the field takes a media URL, else None.

    ``x-media`` on the property decides when present; otherwise a free string field whose key
    (after the node id) or title names a media kind is taken to be one (``608_image``,
    "Start Image").
    """
    explicit = prop.get("x-media")
    if isinstance(explicit, str):
        return explicit or None
    if explicit is False:
        return None
    if prop.get("type") != "string" or "enum" in prop:
        return None
    tail = key.split("_", 1)[1] if key.split("_", 1)[0].isdigit() and "_" in key else key
    words = tail.lower().replace("-", "_").split("_")
    title = prop.get("title")
    if isinstance(title, str):
        words += title.lower().split()
    for kind in _MEDIA_WORDS:
        if kind in words or f"{kind}s" in words or f"{kind}_url" in tail.lower():
            return kind
    return None


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
        if not isinstance(prop, dict):
            continue
        base = ("properties", key)
        enum = prop.get("enum")
        if isinstance(enum, list):
            seen: set[tuple[type, Any]] = set()  # by type and value: 1, 1.0, True differ
            for value in enum:
                mark = _enum_mark(value)
                if mark in seen:
                    warn(
                        key, "enum-duplicate", f"enum lists {value!r} more than once", *base, "enum"
                    )
                seen.add(mark)
        if "default" not in prop:
            continue
        default = prop["default"]
        if "type" in prop and not _type_ok(default, prop["type"]):
            warn(
                key,
                "default-type",
                f"default {default!r} is not of type {prop['type']!r}",
                *base,
                "default",
            )
            continue
        if isinstance(enum, list) and default not in enum:
            warn(key, "default-enum", f"default {default!r} is not in its enum", *base, "default")
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            low, high = prop.get("minimum"), prop.get("maximum")
            xlow, xhigh = prop.get("exclusiveMinimum"), prop.get("exclusiveMaximum")
            bad = (
                (low is not None and default < low)
                or (high is not None and default > high)
                or (xlow is not None and default <= xlow)
                or (xhigh is not None and default >= xhigh)
                or (isinstance(default, float) and not math.isfinite(default))
            )
            if bad:
                warn(
                    key,
                    "default-out-of-range",
                    f"default {default!r} is outside its own bounds ({describe_range(prop)}); "
                    "the server applies it when the field is omitted",
                    *base,
                    "default",
                )
        kind = media_kind(key, prop)
        if kind and not is_url(default):
            warn(
                key,
                "media-example-not-url",
                f"{kind} field's example {default!r} is not an http(s) URL; "
                "the API only fetches public URLs",
                *base,
                "default",
            )
    _, collisions = assign_names({k: v for k, v in properties.items() if isinstance(v, dict)})
    for collision in collisions:
        warn(None, "name-collision", str(collision), "properties")
    return out


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
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
