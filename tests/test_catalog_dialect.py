"""The live catalog's dialect: media by format, media lists, validations rules, structured inputs.

Each test states what a user meets: which fields take media and why (``describe``), messages
that name the element (``images[2] (images)``), bounds on lists, and the schema's own rule text
when a local file breaks it, all before anything is uploaded or sent.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from runcomfy_client import InputValidationError, ModelSchema
from runcomfy_client._dialect import lint, media_of, normalise
from runcomfy_client._registry import model_from_schema
from runcomfy_client.cli import cli

from .conftest import capturing_client, png_bytes, write_schema

URL = "https://example.com/a.png"


def _model(
    props: dict[str, Any], required: list[str] | None = None, model_id: str = "acme/m"
) -> ModelSchema:
    return model_from_schema(
        model_id, {"type": "object", "required": required or [], "properties": props}
    )


REFERENCE = {
    "prompt": {"type": "string", "default": ""},
    "images": {"format": "image_uris", "maxItems": 3, "minItems": 1, "type": "array"},
    "videos": {"format": "video_uris", "maxItems": 2, "type": "array"},
    "end_image_url": {"format": "image_uri", "type": "string"},
    "photo": {
        "type": "string",
        "format": "image_uri",
        "validations": [
            {
                "validation_rule": "file_size_mb<",
                "validation_value": 0.002,
                "validation_error": "File size must be less than 0.002 MB.",
            },
            {
                "validation_rule": "width_pixels>",
                "validation_value": 50,
                "validation_error": "Width must be more than 50 pixels.",
            },
            {
                "validation_rule": "width/height<",
                "validation_value": 2,
                "validation_error": "Aspect ratio must be less than 2.",
            },
            {"validation_rule": "duration_seconds<", "validation_value": 5},
        ],
    },
    "loras": {
        "type": "array",
        "maxItems": 2,
        "items": {
            "type": "object",
            "required": ["path"],
            "additionalProperties": False,
            "properties": {
                "path": {"type": "string"},
                "scale": {"type": "number", "minimum": 0, "maximum": 4, "default": 1},
            },
        },
    },
    "seed": {"type": "integer", "default": None},
}


@pytest.fixture
def reference() -> ModelSchema:
    return _model(REFERENCE, ["prompt"], "acme/reference")


# -- which fields take media, and why -------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "prop", "expected"),
    [
        ("image_url", {"type": "string", "format": "image_uri"}, ("image", False, "format")),
        ("files", {"type": "array", "format": "video_uris"}, ("video", True, "format")),
        ("clips", {"type": "array", "items": {"format": "audio_uri"}}, ("audio", True, "format")),
        # The format wins over a name that says something else.
        ("image", {"type": "string", "format": "video_uri"}, ("video", False, "format")),
        # x-media still overrides everything.
        (
            "image",
            {"type": "string", "format": "image_uri", "x-media": "mask"},
            ("mask", False, "x-media"),
        ),
        ("start_image", {"type": "string"}, ("image", False, "name")),
        ("image_url_1", {"type": "string"}, ("image", False, "name")),
        ("promptImage", {"type": "string"}, ("image", False, "name")),
        ("118_image", {"type": "string", "title": "Start Image"}, ("image", False, "name")),
        ("images", {"type": "array", "items": {"type": "string"}}, ("image", True, "name")),
    ],
)
def test_the_rule_that_decides_media(
    key: str, prop: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    found = media_of(key, prop)
    assert found is not None
    assert (found.kind, found.many, found.rule) == expected


@pytest.mark.parametrize(
    ("key", "prop"),
    [
        ("image_size", {"type": "string"}),  # a size, not an image
        ("image", {"type": "string", "x-media": False}),
        ("image", {"type": "string", "enum": ["a", "b"]}),
        ("num_images", {"type": "integer"}),
        ("image_strength", {"type": "number"}),
        ("prompt", {"type": "string", "format": "uri"}),
    ],
)
def test_fields_that_take_no_media(key: str, prop: dict[str, Any]) -> None:
    assert media_of(key, prop) is None


def test_describe_json_says_media_kind_rule_bounds_rules_and_default_null(tmp_path: Path) -> None:
    write_schema(tmp_path, "acme/reference", {"type": "object", "properties": REFERENCE})
    result = CliRunner().invoke(
        cli, ["--schemas", str(tmp_path), "describe", "acme/reference", "--json"]
    )
    assert result.exit_code == 0, result.stderr
    fields = {f["wire_key"]: f for f in json.loads(result.stdout)}
    images = fields["images"]
    assert (images["media"], images["media_array"], images["media_rule"]) == (
        "image",
        True,
        "format",
    )
    assert (images["min_items"], images["max_items"], images["items"]) == (1, 3, None)
    assert fields["loras"]["items"]["required"] == ["path"]
    assert fields["loras"]["media"] is None and fields["loras"]["max_items"] == 2
    rules = fields["photo"]["validations"]
    assert [r["rule"] for r in rules] == [
        "file_size_mb<",
        "width_pixels>",
        "width/height<",
        "duration_seconds<",
    ]
    assert [r["checked"] for r in rules] == [True, True, True, False]
    # "default": null is a default; no default is not.
    assert (fields["seed"]["default"], fields["seed"]["has_default"]) == (None, True)
    assert (fields["end_image_url"]["default"], fields["end_image_url"]["has_default"]) == (
        None,
        False,
    )


def test_describe_text_shows_lists_rules_and_which_rule_made_media(tmp_path: Path) -> None:
    write_schema(tmp_path, "acme/reference", {"type": "object", "properties": REFERENCE})
    result = CliRunner().invoke(cli, ["--schemas", str(tmp_path), "describe", "acme/reference"])
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert "images (images): array, a list of 1 to 3 image URLs (media by format)" in text
    assert "rule file_size_mb< 0.002: File size must be less than 0.002 MB." in text
    assert "rule duration_seconds< 5 (not checked by the client)" in text
    assert "each item: {path: string, scale: number}" in text
    assert "server default: null" in text
    assert "None" not in text


def test_run_help_shows_what_a_list_holds_and_its_bounds(tmp_path: Path) -> None:
    write_schema(tmp_path, "acme/reference", {"type": "object", "properties": REFERENCE})
    result = CliRunner().invoke(
        cli, ["--schemas", str(tmp_path), "run", "acme/reference", "--help"]
    )
    text = " ".join(result.stdout.split())
    assert "A list of 1 to 3 public http(s) URLs of images." in text
    assert "Repeat the flag for each item" in text
    assert "--loras JSON" in text and "A list of up to 2 items." in text


def test_lint_spells_null_and_reports_rules_it_cannot_enforce() -> None:
    warnings = {
        (w.key, w.rule): w.message
        for w in lint(normalise({"type": "object", "properties": REFERENCE}))
    }
    assert warnings[("seed", "default-type")].startswith("default null is not of type 'integer'")
    assert "None" not in warnings[("seed", "default-type")]
    assert "not checked locally" in warnings[("photo", "validation-unknown-rule")]
    bad = {
        "type": "object",
        "properties": {
            "p": {
                "type": "string",
                "format": "image_uri",
                "validations": [{"validation_rule": "file_size_mb<"}],
            }
        },
    }
    assert [w.rule for w in lint(normalise(bad))] == ["validation-malformed"]


# -- media lists ------------------------------------------------------------------------------


def test_each_element_of_a_media_list_is_checked_and_named_by_index(
    reference: ModelSchema, tmp_path: Path
) -> None:
    with pytest.raises(InputValidationError) as caught:
        reference.validator.validate(
            {"prompt": "p", "images": [URL, 3, "./missing.png", "ftp://x/y.png"]}
        )
    assert [str(p) for p in caught.value.problems] == [
        "images: 4 items given; at most 3 allowed",
        "images[1] (images): expected a URL (a string), got 3 (an integer)",
        "images[2] (images): './missing.png' looks like a local file, but there is no such "
        "file; the API needs a public http(s) URL of the image",
        "images[3] (images): 'ftp://x/y.png' is not an http(s) URL (nor a data: URI); the API "
        "needs a public URL",
    ]
    assert caught.value.problems[2].path == "[2]"


def test_min_items_is_enforced(reference: ModelSchema) -> None:
    with pytest.raises(InputValidationError) as caught:
        reference.validator.validate({"prompt": "p", "images": []})
    [problem] = caught.value.problems
    assert str(problem) == "images: 0 items given; at least 1 needed"
    assert problem.allowed == "a list of 1 to 3 public http(s) URLs of images"


class Recording:
    def __init__(self) -> None:
        self.calls: list[tuple[Path, str | None]] = []

    def upload(self, path: Path, *, media: str | None = None) -> str:
        self.calls.append((path, media))
        return f"https://cdn.test/{len(self.calls)}-{path.name}"


def test_local_files_in_a_list_are_uploaded_one_by_one_in_place(
    reference: ModelSchema, tmp_path: Path
) -> None:
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    first.write_bytes(png_bytes())
    second.write_bytes(png_bytes((0, 0, 0)))
    given = [str(first), URL, str(second)]
    recording = Recording()
    client, sent = capturing_client(recording)
    with client:
        client.submit(reference, {"prompt": "p", "images": given})
    assert [path for path, _ in recording.calls] == [first, second]
    assert sent[0]["images"] == ["https://cdn.test/1-a.png", URL, "https://cdn.test/2-b.png"]
    assert given == [str(first), URL, str(second)]  # the caller's list is untouched


def test_nothing_is_uploaded_while_another_input_is_wrong(
    reference: ModelSchema, tmp_path: Path
) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(png_bytes())
    recording = Recording()
    client, sent = capturing_client(recording)
    with client, pytest.raises(InputValidationError):
        client.submit(reference, {"prompt": "p", "images": [str(image)], "seed": "x"})
    assert recording.calls == [] and sent == []


# -- validations rules on local files ----------------------------------------------------------


def test_rules_are_checked_on_local_files_before_any_upload(
    reference: ModelSchema, tmp_path: Path
) -> None:
    wide = tmp_path / "wide.png"
    wide.write_bytes(png_bytes(size=(120, 40)))  # over 0.002 MB? no: tiny; ratio 3
    big = tmp_path / "big.png"
    import os

    from PIL import Image

    Image.frombytes("RGB", (40, 40), os.urandom(40 * 40 * 3)).save(big)  # noise: ~5 KB
    recording = Recording()
    client, sent = capturing_client(recording)
    with client, pytest.raises(InputValidationError) as caught:
        client.submit(reference, {"prompt": "p", "photo": str(big)})
    messages = [str(p) for p in caught.value.problems]
    assert messages[0].startswith("photo: File size must be less than 0.002 MB. ")
    assert f"{str(big)!r} measures 0.0" in messages[0] and "rule file_size_mb< 0.002" in messages[0]
    assert any(
        "Width must be more than 50 pixels." in m and "measures 40x40" in m for m in messages
    )
    assert recording.calls == [] and sent == []
    with client, pytest.raises(InputValidationError) as caught:
        client.submit(reference, {"prompt": "p", "photo": str(wide)})
    [ratio] = [p for p in caught.value.problems if "Aspect ratio" in p.message]
    assert ratio.kind == "rule" and "120x40, ratio 3" in ratio.message


def test_video_rules_use_the_video_stream(tmp_path: Path) -> None:
    av = pytest.importorskip("av")
    import numpy as np

    clip = tmp_path / "clip.mp4"
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(4):
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    model = _model(
        {
            "video": {
                "type": "string",
                "format": "video_uri",
                "validations": [
                    {
                        "validation_rule": "height_pixels>",
                        "validation_value": 100,
                        "validation_error": "Too small.",
                    }
                ],
            }
        }
    )
    with pytest.raises(InputValidationError) as caught:
        model.validator.check_with_uploads({"video": str(clip)})
    assert "Too small." in str(caught.value) and "measures 64x48" in str(caught.value)


def test_a_rule_that_cannot_be_measured_is_noted_not_enforced(
    reference: ModelSchema,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import runcomfy_client._file_checks as checks

    monkeypatch.setattr(
        checks, "dimensions", lambda path, kind: "Pillow is not installed (pip install pillow)"
    )
    image = tmp_path / "tiny.png"
    image.write_bytes(png_bytes(size=(4, 4)))
    with caplog.at_level(logging.WARNING, logger="runcomfy_client"):
        _, files = reference.validator.check_with_uploads({"prompt": "p", "photo": str(image)})
    assert len(files) == 1
    assert (
        "width_pixels> 50 not checked" in caplog.text and "Pillow is not installed" in caplog.text
    )


# -- structured inputs -----------------------------------------------------------------------


def test_structured_values_are_named_by_their_path(reference: ModelSchema) -> None:
    with pytest.raises(InputValidationError) as caught:
        reference.validator.validate(
            {"prompt": "p", "loras": [{"path": "a/b", "scale": 9}, {"scale": "x", "colour": 1}]}
        )
    assert [str(p) for p in caught.value.problems] == [
        "loras[0].scale (loras): 9 is above the maximum 4 (allowed 0 to 4)",
        "loras[1] (loras): unknown field 'colour'; fields are path, scale",
        "loras[1].path (loras): is required but was not given",
        "loras[1].scale (loras): expected a number, got 'x' (a string)",
    ]
    assert caught.value.problems[0].allowed == "0 to 4"


def test_cli_takes_json_for_structured_inputs_by_flag_set_and_input(
    reference: ModelSchema,
    tmp_path: Path,
) -> None:
    from runcomfy_client.cli._inputs import gather_inputs

    loras = '[{"path": "a/b", "scale": 0.8}]'
    by_flag = gather_inputs(reference, flags={"prompt": "p", "loras": loras})
    by_set = gather_inputs(reference, sets=["prompt=p", f"loras={loras}"])
    by_document = gather_inputs(reference, document={"prompt": "p", "loras": json.loads(loras)})
    assert (
        by_flag
        == by_set
        == by_document
        == {"prompt": "p", "loras": [{"path": "a/b", "scale": 0.8}]}
    )
    with pytest.raises(InputValidationError) as caught:
        gather_inputs(reference, flags={"prompt": "p", "loras": "[{path: a}]"})
    assert str(caught.value.problems[0]).startswith(
        "loras: expected a JSON list, got '[{path: a}]' (not JSON:"
    )


def test_cli_media_list_flag_repeats_or_takes_json(reference: ModelSchema) -> None:
    from runcomfy_client.cli._inputs import gather_inputs

    inputs = gather_inputs(reference, flags={"prompt": "p", "images": (URL, f'["{URL}", "{URL}"]')})
    assert inputs["images"] == [URL, URL, URL]
    with pytest.raises(InputValidationError, match="4 items given; at most 3 allowed"):
        gather_inputs(reference, flags={"prompt": "p", "images": (URL,) * 4})


def test_values_are_shown_in_json_spelling_inside_lists_too() -> None:
    from runcomfy_client._dialect import show_value

    assert show_value(None) == "null"
    assert show_value([None, True, "a"]) == '[null, true, "a"]'
    assert show_value({"scale": None}) == '{"scale": null}'
    assert show_value((640, 480)) == "(640, 480)"  # a Python tuple stays one
    # A long value is cut in the middle: a path keeps its file name, a string its quote.
    path = "/home/someone/" + "very/deep/" * 10 + "clip.mp4"
    shown = show_value(path)
    assert len(shown) == 80 and shown.startswith("'/home/someone/") and shown.endswith("clip.mp4'")
    assert "..." in shown
