"""Derive a model schema from a ComfyUI workflow, so a deployment is used like any model.

``derive`` turns ``workflow_api.json`` + ``object_info`` (+ which inputs to expose, + an
overlay) into an input schema in the Model API's dialect: one property per exposed node input,
keyed ``<node id>_<input>``, typed and bounded by ``object_info``, with the workflow's current
value as its default and a title from the node's title and the input name. The schema then
goes through the registry, the dialect, the naming rule and the validator unchanged: there is
one engine, and a derived schema is just another file in a schema folder.

Beside the schema, its sidecar (``<name>.info.json``, the one sidecar format of ``_sidecar``)
holds ``kind: "deployment"`` and the binding: the deployment id, what the schema was derived
from (fingerprints) and how (expose list, overlay), so ``--check`` can tell when the deployed
workflow changed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._comfy import (
    InputSpec,
    Node,
    Workflow,
    display_name,
    fingerprint,
    input_spec,
    is_link,
    is_output_node,
    media_of,
    output_kind,
    spec_property,
)
from ._dialect import LintWarning, describe_range, number_text
from ._errors import SchemaError
from ._model_info import ModelInfo
from ._naming import closest
from ._overlay import FieldOverlay, Fuse, Overlay, Target
from ._registry import ModelSchema, model_from_schema
from ._sidecar import SidecarError, read_sidecar, sidecar_path, sidecar_text
from ._version import __version__

__all__ = [
    "DEPLOYMENTS_FOLDER",
    "Derived",
    "binding_path",
    "derive",
    "read_binding",
]

DEPLOYMENTS_FOLDER = "deployments"
# Names people write in capitals: "cfg" reads better as "CFG".
_ACRONYMS = frozenset({"cfg", "vae", "clip", "crf", "fps", "id", "url", "lora", "unet", "rgb"})


@dataclass(frozen=True)
class Derived:
    """A derived schema, its binding (the sidecar) and what a maintainer should know."""

    model_id: str
    schema: dict[str, Any]
    binding: dict[str, Any]
    warnings: tuple[LintWarning, ...]
    model: ModelSchema = field(repr=False)

    def schema_text(self) -> str:
        return json.dumps(self.schema, indent=2, ensure_ascii=False) + "\n"

    def info(self) -> ModelInfo:
        """The schema's sidecar: a deployment, named by its title, making what its outputs do."""
        kinds = {o["kind"] for o in self.binding.get("outputs", [])} - {"other"}
        kind = kinds.pop() if len(kinds) == 1 else None
        deployment = {k: v for k, v in self.binding.items() if k != "model_id"}
        return ModelInfo(
            self.model_id,
            display_name=self.schema.get("title"),
            categories=(kind,) if kind else (),
            kind="deployment",
            output_kind=kind,
            deployment=deployment,
        )

    def binding_text(self) -> str:
        """The sidecar file's content (see ``_sidecar``)."""
        return sidecar_text(self.info().sidecar())


def binding_path(schema_path: Path) -> Path:
    """Where a derived schema's binding is kept: its sidecar, ``<name>.info.json``."""
    return sidecar_path(schema_path)


def read_binding(schema_path: Path) -> dict[str, Any] | None:
    """The binding beside a derived schema (its sidecar's ``deployment`` with the model id),
    or None for a schema that has none."""
    try:
        data = read_sidecar(schema_path)
    except SidecarError as exc:
        raise SchemaError(f"its sidecar is unusable: {exc.reason}", file=str(exc.file)) from None
    deployment = data.get("deployment") if data is not None else None
    if data is None or not isinstance(deployment, dict):
        return None
    return {"model_id": data.get("model_id"), **deployment}


def _humanise(name: str) -> str:
    words = [w for w in name.replace("-", "_").split("_") if w]
    return " ".join(w.upper() if w.lower() in _ACRONYMS else w.capitalize() for w in words)


def _plain_title(title: str) -> str:
    """A node title without its parenthesised tail: "CLIP Text Encode (Prompt)" -> ..."""
    head = title.split("(", 1)[0].strip()
    return head or title


@dataclass
class _Field:
    key: str
    target: Target
    node: Node
    prop: dict[str, Any]
    required: bool = False


class _Deriver:
    def __init__(
        self,
        workflow: Workflow,
        object_info: Mapping[str, Any],
        *,
        workflow_file: str | None,
        object_info_file: str | None,
    ) -> None:
        self.wf = workflow
        self.info = object_info
        self.wf_file = workflow_file
        self.info_file = object_info_file
        self.warnings: list[LintWarning] = []

    # -- which inputs ------------------------------------------------------------------------

    def fail(self, target: Target | None, message: str) -> SchemaError:
        pointer = f"/{target.node}/inputs/{target.input}" if target else ""
        return SchemaError(message, file=self.wf_file, pointer=pointer)

    def check_target(self, target: Target) -> Node:
        node = self.wf.nodes.get(target.node)
        if node is None:
            hints = closest(target.node, list(self.wf.nodes), n=2)
            hint = f"; did you mean {' or '.join(hints)}?" if hints else ""
            known = ", ".join(f"{n.id} ({n.class_type})" for n in list(self.wf.nodes.values())[:12])
            raise self.fail(
                target, f"{target}: the workflow has no node {target.node!r}{hint} (nodes: {known})"
            )
        value: Any = node.inputs.get(target.input)
        if is_link(value):
            raise self.fail(
                target,
                f"{target}: input {target.input!r} of node {node.id} ({node.class_type}) is a "
                f"link from node {value[0]} (output {value[1]}); links are never exposed, only "
                "values",
            )
        spec = input_spec(self.info, node.class_type, target.input)
        if spec is not None and spec.section == "hidden":
            raise self.fail(
                target,
                f"{target}: {target.input!r} is a hidden input of {node.class_type}, filled by "
                "ComfyUI itself",
            )
        if target.input not in node.inputs:
            # RunComfy refuses overrides of inputs the deployed workflow does not set.
            names = [n for n, _ in node.literal_inputs()]
            hints = closest(target.input, names, n=1)
            hint = f"did you mean {target.node}.{hints[0]}? " if hints else ""
            known = "an optional input the workflow leaves unset; " if spec is not None else ""
            raise self.fail(
                target,
                f"{target}: node {node.id} ({node.class_type}) sets no input {target.input!r} "
                f"({known}overrides can only change what the workflow sets); {hint}"
                f"its value inputs are {', '.join(names) or 'none'}",
            )
        return node

    def default_targets(self, overrides: Mapping[str, Any] | None) -> list[Target]:
        """The deployment's default overrides, else every literal input of every node."""
        if overrides:
            found: list[Target] = []
            for node_id, entry in overrides.items():
                inputs = entry.get("inputs") if isinstance(entry, dict) else None
                if isinstance(inputs, dict):
                    found.extend(Target(str(node_id), str(name)) for name in inputs)
            if found:
                return found
        targets = []
        for node in self.wf.nodes.values():
            for name, _ in node.literal_inputs():
                spec = input_spec(self.info, node.class_type, name)
                if spec is None or spec.section != "hidden":  # ComfyUI fills hidden ones
                    targets.append(Target(node.id, name))
        return targets

    # -- one field ---------------------------------------------------------------------------

    def build(self, target: Target, node: Node) -> _Field:
        spec = input_spec(self.info, node.class_type, target.input)
        media = media_of(spec, node.class_type, target.input) if spec else None
        prop = spec_property(spec, media) if spec is not None else None
        if prop is None:
            prop = {}
            self.warn_unknown(target, node, spec)
        prop = {"title": "", **prop}
        if spec is not None and isinstance(spec.options.get("tooltip"), str):
            prop["description"] = spec.options["tooltip"]
        if target.input in node.inputs:
            prop["default"] = node.inputs[target.input]
        prop["x-comfy"] = {"node": node.id, "input": target.input, "class_type": node.class_type}
        return _Field(target.key, target, node, prop)

    def warn_unknown(self, target: Target, node: Node, spec: InputSpec | None) -> None:
        if spec is None and node.class_type not in self.info:
            why = f"node class {node.class_type!r} is not in object_info"
        elif spec is None:
            why = f"{node.class_type} has no input {target.input!r} in object_info"
        else:
            why = f"its spec type {spec.kind!r} is not a value type ComfyUI documents"
        self.warnings.append(
            LintWarning(
                self.wf_file,
                f"/properties/{target.key}",
                target.key,
                "unknown-input-spec",
                f"{target}: {why}; it accepts any JSON value (check it against the workflow)",
            )
        )

    def titles(self, fields: Sequence[_Field]) -> None:
        per_node: dict[str, int] = {}
        per_name: dict[str, int] = {}
        for f in fields:
            per_node[f.node.id] = per_node.get(f.node.id, 0) + 1
            name = _humanise(f.target.input)
            per_name[name] = per_name.get(name, 0) + 1
        for f in fields:
            shown = display_name(self.info, f.node.class_type)
            title = f.node.title
            custom = bool(title) and title not in (shown, f.node.class_type)
            words = _humanise(f.target.input)
            if custom and per_node[f.node.id] == 1:
                assert title is not None
                f.prop["title"] = title
            elif per_name[words] == 1:
                f.prop["title"] = words
            else:
                f.prop["title"] = f"{_plain_title(title or shown or f.node.class_type)} {words}"

    # -- the overlay -------------------------------------------------------------------------

    def apply(self, f: _Field, change: FieldOverlay, where: str) -> None:
        prop = f.prop
        if change.name is not None:
            prop["x-python-name"] = change.name
        if change.title is not None:
            prop["title"] = change.title
        if change.description is not None:
            prop["description"] = change.description
        f.required = change.required
        for word, value in (("minimum", change.minimum), ("maximum", change.maximum)):
            if value is None:
                continue
            if "enum" in prop or prop.get("type") not in ("integer", "number"):
                raise SchemaError(
                    f"{f.target}: {word} applies to numbers; this field is "
                    f"{prop.get('type', 'any value')}"
                    + (" with choices" if "enum" in prop else ""),
                    file=where,
                    pointer=f"/fields/{f.target}/{word}",
                )
            self._narrow(f, word, value, where)
        if change.enum is not None:
            self._narrow_enum(f, change.enum, where)
        if change.has_default:
            prop["default"] = change.default

    def _narrow(self, f: _Field, word: str, value: float, where: str) -> None:
        prop = f.prop
        low, high = prop.get("minimum"), prop.get("maximum")
        widens = (low is not None and value < low) or (high is not None and value > high)
        if widens:
            raise SchemaError(
                f"{f.target}: {word} {number_text(value)} would widen the range object_info "
                f"allows ({describe_range(prop)}); an overlay may only narrow it",
                file=where,
                pointer=f"/fields/{f.target}/{word}",
            )
        if prop.get("type") == "integer" and isinstance(value, float) and not value.is_integer():
            raise SchemaError(
                f"{f.target}: {word} {value} is not a whole number, and the input is an integer",
                file=where,
                pointer=f"/fields/{f.target}/{word}",
            )
        prop[word] = int(value) if prop.get("type") == "integer" else value

    def _narrow_enum(self, f: _Field, choices: Sequence[Any], where: str) -> None:
        prop = f.prop
        pointer = f"/fields/{f.target}/enum"
        allowed = prop.get("enum")
        if isinstance(allowed, list):
            extra = [c for c in choices if c not in allowed]
            if extra:
                raise SchemaError(
                    f"{f.target}: {extra!r} not among the choices object_info allows; an "
                    "overlay may only narrow them",
                    file=where,
                    pointer=pointer,
                )
        else:
            low, high = prop.get("minimum"), prop.get("maximum")
            for c in choices:
                number = isinstance(c, (int, float)) and not isinstance(c, bool)
                if number and ((low is not None and c < low) or (high is not None and c > high)):
                    raise SchemaError(
                        f"{f.target}: choice {number_text(c)} is outside {describe_range(prop)}",
                        file=where,
                        pointer=pointer,
                    )
        prop["enum"] = list(choices)

    def fuse(self, fuse: Fuse, fields: dict[Target, _Field], where: str) -> _Field:
        from ._validation import dimensions_of

        parts = []
        for target in (fuse.width, fuse.height):
            node = self.check_target(target)
            taken = fields.pop(target) if target in fields else None
            parts.append(taken or self.build(target, node))
        width, height = parts
        for f in parts:
            if f.prop.get("type") != "integer":
                raise SchemaError(
                    f"{f.target} cannot be fused into a WxH choice: it is not an integer input",
                    file=where,
                    pointer="/fuse",
                )
        for option in fuse.options:
            pair = dimensions_of(option)
            if pair is None:
                raise SchemaError(
                    f"fuse option {option!r} is not 'WxH' (for example '1024x576 (16:9)')",
                    file=where,
                    pointer="/fuse",
                )
            for f, value in zip(parts, pair, strict=True):
                low, high = f.prop.get("minimum"), f.prop.get("maximum")
                if (low is not None and value < low) or (high is not None and value > high):
                    raise SchemaError(
                        f"fuse option {option!r}: {value} is outside what {f.target} allows "
                        f"({describe_range(f.prop)})",
                        file=where,
                        pointer="/fuse",
                    )
        current = (width.prop.get("default"), height.prop.get("default"))
        prop: dict[str, Any] = {
            "title": fuse.title or "Resolution (W:H)",
            "type": "string",
            "enum": list(fuse.options),
        }
        if fuse.description:
            prop["description"] = fuse.description
        if fuse.name:
            prop["x-python-name"] = fuse.name
        default = fuse.default
        if default is None:
            default = next((o for o in fuse.options if dimensions_of(o) == current), None)
        if default is not None:
            prop["default"] = default
        elif None not in current:
            self.warnings.append(
                LintWarning(
                    where,
                    "/fuse",
                    fuse.key,
                    "fuse-default",
                    f"the workflow's current {current[0]}x{current[1]} is not among the fuse "
                    "options: the field has no default",
                )
            )
        prop["x-comfy"] = {
            "width": {"node": fuse.width.node, "input": fuse.width.input},
            "height": {"node": fuse.height.node, "input": fuse.height.input},
        }
        return _Field(fuse.key, fuse.width, width.node, prop, fuse.required)

    def outputs(self) -> list[dict[str, str]]:
        return [
            {"node": n.id, "class_type": n.class_type, "kind": output_kind(n.class_type)}
            for n in self.wf.nodes.values()
            if is_output_node(self.info, n.class_type)
        ]

    def used_object_info(self) -> dict[str, Any]:
        classes = sorted({n.class_type for n in self.wf.nodes.values()})
        return {c: self.info.get(c) for c in classes}


def derive(
    workflow: Any,
    object_info: Any,
    *,
    name: str,
    expose: Sequence[Target] | None = None,
    default_overrides: Mapping[str, Any] | None = None,
    overlay: Overlay | None = None,
    deployment_id: str | None = None,
    workflow_file: str | None = None,
    object_info_file: str | None = None,
    overlay_file: str | None = None,
    schema_path: Path | None = None,
) -> Derived:
    """The schema for ``workflow`` (parsed JSON of workflow_api.json) and its binding.

    ``expose`` lists the node inputs to offer (default: the overlay's ``expose``, else the
    deployment's ``default_overrides``, else every literal input). Raises SchemaError naming the
    file and the input for anything that cannot be derived: an unknown node or input, a link,
    an overlay that widens a range.
    """
    from ._pages import MODEL_ID_PATTERN, is_model_id

    if not is_model_id(name) or "/" in name:
        raise SchemaError(
            f"deployment schema name {name!r} must be one segment: {MODEL_ID_PATTERN}"
        )
    wf = Workflow.parse(workflow, file=workflow_file)
    if not isinstance(object_info, dict):
        raise SchemaError(
            f"object_info must be a JSON object keyed by node class, not "
            f"{type(object_info).__name__}",
            file=object_info_file,
            pointer="",
        )
    overlay = overlay or Overlay()
    d = _Deriver(wf, object_info, workflow_file=workflow_file, object_info_file=object_info_file)
    explicit = list(expose) if expose else list(overlay.expose or ())
    targets = explicit or d.default_targets(default_overrides)
    fields: dict[Target, _Field] = {}
    for target in targets:
        node = d.check_target(target)
        fields[target] = d.build(target, node)
    d.titles(list(fields.values()))
    where = overlay_file or "<overlay>"
    for target, change in overlay.fields.items():
        if target not in fields:
            in_fuse = any(target in (f.width, f.height) for f in overlay.fuse)
            if in_fuse:
                continue
            d.check_target(target)
            raise SchemaError(
                f"{target} is in the overlay but not exposed; add it to --expose (or the "
                "overlay's 'expose'), or remove it from the overlay",
                file=where,
                pointer=f"/fields/{target}",
            )
        if change.hide:
            del fields[target]
            continue
        d.apply(fields[target], change, where)
    ordered = list(fields.values())
    for fuse in overlay.fuse:
        first = next(
            (i for i, f in enumerate(ordered) if f.target in (fuse.width, fuse.height)),
            len(ordered),
        )
        fused = d.fuse(fuse, fields, where)
        ordered = [f for f in ordered if f.target not in (fuse.width, fuse.height)]
        ordered.insert(min(first, len(ordered)), fused)
    properties = {f.key: f.prop for f in ordered}
    schema: dict[str, Any] = {"type": "object", "title": overlay.title or name}
    schema["description"] = overlay.description or (
        f"ComfyUI workflow deployed as {deployment_id}"
        if deployment_id
        else "ComfyUI workflow, schema derived by runcomfy-client"
    )
    required = [f.key for f in ordered if f.required]
    if required:
        schema["required"] = required
    schema["properties"] = properties
    model_id = f"{DEPLOYMENTS_FOLDER}/{name}"
    # The one engine: a schema it cannot use fails here, before anything is written.
    model = model_from_schema(model_id, schema, path=schema_path)
    binding = {
        "deployment_id": deployment_id,
        "model_id": model_id,
        "workflow_fingerprint": fingerprint(workflow),
        "object_info_fingerprint": fingerprint(d.used_object_info()),
        "expose": [str(t) for t in explicit] or None,
        "default_overrides": dict(default_overrides) if default_overrides else None,
        "overlay": dict(overlay.raw) or None,
        "outputs": d.outputs(),
        "derived_by": f"runcomfy-client {__version__}",
    }
    return Derived(model_id, schema, binding, (*d.warnings, *model.warnings), model)


def changes(
    schema: Mapping[str, Any], binding: Mapping[str, Any] | None, fresh: Derived
) -> list[str]:
    """What differs between a stored schema (and binding) and one derived now: empty when none.

    Each line says what a person needs to know: the workflow changed, a field appeared or
    went away, a field's type, range, choices or default moved.
    """
    found: list[str] = []
    if binding is not None:
        for what, key in (
            ("workflow", "workflow_fingerprint"),
            ("object_info", "object_info_fingerprint"),
        ):
            old, new = binding.get(key), fresh.binding.get(key)
            if old != new:
                found.append(f"the {what} changed ({old} -> {new})")
    old_props = schema.get("properties")
    old_props = old_props if isinstance(old_props, dict) else {}
    new_props = fresh.schema["properties"]
    for key in new_props:
        if key not in old_props:
            found.append(f"new field {key}")
    for key, old in old_props.items():
        new = new_props.get(key)
        if new is None:
            found.append(f"field {key} is gone")
            continue
        for word in sorted(set(old) | set(new)):
            if word == "x-comfy" or old.get(word) == new.get(word):
                continue
            found.append(f"field {key}: {word} {_short(old.get(word))} -> {_short(new.get(word))}")
    old_required, new_required = schema.get("required", []), fresh.schema.get("required", [])
    if old_required != new_required:
        found.append(f"required fields {old_required} -> {new_required}")
    for word in ("title", "description"):
        if schema.get(word) != fresh.schema.get(word):
            found.append(
                f"schema {word} {_short(schema.get(word))} -> {_short(fresh.schema.get(word))}"
            )
    return found


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False) if value is not None else "(none)"
    return text if len(text) <= limit else text[: limit - 3] + "..."
