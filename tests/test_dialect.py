from __future__ import annotations

from typing import Any

import pytest

from runcomfy_client import Registry, SchemaError
from runcomfy_client._dialect import lint, normalise

from .conftest import INPAINT


def _schema(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props}


def test_float_becomes_number_and_the_input_is_untouched() -> None:
    raw = _schema(**{"1_cfg": {"type": "float", "minimum": 0.5}})
    out = normalise(raw)
    assert out["properties"]["1_cfg"]["type"] == "number"
    assert raw["properties"]["1_cfg"]["type"] == "float"


def test_unknown_type_names_file_and_pointer() -> None:
    raw = _schema(**{"1_x": {"type": "array", "items": {"type": "double"}}})
    with pytest.raises(SchemaError) as info:
        normalise(raw, file="m.json")
    assert info.value.pointer == "/properties/1_x/items/type"
    assert "m.json" in str(info.value) and "'double'" in str(info.value)


def test_meta_schema_failure_is_reported_with_pointer() -> None:
    with pytest.raises(SchemaError) as info:
        normalise(_schema(**{"1_x": {"type": "integer", "minimum": "six"}}), file="m.json")
    assert info.value.pointer == "/properties/1_x/minimum"


@pytest.mark.parametrize(
    "raw", [[], "text", {"type": "array", "properties": {}}, {"type": "object"}]
)
def test_non_object_schemas_are_refused(raw: Any) -> None:
    with pytest.raises(SchemaError):
        normalise(raw, file="m.json")


def _rules(schema: dict[str, Any]) -> list[tuple[str | None, str]]:
    return [(w.key, w.rule) for w in lint(normalise(schema))]


def test_lint_default_out_of_range_on_published_fun_inpaint(registry: Registry) -> None:
    warnings = registry.get(INPAINT).warnings
    steps = [w for w in warnings if w.key == "96_steps"]
    assert [w.rule for w in steps] == ["default-out-of-range"]
    assert steps[0].pointer == "/properties/96_steps/default"
    assert "6 to 20" in steps[0].message


def test_lint_rules_each_fire() -> None:
    schema = {
        "type": "object",
        "required": ["9_gone"],
        "properties": {
            "1_choice": {"type": "string", "enum": ["a", "b", "a"], "default": "c"},
            "2_count": {"type": "integer", "default": "ten"},
            "3_image": {"type": "string", "default": "example.png"},
            "4_ratio": {"type": "number", "exclusiveMaximum": 1, "default": 1},
        },
    }
    assert sorted(_rules(schema), key=str) == sorted(
        [
            ("9_gone", "required-missing"),
            ("1_choice", "enum-duplicate"),
            ("1_choice", "default-enum"),
            ("2_count", "default-type"),
            ("3_image", "media-example-not-url"),
            ("4_ratio", "default-out-of-range"),
        ],
        key=str,
    )


def test_lint_collision_is_reported() -> None:
    schema = _schema(**{"1_a": {"title": "Same"}, "2_b": {"title": "Same"}})
    assert (None, "name-collision") in _rules(schema)


def test_clean_schema_has_no_warnings() -> None:
    schema = _schema(
        **{
            "1_image": {"type": "string", "default": "https://example.com/a.png"},
            "2_steps": {"type": "integer", "minimum": 1, "maximum": 9, "default": 4},
        }
    )
    assert _rules(schema) == []
