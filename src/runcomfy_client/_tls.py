"""One TLS context per process, shared by every client the package makes and the fast reader.

Loading the CA bundle costs ~25 ms of CPU: paid once, not by every ``Client()``. The context is
built by httpx (``httpx.create_ssl_context``: certifi, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``)
and kept per value of those two variables, so changing them still takes effect.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl

__all__ = ["shared_context"]

_lock = threading.Lock()
_contexts: dict[tuple[str | None, str | None], ssl.SSLContext] = {}


def shared_context() -> ssl.SSLContext:
    """The verifying client context for the environment's CA settings (made on first use)."""
    key = (os.environ.get("SSL_CERT_FILE") or None, os.environ.get("SSL_CERT_DIR") or None)
    with _lock:
        context = _contexts.get(key)
        if context is None:
            import httpx

            context = _contexts[key] = httpx.create_ssl_context()
        return context
