"""What callers pass as inputs: Paths and open files for media, non-mappings, RUNCOMFY_UPLOAD_TO.

Scripted answers (httpx.MockTransport) stand in for the API; a recording uploader for storage.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from runcomfy_client import AsyncClient, Client, InputValidationError
from runcomfy_client.uploaders import EmulatorUploader, S3Uploader

from .conftest import INPAINT, png_bytes

BASE = "http://127.0.0.1:9"


class Recorder:
    """An uploader that remembers what it was given (name and bytes) and returns a URL."""

    def __init__(self) -> None:
        self.uploads: list[tuple[str, bytes, str | None]] = []

    def upload(self, path: Path, *, media: str | None = None) -> str:
        self.uploads.append((path.name, path.read_bytes(), media))
        return f"https://storage.example/{len(self.uploads)}/{path.name}"


def _api(sent: list[dict[str, Any]]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json={"request_id": "r1"})

    return httpx.MockTransport(answer)


def _client(uploader: Any, sent: list[dict[str, Any]]) -> Client:
    return Client(
        api_key="k",
        base_url=BASE,
        uploader=uploader,
        http_client=httpx.Client(transport=_api(sent)),
    )


@pytest.fixture
def images(tmp_path: Path) -> tuple[Path, Path]:
    day, dusk = tmp_path / "day.png", tmp_path / "dusk.png"
    day.write_bytes(png_bytes((10, 200, 10)))
    dusk.write_bytes(png_bytes((10, 10, 200)))
    return day, dusk


def test_a_path_and_an_open_file_are_uploaded(images: tuple[Path, Path]) -> None:
    day, dusk = images
    recorder, sent = Recorder(), []
    with _client(recorder, sent) as client, dusk.open("rb") as stream:
        client.submit(INPAINT, {"prompt": "p", "start_image": day, "end_image": stream})
    assert [(name, data) for name, data, _ in recorder.uploads] == [
        ("day.png", day.read_bytes()),
        ("dusk.png", dusk.read_bytes()),
    ]
    assert sent[0]["110_image"] == "https://storage.example/1/day.png"
    assert sent[0]["112_image"] == "https://storage.example/2/dusk.png"


def test_a_file_without_a_name_on_disk_is_spooled_and_cleaned_up(
    images: tuple[Path, Path],
) -> None:
    day, _ = images
    recorder, sent = Recorder(), []
    spooled: list[Path] = []

    class Watching(Recorder):
        def upload(self, path: Path, *, media: str | None = None) -> str:
            spooled.append(path)
            return super().upload(path, media=media)

    recorder = Watching()
    with _client(recorder, sent) as client:
        client.submit(
            INPAINT,
            {"prompt": "p", "start_image": day, "end_image": io.BytesIO(png_bytes())},
        )
    assert recorder.uploads[1][1] == png_bytes()
    assert not spooled[1].exists(), "the spooled copy outlived the submit"


def test_a_text_mode_file_is_refused_with_how_to_open_it(images: tuple[Path, Path]) -> None:
    day, _ = images
    with (
        _client(Recorder(), []) as client,
        pytest.raises(TypeError, match=r"open\(path, 'rb'\)"),
    ):
        client.submit(INPAINT, {"prompt": "p", "start_image": day, "end_image": io.StringIO("x")})


def test_a_path_without_an_uploader_says_to_configure_one(images: tuple[Path, Path]) -> None:
    day, dusk = images
    sent: list[dict[str, Any]] = []
    with _client(None, sent) as client, pytest.raises(InputValidationError) as caught:
        client.submit(INPAINT, {"prompt": "p", "start_image": day, "end_image": dusk})
    assert "uploader" in str(caught.value)
    assert "start_image (110_image)" in str(caught.value)
    assert sent == []


async def test_the_async_client_uploads_paths_too(images: tuple[Path, Path]) -> None:
    day, dusk = images
    recorder, sent = Recorder(), []

    async def answer(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json={"request_id": "r1"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    async with AsyncClient(api_key="k", base_url=BASE, uploader=recorder, http_client=http) as c:
        await c.submit(INPAINT, {"prompt": "p", "start_image": day, "end_image": str(dusk)})
    # The two uploads run concurrently: their order is not part of the contract.
    assert sorted(name for name, _, _ in recorder.uploads) == ["day.png", "dusk.png"]
    assert sent[0]["110_image"].endswith("/day.png")
    assert sent[0]["112_image"].endswith("/dusk.png")


@pytest.mark.parametrize("inputs", [None, ["prompt", "p"], "prompt=p", 3])
def test_inputs_that_are_not_a_mapping_raise_type_error(inputs: Any) -> None:
    sent: list[dict[str, Any]] = []
    with _client(None, sent) as client:
        with pytest.raises(TypeError, match="mapping of field names") as caught:
            client.submit(INPAINT, inputs)
        assert type(inputs).__name__ in str(caught.value)
        with pytest.raises(TypeError, match="generated input model"):
            client.validate(INPAINT, inputs)
    assert sent == []


def test_client_takes_its_uploader_from_runcomfy_upload_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RUNCOMFY_UPLOAD_TO", "emulator")
    with Client(api_key="k", base_url=BASE) as client:
        assert isinstance(client.uploader, EmulatorUploader)
        assert client.uploader.base_url == BASE  # the emulator the client talks to
    monkeypatch.setenv("RUNCOMFY_UPLOAD_TO", "s3://bucket/inputs?expires=60")
    with Client(api_key="k", base_url=BASE) as client:
        assert isinstance(client.uploader, S3Uploader)
        assert (client.uploader.bucket, client.uploader.expires_in) == ("bucket", 60)
    explicit = Recorder()
    with Client(api_key="k", base_url=BASE, uploader=explicit) as client:
        assert client.uploader is explicit
    monkeypatch.setenv("RUNCOMFY_UPLOAD_TO", "  ")
    with Client(api_key="k", base_url=BASE) as client:
        assert client.uploader is None
