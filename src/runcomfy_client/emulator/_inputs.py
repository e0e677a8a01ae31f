"""Getting a job's media inputs as the service would: fetched, decoded, bounded.

- ``data:`` URIs (``data:image/png;base64,...``) are decoded, within a cap per kind of media
  (the caps RunComfy's own nodes keep to: images 6 MiB, videos 32 MiB, audio 16 MiB).
- The emulator's own uploads (``<base>/_emulator/uploads/...``) are read from its disk.
- Anything else must be an http(s) URL. Each fetch has a total time limit and a size cap, and
  follows at most five redirects. Hosts that resolve to private, loopback, link-local or other
  non-public addresses are refused unless the emulator was started with
  ``allow_private_inputs`` (``--allow-private-inputs``); the check is made on the very address
  connected to, so a name cannot resolve to a public address for the check and a private one
  for the fetch.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes, urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from ._failures import JobCannotRunError

__all__ = ["DATA_URI_CAPS", "FetchLimits", "InputFetcher", "is_public_address"]

MiB = 1024 * 1024
DATA_URI_CAPS = {"image": 6 * MiB, "mask": 6 * MiB, "video": 32 * MiB, "audio": 16 * MiB}
_REDIRECTS = 5


@dataclass(frozen=True)
class FetchLimits:
    timeout: float
    """Seconds one input may take in all (connect, redirects, body)."""
    max_bytes: int
    """The largest input fetched over http(s)."""
    allow_private: bool
    """Fetch from private, loopback and link-local addresses too (tests on one machine)."""


def is_public_address(host: str) -> bool:
    """Whether an IP address is one the public internet routes (not private, loopback, ...)."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


class _NonPublicAddressError(OSError):
    pass


class _PublicOnlyResolver(AbstractResolver):
    """Resolves names, keeping only public addresses: the addresses the fetch connects to."""

    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        public = [r for r in found if is_public_address(r["host"])]
        if not public:
            shown = ", ".join(sorted({r["host"] for r in found}))
            raise _NonPublicAddressError(f"{host} resolves to non-public addresses ({shown})")
        return public

    async def close(self) -> None:
        await self._inner.close()


def decode_data_uri(label: str, uri: str, kind: str) -> bytes:
    """The bytes of a ``data:`` URI, refused over the cap for ``kind`` before decoding."""
    head, comma, payload = uri.partition(",")
    if not comma:
        raise JobCannotRunError(f"input {label}: a data: URI needs a ',' before its data")
    cap = DATA_URI_CAPS.get(kind, DATA_URI_CAPS["video"])
    # Base64 grows data by 4/3, percent-encoding by up to 3x: refuse early either way.
    if len(payload) > cap * 4 // 3 + 4:
        raise JobCannotRunError(f"input {label}: inline {kind} is larger than {cap // MiB} MiB")
    try:
        if head.lower().endswith(";base64"):
            data = base64.b64decode("".join(payload.split()), validate=True)
        else:
            data = unquote_to_bytes(payload)
    except (binascii.Error, ValueError) as exc:
        raise JobCannotRunError(
            f"input {label}: the data: URI is not valid base64 ({exc})"
        ) from None
    if len(data) > cap:
        raise JobCannotRunError(f"input {label}: inline {kind} is larger than {cap // MiB} MiB")
    if not data:
        raise JobCannotRunError(f"input {label}: the data: URI is empty")
    return data


class InputFetcher:
    """Fetches media inputs for jobs; one connection pool for all of them."""

    def __init__(self, limits: FetchLimits, own_file: Callable[[str], Path | None]) -> None:
        """``own_file`` maps a URL of the emulator's own storage to its file (None for other
        URLs, KeyError for one of its own that holds nothing)."""
        self.limits = limits
        self._own_file = own_file
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        resolver = None if self.limits.allow_private else _PublicOnlyResolver()
        connector = aiohttp.TCPConnector(limit=64, resolver=resolver)
        self._session = aiohttp.ClientSession(connector=connector, trust_env=False)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def get(self, label: str, value: Any, kind: str) -> bytes:
        """The bytes of one input (``label`` names it in errors: ``images[2]``)."""
        if not isinstance(value, str) or not value.strip():
            raise JobCannotRunError(f"input {label}: {value!r} is not a URL")
        if value[:5].lower() == "data:":
            return decode_data_uri(label, value, kind)
        try:
            own = self._own_file(value)
        except KeyError:
            raise JobCannotRunError(
                f"cannot fetch input {label}: {value}: no such upload"
            ) from None
        if own is not None:
            return await asyncio.to_thread(own.read_bytes)
        try:
            return await asyncio.wait_for(self._fetch(label, value), self.limits.timeout)
        except asyncio.TimeoutError:
            raise JobCannotRunError(
                f"cannot fetch input {label}: {value} took longer than {self.limits.timeout:g}s"
            ) from None

    def _check_url(self, label: str, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise JobCannotRunError(f"cannot fetch input {label}: {url!r} is not an http(s) URL")
        host = parts.hostname
        literal = True
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            literal = False
        # Names are checked by the resolver; addresses written out never reach it.
        if literal and not self.limits.allow_private and not is_public_address(host):
            raise JobCannotRunError(self._private(label, url, host))

    @staticmethod
    def _private(label: str, url: str, where: str) -> str:
        return (
            f"cannot fetch input {label}: {url} is at a non-public address ({where}); the "
            "emulator fetches only public URLs unless started with --allow-private-inputs "
            "(Emulator(allow_private_inputs=True))"
        )

    async def _fetch(self, label: str, url: str) -> bytes:
        assert self._session is not None
        for _ in range(_REDIRECTS + 1):
            self._check_url(label, url)
            try:
                async with self._session.get(url, allow_redirects=False) as response:
                    if response.status in (301, 302, 303, 307, 308):
                        location = response.headers.get("Location")
                        if not location:
                            raise JobCannotRunError(
                                f"cannot fetch input {label}: {url} redirects nowhere"
                            )
                        url = urljoin(url, location)
                        continue
                    if response.status != 200:
                        raise JobCannotRunError(
                            f"cannot fetch input {label}: {url} answered HTTP {response.status}"
                        )
                    return await self._body(label, response)
            except aiohttp.ClientError as exc:
                cause = exc.__cause__
                if isinstance(cause, _NonPublicAddressError):
                    raise JobCannotRunError(self._private(label, url, str(cause))) from None
                raise JobCannotRunError(f"cannot fetch input {label}: {url}: {exc}") from None
        raise JobCannotRunError(f"cannot fetch input {label}: more than {_REDIRECTS} redirects")

    async def _body(self, label: str, response: aiohttp.ClientResponse) -> bytes:
        limit = self.limits.max_bytes
        declared = response.content_length
        if declared is not None and declared > limit:
            raise JobCannotRunError(f"input {label} is larger than {limit} bytes")
        chunks = []
        size = 0
        async for chunk in response.content.iter_chunked(1 << 16):
            size += len(chunk)
            if size > limit:
                raise JobCannotRunError(f"input {label} is larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
