"""Pieces of the emulator's answers shared by its Model API and its Serverless API."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from aiohttp import web

__all__ = ["error_answer", "iso_time"]


def iso_time(ts: float | None) -> str | None:
    """A POSIX time as ISO 8601 UTC (``...Z``), as RunComfy writes times; None stays None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def error_answer(status: int, code: int, message: str, detail: Any = None) -> web.Response:
    """RunComfy's error body: ``{"error_code", "error_message", "detail"?}``."""
    body: dict[str, Any] = {"error_code": code, "error_message": message}
    if detail is not None:
        body["detail"] = detail
    return web.json_response(body, status=status)
