from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runcomfy_client import InputValidationError, Registry

from .conftest import FUSIONX, INPAINT

URL = "https://example.com/a.png"
GOOD = {"prompt": "a cat", "start_image": URL, "end_image": URL}


def _problems(registry: Registry, inputs: Any, model: str = INPAINT) -> list[str]:
    with pytest.raises(InputValidationError) as info:
        registry.validator(model).validate(inputs)
    return [str(p) for p in info.value.problems]


def test_valid_input_gives_the_wire_payload_without_defaults(registry: Registry) -> None:
    payload = registry.validator(INPAINT).validate({**GOOD, "steps": 8})
    assert payload == {"99_text": "a cat", "110_image": URL, "112_image": URL, "96_steps": 8}


def test_wire_keys_and_names_can_be_mixed(registry: Registry) -> None:
    payload = registry.validator(INPAINT).validate(
        {"99_text": "x", "start_image": URL, "112_image": URL}
    )
    assert set(payload) == {"99_text", "110_image", "112_image"}


def test_below_minimum_message_names_field_key_and_range(registry: Registry) -> None:
    assert _problems(registry, {**GOOD, "steps": 4}) == [
        "steps (96_steps): 4 is below the minimum 6 (allowed 6 to 20)"
    ]


def test_above_maximum_on_float_field(registry: Registry) -> None:
    assert _problems(registry, {**GOOD, "guidance_scale": 2.5}) == [
        "guidance_scale (96_cfg): 2.5 is above the maximum 2 (allowed 0.6 to 2)"
    ]


def test_every_problem_is_reported_at_once(registry: Registry) -> None:
    problems = _problems(registry, {"prompt": 3, "start_image": URL, "seed": "x", "stepz": 9})
    assert problems == [
        "stepz: unknown field; did you mean steps (96_steps)?",
        "prompt (99_text): expected a string, got 3 (an integer)",
        "end_image (112_image): is required but was not given",
        "seed (96_noise_seed): expected an integer, got 'x' (a string)",
    ]


def test_both_name_and_key_for_one_field(registry: Registry) -> None:
    problems = _problems(registry, {**GOOD, "steps": 8, "96_steps": 9})
    assert problems == ["steps (96_steps): given twice, as 'steps' and '96_steps'; pass it once"]


def test_enum_miss_shows_closest_and_allowed(registry: Registry) -> None:
    [problem] = _problems(registry, {**GOOD, "number_of_frames": 80})
    assert problem == (
        "number_of_frames (111_length): 80 is not one of the allowed values; did you mean 81? "
        "allowed: 81, 141"
    )


def test_enum_string_miss_suggests_by_spelling(registry: Registry) -> None:
    [problem] = _problems(registry, {**GOOD, "resolution": "720x48O (3:2)"})
    assert "did you mean '720x480 (3:2)'" in problem


def test_null_is_refused_where_schema_has_no_null(registry: Registry) -> None:
    assert _problems(registry, {**GOOD, "seed": None}) == [
        "seed (96_noise_seed): expected an integer, got null"
    ]


def test_boolean_is_not_an_integer(registry: Registry) -> None:
    assert _problems(registry, {**GOOD, "seed": True})[0].startswith(
        "seed (96_noise_seed): expected an integer"
    )


@pytest.mark.parametrize(
    "value", ["./start.png", "/nonexistent/start.png", "start.png", "C:\\pics\\a.png"]
)
def test_missing_local_path_for_media_field_says_no_such_file(
    registry: Registry, value: str
) -> None:
    [problem] = _problems(registry, {**GOOD, "start_image": value})
    assert problem.startswith("start_image (110_image):")
    assert "looks like a local file, but there is no such file" in problem
    assert "public http(s) URL" in problem


def test_existing_local_file_for_media_field_explains_uploaders(
    registry: Registry, tmp_path: Path
) -> None:
    image = tmp_path / "start.png"
    image.write_bytes(b"png")
    [problem] = _problems(registry, {**GOOD, "start_image": str(image)})
    assert "is a local file" in problem and "public http(s) URL" in problem
    assert "uploader" in problem and "--upload-to" in problem


def test_non_url_string_for_media_field(registry: Registry) -> None:
    [problem] = _problems(registry, {**GOOD, "end_image": "ftp://host/a.png"})
    assert "is not an http(s) URL" in problem


@pytest.mark.parametrize("value", ["720x480", "720x480 (3:2)", (720, 480), [720, 480], "720×480"])
def test_width_x_height_forms_map_to_the_published_value(registry: Registry, value: Any) -> None:
    payload = registry.validator(FUSIONX).validate(
        {"prompt": "p", "image": URL, "resolution": value}
    )
    assert payload["602_widthx602_height"] == "720x480 (3:2)"


def test_width_x_height_not_offered_is_an_enum_error(registry: Registry) -> None:
    [problem] = _problems(
        registry, {"prompt": "p", "image": URL, "resolution": (640, 480)}, FUSIONX
    )
    assert problem.startswith("resolution (602_widthx602_height): (640, 480) is not one of")


def test_inputs_must_be_a_mapping(registry: Registry) -> None:
    assert _problems(registry, ["prompt"]) == [
        "input: inputs must be a mapping of field to value, not a list"
    ]


def test_problem_carries_structure(registry: Registry) -> None:
    with pytest.raises(InputValidationError) as info:
        registry.validator(INPAINT).validate({**GOOD, "steps": 4})
    [problem] = info.value.problems
    assert (problem.kind, problem.name, problem.key, problem.value) == (
        "minimum",
        "steps",
        "96_steps",
        4,
    )
    assert problem.allowed == "6 to 20"
    assert info.value.model_id == INPAINT


def test_caller_mapping_is_not_modified(registry: Registry) -> None:
    inputs = {**GOOD, "resolution": (720, 480)}
    before = dict(inputs)
    registry.validator(INPAINT).validate(inputs)
    assert inputs == before


def test_properties_named_like_annotations_are_still_validated() -> None:
    from runcomfy_client._registry import model_from_schema

    model = model_from_schema(
        "acme/names",
        {
            "type": "object",
            "required": ["title", "default"],
            "properties": {
                "title": {"type": "string", "title": "Title", "description": "d"},
                "default": {"type": "integer", "maximum": 3, "x-python-name": "fallback"},
            },
        },
    )
    with pytest.raises(InputValidationError) as caught:
        model.validator.validate({"title": 5, "fallback": 9})
    assert [p.kind for p in caught.value.problems] == ["type", "maximum"]
