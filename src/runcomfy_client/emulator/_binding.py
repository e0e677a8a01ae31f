"""Where the emulator may listen: loopback freely, anywhere else only with a key of its own.

The emulator is a test server: anyone who can reach it and knows its key can run jobs, store
files and read every output. Its default key is public (it is in the docs), so listening on
an address other machines can reach needs a key chosen for the occasion, and says so.
"""

from __future__ import annotations

import ipaddress
import socket

__all__ = ["PUBLIC_KEY", "exposure_warning", "is_loopback_host", "key_for"]

PUBLIC_KEY = "emulator-key"


def is_loopback_host(host: str) -> bool:
    """Whether every address ``host`` stands for is this machine's loopback."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0]).is_loopback
    except ValueError:
        pass
    if not host:
        return False  # every interface
    try:
        found = socket.getaddrinfo(host, None)
    except OSError:
        return False
    addresses = {str(info[4][0]).split("%", 1)[0] for info in found}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def key_for(host: str, api_key: str | None) -> str:
    """The key to accept: the public default on loopback; off loopback, the caller's own."""
    if is_loopback_host(host):
        return api_key or PUBLIC_KEY
    if not api_key or api_key == PUBLIC_KEY:
        raise ValueError(
            f"listening on {host or 'every interface'} makes the emulator reachable from other "
            "machines: give it a key of its own (--api-key, or Emulator(api_key=...)); the "
            f"default {PUBLIC_KEY!r} is public"
        )
    return api_key


def exposure_warning(where: str) -> str:
    return (
        f"the emulator listens on {where}, reachable from other machines; it is a test server: "
        "anyone with its key can run jobs, store files and read every output"
    )
