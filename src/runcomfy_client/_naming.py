"""The one rule that turns a schema's wire keys into readable Python names.

Used by validation messages, CLI flags and codegen alike, so that a field is called the same
everywhere. The rule, in order:

1. ``x-python-name`` on the property, if present;
2. else the property's ``title``, snake_cased, with a parenthesised tail dropped
   ("Resolution (W:H)" -> ``resolution``);
3. else the key without its leading ``<digits>_`` ComfyUI node id (``600_prompt`` -> ``prompt``).

Keywords and builtins get a trailing ``_``. Collisions never fail: the colliding fields fall back
to key-derived names, then to a suffix from the node id (then a counter), with a lint warning.
"""

from __future__ import annotations

import builtins
import keyword
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "NameCollision",
    "assign_names",
    "cli_flag",
    "key_to_name",
    "module_path",
    "node_id",
    "snake_case",
]

_NODE_PREFIX = re.compile(r"^(\d+)_")
_PAREN_TAIL = re.compile(r"\s*[\(\[][^\)\]]*[\)\]]\s*$")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_NON_WORD = re.compile(r"[^0-9a-zA-Z]+")
# Names that would shadow something a reader relies on: keywords cannot be used at all,
# builtins can but make code confusing (``id``, ``type``, ``format``, ``input``), and the
# attributes of a pydantic model (the generated input classes) cannot be field names.
_MODEL_ATTRIBUTES = frozenset(
    {
        "construct", "copy", "dict", "from_orm", "json", "parse_file", "parse_obj", "parse_raw",
        "schema", "schema_json", "update_forward_refs", "validate",
        "model_computed_fields", "model_config", "model_construct", "model_copy", "model_dump",
        "model_dump_json", "model_extra", "model_fields", "model_fields_set",
        "model_json_schema", "model_parametrized_name", "model_post_init", "model_rebuild",
        "model_validate", "model_validate_json", "model_validate_strings",
        "to_payload", "runcomfy_model",  # runcomfy_client.typed.InputModel's own
    }
)  # fmt: skip
_RESERVED = (
    frozenset(keyword.kwlist)
    | frozenset(keyword.softkwlist)
    | frozenset(dir(builtins))
    | _MODEL_ATTRIBUTES
)


@dataclass(frozen=True)
class NameCollision:
    """Several fields wanted one name; ``assigned`` says what each got instead."""

    wanted: str
    assigned: Mapping[str, str]  # wire key -> name

    def __str__(self) -> str:
        given = ", ".join(f"{key} -> {name}" for key, name in sorted(self.assigned.items()))
        return f"fields {sorted(self.assigned)} would all be named {self.wanted!r}; named {given}"


def snake_case(text: str) -> str:
    """Turn free text into a snake_case identifier ('' when nothing usable remains)."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = _CAMEL.sub("_", text)
    text = _NON_WORD.sub("_", text).strip("_").lower()
    if text and text[0].isdigit():
        text = f"field_{text}"
    return text


def _safe(name: str) -> str:
    return f"{name}_" if name in _RESERVED else name


def node_id(key: str) -> str | None:
    """The ComfyUI node id a wire key starts with (``'96_steps'`` -> ``'96'``)."""
    match = _NODE_PREFIX.match(key)
    return match.group(1) if match else None


def key_to_name(key: str) -> str:
    """The key-derived name: the key without its node id, snake_cased."""
    name = snake_case(_NODE_PREFIX.sub("", key, count=1)) or snake_case(key) or "field"
    return _safe(name)


def _preferred(key: str, prop: Mapping[str, Any]) -> str:
    explicit = prop.get("x-python-name")
    if isinstance(explicit, str) and snake_case(explicit):
        return _safe(snake_case(explicit))
    title = prop.get("title")
    if isinstance(title, str):
        name = snake_case(_PAREN_TAIL.sub("", title)) or snake_case(title)
        if name:
            return _safe(name)
    return key_to_name(key)


def _suffixed(key: str) -> str:
    base = key_to_name(key).rstrip("_")
    node = node_id(key)
    return f"{base}_{node}" if node else base


def assign_names(
    properties: Mapping[str, Mapping[str, Any]],
) -> tuple[dict[str, str], list[NameCollision]]:
    """Give every property a unique readable name.

    Returns ``{wire key: name}`` (in the properties' order) and the collisions that were
    resolved, for the lint pass to report. Deterministic: the result depends only on the keys
    and their properties, never on dict order.
    """
    keys = sorted(properties)
    stages = [
        {key: _preferred(key, properties[key]) for key in keys},
        {key: key_to_name(key) for key in keys},
        {key: _suffixed(key) for key in keys},
    ]
    stage_of = dict.fromkeys(keys, 0)
    wanted: dict[str, str] = {}
    # Move every member of a colliding group one stage down until nothing collides or the
    # stages run out; the last stage is made unique with a counter.
    for _ in range(len(stages)):
        names = {key: stages[stage_of[key]][key] for key in keys}
        groups = _groups(names)
        clashing = [group for group in groups.values() if len(group) > 1]
        if not clashing:
            break
        for group in clashing:
            for key in group:
                wanted.setdefault(key, names[key])
                stage_of[key] = min(stage_of[key] + 1, len(stages) - 1)
    names = {key: stages[stage_of[key]][key] for key in keys}
    taken: set[str] = set()
    for key in keys:
        name = names[key]
        if name in taken:
            counter = 2
            while f"{name}_{counter}" in taken or f"{name}_{counter}" in names.values():
                counter += 1
            name = f"{name}_{counter}"
            names[key] = name
        taken.add(name)
    collisions: dict[str, dict[str, str]] = {}
    for key, first in wanted.items():
        collisions.setdefault(first, {})[key] = names[key]
    report = [NameCollision(w, assigned) for w, assigned in sorted(collisions.items())]
    return {key: names[key] for key in properties}, report


def _groups(names: Mapping[str, str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for key, name in names.items():
        groups.setdefault(name, []).append(key)
    return groups


def cli_flag(name: str) -> str:
    """The CLI flag for a readable name: ``guidance_scale`` -> ``--guidance-scale``."""
    return "--" + name.rstrip("_").replace("_", "-")


def module_path(model_id: str) -> tuple[str, ...]:
    """The importable module path for a model id, one part per id segment.

    ``community/wan-2-1/fusionx/image-to-video`` -> ``('community', 'wan_2_1', 'fusionx',
    'image_to_video')``. Segments that would start with a digit get an ``m`` prefix; keywords a
    trailing ``_``. Codegen reports two ids that land on one path; nothing else needs to.
    """
    parts = []
    for segment in model_id.strip("/").split("/"):
        text = unicodedata.normalize("NFKD", segment).encode("ascii", "ignore").decode("ascii")
        part = _NON_WORD.sub("_", text).strip("_").lower() or "model"
        if part[0].isdigit():
            part = f"m{part}"
        if keyword.iskeyword(part) or keyword.issoftkeyword(part):
            part = f"{part}_"
        parts.append(part)
    return tuple(parts)


def closest(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` candidates that look like ``word`` (for did-you-mean hints)."""
    import difflib

    pool = list(dict.fromkeys(candidates))
    lowered = {c.lower(): c for c in pool}
    hits = difflib.get_close_matches(word.lower(), list(lowered), n=n, cutoff=0.6)
    return [lowered[h] for h in hits]
