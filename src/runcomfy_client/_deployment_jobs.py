"""A deployment job's protocol, without I/O: the calls to make and how to read the answers.

The Serverless API queues a job per request (as RunComfy documents it):

- submit: ``POST /prod/v1/deployments/{id}/inference`` with ``{"overrides", "workflow_api_json"?,
  "extra_data"?}``, webhooks as ``?webhook=<url>&webhook_intermediate_status=true``; answers
  ``{request_id, status_url, result_url, cancel_url}``. Never resent once it may have arrived.
- status: ``GET .../requests/{rid}/status``: ``in_queue`` (+ ``queue_position``),
  ``in_progress`` (+ ``instance_id``), ``completed`` (also for a failed job: the result says
  which) or ``canceled``.
- result: ``GET .../requests/{rid}/result``: ``succeeded`` / ``failed`` / ``canceled``,
  ``outputs`` keyed by node id then channel (``images``, ``gifs``...), each item
  ``{filename, subfolder, type, url}``; ``error`` a list.
- cancel: ``POST .../requests/{rid}/cancel``: works on running jobs too.

Statuses are read by ``_types.parse_status`` (the one table: ``succeeded`` is ``completed``,
``canceled`` is ``cancelled``). The job lifecycle (waiting, deadlines, downloads) uses these
the way it uses the Model API's calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, urlencode

from ._protocol import Call

__all__ = ["OutputFile", "inference_call", "job_call", "output_files"]


def inference_call(
    base_url: str,
    deployment_id: str,
    *,
    overrides: Mapping[str, Any] | None = None,
    workflow_api_json: Mapping[str, Any] | None = None,
    extra_data: Mapping[str, Any] | None = None,
    webhook: str | None = None,
    webhook_intermediate_status: bool = False,
) -> Call:
    """The submit call: a job on ``deployment_id`` with these overrides (a submit: never resent
    once it may have reached the server)."""
    body: dict[str, Any] = {"overrides": dict(overrides or {})}
    if workflow_api_json is not None:
        body["workflow_api_json"] = dict(workflow_api_json)
    if extra_data is not None:
        body["extra_data"] = dict(extra_data)
    query = ""
    if webhook is not None:
        pairs = [("webhook", webhook)]
        if webhook_intermediate_status:
            pairs.append(("webhook_intermediate_status", "true"))
        query = "?" + urlencode(pairs)
    path = f"/prod/v1/deployments/{quote(deployment_id, safe='')}/inference{query}"
    return Call("POST", path, body, is_submit=True, base_url=base_url)


def job_call(
    base_url: str, deployment_id: str, request_id: str, verb: Literal["status", "result", "cancel"]
) -> Call:
    """A call about one job: its status, its result, or cancelling it. Each may be repeated
    (cancelling twice is harmless)."""
    path = (
        f"/prod/v1/deployments/{quote(deployment_id, safe='')}/requests/"
        f"{quote(request_id, safe='')}/{verb}"
    )
    method = "POST" if verb == "cancel" else "GET"
    return Call(method, path, request_id=request_id, base_url=base_url)


@dataclass(frozen=True)
class OutputFile:
    """One file a deployment's job wrote: which node, which channel, and where to fetch it."""

    node: str
    channel: str
    url: str
    filename: str | None = None
    subfolder: str | None = None
    type: str | None = None


def output_files(outputs: Any) -> tuple[OutputFile, ...]:
    """Every file in a result's ``outputs`` (node -> channel -> items), in the answer's order.

    Items without a URL (text, numbers some nodes report) are not files and are left out.
    """
    found: list[OutputFile] = []
    if not isinstance(outputs, Mapping):
        return ()
    for node, channels in outputs.items():
        if not isinstance(channels, Mapping):
            continue
        for channel, items in channels.items():
            for item in items if isinstance(items, list) else []:
                url = item.get("url") if isinstance(item, Mapping) else None
                if isinstance(url, str) and url.startswith(("https://", "http://")):
                    found.append(
                        OutputFile(
                            str(node),
                            str(channel),
                            url,
                            _text(item.get("filename")),
                            _text(item.get("subfolder")),
                            _text(item.get("type")),
                        )
                    )
    return tuple(found)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
