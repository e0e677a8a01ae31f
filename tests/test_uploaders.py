"""Uploaders: local media files become URLs the API can fetch, only once the rest is valid.

The S3 uploader runs against a real local S3 server (moto in server mode, over HTTP); the jobs
then run on the emulator, whose worker fetches the presigned URLs like the real service would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from runcomfy_client import (
    AsyncClient,
    AuthenticationError,
    Client,
    InputValidationError,
    UploadError,
)
from runcomfy_client.cli import cli
from runcomfy_client.emulator import Emulator
from runcomfy_client.uploaders import (
    EmulatorUploader,
    S3Uploader,
    Uploader,
    uploader_from_uri,
)

from .conftest import FUSIONX, INPAINT, png_bytes

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

BUCKET = "runcomfy-test-inputs"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on a free port, with AWS settings that point nowhere real."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
        try:
            yield endpoint
        finally:
            server.stop()


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    # The S3 server of these tests is on loopback, which the emulator refuses by default.
    with Emulator(workers=2, job_seconds=0.1, allow_private_inputs=True) as emu:
        yield emu


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "my photo.png"
    path.write_bytes(png_bytes((10, 200, 90)))
    return path


def objects(endpoint: str) -> list[str]:
    listing = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket=BUCKET)
    return [item["Key"] for item in listing.get("Contents", [])]


class Recording:
    """An uploader that records what it was asked to upload (for ordering checks)."""

    def __init__(self, inner: Uploader | None = None) -> None:
        self.inner = inner
        self.calls: list[tuple[Path, str | None]] = []

    def upload(self, path: Path, *, media: str | None = None) -> str:
        self.calls.append((path, media))
        return self.inner.upload(path, media=media) if self.inner else "https://cdn.test/x.png"


def test_s3_upload_returns_a_presigned_url_that_a_plain_get_fetches(
    s3_endpoint: str, image: Path
) -> None:
    import httpx

    uploader = S3Uploader(BUCKET, "inputs/", endpoint_url=s3_endpoint, expires_in=600)
    url = uploader.upload(image, media="image")
    assert url.startswith(f"{s3_endpoint}/{BUCKET}/inputs/")
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=600" in url
    assert httpx.get(url).content == image.read_bytes()
    [key] = [k for k in objects(s3_endpoint) if k.endswith("my_photo.png")]
    # Same bytes again: the object is reused, not uploaded twice.
    uploader.upload(image)
    assert [k for k in objects(s3_endpoint) if k.endswith("my_photo.png")] == [key]
    assert "testing" not in repr(uploader)


def test_s3_failure_is_an_upload_error_naming_the_target(s3_endpoint: str, image: Path) -> None:
    uploader = S3Uploader("no-such-bucket", endpoint_url=s3_endpoint)
    with pytest.raises(UploadError, match=r"s3://no-such-bucket/runcomfy-inputs/.*failed"):
        uploader.upload(image)


def test_cli_run_uploads_to_s3_and_the_job_fetches_it(
    s3_endpoint: str, emulator: Emulator, image: Path, tmp_path: Path
) -> None:
    env = {
        "RUNCOMFY_BASE_URL": emulator.base_url,
        "RUNCOMFY_API_KEY": emulator.api_key,
        "RUNCOMFY_API_KEY_FILE": "",
        "RUNCOMFY_UPLOAD_TO": f"s3://{BUCKET}/cli?endpoint={s3_endpoint}",
    }
    args = ["run", FUSIONX, "--prompt", "p", "--image", str(image), "--out", str(tmp_path)]
    result = CliRunner().invoke(cli, [*args, "--json"], env=env)
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["status"] == "completed" and Path(record["files"][0]).is_file()
    job = next(j for j in emulator.jobs() if j["request_id"] == record["request_id"])
    assert job["payload"]["608_image"].startswith(f"{s3_endpoint}/{BUCKET}/cli/")
    assert any(k.startswith("cli/") for k in objects(s3_endpoint))

    env["RUNCOMFY_UPLOAD_TO"] = f"s3://missing-bucket?endpoint={s3_endpoint}"
    before = emulator.stats()["requests"]["submit"]
    failed = CliRunner().invoke(cli, args, env=env)
    assert failed.exit_code == 2 and "s3://missing-bucket/" in failed.stderr
    assert emulator.stats()["requests"]["submit"] == before


def test_nothing_is_uploaded_when_other_inputs_are_invalid(emulator: Emulator, image: Path) -> None:
    recording = Recording()
    with (
        Client(base_url=emulator.base_url, api_key=emulator.api_key, uploader=recording) as client,
        pytest.raises(InputValidationError) as caught,
    ):
        client.submit(INPAINT, {"prompt": "p", "start_image": str(image), "steps": 99})
    assert recording.calls == []
    kinds = {p.key: p.kind for p in caught.value.problems}
    assert kinds == {"112_image": "missing", "96_steps": "maximum"}


def test_no_api_key_means_no_upload(emulator: Emulator, image: Path, monkeypatch: Any) -> None:
    monkeypatch.delenv("RUNCOMFY_API_KEY", raising=False)
    recording = Recording()
    client = Client(base_url=emulator.base_url, api_key="", uploader=recording)
    with client, pytest.raises(AuthenticationError, match="no API key"):
        client.submit(FUSIONX, {"prompt": "p", "image": str(image)})
    assert recording.calls == []


def test_library_sync_and_async_upload_then_run(emulator: Emulator, image: Path) -> None:
    import asyncio

    uploader = Recording(EmulatorUploader(emulator.base_url))
    with Client(base_url=emulator.base_url, api_key=emulator.api_key, uploader=uploader) as c:
        result = c.run(FUSIONX, {"prompt": "p", "image": str(image)})
    assert result.status == "completed"
    assert uploader.calls == [(image, "image")]

    async def main() -> str:
        async with AsyncClient(
            base_url=emulator.base_url, api_key=emulator.api_key, uploader=uploader
        ) as client:
            inputs = {"prompt": "p", "start_image": str(image), "end_image": str(image)}
            handle = await client.submit(INPAINT, inputs)
            return (await handle.wait()).status

    assert asyncio.run(main()) == "completed"
    assert len(uploader.calls) == 3


def test_uploader_from_uri() -> None:
    s3 = uploader_from_uri("s3://bucket/some/prefix?expires=60&region=eu-west-1")
    assert isinstance(s3, S3Uploader)
    assert (s3.bucket, s3.prefix, s3.expires_in, s3.region_name) == (
        "bucket",
        "some/prefix/",
        60,
        "eu-west-1",
    )
    emulator = uploader_from_uri("emulator", base_url="http://127.0.0.1:9/")
    assert isinstance(emulator, EmulatorUploader) and emulator.base_url == "http://127.0.0.1:9"
    for bad, message in [
        ("ftp://x", "unknown uploader"),
        ("s3://b?colour=red", "unknown option"),
        ("s3://b?expires=soon", "whole seconds"),
        ("s3://b?expires=9999999", "7 days"),
    ]:
        with pytest.raises(ValueError, match=message):
            uploader_from_uri(bad)
