"""Where outputs may be downloaded from, and how much: checked on every hop of every download.

An output URL comes from the API's answer, so it is untrusted input: it could point at plain
http, at a cloud metadata address (169.254.169.254) or at a service on the user's network. The
rules, applied to the first URL and to every redirect:

- https only; plain http only to a loopback host when the client talks to a local emulator
  (its base URL is on loopback: the same rule as for the API itself);
- every address the host resolves to must be public, or loopback in emulator mode, unless
  ``allow_private=True``; the fast reader then connects to exactly the address it checked, so a
  DNS answer that changes between the check and the connection (rebinding) gains nothing;
- optionally, only hosts matching ``allowed_hosts`` (RunComfy's own CLI downloads only from
  ``*.runcomfy.net`` and ``*.runcomfy.com``: ``RUNCOMFY_OUTPUT_HOSTS``);
- no credentials in the URL, and query strings (presigned signatures) never shown in messages.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import SplitResult, quote, urlsplit
from urllib.request import (  # type: ignore[attr-defined]  # typeshed omits the second
    getproxies_environment,
    proxy_bypass_environment,
)

from ._errors import DownloadError
from ._protocol import is_loopback

__all__ = [
    "DEFAULT_MAX_BYTES",
    "RUNCOMFY_OUTPUT_HOSTS",
    "DownloadPolicy",
    "redact_url",
]

DEFAULT_MAX_BYTES = 2 * 1024**3  # RunComfy's own CLI caps a file at 2 GiB
RUNCOMFY_OUTPUT_HOSTS = ("*.runcomfy.net", "*.runcomfy.com")
_HOST_NAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})", re.ASCII)
Address = tuple[int, tuple[str, int]]  # (socket family, (ip, port)) as getaddrinfo gives it


@dataclass(frozen=True)
class DownloadPolicy:
    """How outputs are downloaded: size cap, redirects, and which hosts and addresses.

    ``max_bytes`` caps each file (default 2 GiB); ``max_redirects`` hops are followed (https
    only); ``allowed_hosts`` restricts the hosts (patterns like ``"*.runcomfy.net"``, which
    also matches ``runcomfy.net``; ``None`` allows any public host); ``allow_private`` lets
    downloads reach private, link-local and loopback addresses (a media server on your own
    network). ``fast=False`` always uses httpx instead of the built-in reader.
    """

    max_bytes: int = DEFAULT_MAX_BYTES
    max_redirects: int = 5
    allowed_hosts: tuple[str, ...] | None = None
    allow_private: bool = False
    fast: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.max_bytes, bool) or not isinstance(self.max_bytes, int):
            raise TypeError(f"max_bytes must be an int, not {type(self.max_bytes).__name__}")
        if self.max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, not {self.max_bytes}")
        if self.max_redirects < 0:
            raise ValueError(f"max_redirects must be 0 or more, not {self.max_redirects}")
        if self.allowed_hosts is not None:
            if isinstance(self.allowed_hosts, str):
                raise TypeError("allowed_hosts must be a sequence of host patterns, not a str")
            hosts = tuple(h.strip().lower().rstrip(".") for h in self.allowed_hosts)
            if not all(hosts):
                raise ValueError("allowed_hosts must not hold an empty pattern")
            object.__setattr__(self, "allowed_hosts", hosts)

    def with_max_bytes(self, max_bytes: int | None) -> DownloadPolicy:
        """This policy with another size cap (``None`` keeps this one)."""
        if max_bytes is None:
            return self
        from dataclasses import replace

        return replace(self, max_bytes=max_bytes)


def redact_url(url: str) -> str:
    """The URL without credentials, query or fragment: fit for messages and logs.

    Presigned URLs carry their signature in the query string; it is replaced by ``?...``.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<malformed URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    shown = f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme else parts.path
    if parts.query:
        shown += "?..."
    return _printable(shown[:300])


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)


def host_allowed(host: str, patterns: Iterable[str]) -> bool:
    """``host`` matches a pattern: exactly, or ``*.example.com`` for it and its subdomains."""
    host = host.lower().rstrip(".")
    for pattern in patterns:
        if pattern.startswith("*."):
            base = pattern[2:]
            if host == base or host.endswith("." + base):
                return True
        elif host == pattern:
            return True
    return False


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect, and how to name it in messages."""

    url: str
    shown: str
    scheme: str
    host: str
    port: int
    # A plain http URL may only reach loopback addresses.
    loopback_only: bool

    @property
    def request_target(self) -> str:
        parts = urlsplit(self.url)
        target = f"{parts.path or '/'}?{parts.query}" if parts.query else parts.path or "/"
        # Spaces, control and non-ASCII characters are escaped; escapes already there are kept.
        return quote(target, safe="!#$%&'()*+,/:;=?@[]~")


def check_url(url: str, policy: DownloadPolicy, *, local: bool) -> Target:
    """The URL as a :class:`Target`, or DownloadError saying which rule it breaks."""
    shown = redact_url(url)
    try:
        parts: SplitResult = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        raise DownloadError(f"{shown}: not a valid URL", url=shown) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not host:
        raise DownloadError(f"{shown}: not an http(s) URL; refused", url=shown)
    if not _valid_host(host):
        raise DownloadError(f"{shown}: {host!r} is not a valid host name; refused", url=shown)
    if parts.username is not None or parts.password is not None:
        raise DownloadError(f"{shown}: the URL carries credentials; refused", url=shown)
    loopback_name = is_loopback(host)
    if scheme == "http" and not (local and loopback_name):
        where = "a local emulator's loopback address" if local else "nothing (no emulator)"
        raise DownloadError(
            f"{shown}: plain http; outputs are fetched over https only (http is allowed "
            f"only to {where})",
            url=shown,
        )
    if policy.allowed_hosts is not None and not host_allowed(host, policy.allowed_hosts):
        raise DownloadError(
            f"{shown}: host {host} is not among the allowed download hosts "
            f"({', '.join(policy.allowed_hosts)})",
            url=shown,
        )
    default_port = 443 if scheme == "https" else 80
    return Target(url, shown, scheme, host, port or default_port, scheme == "http")


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=512)
def _parsed(text: str) -> IPAddress | None:
    """``text`` as an IP address (a zone ``%eth0`` dropped), else None. Cached: every file of
    every job checks the same few addresses, and parsing one is most of a check's cost."""
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


@lru_cache(maxsize=512)
def _standing(address: IPAddress) -> tuple[bool, bool, bool]:
    """(loopback, never fetchable (unspecified, multicast), global) for ``address``, whose
    properties ipaddress computes again on every read."""
    address = _unwrapped(address)
    never = address.is_unspecified or address.is_multicast
    return address.is_loopback, never, address.is_global


def _unwrapped(address: IPAddress) -> IPAddress:
    """::ffff:a.b.c.d is an IPv4 address in disguise; so are the 6to4 and Teredo forms."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return embedded
        if address.teredo is not None:
            return address.teredo[1]
    return address


def _valid_host(host: str) -> bool:
    if _parsed(host) is not None:
        return True
    try:
        name = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return _HOST_NAME.fullmatch(name) is not None


def _kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_unspecified:
        return "unspecified"
    if address.is_multicast:
        return "multicast"
    if address.is_private:
        return "private"
    return "non-public"


def check_address(ip: str, target: Target, policy: DownloadPolicy, *, local: bool) -> None:
    """DownloadError unless ``target`` may be fetched from ``ip``."""
    parsed = _parsed(ip)
    if parsed is None:
        raise DownloadError(
            f"{target.shown}: {target.host} resolved to {ip!r}, not an IP address", url=target.shown
        )
    loopback, never, is_global = _standing(parsed)
    if target.loopback_only:
        if loopback:
            return
        raise DownloadError(
            f"{target.shown}: {target.host} resolves to {_unwrapped(parsed)}, not loopback; "
            "plain http is allowed only to loopback",
            url=target.shown,
        )
    if never:
        allowed = False
    elif is_global or (local and loopback):
        allowed = True
    else:
        allowed = policy.allow_private
    if not allowed:
        address = _unwrapped(parsed)
        raise DownloadError(
            f"{target.shown}: {target.host} resolves to {address}, a {_kind(address)} address; "
            "refused (outputs come from public hosts; pass allow_private=True, or "
            "--allow-private-downloads, to fetch from your own network)",
            url=target.shown,
        )


def check_literal(target: Target, policy: DownloadPolicy, *, local: bool) -> None:
    """Check ``target`` without a lookup: an IP address in the URL, or a loopback name."""
    host = target.host.split("%", 1)[0]
    if _parsed(host) is None:
        if is_loopback(host):
            check_address("127.0.0.1", target, policy, local=local)
        return
    check_address(host, target, policy, local=local)


def addresses_of(infos: Iterable[tuple[Any, ...]]) -> list[Address]:
    """``(family, (ip, port))`` pairs from what ``getaddrinfo`` answered."""
    return [(int(info[0]), (str(info[4][0]), int(info[4][1]))) for info in infos]


def check_addresses(
    addresses: Sequence[Address], target: Target, policy: DownloadPolicy, *, local: bool
) -> list[Address]:
    """``addresses`` if every one may be fetched from (one bad address refuses the host)."""
    if not addresses:
        raise DownloadError(f"{target.shown}: {target.host} has no address", url=target.shown)
    for _, (ip, _) in addresses:
        check_address(ip, target, policy, local=local)
    return list(addresses)


def environment_proxies() -> dict[str, str]:
    """The proxies the environment names (``*_proxy`` variables), read once per client like
    httpx reads them once when its client is made."""
    return getproxies_environment()


def proxied(url: str, proxies: Mapping[str, str]) -> bool:
    """A proxy of ``proxies`` (from :func:`environment_proxies`) applies to ``url``."""
    if not proxies:
        return False
    parts = urlsplit(url)
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not proxy_bypass_environment(parts.hostname or "", dict(proxies))
