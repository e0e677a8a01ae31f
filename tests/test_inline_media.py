"""Media inline as data: URIs, and which local files may leave the machine at all.

Inline media follows RunComfy's own ComfyUI nodes: base64 ``data:`` URIs with the MIME type read
from the content, an image up to 6 MiB and 32 megapixels, a video 32 MiB, audio 16 MiB, a whole
request 64 MiB; anything over is refused before sending, with the way out. Uploads of any kind
only take files whose content is media of the field's kind, unless the caller says otherwise.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from runcomfy_client import InputValidationError, ModelSchema, UploadError
from runcomfy_client._registry import model_from_schema
from runcomfy_client.cli import cli
from runcomfy_client.emulator import Emulator
from runcomfy_client.uploaders import InlineUploader, uploader_from_uri

from .conftest import FUSIONX, capturing_client, png_bytes

MiB = 1024 * 1024


@pytest.fixture
def model() -> ModelSchema:
    return model_from_schema(
        "acme/inline",
        {
            "type": "object",
            "required": ["prompt"],
            "properties": {
                "prompt": {"type": "string"},
                "image_url": {"type": "string", "format": "image_uri"},
                "images": {"type": "array", "format": "image_uris", "maxItems": 4},
                "clip": {"type": "string", "format": "video_uri"},
            },
        },
    )


def _data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


# -- data: URIs as values ---------------------------------------------------------------------


def test_a_data_uri_is_a_valid_media_value(model: ModelSchema) -> None:
    uri = _data_uri(png_bytes())
    payload = model.validator.validate({"prompt": "p", "image_url": uri, "images": [uri]})
    assert payload["image_url"] == uri


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            _data_uri(b"x", "video/mp4"),
            "a data: URI of video/mp4, but this field takes image files",
        ),
        ("data:image/png;base64,@@@@", "its content is not valid base64"),
        ("data:image/png,rawtext", "only base64 data: URIs are sent"),
        ("data:;base64,AAAA", "needs a media type"),
    ],
)
def test_a_bad_data_uri_says_why(model: ModelSchema, value: str, message: str) -> None:
    with pytest.raises(InputValidationError) as caught:
        model.validator.validate({"prompt": "p", "image_url": value})
    assert message in str(caught.value)


def test_a_data_uri_over_its_cap_names_the_cap_and_the_way_out(model: ModelSchema) -> None:
    big = _data_uri(b"\0" * (6 * MiB + 3))
    with pytest.raises(InputValidationError) as caught:
        model.validator.validate({"prompt": "p", "images": [big]})
    text = str(caught.value)
    assert (
        "images[0] (images): a data: URI of 6.0 MiB; images sent inline are capped at 6 MiB" in text
    )
    assert "S3 uploader" in text


# -- InlineUploader ---------------------------------------------------------------------------


def test_inline_upload_sends_base64_with_the_type_read_from_the_content(
    model: ModelSchema, tmp_path: Path
) -> None:
    disguised = tmp_path / "photo.jpg"  # a PNG whatever the name says
    disguised.write_bytes(png_bytes())
    client, sent = capturing_client(InlineUploader())
    with client:
        client.submit(model, {"prompt": "p", "images": [str(disguised), str(disguised)]})
    assert sent[0]["images"] == [_data_uri(disguised.read_bytes(), "image/png")] * 2
    assert uploader_from_uri("inline").__class__ is InlineUploader


def test_a_file_over_its_kinds_cap_is_refused_before_sending(
    model: ModelSchema, tmp_path: Path
) -> None:
    big = tmp_path / "huge.png"
    big.write_bytes(png_bytes() + b"\0" * (6 * MiB))
    client, sent = capturing_client(InlineUploader())
    with client, pytest.raises(UploadError) as caught:
        client.submit(model, {"prompt": "p", "image_url": str(big)})
    text = str(caught.value)
    assert str(big) in text and "is 6.0 MiB" in text and "capped at 6 MiB" in text
    assert "--upload-to s3://BUCKET" in text
    assert sent == []


def test_an_image_over_32_megapixels_is_refused(tmp_path: Path) -> None:
    from PIL import Image

    wide = tmp_path / "wide.png"
    Image.new("1", (8200, 4000)).save(wide)  # 32.8 megapixels, a few kilobytes
    with pytest.raises(UploadError, match=r"8200x4000 \(32.8 megapixels\).*capped at 32"):
        InlineUploader().upload(wide, media="image")


def test_the_whole_request_is_capped_before_anything_is_encoded(
    model: ModelSchema, tmp_path: Path
) -> None:
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    first.write_bytes(png_bytes(size=(64, 64)))
    second.write_bytes(png_bytes(size=(64, 64)))
    client, sent = capturing_client(InlineUploader(max_request_bytes=400))
    with client, pytest.raises(UploadError) as caught:
        client.submit(model, {"prompt": "p", "images": [str(first), str(second)]})
    text = str(caught.value)
    assert str(first) in text and str(second) in text and "a request is capped at" in text
    assert sent == []


def test_data_uris_given_directly_are_capped_as_a_request(model: ModelSchema) -> None:
    part = _data_uri(b"\0" * (5 * MiB))
    clip = _data_uri(b"\0" * (30 * MiB), "video/mp4")
    with pytest.raises(InputValidationError) as caught:
        model.validator.validate({"prompt": "p", "images": [part] * 4, "clip": clip})
    [problem] = caught.value.problems
    assert str(problem).startswith("input: the data: URIs add up to 66.7 MiB (images[0] 6.7 MiB")
    assert "clip 40.0 MiB); a request is capped at 64 MiB" in str(problem)


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(workers=1, job_seconds=0.05) as emu:
        yield emu


def _env(emulator: Emulator, **extra: str) -> dict[str, str]:
    return {
        "RUNCOMFY_BASE_URL": emulator.base_url,
        "RUNCOMFY_API_KEY": emulator.api_key,
        "RUNCOMFY_API_KEY_FILE": "",
        "RUNCOMFY_UPLOAD_TO": "",
        "RUNCOMFY_SCHEMA_PATH": "",
        **extra,
    }


def test_cli_upload_to_inline_puts_the_file_in_the_request(
    emulator: Emulator, tmp_path: Path
) -> None:
    image = tmp_path / "day.png"
    image.write_bytes(png_bytes())
    args = ["run", FUSIONX, "--prompt", "p", "--image", str(image), "--no-wait", "--json"]
    result = CliRunner().invoke(cli, [*args, "--upload-to", "inline"], env=_env(emulator))
    assert result.exit_code == 0, result.stderr
    request_id = json.loads(result.stdout)["request_id"]
    job = next(j for j in emulator.jobs() if j["request_id"] == request_id)
    assert job["payload"]["608_image"] == _data_uri(image.read_bytes())


# -- only media of the field's kind leaves the machine ----------------------------------------


class Recording:
    def __init__(self) -> None:
        self.calls: list[Path] = []

    def upload(self, path: Path, *, media: str | None = None) -> str:
        assert path.is_file()
        self.calls.append(path)
        return "https://cdn.test/x"


def test_a_file_that_is_not_media_of_the_fields_kind_is_never_uploaded(
    model: ModelSchema, tmp_path: Path
) -> None:
    key = tmp_path / "id_ed25519"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n")
    image = tmp_path / "a.png"
    image.write_bytes(png_bytes())
    recording = Recording()
    client, sent = capturing_client(recording)
    with client, pytest.raises(InputValidationError) as caught:
        client.submit(model, {"prompt": "p", "image_url": str(key), "clip": str(image)})
    messages = [str(p) for p in caught.value.problems]
    assert messages[0].startswith(f"image_url: {str(key)!r} is not an image file")
    assert "(its content is an image (image/png)); only video files" in messages[1]
    assert "allow_any_file=True" in messages[0]
    assert recording.calls == [] and sent == []
    allowed, sent = capturing_client(recording, allow_any_file=True)
    with allowed:
        allowed.submit(model, {"prompt": "p", "image_url": str(key)})
    assert recording.calls == [key] and sent[0]["image_url"] == "https://cdn.test/x"


def test_a_tilde_path_is_expanded_before_it_is_checked_and_uploaded(
    model: ModelSchema, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "pic.png").write_bytes(png_bytes())
    recording = Recording()
    client, sent = capturing_client(recording)
    with client:
        client.submit(model, {"prompt": "p", "images": ["~/pic.png"]})
    assert recording.calls == [tmp_path / "pic.png"]
    assert sent[0]["images"] == ["https://cdn.test/x"]


def test_cli_with_an_uploader_from_the_environment_refuses_a_private_file(
    emulator: Emulator, tmp_path: Path
) -> None:
    secret = tmp_path / "credentials"
    secret.write_text("aws_secret_access_key = abc\n")
    env = _env(emulator, RUNCOMFY_UPLOAD_TO="emulator")
    uploads = emulator.stats()["requests"]["upload"]
    args = ["run", FUSIONX, "--prompt", "p", "--image", str(secret), "--no-wait"]
    refused = CliRunner().invoke(cli, args, env=env)
    assert refused.exit_code == 2, refused.stderr
    assert "is not an image file" in refused.stderr and "--allow-any-file" in refused.stderr
    assert emulator.stats()["requests"]["upload"] == uploads
    allowed = CliRunner().invoke(cli, [*args, "--allow-any-file"], env=env)
    assert allowed.exit_code == 0, allowed.stderr
    assert emulator.stats()["requests"]["upload"] == uploads + 1


def test_batch_uploads_only_media_unless_any_file_is_allowed(
    emulator: Emulator, tmp_path: Path
) -> None:
    image, notes = tmp_path / "frame.png", tmp_path / "notes.png"
    image.write_bytes(png_bytes())
    notes.write_text("not a picture")
    lines = tmp_path / "jobs.jsonl"
    lines.write_text(
        "".join(
            json.dumps({"id": name, "model": FUSIONX, "prompt": name, "image": str(path)}) + "\n"
            for name, path in (("picture", image), ("text", notes))
        )
    )
    env = _env(emulator)
    before = emulator.stats()["requests"]["upload"]
    args = ["batch", str(lines), "--upload-to", "emulator", "--json"]
    strict = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "a")], env=env)
    report = {line["name"]: line for line in json.loads(strict.stdout)["lines"]}
    assert report["picture"]["state"] == "downloaded"
    assert (
        report["text"]["state"] != "downloaded"
        and "is not an image file" in report["text"]["error"]["message"]
    )
    assert emulator.stats()["requests"]["upload"] == before + 1
    lenient = CliRunner().invoke(
        cli, [*args, "--out", str(tmp_path / "b"), "--allow-any-file"], env=env
    )
    submitted = {line["name"]: line for line in json.loads(lenient.stdout)["lines"]}
    assert submitted["text"]["request_id"] is not None  # uploaded and sent, as asked
    assert emulator.stats()["requests"]["upload"] == before + 3
