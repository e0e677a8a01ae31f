"""Uploaders: turn a local file into a public URL the API can fetch.

The Model API has no upload endpoint: media inputs are public http(s) URLs. When a client has an
uploader, a local path given for a media field is uploaded first and replaced by the URL the
uploader returns (only after every other input has been validated, so a typo uploads nothing).

Two ship with the package:

- :class:`S3Uploader` for S3-compatible storage (AWS, MinIO, R2, ...): the file goes to
  ``s3://BUCKET/PREFIX<sha256>/<name>`` and the URL is a presigned GET, so the bucket can stay
  private. Needs the ``s3`` extra (boto3); credentials and endpoint come from boto3's usual
  configuration (``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``, profiles, ...).
- :class:`EmulatorUploader` for the local emulator (a stand-in for public storage).

Anything with an ``upload(path, *, media=None) -> str`` method is an uploader.
"""

from __future__ import annotations

import hashlib
import mimetypes
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from ._download import safe_name
from ._errors import ConfigurationError, UploadError

__all__ = ["EmulatorUploader", "S3Uploader", "Uploader", "uploader_from_uri"]

UPLOAD_TO_ENV = "RUNCOMFY_UPLOAD_TO"
DEFAULT_EXPIRES = 24 * 3600  # a queued video job can wait for hours before it fetches inputs


@runtime_checkable
class Uploader(Protocol):
    """Stores a local file and returns a public http(s) URL for it."""

    def upload(self, path: Path, *, media: str | None = None) -> str:
        """Upload ``path`` (an image, video, audio or mask file) and return its URL."""
        ...


def file_digest(path: Path) -> str:
    """The file's SHA-256, read in chunks (a video can be large)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class S3Uploader:
    """Uploads to an S3-compatible bucket and returns a presigned GET URL.

    The object key holds the file's hash, so uploading the same file again reuses the object.
    ``client`` may be a ready boto3 S3 client; otherwise one is made from boto3's configuration
    plus ``endpoint_url`` and ``region_name`` when given.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "runcomfy-inputs/",
        *,
        expires_in: int = DEFAULT_EXPIRES,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        client: Any = None,
    ) -> None:
        if not bucket:
            raise ConfigurationError("S3Uploader needs a bucket name")
        if not 1 <= expires_in <= 7 * 24 * 3600:
            raise ConfigurationError(
                f"expires_in must be 1 s to 7 days (the presigned URL limit), not {expires_in}"
            )
        self.bucket = bucket
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self.expires_in = expires_in
        self.endpoint_url = endpoint_url
        self.region_name = region_name
        self._client = client

    def __repr__(self) -> str:
        where = f", endpoint_url={self.endpoint_url!r}" if self.endpoint_url else ""
        return f"S3Uploader(bucket={self.bucket!r}, prefix={self.prefix!r}{where})"

    def _s3(self) -> Any:
        if self._client is None:
            try:
                import boto3
            except ImportError:
                raise ConfigurationError(
                    "uploading to S3 needs boto3: pip install 'runcomfy-client[s3]'"
                ) from None
            from botocore.config import Config

            # SigV4 presigned URLs: accepted in every AWS region and by S3-compatible stores.
            self._client = boto3.client(
                "s3",
                endpoint_url=self.endpoint_url,
                region_name=self.region_name,
                config=Config(signature_version="s3v4"),
            )
        return self._client

    def upload(self, path: Path, *, media: str | None = None) -> str:
        key = f"{self.prefix}{file_digest(path)[:32]}/{safe_name(path.name, 'input')}"
        where = f"s3://{self.bucket}/{key}"
        s3 = self._s3()
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            if not self._exists(s3, key):
                content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                s3.upload_file(str(path), self.bucket, key, ExtraArgs={"ContentType": content_type})
            url: str = s3.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": key},
                ExpiresIn=self.expires_in,
            )
        except (Boto3Error, BotoCoreError, ClientError) as exc:
            raise UploadError(
                f"uploading {path} to {where} failed: {exc}; check that the bucket exists and "
                "that boto3's credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile) "
                "and endpoint (AWS_ENDPOINT_URL or ?endpoint=) may write to it"
            ) from None
        return url

    def _exists(self, s3: Any, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True


class EmulatorUploader:
    """Uploads to the local emulator's ``/_emulator/uploads/`` store (no API key needed)."""

    def __init__(self, base_url: str, *, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"EmulatorUploader({self.base_url!r})"

    def upload(self, path: Path, *, media: str | None = None) -> str:
        name = quote(safe_name(path.name, "input"), safe="")
        url = f"{self.base_url}/_emulator/uploads/{name}"
        try:
            with path.open("rb") as stream:
                response = httpx.put(url, content=stream, timeout=self.timeout)
            response.raise_for_status()
            uploaded = response.json()["url"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise UploadError(
                f"uploading {path} to the emulator at {url} failed: {exc}; is the emulator "
                "running there (`runcomfy-client emulator`, and RUNCOMFY_BASE_URL pointing at it)?"
            ) from None
        if not isinstance(uploaded, str):
            raise UploadError(f"the emulator at {url} answered no URL for {path}")
        return uploaded


def uploader_from_uri(uri: str, *, base_url: str | None = None) -> Uploader:
    """An uploader from a short description (what ``--upload-to`` and RUNCOMFY_UPLOAD_TO take).

    - ``s3://BUCKET[/PREFIX][?expires=SECONDS&endpoint=URL&region=NAME]``
    - ``emulator``: the emulator at ``base_url`` (the client's API address).
    """
    text = uri.strip()
    if text == "emulator":
        if not base_url:
            raise ConfigurationError("the emulator uploader needs the emulator's base URL")
        return EmulatorUploader(base_url)
    parts = urlsplit(text)
    if parts.scheme == "s3" and parts.netloc:
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = sorted(set(query) - {"expires", "endpoint", "region"})
        if unknown:
            raise ConfigurationError(
                f"unknown option(s) {', '.join(unknown)} in {text!r}; "
                "known: expires, endpoint, region"
            )
        try:
            expires = int(query.get("expires", DEFAULT_EXPIRES))
        except ValueError:
            raise ConfigurationError(f"expires must be whole seconds in {text!r}") from None
        return S3Uploader(
            parts.netloc,
            parts.path.lstrip("/") or "runcomfy-inputs/",
            expires_in=expires,
            endpoint_url=query.get("endpoint"),
            region_name=query.get("region"),
        )
    raise ConfigurationError(
        f"unknown uploader {text!r}; use s3://BUCKET[/PREFIX] (S3-compatible storage, presigned "
        "URLs) or 'emulator'"
    )
