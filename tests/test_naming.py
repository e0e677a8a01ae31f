from __future__ import annotations

import pytest

from runcomfy_client import Registry
from runcomfy_client._naming import assign_names, cli_flag, snake_case

from .conftest import FUSIONX, INPAINT

FUSIONX_NAMES = {
    "600_prompt": "prompt",
    "608_image": "image",
    "598_seed": "seed",
    "602_widthx602_height": "resolution",
    "598_steps": "steps",
    "598_cfg": "guidance_scale",
    "598_shift": "shift",
    "602_num_frames": "number_of_frames",
    "609_frame_rate": "frames_per_second",
}
INPAINT_NAMES = {
    "99_text": "prompt",
    "110_image": "start_image",
    "112_image": "end_image",
    "111_widthx111_height": "resolution",
    "111_length": "number_of_frames",
    "159_frame_rate": "frames_per_second",
    "96_noise_seed": "seed",
    "96_steps": "steps",
    "96_cfg": "guidance_scale",
    "93_shift": "shift",
}


@pytest.mark.parametrize(
    ("model_id", "expected"), [(FUSIONX, FUSIONX_NAMES), (INPAINT, INPAINT_NAMES)]
)
def test_seed_models_get_the_documented_names(
    registry: Registry, model_id: str, expected: dict[str, str]
) -> None:
    model = registry.get(model_id)
    assert {f.key: f.name for f in model.fields} == expected


def test_title_tail_in_parentheses_is_dropped() -> None:
    names, _ = assign_names({"1_x": {"title": "Resolution (W:H)"}})
    assert names == {"1_x": "resolution"}


def test_x_python_name_wins_over_title() -> None:
    names, _ = assign_names({"5_cfg": {"title": "Guidance Scale", "x-python-name": "cfg"}})
    assert names == {"5_cfg": "cfg"}


def test_without_title_the_node_id_is_stripped() -> None:
    names, _ = assign_names({"600_prompt": {}, "7_noise_seed": {"title": ""}})
    assert names == {"600_prompt": "prompt", "7_noise_seed": "noise_seed"}


@pytest.mark.parametrize(
    ("title", "name"),
    [
        ("Type", "type_"),
        ("class", "class_"),
        ("ID", "id_"),
        # Attributes of the generated pydantic input classes cannot be field names.
        ("Schema", "schema_"),
        ("Model Config", "model_config_"),
        ("To Payload", "to_payload_"),
    ],
)
def test_keywords_and_builtins_get_a_trailing_underscore(title: str, name: str) -> None:
    names, _ = assign_names({"3_x": {"title": title}})
    assert names["3_x"] == name


def test_module_path_makes_every_id_segment_importable() -> None:
    from runcomfy_client._naming import module_path

    assert module_path("community/wan-2-1/fusionx/image-to-video") == (
        "community",
        "wan_2_1",
        "fusionx",
        "image_to_video",
    )
    assert module_path("3d/class/Été") == ("m3d", "class_", "ete")


def test_collision_falls_back_to_key_names_then_node_suffix() -> None:
    props = {
        "110_image": {"title": "Image"},
        "112_image": {"title": "Image"},
        "5_mask": {"title": "Image"},
    }
    names, collisions = assign_names(props)
    assert names == {"110_image": "image_110", "112_image": "image_112", "5_mask": "mask"}
    assert len(collisions) == 1
    assert "image" in str(collisions[0])


def test_collision_without_node_ids_gets_a_counter() -> None:
    names, collisions = assign_names({"a": {"title": "Same"}, "A": {"title": "Same"}})
    assert sorted(names.values()) == ["a", "a_2"]
    assert collisions


def test_naming_is_independent_of_property_order() -> None:
    props = {"2_b": {"title": "X"}, "1_a": {"title": "X"}, "3_c": {"title": "Y"}}
    reordered = dict(reversed(list(props.items())))
    assert assign_names(props)[0] == assign_names(reordered)[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Frames Per Second", "frames_per_second"),
        ("camelCase", "camel_case"),
        ("3D Strength", "field_3d_strength"),
        ("Éclat", "eclat"),
        ("!!!", ""),
    ],
)
def test_snake_case(text: str, expected: str) -> None:
    assert snake_case(text) == expected


def test_cli_flag_from_name() -> None:
    assert cli_flag("guidance_scale") == "--guidance-scale"
    assert cli_flag("type_") == "--type"
