"""How a field is described to a person: one rule for codegen docstrings and CLI help."""

from __future__ import annotations

from ._dialect import (
    default_out_of_bounds,
    describe_count,
    describe_range,
    media_plural,
    show_value,
)
from ._registry import Field

__all__ = ["field_summary"]


def field_summary(f: Field) -> str:
    """One paragraph: title, description, what is allowed, the server's default."""
    parts: list[str] = []
    if f.title and f.title.strip():
        parts.append(_sentence(f.title))
    if f.description and f.description.strip() and f.description != f.title:
        parts.append(_sentence(f.description))
    if f.media and f.media_array:
        many = describe_count(f.min_items, f.max_items)
        many = many + " " if many else ""
        parts.append(f"A list of {many}public http(s) URLs of {media_plural(f.media)}.")
    elif f.media:
        parts.append(f"A public http(s) URL of the {f.media}.")
    elif f.min_items is not None or f.max_items is not None:
        parts.append(f"A list of {describe_count(f.min_items, f.max_items)} items.")
    for rule in f.validations:
        if rule.error.strip():
            parts.append(_sentence(rule.error))
    if f.enum is not None:
        parts.append("One of: " + ", ".join(show_value(v, 40) for v in f.enum) + ".")
    span = describe_range(f.schema)
    if span:
        parts.append(f"Allowed: {span}.")
    if f.required:
        parts.append("Required.")
    elif f.has_default and default_out_of_bounds(f.schema):
        # Published that way (fun-inpaint's steps: default 4, minimum 6): the server applies
        # it when the field is left out, but it is not a value anyone may send.
        parts.append(
            f"Server default: {show_value(f.default)}, outside the allowed range "
            "(applied by the server only when this is left out)."
        )
    elif f.has_default:
        parts.append(f"Server default: {show_value(f.default)}.")
    else:
        parts.append("Optional.")
    return " ".join(parts)


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if text.endswith((".", "!", "?")) else text + "."
