"""What a schema may hold before anything else reads it: bounded size, local references only.

A schema is data from outside (a file someone sent, a saved page, an API answer). It is checked
here, once, before it is normalised, linted or compiled:

- nesting and size are bounded (deep nesting would crash the recursive readers after it);
- every ``$ref`` is local (``#`` plus a JSON pointer, or a ``#name`` anchor) and points at
  something: no schema ever makes the client fetch a URL or read a file;
- no chain of references and in-place applicators (``allOf``, ``not``, ``if``, ...) comes back
  to where it started without reaching into the value (that would recurse for ever).

Every refusal is a :class:`SchemaError` with the file and the JSON pointer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

from ._errors import SchemaError

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_SCHEMA_BYTES",
    "check_schema_limits",
    "pointer",
    "schema_nodes",
]

MAX_SCHEMA_BYTES = 4 * 1024 * 1024
"""A schema file larger than this is refused unread (published ones are a few kilobytes)."""
MAX_DEPTH = 64
"""JSON nesting (objects and arrays) a schema may reach; published ones reach about six."""
MAX_NODES = 200_000
"""Objects, arrays and values a schema may hold in all."""

# Keywords whose value is one schema, a list of schemas or a map of name -> schema.
SUBSCHEMA = (
    "items",
    "additionalItems",
    "additionalProperties",
    "unevaluatedItems",
    "unevaluatedProperties",
    "propertyNames",
    "contains",
    "contentSchema",
    "not",
    "if",
    "then",
    "else",
)
SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
# Applicators that look at the same value (not into it): a cycle through only these never ends.
_IN_PLACE = ("not", "if", "then", "else")
_IN_PLACE_LISTS = ("allOf", "anyOf", "oneOf")
_REF_WORDS = ("$ref", "$dynamicRef", "$recursiveRef")

Path = tuple[str | int, ...]


def pointer(parts: Path) -> str:
    """A JSON pointer (RFC 6901) for a path of keys and indexes."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def schema_nodes(node: Any, path: Path = ()) -> Iterator[tuple[dict[str, Any], Path]]:
    """Every subschema in schema position (a dict), with its path; iterative, so any depth."""
    stack: list[tuple[Any, Path]] = [(node, path)]
    while stack:
        current, where = stack.pop()
        if not isinstance(current, dict):
            continue
        yield current, where
        children: list[tuple[Any, Path]] = []
        for word in SUBSCHEMA:
            if word in current and isinstance(current[word], dict):
                children.append((current[word], (*where, word)))
        for word in SUBSCHEMA_LISTS:
            value = current.get(word)
            if isinstance(value, list):
                children += [(item, (*where, word, i)) for i, item in enumerate(value)]
        for word in SUBSCHEMA_MAPS:
            value = current.get(word)
            if isinstance(value, dict):
                children += [(item, (*where, word, name)) for name, item in value.items()]
        stack.extend(reversed(children))


def check_schema_limits(raw: Any, *, file: str | None = None) -> None:
    """Refuse a schema that is too deep or too large, or whose references are not local."""
    _check_shape(raw, file)
    if isinstance(raw, dict):
        _check_refs(raw, file)


def _check_shape(raw: Any, file: str | None) -> None:
    count = 0
    stack: list[tuple[Any, int, Path]] = [(raw, 1, ())]
    while stack:
        node, depth, where = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise SchemaError(
                f"the schema holds more than {MAX_NODES:,} values; refused", file=file, pointer=""
            )
        if isinstance(node, (dict, list)) and depth > MAX_DEPTH:
            raise SchemaError(
                f"the schema is nested more than {MAX_DEPTH} levels deep; refused",
                file=file,
                pointer=pointer(where),
            )
        if isinstance(node, dict):
            stack.extend((value, depth + 1, (*where, key)) for key, value in node.items())
        elif isinstance(node, list):
            stack.extend((value, depth + 1, (*where, i)) for i, value in enumerate(node))


def _resolve(root: dict[str, Any], ref: str, anchors: dict[str, dict[str, Any]]) -> Any:
    """The node a local reference points at, or None."""
    fragment = unquote(ref[1:])
    if fragment and not fragment.startswith("/"):
        return anchors.get(fragment)
    node: Any = root
    for raw in fragment.split("/")[1:] if fragment else []:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _check_refs(root: dict[str, Any], file: str | None) -> None:
    nodes = list(schema_nodes(root))
    anchors: dict[str, dict[str, Any]] = {}
    for node, where in nodes:
        for word in ("$anchor", "$dynamicAnchor"):
            if isinstance(node.get(word), str):
                anchors[node[word]] = node
        if where and "$id" in node:
            raise SchemaError(
                "an embedded $id (a schema resource inside the schema) is not supported: "
                "references must resolve within this one document",
                file=file,
                pointer=pointer((*where, "$id")),
            )
    # Reference targets are schemas too, even under keywords the walk above does not know.
    seen = {id(node) for node, _ in nodes}
    edges: dict[int, list[tuple[dict[str, Any], Path]]] = {}
    index = 0
    while index < len(nodes):
        node, where = nodes[index]
        index += 1
        out = edges.setdefault(id(node), [])
        for word in _REF_WORDS:
            ref = node.get(word)
            if ref is None:
                continue
            at = pointer((*where, word))
            if not isinstance(ref, str) or not ref.startswith("#"):
                raise SchemaError(
                    f"{word} {ref!r} is not a local reference: only '#/...' pointers into this "
                    "schema are followed, nothing is ever fetched or read from disk",
                    file=file,
                    pointer=at,
                )
            target = _resolve(root, ref, anchors)
            if not isinstance(target, (dict, bool)):
                raise SchemaError(
                    f"{word} {ref!r} points at no schema in this document", file=file, pointer=at
                )
            if isinstance(target, dict):
                out.append((target, (*where, word)))
                if id(target) not in seen:
                    seen.add(id(target))
                    nodes += list(schema_nodes(target, (*where, word)))
        out += [(node[w], (*where, w)) for w in _IN_PLACE if isinstance(node.get(w), dict)]
        for word in _IN_PLACE_LISTS:
            value = node.get(word)
            if isinstance(value, list):
                out += [(v, (*where, word, i)) for i, v in enumerate(value) if isinstance(v, dict)]
    _check_cycles(nodes, edges, file)


def _check_cycles(
    nodes: list[tuple[dict[str, Any], Path]],
    edges: dict[int, list[tuple[dict[str, Any], Path]]],
    file: str | None,
) -> None:
    """A depth-first search over in-place edges; a back edge is a loop that never ends."""
    state: dict[int, int] = {}  # 1: on the current path, 2: done
    for start, start_path in nodes:
        if id(start) in state:
            continue
        stack: list[tuple[dict[str, Any], Path, int]] = [(start, start_path, 0)]
        state[id(start)] = 1
        while stack:
            node, where, next_edge = stack[-1]
            out = edges.get(id(node), [])
            if next_edge >= len(out):
                state[id(node)] = 2
                stack.pop()
                continue
            stack[-1] = (node, where, next_edge + 1)
            child, via = out[next_edge]
            mark = state.get(id(child))
            if mark == 1:
                raise SchemaError(
                    "this reference loops back to itself without reaching into the value "
                    "(validating would never end)",
                    file=file,
                    pointer=pointer(via),
                )
            if mark is None:
                state[id(child)] = 1
                stack.append((child, via, 0))
