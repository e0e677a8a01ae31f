"""The input class of a model, rendered by datamodel-code-generator, and its field types.

datamodel-code-generator sees the *normalised* schema (so ``float`` fields are numbers with their
bounds, not ``Any``), the runtime's readable names as aliases, and a copy trimmed of what would
make the class wrong rather than merely less precise (see :func:`dmcg_view`). The parameter types
of the wrappers are then read back from its output with ``ast``, so there is one type mapping.
"""

from __future__ import annotations

import ast
import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runcomfy_client._errors import SchemaError
from runcomfy_client._registry import ModelSchema

__all__ = ["InputClass", "dmcg_view", "render_input_class"]

INPUT_CLASS = "Input"
BASE_CLASS = "runcomfy_client.typed.InputModel"
# Defaults the generated class must not declare: of the wrong type or outside the enum (they
# would fail type checks), or outside the field's own bounds (a value the class would refuse
# if it were given). The lint pass reports them; the docs say what the server applies.
_BAD_DEFAULT_RULES = frozenset({"default-type", "default-enum", "default-out-of-range"})
_BUILTINS = frozenset({"str", "int", "float", "bool", "list", "dict", "tuple", "set", "None"})


@dataclass(frozen=True)
class InputClass:
    """What the wrapper template needs from the input module."""

    source: str
    """The module datamodel-code-generator wrote (unformatted)."""
    types: Mapping[str, str]
    """Wire key -> the field's type as source text, usable in the wrapper module."""
    imports: Mapping[str, frozenset[str]]
    """Module -> names the wrapper module must import for those types."""


def dmcg_view(model: ModelSchema) -> dict[str, Any]:
    """The schema as datamodel-code-generator should see it.

    Dropped: ``format`` (``uri`` would type a field ``AnyUrl`` and refuse plain strings; the
    runtime checks media URLs itself), enums holding values ``Literal`` cannot (floats, objects),
    and defaults the lint pass found of the wrong type, outside the enum or outside the field's
    own bounds. Added: string items
    for a list of media that gives none (``format: image_uris`` alone), so it is ``list[str]``.
    """
    schema = copy.deepcopy(model.schema)
    bad_defaults = {w.key for w in model.warnings if w.rule in _BAD_DEFAULT_RULES}
    media_lists = {f.key for f in model.fields if f.media_array}
    _strip(schema)
    for key, prop in schema.get("properties", {}).items():
        if key in bad_defaults and isinstance(prop, dict):
            prop.pop("default", None)
        if key in media_lists and isinstance(prop, dict):
            # A list of media URLs often has no "items": each one is still a string.
            items = prop.get("items")
            if not isinstance(items, dict):
                prop["items"] = {"type": "string"}
            elif "type" not in items:
                items["type"] = "string"
    schema.pop("title", None)
    return schema


def _strip(node: Any) -> None:
    if isinstance(node, dict):
        node.pop("format", None)
        enum = node.get("enum")
        if isinstance(enum, list) and not all(
            value is None or isinstance(value, (str, int, bool)) for value in enum
        ):
            del node["enum"]
        for value in node.values():
            _strip(value)
    elif isinstance(node, list):
        for value in node:
            _strip(value)


def render_input_class(model: ModelSchema, header: str) -> InputClass:
    """Run datamodel-code-generator on one model and read its field types back."""
    try:
        source = _run_dmcg(model, header)
    except Exception as exc:  # any failure inside the tool is reported the same way
        raise SchemaError(
            f"datamodel-code-generator cannot render this schema: {exc}",
            file=str(model.path) if model.path else model.model_id,
        ) from exc
    if not isinstance(source, str):  # pragma: no cover - one schema gives one module
        raise TypeError("datamodel-code-generator returned several modules for one schema")
    types, imports = _field_types(source, model)
    return InputClass(source, types, imports)


def _run_dmcg(model: ModelSchema, header: str) -> Any:
    from datamodel_code_generator import InputFileType, LiteralType, PythonVersion, generate
    from datamodel_code_generator.enums import DataModelType, TargetPydanticVersion

    aliases = {f.key: f.name for f in model.fields}
    return generate(
        json.dumps(dmcg_view(model), sort_keys=False),
        input_file_type=InputFileType.JsonSchema,
        output_model_type=DataModelType.PydanticV2BaseModel,
        target_python_version=PythonVersion.PY_310,
        target_pydantic_version=TargetPydanticVersion.V2_14,
        class_name=INPUT_CLASS,
        base_class=BASE_CLASS,
        aliases=aliases,
        enum_field_as_literal=LiteralType.All,
        field_constraints=True,
        use_annotated=True,
        use_missing_sentinel=True,
        strict_nullable=True,
        allow_population_by_field_name=True,
        use_field_description=True,
        use_schema_description=True,
        keep_model_order=True,
        disable_timestamp=True,
        allow_remote_refs=False,
        formatters=[],
        custom_file_header=header,
    )


def _field_types(
    source: str, model: ModelSchema
) -> tuple[dict[str, str], dict[str, frozenset[str]]]:
    tree = ast.parse(source)
    imported: dict[str, str] = {}
    local_classes: set[str] = set()
    target: ast.ClassDef | None = None
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module != "__future__":
            for name in node.names:
                imported[name.asname or name.name] = node.module
        elif isinstance(node, ast.ClassDef):
            local_classes.add(node.name)
            if node.name == INPUT_CLASS:
                target = node
    if target is None:  # pragma: no cover
        raise RuntimeError(f"datamodel-code-generator wrote no class {INPUT_CLASS!r}")
    types: dict[str, str] = {}
    needed: dict[str, set[str]] = {}
    for statement in target.body:
        if not isinstance(statement, ast.AnnAssign) or not isinstance(statement.target, ast.Name):
            continue
        annotation, alias = _unwrap(statement.annotation)
        key: str = alias or statement.target.id
        field = model.find(key)
        if field is None or field.name != statement.target.id:
            raise RuntimeError(
                f"datamodel-code-generator named field {key!r} {statement.target.id!r}; "
                f"the naming rule says {field.name if field else None!r}"
            )
        annotation = _without_missing(annotation)
        rewritten = _Qualify(local_classes, imported, needed).visit(annotation)
        types[field.key] = ast.unparse(rewritten)
    return types, {module: frozenset(names) for module, names in needed.items()}


def _unwrap(annotation: ast.expr) -> tuple[ast.expr, str | None]:
    """``Annotated[T, Field(alias=...)]`` -> (T, alias)."""
    if (
        isinstance(annotation, ast.Subscript)
        and isinstance(annotation.value, ast.Name)
        and annotation.value.id == "Annotated"
        and isinstance(annotation.slice, ast.Tuple)
    ):
        inner, *metadata = annotation.slice.elts
        for item in metadata:
            if isinstance(item, ast.Call):
                for argument in item.keywords:
                    if argument.arg == "alias" and isinstance(argument.value, ast.Constant):
                        return inner, str(argument.value.value)
        return inner, None
    return annotation, None


def _without_missing(annotation: ast.expr) -> ast.expr:
    """Drop ``| MISSING`` from a union: the wrappers say "not given" with NOT_GIVEN."""
    members = _union_members(annotation)
    kept = [m for m in members if not (isinstance(m, ast.Name) and m.id == "MISSING")]
    result = kept[0]
    for member in kept[1:]:
        result = ast.BinOp(left=result, op=ast.BitOr(), right=member)
    return result


def _union_members(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _union_members(node.left) + _union_members(node.right)
    return [node]


class _Qualify(ast.NodeTransformer):
    """Point names at where the wrapper module can reach them."""

    def __init__(
        self, local: set[str], imported: Mapping[str, str], needed: dict[str, set[str]]
    ) -> None:
        self.local = local
        self.imported = imported
        self.needed = needed

    def visit_Name(self, node: ast.Name) -> ast.expr:
        if node.id in self.local:
            # Classes of the input module are reached through it: no name of theirs can
            # shadow anything in the wrapper module.
            return ast.Attribute(value=ast.Name(id="_input", ctx=ast.Load()), attr=node.id)
        module = self.imported.get(node.id)
        if module is not None:
            self.needed.setdefault(module, set()).add(node.id)
        elif node.id not in _BUILTINS:  # pragma: no cover - datamodel-code-generator imports all
            raise RuntimeError(f"type name {node.id!r} has no import in the input module")
        return node
