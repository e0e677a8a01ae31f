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
``canceled`` is ``cancelled``), except that a status's ``completed`` is only :class:`Ended`:
the job's result says whether it succeeded. The job lifecycle (waiting, deadlines, retries,
downloads) runs these calls and readers the way it runs the Model API's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, TypedDict
from urllib.parse import quote, urlencode

from ._protocol import Call
from ._types import (
    CancelOutcome,
    Ended,
    ErrorInfo,
    HandleData,
    JobStatus,
    Output,
    OutputFile,
    Result,
    normalise_status,
    parse_status,
)

if TYPE_CHECKING:
    from ._core import ClientCore, Inputs
    from ._errors import ConfigurationError
    from ._flow import Flow
    from ._lifecycle import JobRoutes
    from ._registry import ModelSchema

__all__ = [
    "DeploymentJobs",
    "DeploymentRequest",
    "DeploymentTarget",
    "OutputFile",
    "comfy_output",
    "deployment_id_of",
    "inference_call",
    "job_call",
    "output_files",
    "read_cancel",
    "read_result",
    "read_status",
    "routes_for",
    "submit",
    "target_for",
]

# Channels ComfyUI's video nodes write to (VHS_VideoCombine says "gifs" for an MP4 too).
_VIDEO_CHANNELS = frozenset({"gifs", "videos", "video"})
_VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".gif")


def inference_call(
    base_url: str,
    deployment_id: str,
    *,
    overrides: Mapping[str, Any] | None = None,
    workflow_api_json: Mapping[str, Any] | None = None,
    extra_data: Mapping[str, Any] | None = None,
    webhook: str | None = None,
    webhook_intermediate_status: bool = False,
    model_id: str | None = None,
) -> Call:
    """The submit call: a job on ``deployment_id`` with these overrides (a submit: never resent
    once it may have reached the server). ``model_id`` names it in messages and polling's
    memory (a derived schema's ``deployments/NAME``)."""
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
    return Call(
        "POST",
        path,
        body,
        is_submit=True,
        base_url=base_url,
        kind="submit",
        model_id=model_id or f"deployment {deployment_id}",
    )


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
    return Call(method, path, request_id=request_id, base_url=base_url, kind=verb)


@dataclass(frozen=True)
class DeploymentJobs:
    """Where the jobs of one deployment are asked about: its status, result and cancel calls."""

    base_url: str
    deployment_id: str

    def status_call(self, request_id: str) -> Call:
        return job_call(self.base_url, self.deployment_id, request_id, "status")

    def result_call(self, request_id: str) -> Call:
        return job_call(self.base_url, self.deployment_id, request_id, "result")

    def cancel_call(self, request_id: str) -> Call:
        return job_call(self.base_url, self.deployment_id, request_id, "cancel")


def deployment_id_of(model: ModelSchema) -> str | None:
    """The deployment a derived schema runs on (its sidecar names it), else None."""
    info = model.info
    binding = info.deployment if info is not None else None
    found = binding.get("deployment_id") if binding is not None else None
    return found.strip() if isinstance(found, str) and found.strip() else None


# -- reading the answers --------------------------------------------------------------------------


def read_status(body: Mapping[str, Any], request_id: str) -> JobStatus:
    """A status answer by the one table; ``completed`` is :class:`Ended` (the Serverless API
    says it for failed jobs too: the result tells)."""
    status = parse_status(body, request_id)
    if status.status == "completed":
        return Ended(status.request_id, "completed", status.raw)
    return status


def read_result(body: Mapping[str, Any], request_id: str) -> Result:
    """A result answer: the status by the one table, the node-keyed outputs as files."""
    output = comfy_output(body.get("outputs"))
    error = ErrorInfo.from_body(body.get("error"))
    text = body.get("status")
    status: str | None = normalise_status(text)
    if status is None:
        # A word this client does not know: outputs mean it completed, an error that it failed.
        if output.files:
            status = "completed"
        elif error is not None:
            status = "failed"
        else:
            status = text[:100] if isinstance(text, str) else ""
    base = Result.from_body({k: v for k, v in body.items() if k != "output"}, request_id)
    return replace(base, status=status, output=output, error=error)


def read_cancel(body: Mapping[str, Any], request_id: str) -> CancelOutcome:
    """A cancel's answer: a job that had already ended refuses it; anything else is followed
    until the job says how it ended (a running job's cancel takes a moment)."""
    text = body.get("status", body.get("outcome"))
    word = text.strip().lower() if isinstance(text, str) else None
    if word in ("not_cancellable", "not_cancelable"):
        return CancelOutcome(request_id, "not_cancellable", None)
    state = normalise_status(word)
    if state in ("completed", "failed"):
        return CancelOutcome(request_id, "not_cancellable", state)
    return CancelOutcome.from_body(body, request_id)


def comfy_output(outputs: Any) -> Output:
    """A job's ``outputs`` (node -> channel -> items) as an :class:`Output`: every file with its
    node and channel, videos and images also in their own lists."""
    files = output_files(outputs)
    videos = tuple(f.url for f in files if _is_video(f))
    images = tuple(f.url for f in files if f.channel == "images" and not _is_video(f))
    raw = dict(outputs) if isinstance(outputs, Mapping) else {}
    return Output(videos=videos, images=images, raw=raw, files=files)


def _is_video(f: OutputFile) -> bool:
    name = (f.filename or f.url.split("?", 1)[0]).lower()
    return f.channel in _VIDEO_CHANNELS or name.endswith(_VIDEO_SUFFIXES)


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


# -- what a submit sends ---------------------------------------------------------------------


def merge_overrides(
    compiled: Mapping[str, Any], raw: Mapping[str, Any] | None, label: str
) -> dict[str, Any]:
    """``compiled`` (from schema inputs) and ``raw`` overrides as one object; the same node input
    given two different values is an InputValidationError naming it (nothing is sent)."""
    from ._errors import InputValidationError
    from ._validation import Problem

    merged: dict[str, Any] = {
        node: {**dict(entry), "inputs": dict(entry.get("inputs", {}))}
        for node, entry in compiled.items()
    }
    problems: list[Problem] = []
    for node, entry in (raw or {}).items():
        if not isinstance(entry, Mapping) or not isinstance(entry.get("inputs", {}), Mapping):
            problems.append(
                Problem(
                    "invalid",
                    'an override is {"<node id>": {"inputs": {"<input>": value}}}',
                    key=f"overrides.{node}",
                    value=entry,
                )
            )
            continue
        target = merged.setdefault(str(node), {"inputs": {}})
        for key, value in entry.items():
            if key != "inputs":
                target[key] = value
        for name, value in entry.get("inputs", {}).items():
            inputs = target["inputs"]
            if name in inputs and inputs[name] != value:
                problems.append(
                    Problem(
                        "duplicate",
                        f"node {node} input {name!r} is set by the inputs to {inputs[name]!r} and "
                        f"by overrides to {value!r}: give it once",
                        key=f"overrides.{node}.inputs.{name}",
                        value=value,
                    )
                )
                continue
            inputs[name] = value
    if problems:
        raise InputValidationError(label, problems)
    return merged


def compiled_overrides(model: ModelSchema, payload: Mapping[str, Any]) -> dict[str, Any]:
    """A validated payload of a derived schema as the overrides it stands for."""
    from ._overrides import compile_overrides

    return dict(compile_overrides(model, payload)["overrides"])


# -- whose job it is: a deployment, and the schema derived for it ------------------------------

DEPLOYMENT_PREFIX = "deployments/"


@dataclass(frozen=True)
class DeploymentTarget:
    """A deployment to run jobs on, with the schema derived for it when there is one.

    Its jobs are named ``deployments/NAME`` (a derived schema's model id) or, without a schema,
    ``deployments/<deployment id>``: the name that re-attaching and the CLI's job verbs take.
    """

    base_url: str
    deployment_id: str
    model: ModelSchema | None = None
    model_id: str = ""
    """The name its jobs go by: one that leads back to this deployment (see :func:`_target`)."""

    @property
    def routes(self) -> JobRoutes:
        from ._lifecycle import JobRoutes

        jobs = DeploymentJobs(self.base_url, self.deployment_id)
        return JobRoutes(
            status_call=jobs.status_call,
            result_call=jobs.result_call,
            cancel_call=jobs.cancel_call,
            read_status=read_status,
            read_result=read_result,
            read_cancel=read_cancel,
        )


def _target(
    core: ClientCore[Any], deployment_id: str, model: ModelSchema | None
) -> DeploymentTarget:
    """A target whose job name leads back to it: ``deployments/NAME`` when the registry's
    schema of that name is bound to this deployment, else ``deployments/<deployment id>``."""
    name = model.model_id if model is not None else ""
    known = (
        _usable(core, name)
        if name.startswith(DEPLOYMENT_PREFIX) and name in core.registry
        else None
    )
    if known is None or deployment_id_of(known) != deployment_id:
        name = DEPLOYMENT_PREFIX + deployment_id
    return DeploymentTarget(core.serverless_base_url, deployment_id, model, name)


def _unbound(model_id: str) -> ConfigurationError:
    from ._errors import ConfigurationError

    return ConfigurationError(
        f"{model_id} is a schema derived from a workflow but names no deployment to run on: "
        f"derive it from the deployment (`runcomfy-client schema derive DEPLOYMENT_ID`) and "
        f"keep it in a schema folder of the client (RUNCOMFY_SCHEMA_PATH), or run it with "
        f"client.deployment(DEPLOYMENT_ID).run(inputs)"
    )


def target_for(core: ClientCore[Any], model: str | ModelSchema | None) -> DeploymentTarget | None:
    """The deployment a model id or schema runs on; None for a Model API model.

    ``deployments/NAME`` is a derived schema in the registry (its sidecar names the deployment),
    else NAME is taken as a deployment id (raw overrides, no schema).
    """
    from ._errors import UnknownModelError
    from ._registry import ModelSchema

    if isinstance(model, ModelSchema):
        found = deployment_id_of(model)
        if found is None and model.model_id.startswith(DEPLOYMENT_PREFIX):
            # A typed wrapper's schema carries no sidecar: the registry's copy names the
            # deployment (its schema folder is RUNCOMFY_SCHEMA_PATH or the client's).
            known = _usable(core, model.model_id) if model.model_id in core.registry else None
            found = deployment_id_of(known) if known is not None else None
            if found is None:
                raise _unbound(model.model_id)
        if found is not None:
            return _target(core, found, model)
        if model.info is not None and model.info.kind == "deployment":
            raise _unbound(model.model_id)
        return None
    if model is None or not model.startswith(DEPLOYMENT_PREFIX):
        return None
    try:
        schema = core.registry.get(model)
    except UnknownModelError:
        name = model[len(DEPLOYMENT_PREFIX) :].strip()
        if not name or "/" in name:
            raise
        return _target(core, name, None)
    found = deployment_id_of(schema)
    if found is None:
        raise _unbound(schema.model_id)
    return _target(core, found, schema)


def find_target(core: ClientCore[Any], deployment: str | ModelSchema) -> DeploymentTarget:
    """``client.deployment(X)``'s target: a derived schema (or its model id), or a deployment
    id, with the derived schema bound to that id when the registry has one."""
    if isinstance(deployment, str) and not deployment.startswith(DEPLOYMENT_PREFIX):
        deployment_id = deployment.strip()
        if not deployment_id or "/" in deployment_id:
            raise ValueError(f"a deployment id is a non-empty id without '/', not {deployment!r}")
        for model_id in core.registry.model_ids():
            if model_id.startswith(DEPLOYMENT_PREFIX):
                schema = _usable(core, model_id)
                if schema is not None and deployment_id_of(schema) == deployment_id:
                    return _target(core, deployment_id, schema)
        return _target(core, deployment_id, None)
    target = target_for(core, deployment)
    if target is None:
        label = deployment.model_id if not isinstance(deployment, str) else deployment
        raise ValueError(f"{label} is a Model API model, not a deployment: use client.submit()")
    return target


def _usable(core: ClientCore[Any], model_id: str) -> ModelSchema | None:
    from ._errors import SchemaError

    try:
        return core.registry.get(model_id)
    except SchemaError:  # a broken schema elsewhere must not stop this one
        return None


def routes_for(core: ClientCore[Any], model_id: str | None) -> JobRoutes:
    """Where a job of ``model_id`` is asked about: a deployment's paths, else the Model API's."""
    from ._lifecycle import MODEL_API

    target = target_for(core, model_id)
    return MODEL_API if target is None else target.routes


class DeploymentRequest(TypedDict, total=False):
    """What a deployment's submit may carry besides the schema's inputs."""

    overrides: Mapping[str, Any] | None
    """Raw overrides, ``{"<node id>": {"inputs": {"<input>": value}}}``, merged with the inputs'
    (the same node input given two different values is refused)."""
    workflow_api_json: Mapping[str, Any] | None
    """A whole workflow (API format) to run instead of the deployed one."""
    extra_data: Mapping[str, Any] | None
    webhook: str | None
    """An http(s) URL RunComfy POSTs the job's events to (``webhooks`` receives them)."""
    webhook_intermediate_status: bool
    """Also POST ``in_queue`` and ``in_progress`` events, not only the final one."""


def submit(
    core: ClientCore[Any],
    target: DeploymentTarget,
    inputs: Inputs | None,
    request: DeploymentRequest,
) -> Flow[HandleData]:
    """Validate the inputs by the derived schema (local files uploaded, with an uploader),
    compile them into overrides, merge the raw ones, and submit once (never resent)."""
    from ._errors import InputValidationError
    from ._lifecycle import prepared, send
    from ._validation import Problem

    compiled: dict[str, Any] = {}
    if inputs is not None:
        typed = getattr(type(inputs), "runcomfy_model", None)  # a generated Input knows its schema
        if target.model is None and typed is not None:
            target = replace(target, model=typed.schema)  # its job name stays the deployment's
        if target.model is None:
            raise ValueError(
                f"deployment {target.deployment_id} has no derived schema to read inputs by: "
                "give overrides= (node id -> inputs), or derive one with `runcomfy-client "
                f"schema derive {target.deployment_id}`"
            )
        payload = yield from prepared(core, target.model, inputs)
        compiled = compiled_overrides(target.model, payload)
    overrides = merge_overrides(compiled, request.get("overrides"), target.model_id)
    webhook = request.get("webhook")
    if webhook is not None and (
        not isinstance(webhook, str) or not webhook.startswith(("https://", "http://"))
    ):
        raise InputValidationError(
            target.model_id,
            [Problem("invalid", "a webhook is an http(s) URL", key="webhook", value=webhook)],
        )
    call = inference_call(
        target.base_url,
        target.deployment_id,
        overrides=overrides,
        workflow_api_json=request.get("workflow_api_json"),
        extra_data=request.get("extra_data"),
        webhook=webhook,
        webhook_intermediate_status=bool(request.get("webhook_intermediate_status")),
        model_id=target.model_id,
    )
    return HandleData.from_submit((yield from send(core, call)), call)
