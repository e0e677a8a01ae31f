"""The one output-kind rule: Output schema, then the model id's words, then the inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runcomfy_client._output_kind import output_rule

from .conftest import FUSIONX, INPAINT

CATALOG = Path(__file__).parent / "fixtures" / "catalog" / "schemas"
SEEDS = Path(__file__).parent.parent / "schemas"
PUBLISHED_OUTPUT = json.loads((SEEDS / "_output.json").read_text())["output"]


def _schema(folder: Path, model_id: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((folder / f"{model_id}.json").read_text())
    return loaded


@pytest.mark.parametrize(
    ("model_id", "kind"),
    [
        # The catalog README's table of what each published model returns.
        ("blackforestlabs/flux-3/text-to-video", "video"),
        ("bytedance/seedance-2.5/image-to-video/1080p", "video"),
        ("bytedance/seedance-2.5/reference-to-video/1080p", "video"),
        ("bytedance/seedance-2.5/text-to-video/1080p", "video"),
        ("google/nano-banana-2-lite/text-to-image", "image"),
        ("wan-ai/wan-3.0/image-to-video", "video"),
    ],
)
def test_catalog_models_get_the_kind_they_publish(model_id: str, kind: str) -> None:
    rule = output_rule(
        model_id, input_schema=_schema(CATALOG, model_id), output_schema=PUBLISHED_OUTPUT
    )
    assert (rule.kind, rule.key) == (kind, kind)
    assert "model id" in rule.reason


@pytest.mark.parametrize(
    ("model_id", "kind", "said"),
    [
        ("google/nano-banana-2-lite/edit", "image", "'edit'"),
        ("acme/flux/image-to-image", "image", "'image-to-image'"),
        ("minimax/speech-02/text-to-speech", "audio", "'text-to-speech'"),
        ("suno/music-v4", "audio", "'music'"),
        ("acme/foley/video-to-audio", "audio", "'video-to-audio'"),
        ("tencent/hunyuan/video-to-video", "video", "'video-to-video'"),
        ("ltx/ltx-2-19b/video-to-video/lora", "video", "'video-to-video'"),
        ("minimax/Hailuo Video 01 Live", "video", "'video'"),
        ("acme/photo-to-video/v2", "video", "'photo-to-video'"),
    ],
)
def test_the_model_ids_words_decide(model_id: str, kind: str, said: str) -> None:
    rule = output_rule(model_id)
    assert rule.kind == kind
    assert said in rule.reason


def test_an_output_schema_naming_one_kind_wins_over_the_id() -> None:
    only_images = {"properties": {"images": {"type": "array"}}}
    rule = output_rule("acme/x/text-to-video", output_schema=only_images)
    assert (rule.kind, rule.key) == ("image", "images")
    assert "Output schema" in rule.reason
    audio = output_rule("acme/x/text-to-video", output_schema={"properties": {"audio": {}}})
    assert (audio.kind, audio.key) == ("audio", "audio")


def test_the_published_output_schema_decides_nothing() -> None:
    rule = output_rule("acme/x/text-to-image", output_schema=PUBLISHED_OUTPUT)
    assert rule.kind == "image" and "model id" in rule.reason


def test_seed_models_are_video() -> None:
    for model_id in (FUSIONX, INPAINT):
        rule = output_rule(
            model_id, input_schema=_schema(SEEDS, model_id), output_schema=PUBLISHED_OUTPUT
        )
        assert rule.kind == "video"
    # fun-inpaint's id names no kind: its frame count and frame rate do.
    assert "111_length" in output_rule(INPAINT, input_schema=_schema(SEEDS, INPAINT)).reason


def test_inputs_decide_when_the_id_is_silent_then_video() -> None:
    pictures = {"properties": {"output_format": {"enum": ["png", "webp"]}}}
    assert output_rule("acme/flux-1/dev", input_schema=pictures).kind == "image"
    assert output_rule("acme/flux-1/dev", input_schema={"properties": {"num_images": {}}}).kind == (
        "image"
    )
    fallback = output_rule("acme/flux-1/dev", input_schema={"properties": {"prompt": {}}})
    assert fallback.kind == "video" and "default" in fallback.reason
