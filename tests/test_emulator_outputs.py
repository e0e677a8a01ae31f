"""The emulator on the live catalog's dialect: its own checks, its inputs, outputs by kind.

Renders stay small and short (a fraction of a second each); sizes and lengths are checked by
decoding the files, never by timing anything.
"""

from __future__ import annotations

import base64
import io
import json
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runcomfy_client.emulator import Emulator
from runcomfy_client.emulator._catalog import Catalog
from runcomfy_client.emulator._render import plan_render

from .conftest import INPAINT, png_bytes, wait_for, write_schema

CATALOG = Path(__file__).parent / "fixtures" / "catalog" / "schemas"
WAN = "wan-ai/wan-3.0/image-to-video"
NANO = "google/nano-banana-2-lite/text-to-image"
REFERENCE = "bytedance/seedance-2.5/reference-to-video/1080p"
SEEDANCE_I2V = "bytedance/seedance-2.5/image-to-video/1080p"
FLUX_VIDEO = "blackforestlabs/flux-3/text-to-video"

# Small models of the same dialect, so renders stay tiny.
PICTURES = "acme/pics/text-to-image"
CLIPS = "acme/clips/text-to-video"
VOICE = "acme/voice/text-to-speech"
OWN_SCHEMAS: dict[str, Any] = {
    PICTURES: {
        "type": "object",
        "required": ["prompt"],
        "properties": {
            "prompt": {"type": "string"},
            "output_format": {"type": "string", "enum": ["png", "jpeg", "webp"]},
            "width": {"type": "integer", "default": 64},
            "height": {"type": "integer", "default": 48},
            "num_images": {"type": "integer", "default": 1, "maximum": 4},
            "image_urls": {"type": "array", "format": "image_uris", "maxItems": 3},
        },
    },
    CLIPS: {
        "type": "object",
        "properties": {
            "prompt": {"type": "string", "default": ""},
            "duration": {"type": "float", "minimum": 0.25, "default": 1},
            "resolution": {
                "type": "string",
                "enum": ["64x48", "96x96", "480p"],
                "default": "64x48",
            },
            "aspect_ratio": {"type": "string", "enum": ["auto", "16:9", "9:16"], "default": "auto"},
            "image": {"type": "string", "format": "image_uri"},
        },
    },
    VOICE: {
        "type": "object",
        "properties": {"text": {"type": "string"}, "duration": {"type": "number", "default": 1}},
    },
}


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("own")
    for model_id, schema in OWN_SCHEMAS.items():
        write_schema(folder, model_id, schema)
    return folder


@pytest.fixture(scope="module")
def emu(schemas: Path) -> Iterator[Emulator]:
    with Emulator(job_seconds=0, workers=2, schema_dirs=[schemas, CATALOG]) as emulator:
        yield emulator


@pytest.fixture
def http(emu: Emulator) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {emu.api_key}"}
    with httpx.Client(base_url=emu.base_url, headers=headers, timeout=30) as client:
        yield client


def _data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def _run(http: httpx.Client, model_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
    response = http.post(f"/v1/models/{model_id}", json=inputs)
    assert response.status_code == 200, response.text
    request_id = response.json()["request_id"]

    def done() -> Any:
        body = http.get(f"/v1/requests/{request_id}/result").json()
        return body if body["status"] in ("completed", "failed") else None

    return dict(wait_for(done, timeout=60))


def _probe(data: bytes) -> tuple[int, int, float, str]:
    """Width, height, seconds (frames / rate) and codec of an MP4, by decoding it."""
    import av

    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        seconds = frames / float(stream.average_rate)
        return stream.width, stream.height, seconds, stream.codec_context.name


# -- the submit check: plain JSON Schema with the catalog's dialect -----------------------


def test_checks_use_the_raw_schema_with_its_own_messages(http: httpx.Client, emu: Emulator) -> None:
    jobs = emu.stats()["jobs"]
    response = http.post(
        f"/v1/models/{WAN}",
        json={"prompt": 1, "duration": 1, "aspect_ratio": "5:4", "extra": True},
    )
    assert response.status_code == 422
    detail = {(tuple(d["loc"]), d["kind"]): d["msg"] for d in response.json()["detail"]}
    assert detail == {
        (("extra",), "unknown"): "extra: unknown input key",
        (("prompt",), "type"): "prompt: must be a string, got 1",
        (("duration",), "minimum"): "duration: must be at least 2, got 1",
        (("aspect_ratio",), "enum"): (
            'aspect_ratio: must be one of "adaptive", "16:9", "9:16", "1:1", "4:3", "3:4", '
            'got "5:4"'
        ),
        (("image_url",), "required"): "image_url: is required",
    }
    assert emu.stats()["jobs"] == jobs


def test_float_is_a_number_and_array_bounds_hold(http: httpx.Client) -> None:
    clips = http.post(f"/v1/models/{CLIPS}", json={"duration": "long"})
    assert [(d["loc"], d["kind"]) for d in clips.json()["detail"]] == [(["duration"], "type")]
    assert "must be a number" in clips.json()["detail"][0]["msg"]
    too_many = http.post(
        f"/v1/models/{REFERENCE}", json={"prompt": "p", "videos": ["a", "b", "c", "d"]}
    )
    assert [(d["loc"], d["kind"]) for d in too_many.json()["detail"]] == [(["videos"], "maxItems")]


def test_a_default_outside_its_bounds_is_the_servers_business(http: httpx.Client) -> None:
    # fun-inpaint's 96_steps defaults to 4 with minimum 6: left out, the job runs with it.
    url = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()
    inputs = {"99_text": "p", "110_image": url, "112_image": url, "111_length": 81}
    inputs["111_widthx111_height"] = "480x480 (1:1)"
    response = http.post(f"/v1/models/{INPAINT}", json=inputs)
    assert response.status_code == 200, response.text


def test_a_schema_ref_is_never_fetched(tmp_path: Path) -> None:
    write_schema(
        tmp_path,
        "acme/refs/text-to-image",
        {"type": "object", "properties": {"p": {"$ref": "http://127.0.0.1:9/never.json"}}},
    )
    with Emulator(schema_dirs=[tmp_path], job_seconds=0) as emu:
        response = httpx.post(
            f"{emu.base_url}/v1/models/acme/refs/text-to-image",
            json={"p": 1},
            headers={"Authorization": f"Bearer {emu.api_key}"},
        )
    assert response.status_code == 500
    assert "cannot be checked" in response.json()["error_message"]


def test_bad_json_bodies_are_400(http: httpx.Client) -> None:
    for body in (b"{", b'{"prompt": NaN}', b"[" * 100_000):
        response = http.post(
            f"/v1/models/{NANO}", content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, body[:10]
        assert response.json()["error_code"] == 422001


# -- inputs: optional ones left alone, arrays and data: URIs used --------------------------


def test_optional_media_left_out_is_not_fetched(http: httpx.Client) -> None:
    # Today's regression: a missing optional end_image_url failed the job.
    # The same picture and settings as the test below: one render serves both.
    image = _data_uri(png_bytes(size=(90, 60)))
    inputs = {"prompt": "p", "image_url": image, "resolution": "480p", "duration": 2}
    result = _run(http, WAN, inputs)
    assert result["status"] == "completed", result["error"]


def test_data_uris_are_decoded_and_used(http: httpx.Client) -> None:
    # The only input is a data: URI of a 40x80 picture; "auto" follows it: 1:2.
    inputs = {"image": _data_uri(png_bytes(size=(40, 80))), "resolution": "480p"}
    result = _run(http, CLIPS, {**inputs, "duration": 0.25})
    assert result["status"] == "completed", result["error"]
    width, height, _, _ = _probe(httpx.get(result["output"]["video"]).content)
    assert (width, height) == (480, 960)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("data:image/png;base64,@@@not-base64", "not valid base64"),
        ("data:image/png;base64," + "A" * (9 * 1024 * 1024), "larger than 6 MiB"),
        ("data:image/png;base64," + base64.b64encode(b"not a picture").decode(), "image"),
    ],
)
def test_bad_data_uris_fail_the_job_naming_the_input(
    http: httpx.Client, value: str, says: str
) -> None:
    result = _run(http, CLIPS, {"image": value})
    assert result["status"] == "failed"
    message = result["error"]["error_message"]
    assert "image" in message and says in message


def test_media_arrays_are_fetched_element_by_element(http: httpx.Client, emu: Emulator) -> None:
    good = emu.upload(png_bytes(), "good.png")
    broken = f"{emu.base_url}/_emulator/uploads/nothing--here.png"
    result = _run(http, PICTURES, {"prompt": "p", "image_urls": [good, broken]})
    assert result["status"] == "failed"
    assert "image_urls[1]" in result["error"]["error_message"]
    fine = _run(http, PICTURES, {"prompt": "p", "image_urls": [good, _data_uri(png_bytes())]})
    assert fine["status"] == "completed", fine["error"]


# -- outputs by kind -----------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "pil"), [("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")])
def test_image_models_answer_images_in_the_asked_format(
    http: httpx.Client, fmt: str, pil: str
) -> None:
    from PIL import Image

    result = _run(http, PICTURES, {"prompt": "p", "output_format": fmt, "width": 40, "height": 30})
    assert list(result["output"]) == ["image"]
    response = httpx.get(result["output"]["image"])
    with Image.open(io.BytesIO(response.content)) as picture:
        assert (picture.format, picture.size) == (pil, (40, 30))


def test_several_images_answer_images(http: httpx.Client) -> None:
    from PIL import Image

    result = _run(http, PICTURES, {"prompt": "p", "num_images": 3, "width": 16, "height": 16})
    urls = result["output"]["images"]
    assert len(urls) == 3 == len(set(urls))
    for url in urls:
        assert Image.open(io.BytesIO(httpx.get(url).content)).size == (16, 16)


def test_a_catalog_image_model_answers_an_image_at_its_aspect_ratio(http: httpx.Client) -> None:
    from PIL import Image

    result = _run(http, NANO, {"prompt": "a cat", "aspect_ratio": "16:9"})
    data = httpx.get(result["output"]["image"]).content
    assert Image.open(io.BytesIO(data)).size == (1024, 576)


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        ({"duration": 0.5}, (64, 48, 0.5)),
        ({"duration": 1.5, "resolution": "96x96"}, (96, 96, 1.5)),
    ],
)
def test_video_models_answer_the_asked_length_and_size(
    http: httpx.Client, inputs: dict[str, Any], expected: tuple[int, int, float]
) -> None:
    result = _run(http, CLIPS, inputs)
    width, height, seconds, codec = _probe(httpx.get(result["output"]["video"]).content)
    assert (width, height, codec) == (*expected[:2], "h264")
    assert seconds == pytest.approx(expected[2], abs=0.05)


def test_a_catalog_video_model_follows_its_input_image(http: httpx.Client, emu: Emulator) -> None:
    image = emu.upload(png_bytes(size=(90, 60)), "wide.png")
    result = _run(
        http, WAN, {"prompt": "p", "image_url": image, "resolution": "480p", "duration": 2}
    )
    width, height, seconds, _ = _probe(httpx.get(result["output"]["video"]).content)
    assert (width, height) == (720, 480)  # adaptive: the input's 3:2 at 480p
    assert seconds == pytest.approx(2, abs=0.05)


def test_audio_models_answer_a_wav(http: httpx.Client) -> None:
    result = _run(http, VOICE, {"text": "hello", "duration": 0.75})
    response = httpx.get(result["output"]["audio"])
    with wave.open(io.BytesIO(response.content)) as clip:
        assert clip.getnframes() / clip.getframerate() == pytest.approx(0.75)


def test_models_are_listed_with_their_kind(http: httpx.Client) -> None:
    listed = http.get("/v1/models", params={"limit": 100}).json()
    kinds = {m["model_id"]: m["categories"][-1] for m in listed["models"]}
    assert kinds[NANO] == "image" and kinds[WAN] == "video" and kinds[VOICE] == "audio"
    assert listed["total"] == len(listed["models"])
    one = http.get(f"/v1/models/{WAN}").json()
    assert one["input_schema"] == json.loads((CATALOG / f"{WAN}.json").read_text())


# -- planning, without rendering: the geometry rules ---------------------------------------


@pytest.fixture(scope="module")
def catalog(schemas: Path) -> Catalog:
    return Catalog([schemas, CATALOG], use_env=False)


@pytest.mark.parametrize(
    ("model_id", "inputs", "first_image", "size"),
    [
        (FLUX_VIDEO, {"resolution": "1080p", "aspect_ratio": "16:9"}, None, (1920, 1080)),
        (FLUX_VIDEO, {"resolution": "1080p", "aspect_ratio": "9:16"}, None, (1080, 1920)),
        (FLUX_VIDEO, {"aspect_ratio": "21:9"}, None, (1680, 720)),  # the default 720p
        (FLUX_VIDEO, {}, None, (1280, 720)),  # auto without an image: 16:9
        (WAN, {"resolution": "480p"}, (300, 200), (720, 480)),  # adaptive follows the image
        (WAN, {"resolution": "720p", "aspect_ratio": "1:1"}, (300, 200), (720, 720)),
        (SEEDANCE_I2V, {}, (200, 300), (1080, 1620)),  # 1080p from the model id
        (CLIPS, {"resolution": "96x96"}, None, (96, 96)),
        (NANO, {"aspect_ratio": "9:16"}, None, (576, 1024)),
        (INPAINT, {"111_widthx111_height": "720x480 (3:2)"}, None, (720, 480)),
    ],
)
def test_sizes_follow_resolution_aspect_ratio_and_input(
    catalog: Catalog,
    model_id: str,
    inputs: dict[str, Any],
    first_image: tuple[int, int] | None,
    size: tuple[int, int],
) -> None:
    model = catalog.get(model_id)
    plan = plan_render(model, {**model.reading.defaults, **inputs}, first_image)
    assert (plan.width, plan.height) == size


@pytest.mark.parametrize("duration", ["5", "auto", "20"])
def test_long_clips_keep_their_length_at_a_lower_frame_rate(
    catalog: Catalog, duration: str
) -> None:
    model = catalog.get(FLUX_VIDEO)
    plan = plan_render(model, {**model.reading.defaults, "duration": duration}, None)
    seconds = 5 if duration == "auto" else int(duration)
    assert plan.frames == seconds * plan.fps
    assert 1 <= plan.fps <= 24
    assert plan.frames * plan.width * plan.height <= 32 * 1280 * 720 + seconds * 1280 * 720


def test_explicit_frame_counts_and_rates_are_kept(catalog: Catalog) -> None:
    model = catalog.get(INPAINT)
    plan = plan_render(
        model, {**model.reading.defaults, "111_length": 141, "159_frame_rate": 24}, None
    )
    assert (plan.frames, plan.fps) == (141, 24)


def test_a_broken_second_image_is_named(http: httpx.Client) -> None:
    good, broken = _data_uri(png_bytes()), _data_uri(b"GIF89a but not really")
    result = _run(http, PICTURES, {"prompt": "p", "image_urls": [good, broken]})
    assert result["status"] == "failed"
    assert "input image_urls[1] cannot be used" in result["error"]["error_message"]


def test_a_video_input_lends_its_first_frame(http: httpx.Client, emu: Emulator) -> None:
    # A video model with only a video input: the render starts from the clip's first frame.
    import av
    import numpy as np

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        pixels = np.zeros((48, 64, 3), np.uint8)
        pixels[:, :, 1] = 220  # green
        for _ in range(2):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode(None))
    clip = emu.upload(buffer.getvalue(), "clip.mp4")
    result = _run(http, REFERENCE, {"prompt": "p", "videos": [clip], "duration": 4})
    assert result["status"] == "completed", result["error"]
    with av.open(io.BytesIO(httpx.get(result["output"]["video"]).content)) as container:
        frame = next(container.decode(video=0)).to_image().resize((1, 1))
        r, g, b = frame.getpixel((0, 0))
        assert g > 150 and r < 80 and b < 80
