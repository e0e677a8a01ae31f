"""ComfyUI's own formats, read for schema derivation: ``workflow_api.json`` and ``object_info``.

A workflow in API format maps node ids to ``{"class_type", "inputs", "_meta"?}``; an input's
value is a literal or a link ``["<node id>", <output slot>]``. ``object_info`` maps each class to
its input specs, ``[TYPE, {options}]``, where TYPE is a widget (``INT``, ``FLOAT``, ``BOOLEAN``,
``STRING``), a combo (``[[choices...], {...}]`` or ``["COMBO", {"options": [...]}]``) or a
connection type (``"MODEL"``, ``"IMAGE"``) that only a link can fill.

This module only reads: what the workflow holds, what a spec allows, as JSON Schema. Choosing
what to expose and how to name it is ``_derive``'s job.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._errors import SchemaError

__all__ = [
    "InputSpec",
    "Node",
    "Workflow",
    "fingerprint",
    "input_spec",
    "is_link",
    "node_sort_key",
    "output_kind",
    "spec_property",
]

# A full object_info is several MB (its combos list every model file); workflows are smaller.
MAX_COMFY_FILE_BYTES = 256 * 1024 * 1024
WIDGET_TYPES = frozenset({"INT", "FLOAT", "BOOLEAN", "STRING", "COMBO"})
# Upload widgets say what they load: LoadImage's combo carries {"image_upload": true}.
_UPLOAD_FLAGS = {"image_upload": "image", "video_upload": "video", "audio_upload": "audio"}
# Loaders whose file input has no upload flag in some ComfyUI versions.
_LOADER_INPUTS = {
    ("LoadImage", "image"): "image",
    ("LoadImageMask", "image"): "image",
    ("LoadImageOutput", "image"): "image",
    ("LoadVideo", "file"): "video",
    ("VHS_LoadVideo", "video"): "video",
    ("VHS_LoadVideoFFmpeg", "video"): "video",
    ("LoadAudio", "audio"): "audio",
    ("VHS_LoadAudioUpload", "audio"): "audio",
}
# Output nodes by what they write: SaveImage's PNGs come back under "images", VHS's videos
# under "gifs". Anything else with output_node true is reported as "other".
_OUTPUT_KINDS = {
    "SaveImage": "image",
    "PreviewImage": "image",
    "SaveAnimatedWEBP": "image",
    "SaveAnimatedPNG": "image",
    "VHS_VideoCombine": "video",
    "SaveVideo": "video",
    "SaveWEBM": "video",
    "SaveAudio": "audio",
    "SaveAudioMP3": "audio",
    "PreviewAudio": "audio",
}
_NODE_ID = re.compile(r"^[0-9]+(?::[0-9]+)*$")


def is_link(value: Any) -> bool:
    """True for ``["<node id>", <slot>]``: an input fed by another node's output."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    )


def node_sort_key(node_id: str) -> tuple[Any, ...]:
    """Numeric order for ids such as ``"9"``, ``"10"`` and subgraph ids ``"12:3"``."""
    if _NODE_ID.match(node_id):
        return (0, *(int(part) for part in node_id.split(":")))
    return (1, node_id)


@dataclass(frozen=True)
class Node:
    """One node of a workflow in API format."""

    id: str
    class_type: str
    inputs: Mapping[str, Any]
    title: str | None

    def literal_inputs(self) -> Iterator[tuple[str, Any]]:
        """The inputs given as values, not links, in the workflow's order."""
        for name, value in self.inputs.items():
            if not is_link(value):
                yield name, value


@dataclass(frozen=True)
class Workflow:
    """A parsed ``workflow_api.json``: its nodes by id, checked to be the API format."""

    nodes: Mapping[str, Node]
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def parse(cls, data: Any, *, file: str | None = None) -> Workflow:
        if not isinstance(data, dict):
            raise SchemaError(
                f"a workflow in API format is a JSON object of nodes, not {type(data).__name__}",
                file=file,
                pointer="",
            )
        if "nodes" in data and "links" in data:
            raise SchemaError(
                "this is a UI workflow (workflow.json); export it with 'Save (API)' / "
                "'Export (API)' to get workflow_api.json",
                file=file,
                pointer="",
            )
        nodes: dict[str, Node] = {}
        for node_id, node in data.items():
            where = f"/{_escape(node_id)}"
            if not isinstance(node, dict) or not isinstance(node.get("class_type"), str):
                raise SchemaError(
                    f"node {node_id!r} has no class_type: not a workflow in API format",
                    file=file,
                    pointer=where,
                )
            inputs = node.get("inputs", {})
            if not isinstance(inputs, dict):
                raise SchemaError(
                    f"node {node_id!r}'s inputs must be an object", file=file, pointer=where
                )
            meta = node.get("_meta")
            title = meta.get("title") if isinstance(meta, dict) else None
            nodes[node_id] = Node(
                node_id, node["class_type"], inputs, title if isinstance(title, str) else None
            )
        ordered = {k: nodes[k] for k in sorted(nodes, key=node_sort_key)}
        return cls(ordered, data)


@dataclass(frozen=True)
class InputSpec:
    """What ``object_info`` says about one input of a node class."""

    kind: str
    """``INT``, ``FLOAT``, ``BOOLEAN``, ``STRING``, ``COMBO``, or a connection type."""
    options: Mapping[str, Any]
    section: str
    """``required``, ``optional`` or ``hidden``."""
    choices: tuple[Any, ...] | None = None

    @property
    def is_widget(self) -> bool:
        return self.kind in WIDGET_TYPES and self.section != "hidden"


def _class_info(object_info: Mapping[str, Any], class_type: str) -> Mapping[str, Any] | None:
    info = object_info.get(class_type)
    return info if isinstance(info, dict) else None


def display_name(object_info: Mapping[str, Any], class_type: str) -> str | None:
    info = _class_info(object_info, class_type)
    name = info.get("display_name") if info is not None else None
    return name if isinstance(name, str) and name else None


def is_output_node(object_info: Mapping[str, Any], class_type: str) -> bool:
    info = _class_info(object_info, class_type)
    return bool(info is not None and info.get("output_node") is True) or (
        class_type in _OUTPUT_KINDS
    )


def output_kind(class_type: str) -> str:
    """``image``, ``video``, ``audio`` or ``other``: what an output node writes."""
    return _OUTPUT_KINDS.get(class_type, "other")


def input_spec(object_info: Mapping[str, Any], class_type: str, name: str) -> InputSpec | None:
    """The spec of one input, or None when the class or the input is not in ``object_info``."""
    info = _class_info(object_info, class_type)
    sections = info.get("input") if info is not None else None
    if not isinstance(sections, dict):
        return None
    for section in ("required", "optional", "hidden"):
        entries = sections.get(section)
        if not isinstance(entries, dict) or name not in entries:
            continue
        spec = entries[name]
        if isinstance(spec, str):  # hidden inputs are bare type names: "PROMPT"
            return InputSpec(spec, {}, section)
        if not isinstance(spec, list) or not spec:
            return InputSpec("?", {}, section)
        head = spec[0]
        options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
        if isinstance(head, list):
            return InputSpec("COMBO", options, section, tuple(head))
        if head == "COMBO":
            listed = options.get("options")
            choices = tuple(listed) if isinstance(listed, list) else None
            return InputSpec("COMBO", options, section, choices)
        return InputSpec(head if isinstance(head, str) else "?", options, section)
    return None


def media_of(spec: InputSpec, class_type: str, name: str) -> str | None:
    """``image``, ``video`` or ``audio`` when the input names a file a loader reads."""
    for flag, kind in _UPLOAD_FLAGS.items():
        if spec.options.get(flag) is True:
            return kind
    return _LOADER_INPUTS.get((class_type, name))


def _bound(value: Any) -> int | float | None:
    """A usable bound: a finite number (ComfyUI may say 0xffffffffffffffff, or infinity)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _enum_type(choices: tuple[Any, ...]) -> str | None:
    if all(isinstance(c, str) for c in choices):
        return "string"
    if all(isinstance(c, int) and not isinstance(c, bool) for c in choices):
        return "integer"
    if all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in choices):
        return "number"
    return None


def spec_property(spec: InputSpec, media: str | None) -> dict[str, Any] | None:
    """The JSON Schema of a widget input (None when the spec is not a value ComfyUI knows)."""
    prop: dict[str, Any] = {}
    if media is not None:
        # A file the deployment's loader reads: sent as a public URL or a data: URI.
        prop["type"] = "string"
        prop["format"] = f"{media}_uri"
        return prop
    if spec.kind == "COMBO":
        if spec.choices is None:
            return None
        kind = _enum_type(spec.choices)
        if kind is not None:
            prop["type"] = kind
        prop["enum"] = list(spec.choices)
        return prop
    if spec.kind in ("INT", "FLOAT"):
        prop["type"] = "integer" if spec.kind == "INT" else "number"
        low, high = _bound(spec.options.get("min")), _bound(spec.options.get("max"))
        if low is not None:
            prop["minimum"] = low
        if high is not None:
            prop["maximum"] = high
        return prop
    if spec.kind == "BOOLEAN":
        return {"type": "boolean"}
    if spec.kind == "STRING":
        return {"type": "string"}
    return None


def fingerprint(data: Any) -> str:
    """A short, stable digest of a JSON document (key order and spacing do not count)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")
