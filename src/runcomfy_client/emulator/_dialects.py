"""The emulator's answer switches: the other spellings and shapes of RunComfy's answers.

RunComfy's documented answers are the emulator's default. Its services and its own clients are
known to use others too: ``succeeded`` for completed, ``canceled``,
success bodies that carry ``"error_code": null``, errors whose ``detail`` is a list. Each switch
(see :data:`._faults.ANSWER_SWITCHES`) rewrites the JSON answers on their way out, so the
handlers keep one way of answering. ``cancellation_requested`` changes behaviour, not
spelling, and lives in the job queue.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

__all__ = ["dialects_middleware", "restyle"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _detail(status: int, body: dict[str, Any]) -> list[dict[str, Any]]:
    code = body.get("error_code")
    if status == 401:
        loc = ["header", "Authorization"]
    elif code == 404001:
        loc = ["path", "request_id"]
    elif code == 400001:
        loc = ["path", "model_id"]
    else:
        loc = ["body"]
    return [{"loc": loc, "msg": str(body.get("error_message", "")), "type": f"error.{code}"}]


def restyle(path: str, status: int, body: Any, switches: frozenset[str]) -> Any:
    """``body`` as the switches in force would have the API answer it."""
    if not isinstance(body, dict) or not path.startswith("/v1/"):
        return body
    body = dict(body)
    if status >= 400:
        if "detail_lists" in switches and "error_code" in body and "detail" not in body:
            body["detail"] = _detail(status, body)
        return body
    if "error_code" in body:  # an error answered with HTTP 200: left as it is
        return body
    if path.startswith("/v1/requests/"):
        if "succeeded" in switches and body.get("status") == "completed":
            body["status"] = "succeeded"
        if "canceled" in switches:
            for key in ("status", "outcome"):
                if body.get(key) == "cancelled":
                    body[key] = "canceled"
    if "null_errors" in switches:
        body.setdefault("error_code", None)
        body.setdefault("error_message", None)
    return body


def dialects_middleware(switches: Callable[[], frozenset[str]]) -> Any:
    """An aiohttp middleware applying :func:`restyle` with the switches in force now."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        chosen = switches()
        if (
            not chosen
            or not isinstance(response, web.Response)
            or response.content_type != "application/json"
            or not isinstance(response.body, bytes)
        ):
            return response
        body = json.loads(response.body)
        styled = restyle(request.path, response.status, body, chosen)
        if styled == body:
            return response
        headers = {
            k: v for k, v in response.headers.items() if k not in ("Content-Type", "Content-Length")
        }
        return web.json_response(styled, status=response.status, headers=headers)

    return middleware
