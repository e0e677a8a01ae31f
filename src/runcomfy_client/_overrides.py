"""Compile a validated ``<node>_<input>`` payload into a Serverless request's ``overrides``.

The inverse of schema derivation: ``{"6_text": "a cat", "5_widthx5_height": "768x512"}``
becomes ``{"overrides": {"6": {"inputs": {"text": "a cat"}}, "5": {"inputs": {"width": 768,
"height": 512}}}}``. Where a field comes from is read from the property's ``x-comfy`` note
(written by ``schema derive``), else from its key, so hand-written schemas that follow the
Model API's ``<node id>_<input>`` convention compile too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ._errors import InputValidationError, SchemaError
from ._registry import Field, ModelSchema

__all__ = ["compile_overrides", "input_targets"]

_KEY = re.compile(r"^(?P<node>[0-9]+(?::[0-9]+)*)_(?P<input>.+)$")
_PAIR = re.compile(
    r"^(?P<wn>[0-9]+(?::[0-9]+)*)_(?P<wi>[A-Za-z0-9_]*width[A-Za-z0-9_]*)"
    r"x(?P<hn>[0-9]+(?::[0-9]+)*)_(?P<hi>[A-Za-z0-9_]*height[A-Za-z0-9_]*)$"
)


def _note(f: Field) -> Mapping[str, Any]:
    note = f.schema.get("x-comfy")
    return note if isinstance(note, Mapping) else {}


def input_targets(f: Field) -> list[tuple[str, str]]:
    """The ``(node id, input)`` pairs a field fills: one, or two for a fused WxH choice."""
    note = _note(f)
    if isinstance(note.get("node"), str) and isinstance(note.get("input"), str):
        return [(note["node"], note["input"])]
    width, height = note.get("width"), note.get("height")
    if isinstance(width, Mapping) and isinstance(height, Mapping):
        return [
            (str(width["node"]), str(width["input"])),
            (str(height["node"]), str(height["input"])),
        ]
    pair = _PAIR.match(f.key) if f.dimensions else None
    if pair:
        return [(pair["wn"], pair["wi"]), (pair["hn"], pair["hi"])]
    single = _KEY.match(f.key)
    if single:
        return [(single["node"], single["input"])]
    raise SchemaError(
        f"field {f.label} does not name a ComfyUI node input: its key is not "
        "'<node id>_<input>' and it has no x-comfy note",
        pointer=f"/properties/{f.key}",
    )


def compile_overrides(model: ModelSchema, payload: Mapping[str, Any]) -> dict[str, Any]:
    """``{"overrides": {node: {"inputs": {...}}}}`` for a payload the validator returned."""
    from ._validation import Problem, dimensions_of

    overrides: dict[str, dict[str, dict[str, Any]]] = {}
    for key, value in payload.items():
        f = model.find(key)
        if f is None:
            raise InputValidationError(
                model.model_id, [Problem("unknown", "unknown field", key=key)]
            )
        targets = input_targets(f)
        if len(targets) == 2:
            pair = dimensions_of(value) if isinstance(value, str) else None
            if pair is None:
                raise InputValidationError(
                    model.model_id,
                    [Problem("invalid", f"{value!r} is not WIDTHxHEIGHT", f.name, f.key, value)],
                )
            values: list[Any] = list(pair)
        else:
            values = [value]
        for (node, name), item in zip(targets, values, strict=True):
            inputs = overrides.setdefault(node, {"inputs": {}})["inputs"]
            if name in inputs and inputs[name] != item:
                raise InputValidationError(
                    model.model_id,
                    [
                        Problem(
                            "duplicate",
                            f"sets input {name!r} of node {node} a second time, to a different "
                            "value",
                            f.name,
                            f.key,
                            value,
                        )
                    ],
                )
            inputs[name] = item
    return {"overrides": overrides}
