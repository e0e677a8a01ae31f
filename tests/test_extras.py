"""A feature whose extra is missing names that extra, before anything else can go wrong."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from runcomfy_client import ConfigurationError, MissingExtraError
from runcomfy_client.cli import cli
from runcomfy_client.uploaders import S3Uploader

ROOT = Path(__file__).resolve().parent.parent


def test_codegen_without_its_extra_names_it_and_does_not_blame_the_schema(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "datamodel_code_generator", None)  # "not installed"
    args = ["codegen", "--schemas", str(ROOT / "schemas"), "--out", str(tmp_path)]
    result = CliRunner().invoke(cli, [*args, "--package", "my_models"])
    assert result.exit_code == 2, result.output
    assert "runcomfy-client[codegen]" in result.stderr
    assert "datamodel-code-generator is not installed" in result.stderr
    assert "cannot render" not in result.stderr
    assert not any(tmp_path.iterdir())


def test_the_emulator_without_its_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aiohttp", None)
    result = CliRunner().invoke(cli, ["emulator", "--port", "0"])
    assert result.exit_code == 2 and "runcomfy-client[emulator]" in result.stderr


def test_s3_uploads_without_their_extra_name_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    image = tmp_path / "a.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(MissingExtraError, match=r"uploading to S3 needs the 's3' extra") as caught:
        S3Uploader("bucket").upload(image)
    assert isinstance(caught.value, ConfigurationError)
    assert "pip install '.[s3]'" in str(caught.value)  # the way that works from a clone
