"""Uploaders: turn a local file into a public URL the API can fetch.

The Model API has no upload endpoint: media inputs are public http(s) URLs. When a client has an
uploader, a local path given for a media field is uploaded first and replaced by the URL the
uploader returns (only after every other input has been validated, so a typo uploads nothing).

Three ship with the package:

- :class:`S3Uploader` for S3-compatible storage (AWS, MinIO, R2, ...): the file goes to
  ``s3://BUCKET/PREFIX<sha256>/<name>`` and the URL is a presigned GET, so the bucket can stay
  private. Needs the ``s3`` extra (boto3); credentials and endpoint come from boto3's usual
  configuration (``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``, profiles, ...).
- :class:`EmulatorUploader` for the local emulator (a stand-in for public storage).
- :class:`InlineUploader` sends small files inside the request as base64 ``data:`` URIs (as
  RunComfy's own ComfyUI nodes do), within RunComfy's caps: an image 6 MiB and 32 megapixels, a
  video 32 MiB, an audio clip 16 MiB, a whole request 64 MiB. Nothing is stored anywhere.

Anything with an ``upload(path, *, media=None) -> str`` method is an uploader. One may also have
``preflight(files, *, request_bytes)``, called with every file before any is uploaded, to refuse
the lot at once (``InlineUploader`` checks its caps there).
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from ._download import safe_name
from ._errors import ConfigurationError, UploadError
from ._media_files import (
    INLINE_CAPS,
    INLINE_MAX_MEGAPIXELS,
    INLINE_MAX_REQUEST,
    dimensions,
    mib,
    sniff_file,
)

if TYPE_CHECKING:
    from ._problem import LocalFile

__all__ = [
    "EmulatorUploader",
    "InlineUploader",
    "S3Uploader",
    "Uploader",
    "upload_target_from_env",
    "uploader_from_env",
    "uploader_from_uri",
]

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
            from ._extras import require_extra

            require_extra("s3", "uploading to S3")
            import boto3
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
                sniffed = sniff_file(path)
                content_type = (
                    sniffed.mime
                    if sniffed
                    else mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                )
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


_WAY_OUT = (
    "send it as a public URL instead: upload it to S3-compatible storage with "
    "--upload-to s3://BUCKET (or S3Uploader)"
)


class InlineUploader:
    """Sends a local file inside the request as a base64 ``data:`` URI (no storage needed).

    The MIME type is read from the file's content. A file over its kind's cap (``caps``; an
    image also over ``max_megapixels``), or files that would take the request over
    ``max_request_bytes``, are refused with :class:`UploadError` before anything is sent,
    naming the file, its size and the cap.
    """

    def __init__(
        self,
        *,
        caps: Mapping[str, int] = INLINE_CAPS,
        max_megapixels: float = INLINE_MAX_MEGAPIXELS,
        max_request_bytes: int = INLINE_MAX_REQUEST,
    ) -> None:
        self.caps = dict(caps)
        self.max_megapixels = max_megapixels
        self.max_request_bytes = max_request_bytes

    def __repr__(self) -> str:
        return "InlineUploader()"

    def _check_file(self, path: Path, media: str | None) -> tuple[str, int]:
        """The file's MIME type and size, or UploadError when it cannot go inline."""
        try:
            size = path.stat().st_size
            sniffed = sniff_file(path)
        except OSError as exc:
            raise UploadError(f"cannot read {path}: {exc.strerror}") from None
        if sniffed is None:
            raise UploadError(
                f"{path} is not an image, video or audio file the client recognises, so it "
                f"cannot be sent inline with a media type; {_WAY_OUT}"
            )
        kind = media if media in self.caps else sniffed.kind
        cap = self.caps.get(kind)
        if cap is not None and size > cap:
            raise UploadError(
                f"{path} is {mib(size)}; {kind}s sent inline are capped at {mib(cap)}: {_WAY_OUT}"
            )
        if sniffed.kind == "image" and self.max_megapixels:
            found = dimensions(path, "image")
            if isinstance(found, tuple) and found[0] * found[1] > self.max_megapixels * 1e6:
                width, height = found
                raise UploadError(
                    f"{path} is {width}x{height} ({width * height / 1e6:.1f} megapixels); images "
                    f"sent inline are capped at {self.max_megapixels:g} megapixels: {_WAY_OUT}"
                )
        return sniffed.mime, size

    def preflight(
        self, files: Sequence[tuple[Path, str | None]], *, request_bytes: int = 0
    ) -> None:
        """Refuse before anything is encoded: a file over its cap, or a request over the cap
        (``request_bytes`` is the size of the rest of the request)."""
        sizes = [(path, self._check_file(path, media)[1]) for path, media in files]
        encoded = sum(_encoded_size(size) for _, size in sizes)
        total = encoded + request_bytes
        if total > self.max_request_bytes:
            listed = ", ".join(f"{path} ({mib(size)})" for path, size in sizes)
            raise UploadError(
                f"sent inline, these files would make the request {mib(total)} ({listed}); a "
                f"request is capped at {mib(self.max_request_bytes)}: {_WAY_OUT} for the "
                "larger ones"
            )

    def upload(self, path: Path, *, media: str | None = None) -> str:
        mime, _ = self._check_file(path, media)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UploadError(f"cannot read {path}: {exc.strerror}") from None
        return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _encoded_size(size: int) -> int:
    return (size + 2) // 3 * 4 + 40  # base64, and room for "data:<type>;base64,"


def preflight_uploads(
    uploader: Uploader | None, files: Sequence[LocalFile], payload: Mapping[str, Any]
) -> None:
    """Let the uploader refuse the whole set of files before any is uploaded (if it can)."""
    check = getattr(uploader, "preflight", None)
    if not callable(check):
        return
    try:
        rest = len(json.dumps(payload, ensure_ascii=False).encode("utf-8"))
    except (TypeError, ValueError):  # pragma: no cover - validated payloads are JSON
        rest = 0
    check([(Path(local.path), local.media) for local in files], request_bytes=rest)


def uploader_from_uri(uri: str, *, base_url: str | None = None) -> Uploader:
    """An uploader from a short description (what ``--upload-to`` and RUNCOMFY_UPLOAD_TO take).

    - ``s3://BUCKET[/PREFIX][?expires=SECONDS&endpoint=URL&region=NAME]``
    - ``emulator``: the emulator at ``base_url`` (the client's API address).
    - ``inline``: no storage; files go inside the request as ``data:`` URIs (small files only).
    """
    text = uri.strip()
    if text == "inline":
        return InlineUploader()
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
        "URLs), 'inline' (small files as data: URIs) or 'emulator'"
    )


def upload_target_from_env() -> str | None:
    """Where RUNCOMFY_UPLOAD_TO says local files go (None when unset or blank).

    The one reader of that variable: ``Client()`` and every CLI command use it.
    """
    value = os.environ.get(UPLOAD_TO_ENV, "").strip()
    return value or None


def uploader_from_env(base_url: str | None = None) -> Uploader | None:
    """The uploader RUNCOMFY_UPLOAD_TO names, or None when it is not set."""
    target = upload_target_from_env()
    return None if target is None else uploader_from_uri(target, base_url=base_url)
