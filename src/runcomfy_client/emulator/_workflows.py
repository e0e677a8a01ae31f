"""The emulator's own reading of a ComfyUI workflow: overrides checked as RunComfy documents.

Deliberately independent of the client (``runcomfy_client._comfy`` / ``_derive``): the emulator
is a second reading of the API, so a mistake in the client's schema derivation shows up as a
disagreement in the tests instead of being agreed with.

RunComfy's rules for ``overrides`` (docs, "What overrides reference"): node ids must exist in
the deployed workflow, input keys must exist under that node's ``inputs``, and values should
match the node's ``object_info`` spec. A request that breaks them is refused with 422001 and a
``detail`` array, one entry per problem.
"""

from __future__ import annotations

import base64
import binascii
import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["OutputNode", "apply_overrides", "check_overrides", "check_workflow", "output_nodes"]

MAX_DATA_URI_BYTES = 64 * 1024 * 1024
# What each output node writes and under which channel ComfyUI reports it.
_OUTPUTS = {
    "SaveImage": ("image", "images"),
    "PreviewImage": ("image", "images"),
    "SaveAnimatedWEBP": ("image", "images"),
    "VHS_VideoCombine": ("video", "gifs"),
    "SaveVideo": ("video", "images"),
    "SaveWEBM": ("video", "images"),
}
_UPLOAD_FLAGS = ("image_upload", "video_upload", "audio_upload")


@dataclass(frozen=True)
class OutputNode:
    node_id: str
    class_type: str
    kind: str  # "image" or "video"
    channel: str  # "images" or "gifs"


def _problem(loc: list[Any], msg: str, kind: str) -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": kind}


def _linked(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)


def check_workflow(workflow: Any) -> list[dict[str, Any]]:
    """Problems with a workflow in API format (as sent inline or held by a deployment)."""
    if not isinstance(workflow, dict) or not workflow:
        return [_problem(["workflow_api_json"], "must be a non-empty object of nodes", "type")]
    found = []
    for node_id, node in workflow.items():
        where = ["workflow_api_json", node_id]
        if not isinstance(node, dict) or not isinstance(node.get("class_type"), str):
            found.append(_problem(where, "node has no class_type", "value_error"))
        elif not isinstance(node.get("inputs", {}), dict):
            found.append(_problem([*where, "inputs"], "inputs must be an object", "type"))
    return found


def _spec(object_info: Mapping[str, Any], class_type: str, name: str) -> Any:
    info = object_info.get(class_type)
    inputs = info.get("input") if isinstance(info, dict) else None
    if not isinstance(inputs, dict):
        return None
    for section in ("required", "optional"):
        entries = inputs.get(section)
        if isinstance(entries, dict) and name in entries:
            return entries[name]
    return None


def _media_value(value: Any) -> str | None:
    """Why a media value cannot be fetched, or None when it can (a URL or a data: URI)."""
    if not isinstance(value, str):
        return "must be a URL, a data: URI or a file name"
    if value.startswith(("http://", "https://")):
        return None
    if value.startswith("data:"):
        head, sep, data = value.partition(",")
        if not sep or ";base64" not in head:
            return "a data: URI must be base64 (data:<type>;base64,...)"
        if len(data) * 3 // 4 > MAX_DATA_URI_BYTES:
            return f"a data: URI is limited to {MAX_DATA_URI_BYTES} bytes"
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return "malformed base64 in the data: URI"
        return None
    return None  # a file name the deployment already has


def _check_value(spec: Any, value: Any) -> str | None:
    """Why ``value`` does not fit ``spec``, or None when it does (or the spec is unknown)."""
    if not isinstance(spec, list) or not spec:
        return None
    head = spec[0]
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if any(options.get(flag) for flag in _UPLOAD_FLAGS):
        return _media_value(value)
    choices = (
        head if isinstance(head, list) else options.get("options") if head == "COMBO" else None
    )
    if isinstance(choices, list):
        return None if value in choices else f"{value!r} is not one of {choices[:20]}"
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if head == "INT":
        if not (isinstance(value, int) and not isinstance(value, bool)):
            return f"{value!r} is not an integer"
    elif head == "FLOAT":
        if not is_number or not math.isfinite(value):
            return f"{value!r} is not a number"
    elif head == "BOOLEAN":
        return None if isinstance(value, bool) else f"{value!r} is not a boolean"
    elif head == "STRING":
        return None if isinstance(value, str) else f"{value!r} is not a string"
    else:
        return None  # a type the emulator does not know: accepted, like a custom node's
    low, high = options.get("min"), options.get("max")
    if isinstance(low, (int, float)) and value < low:
        return f"{value} is below the minimum {low}"
    if isinstance(high, (int, float)) and value > high:
        return f"{value} is above the maximum {high}"
    return None


def check_overrides(
    workflow: Mapping[str, Any], object_info: Mapping[str, Any], overrides: Any
) -> list[dict[str, Any]]:
    """Every problem with ``overrides`` for this workflow, as 422001's ``detail`` entries."""
    if not isinstance(overrides, dict):
        return [_problem(["body", "overrides"], "overrides must be an object", "type")]
    found = []
    for node_id, entry in overrides.items():
        where: list[Any] = ["body", "overrides", node_id]
        node = workflow.get(node_id)
        if not isinstance(node, dict):
            found.append(_problem(where, f"node {node_id!r} is not in the workflow", "value_error"))
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("inputs"), dict):
            found.append(_problem(where, 'must be {"inputs": {...}}', "type"))
            continue
        inputs = node.get("inputs", {})
        for name, value in entry["inputs"].items():
            at = [*where, "inputs", name]
            if name not in inputs:
                found.append(
                    _problem(
                        at,
                        f"node {node_id} ({node['class_type']}) has no input {name!r}",
                        "value_error",
                    )
                )
                continue
            if _linked(inputs[name]):
                if not (_linked(value) and value[0] in workflow):
                    found.append(
                        _problem(
                            at, "is a link in the workflow; only a link may replace it", "type"
                        )
                    )
                continue
            why = _check_value(_spec(object_info, node["class_type"], name), value)
            if why is not None:
                found.append(_problem(at, why, "value_error"))
    return found


def apply_overrides(workflow: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The workflow with the overrides' inputs replaced (the input is not changed)."""
    resolved = copy.deepcopy(dict(workflow))
    for node_id, entry in overrides.items():
        resolved[node_id]["inputs"].update(entry["inputs"])
    return resolved


def output_nodes(workflow: Mapping[str, Any]) -> list[OutputNode]:
    """The nodes whose files come back in the result, in the workflow's order."""
    found = []
    for node_id, node in workflow.items():
        known = _OUTPUTS.get(node.get("class_type", "")) if isinstance(node, dict) else None
        if known is not None:
            found.append(OutputNode(node_id, node["class_type"], *known))
    return found


def number_input(workflow: Mapping[str, Any], names: tuple[str, ...]) -> int | None:
    """The first integer value of an input with one of ``names``, in node order."""
    for node in workflow.values():
        inputs = node.get("inputs", {}) if isinstance(node, dict) else {}
        for name in names:
            value = inputs.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                return int(value)
    return None


def media_inputs(workflow: Mapping[str, Any], object_info: Mapping[str, Any]) -> list[str]:
    """The values of image loaders' file inputs: URLs or data: URIs the job must fetch."""
    found = []
    for node in workflow.values():
        if not isinstance(node, dict):
            continue
        for name, value in node.get("inputs", {}).items():
            spec = _spec(object_info, node.get("class_type", ""), name)
            options = spec[1] if isinstance(spec, list) and len(spec) > 1 else {}
            fetched = isinstance(value, str) and value.startswith(("http://", "https://", "data:"))
            if fetched and isinstance(options, dict) and options.get("image_upload"):
                found.append(value)
    return found
