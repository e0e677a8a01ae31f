"""The emulator's Serverless API: ComfyUI deployments, their job queue and their webhooks.

Endpoints (as RunComfy documents them), on the same port as the Model API:

- ``GET/POST /prod/v2/deployments``, ``GET/PATCH/DELETE /prod/v2/deployments/{id}``
  (``?ids=..&includes=payload&includes=readme``; a PATCH must carry ``name``; a list answers a
  bare JSON array, as the real API does)
- ``POST /prod/v{1,2}/deployments/{id}/inference`` (``?webhook=..&webhook_intermediate_status=``,
  or the same two fields in the body), ``GET .../requests/{rid}/status``, ``.../result``,
  ``POST .../requests/{rid}/cancel`` (queued and running jobs alike)

and the emulator's own: ``/_emulator/serverless/object_info/{workflow}/{version}`` (the
``object_info_url`` of a deployment), ``/_emulator/serverless/files/{rid}/{name}`` (outputs),
``/_emulator/serverless/stats``.

Overrides are checked with the emulator's own reading of the workflow (``_workflows``), never
with the client's. Outputs are rendered by kind from the workflow's output nodes: SaveImage
writes a PNG under ``images``, a video combiner an MP4 under ``gifs``. Webhooks are delivered
in order with retries; the faults ``webhook_duplicate``, ``webhook_reorder`` and
``webhook_drop`` send an event twice, hold it back behind the next one, or never send it.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
from aiohttp import web

from ._answers import error_answer as _error
from ._answers import iso_time as _iso
from ._failures import JobCannotRunError
from ._media import VideoSpec, decode_image, render_placeholder_image, render_video
from ._queue import QueueOrder
from ._workflows import (
    OutputNode,
    apply_overrides,
    check_overrides,
    check_workflow,
    media_inputs,
    number_input,
    output_nodes,
)

if TYPE_CHECKING:
    from ._server import EmulatorState

__all__ = ["ServedDeployment", "ServerlessConfig", "mount_serverless", "parse_deployment_spec"]

UNAUTHORIZED = 401001
FORBIDDEN = 403003
NOT_FOUND = 404001
INVALID = 422001
INTERNAL = 500001
DISABLED = 10002
DELETED = 10003
_NAMESPACE = uuid.UUID("5b0f2d7e-64b1-4d8a-9d47-0f1d2c3b4a59")  # stable ids for served names
_STATE_KEY = web.AppKey("runcomfy_serverless", object)


@dataclass(frozen=True)
class ServedDeployment:
    """A workflow the emulator serves as a deployment named ``name`` from the start."""

    name: str
    workflow: Any
    object_info: Any
    overrides: Mapping[str, Any] | None = None
    readme: str | None = None

    @property
    def deployment_id(self) -> str:
        return str(uuid.uuid5(_NAMESPACE, f"deployment:{self.name}"))

    @property
    def workflow_id(self) -> str:
        return str(uuid.uuid5(_NAMESPACE, f"workflow:{self.name}"))


def parse_deployment_spec(spec: str) -> ServedDeployment:
    """``NAME=workflow_api.json:object_info.json`` (the CLI's ``--deployment``), files read."""
    name, sep, files = spec.partition("=")
    split = _split_paths(files)
    if not sep or not name.strip() or split is None:
        raise ValueError(
            f"--deployment {spec!r} must look like NAME=workflow_api.json:object_info.json"
        )
    loaded = []
    for path in split:
        try:
            loaded.append(json.loads(Path(path).expanduser().read_text(encoding="utf-8")))
        except OSError as exc:
            raise ValueError(f"--deployment {name}: cannot read {path}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"--deployment {name}: {path} is not JSON: {exc}") from None
    problems = check_workflow(loaded[0])
    if problems:
        raise ValueError(f"--deployment {name}: {split[0]}: {problems[0]['msg']}")
    if not isinstance(loaded[1], dict):
        raise ValueError(f"--deployment {name}: {split[1]} is not an object_info object")
    return ServedDeployment(name.strip(), loaded[0], loaded[1])


def _split_paths(files: str) -> tuple[str, str] | None:
    # The separator is the first ':' that is not a Windows drive's ("C:\\..." or "C:/...").
    for i, char in enumerate(files):
        if char != ":":
            continue
        starts_path = i == 1 or (i >= 2 and files[i - 2] == ":")
        drive = starts_path and files[i - 1].isalpha() and files[i + 1 : i + 2] in ("\\", "/")
        if not drive:
            first, second = files[:i], files[i + 1 :]
            return (first, second) if first and second else None
    return None


@dataclass
class ServerlessConfig:
    deployments: tuple[ServedDeployment, ...] = ()
    webhook_attempts: int = 8
    webhook_backoff: float = 0.5
    webhook_timeout: float = 10.0


@dataclass
class _Workflow:
    workflow: dict[str, Any]
    object_info: dict[str, Any]
    overrides: dict[str, Any]


@dataclass
class _Deployment:
    id: str
    name: str
    workflow_id: str
    workflow_version: str
    hardware: list[str]
    min_instances: int = 0
    max_instances: int = 1
    queue_size: int = 1
    keep_warm_duration_in_seconds: int = 60
    is_enabled: bool = True
    readme: str = ""
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    deleted: bool = False


@dataclass
class _Job:
    request_id: str
    deployment_id: str
    workflow: dict[str, Any]
    object_info: dict[str, Any]
    seq: int
    webhook: str | None
    intermediate: bool
    status: str = "in_queue"
    instance_id: str | None = None
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    outputs: dict[str, Any] | None = None
    error: list[dict[str, Any]] | None = None
    files: dict[str, Path] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None
    deliveries: asyncio.Task[None] | None = None
    held: list[dict[str, Any]] = field(default_factory=list)


def _problem(loc: list[Any], msg: str) -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": "value_error"}


class Serverless:
    """Deployments, jobs and webhook deliveries of one emulator."""

    def __init__(self, state: EmulatorState, config: ServerlessConfig) -> None:
        self.s = state
        self.config = config
        self.workflows: dict[tuple[str, str], _Workflow] = {}
        self.deployments: dict[str, _Deployment] = {}
        self.jobs: dict[str, _Job] = {}
        self._queue: asyncio.Queue[str] | None = None
        self._queued = QueueOrder()
        self._seq = 0
        self._http: httpx.AsyncClient | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.counters: dict[str, int] = dict.fromkeys(
            (
                "submissions",
                "webhook_events",
                "webhook_attempts",
                "webhook_delivered",
                "webhook_failed",
                "webhook_duplicated",
                "webhook_reordered",
                "webhook_dropped",
            ),
            0,
        )
        for served in config.deployments:
            self.serve(served)

    def serve(self, served: ServedDeployment) -> _Deployment:
        key = (served.workflow_id, "v1")
        self.workflows[key] = _Workflow(
            dict(served.workflow), dict(served.object_info), dict(served.overrides or {})
        )
        deployment = _Deployment(
            served.deployment_id,
            served.name,
            served.workflow_id,
            "v1",
            ["AMPERE_48"],
            readme=served.readme or f"# {served.name}\n\nServed by the runcomfy-client emulator.\n",
        )
        self.deployments[deployment.id] = deployment
        return deployment

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._http = httpx.AsyncClient(timeout=self.config.webhook_timeout, follow_redirects=True)
        self._queue = asyncio.Queue()
        workers = max(1, self.s.config.workers)
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(workers)]

    async def stop(self) -> None:
        pending = [t for t in self._tasks]
        pending += [j.task for j in self.jobs.values() if j.task is not None]
        pending += [j.deliveries for j in self.jobs.values() if j.deliveries is not None]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()

    def stats(self) -> dict[str, Any]:
        states: dict[str, int] = {}
        for job in self.jobs.values():
            states[job.status] = states.get(job.status, 0) + 1
        return {**self.counters, "states": states, "deployments": len(self.live())}

    def live(self) -> list[_Deployment]:
        return [d for d in self.deployments.values() if not d.deleted]

    # -- records -----------------------------------------------------------------------------

    def record(self, d: _Deployment, includes: Iterable[str]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": d.id,
            "name": d.name,
            "workflow_id": d.workflow_id,
            "workflow_version": d.workflow_version,
            "hardware": list(d.hardware),
            "min_instances": d.min_instances,
            "max_instances": d.max_instances,
            "queue_size": d.queue_size,
            "keep_warm_duration_in_seconds": d.keep_warm_duration_in_seconds,
            "status": "standby" if d.is_enabled else "disabled",
            "is_enabled": d.is_enabled,
            "created_at": _iso(d.created_at),
            "updated_at": _iso(d.updated_at),
        }
        wanted = set(includes)
        if "payload" in wanted:
            flow = self.workflows[(d.workflow_id, d.workflow_version)]
            url = (
                f"{self.s.base_url}/_emulator/serverless/object_info/"
                f"{quote(d.workflow_id)}/{quote(d.workflow_version)}"
            )
            body["payload"] = {
                "workflow_api_json": flow.workflow,
                "overrides": flow.overrides,
                "object_info_url": url,
            }
        if "readme" in wanted:
            body["readme"] = d.readme
        return body

    # -- jobs --------------------------------------------------------------------------------

    def create_job(
        self, d: _Deployment, workflow: dict[str, Any], webhook: str | None, intermediate: bool
    ) -> _Job:
        assert self._queue is not None
        self._seq += 1
        flow = self.workflows[(d.workflow_id, d.workflow_version)]
        job = _Job(
            uuid.uuid4().hex, d.id, workflow, flow.object_info, self._seq, webhook, intermediate
        )
        self.jobs[job.request_id] = job
        self._queued.add(job.seq)
        self._queue.put_nowait(job.request_id)
        self.emit(job, intermediate_only=True)
        return job

    def position(self, job: _Job) -> int:
        return self._queued.position(job.seq)

    def _unqueue(self, job: _Job) -> None:
        self._queued.remove(job.seq)

    def get(self, request_id: str) -> _Job | None:
        job = self.jobs.get(request_id)
        ended = job.finished_at if job is not None else None
        if ended is not None and time.time() - ended > self.s.config.request_ttl:
            self.jobs.pop(request_id, None)  # results are deleted after a while (7 days)
            return None
        return job

    def cancel(self, job: _Job) -> str:
        if job.status == "in_queue":
            self._unqueue(job)
        elif job.status == "in_progress" and job.task is not None:
            job.task.cancel()  # the worker sees the cancelled task and records it
        else:
            return "not_cancellable"
        self._finish(job, "canceled")
        return "cancellation_requested"

    def _finish(self, job: _Job, status: str) -> None:
        if job.finished_at is not None:
            return
        job.status = status
        job.finished_at = time.time()
        self.emit(job)

    async def _worker(self) -> None:
        assert self._queue is not None
        while True:
            request_id = await self._queue.get()
            await self.s.holds.pass_("queued")
            job = self.jobs.get(request_id)
            if job is None or job.status != "in_queue":
                continue
            self._unqueue(job)
            job.status = "in_progress"
            job.instance_id = f"instance-{uuid.uuid4().hex[:8]}"
            self.emit(job, intermediate_only=True)
            job.task = asyncio.create_task(self._run(job))
            await asyncio.wait({job.task})  # a cancelled job must not stop the worker

    async def _run(self, job: _Job) -> None:
        started = time.time()
        try:
            job.files = await self._produce(job)
            left = self.s.config.job_seconds - (time.time() - started)
            if left > 0:
                await asyncio.sleep(left)
            await self.s.holds.pass_("running")
        except asyncio.CancelledError:
            return  # cancel() already recorded the job as canceled
        except _CannotRunError as exc:
            job.error = [{"errorCode": INTERNAL, "error": str(exc), "debugInfo": ""}]
            self._finish(job, "failed")
            return
        except Exception as exc:  # noqa: BLE001 - a job's crash must not kill the worker
            job.error = [{"errorCode": INTERNAL, "error": f"render failed: {exc}", "debugInfo": ""}]
            self._finish(job, "failed")
            return
        job.outputs = self._outputs(job)
        self._finish(job, "succeeded")

    def _outputs(self, job: _Job) -> dict[str, Any]:
        outputs: dict[str, Any] = {}
        for node in output_nodes(job.workflow):
            name = _file_name(node)
            if name not in job.files:
                continue
            item: dict[str, Any] = {
                "filename": name.split("_", 1)[1],
                "subfolder": "",
                "type": "output",
                "url": f"{self.s.base_url}/_emulator/serverless/files/{job.request_id}/{name}",
            }
            if node.kind == "video":
                item["format"] = "video/h264-mp4"
            outputs.setdefault(node.node_id, {})[node.channel] = [item]
        return outputs

    async def _produce(self, job: _Job) -> dict[str, Path]:
        nodes = output_nodes(job.workflow)
        if not nodes:
            raise _CannotRunError(
                "the workflow has no output node (SaveImage, VHS_VideoCombine...)"
            )
        images = [await self._fetch(value) for value in media_inputs(job.workflow, job.object_info)]
        folder = self.s.data_dir / "serverless" / job.request_id
        folder.mkdir(parents=True, exist_ok=True)
        return await asyncio.to_thread(self._render, job, nodes, images, folder)

    def _render(
        self, job: _Job, nodes: list[Any], inputs: list[bytes], folder: Path
    ) -> dict[str, Path]:
        try:
            images = [decode_image(data) for data in inputs]
        except ValueError as exc:
            raise _CannotRunError(f"input image cannot be used: {exc}") from None
        width = number_input(job.workflow, ("width",)) or 512
        height = number_input(job.workflow, ("height",)) or 512
        frames = number_input(job.workflow, ("length", "frame_count", "num_frames")) or 16
        fps = number_input(job.workflow, ("frame_rate", "fps")) or 16
        if not self.s.config.render:
            width, height, frames, fps = 64, 64, 4, 8
        # Capped so that a big workflow still renders in about a second.
        spec = VideoSpec(min(width, 1280), min(height, 1280), min(frames, 49), min(fps, 60))
        files: dict[str, Path] = {}
        for node in nodes:
            name = _file_name(node)
            if node.kind == "image":
                size = max(64, min(max(width, height), 1024)) if self.s.config.render else 64
                files[name] = render_placeholder_image(images, folder / name, size)
            else:
                style = "camera" if images else "gradient"
                files[name] = render_video(images, spec, folder / name, style=style)
        return files

    async def _fetch(self, value: str) -> bytes:
        # The Model API's fetcher: public addresses only, time and size limits, data: caps.
        try:
            return await self.s.fetcher.get("image", value, "image")
        except JobCannotRunError as exc:
            raise _CannotRunError(str(exc)) from None

    # -- webhooks ----------------------------------------------------------------------------

    def event(self, job: _Job) -> dict[str, Any]:
        body: dict[str, Any] = {
            "request_id": job.request_id,
            "deployment_id": job.deployment_id,
            "status": job.status,
            "created_at": _iso(job.created_at),
        }
        if job.finished_at is not None:
            body["finished_at"] = _iso(job.finished_at)
            # The docs spell the final cancel event "cancelled"; results say "canceled".
            if job.status == "canceled":
                body["status"] = "cancelled"
        if job.outputs is not None:
            body["outputs"] = job.outputs
        if job.error is not None:
            body["error"] = job.error
        return body

    def emit(self, job: _Job, *, intermediate_only: bool = False) -> None:
        """Queue this job's current state for its webhook, behind its earlier events."""
        if job.webhook is None or (intermediate_only and not job.intermediate):
            return
        body = self.event(job)
        self.counters["webhook_events"] += 1
        faults = self.s.faults
        batch = [body]
        if faults and self._fault("webhook_drop"):
            self.counters["webhook_dropped"] += 1
            batch = []
        elif faults and self._fault("webhook_duplicate"):
            self.counters["webhook_duplicated"] += 1
            batch.append(body)
        final = job.finished_at is not None
        if batch and faults and not final and self._fault("webhook_reorder"):
            self.counters["webhook_reordered"] += 1
            job.held.extend(batch)  # sent after the job's next event instead
            return
        batch += job.held
        job.held = []
        if batch:
            previous = job.deliveries
            job.deliveries = asyncio.create_task(self._deliver(previous, job.webhook, batch))

    def _fault(self, kind: str) -> bool:
        hit = self.s.faults.hit(kind, "webhook")
        if hit:
            counted = self.s.counters["faults"]
            counted[kind] = counted.get(kind, 0) + 1
        return hit

    async def _deliver(
        self, previous: asyncio.Task[None] | None, url: str, bodies: list[dict[str, Any]]
    ) -> None:
        if previous is not None:
            await asyncio.wait({previous})
        assert self._http is not None
        for body in bodies:
            delay = self.config.webhook_backoff
            for attempt in range(1, self.config.webhook_attempts + 1):
                self.counters["webhook_attempts"] += 1
                try:
                    response = await self._http.post(url, json=body)
                    if 200 <= response.status_code < 300:
                        self.counters["webhook_delivered"] += 1
                        break
                except httpx.HTTPError:
                    pass
                if attempt == self.config.webhook_attempts:
                    self.counters["webhook_failed"] += 1
                    break
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)


class _CannotRunError(Exception):
    """The job cannot run; its message becomes the job's error."""


def _file_name(node: OutputNode) -> str:
    """An output's stored name: node id, then what ComfyUI would call the file."""
    return f"{node.node_id}_{'ComfyUI_00001_.png' if node.kind == 'image' else 'video_00001.mp4'}"


# -- HTTP ----------------------------------------------------------------------------------------


class _Handlers:
    def __init__(self, serverless: Serverless) -> None:
        self.x = serverless

    async def _faults(self, request: web.Request, endpoint: str) -> web.Response | None:
        """The emulator's faults (``--fault KIND:deployment_status=...``) before the request is
        processed: the Model API's, on the Serverless endpoints."""
        if not self.x.s.faults:
            return None
        from ._server import request_faults

        return await request_faults(self.x.s, request, endpoint)

    def _auth(self, request: web.Request) -> web.Response | None:
        import hmac

        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        expected = self.x.s.config.api_key.encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
            return _error(401, UNAUTHORIZED, "Unauthorized: missing or invalid API token")
        return None

    def _deployment(self, request: web.Request) -> _Deployment | web.Response:
        """The deployment the path names, after checking the key (or the error answer)."""
        refused = self._auth(request)
        if refused:
            return refused
        deployment_id = request.match_info["deployment_id"]
        d = self.x.deployments.get(deployment_id)
        if d is None or d.deleted:
            return _error(404, NOT_FOUND, f"deployment {deployment_id} not found")
        return d

    async def _body(self, request: web.Request) -> Any:
        """The request's JSON (or the error answer, a web.Response)."""
        try:
            return await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(422, INVALID, "request body is not JSON")

    # -- deployments -------------------------------------------------------------------------

    async def list(self, request: web.Request) -> web.StreamResponse:
        refused = self._auth(request)
        if refused:
            return refused
        ids = set(request.query.getall("ids", []))
        includes = request.query.getall("includes", [])
        found = [d for d in self.x.live() if not ids or d.id in ids]
        return web.json_response([self.x.record(d, includes) for d in found])

    async def get(self, request: web.Request) -> web.StreamResponse:
        d = self._deployment(request)
        if isinstance(d, web.Response):
            return d
        return web.json_response(self.x.record(d, request.query.getall("includes", [])))

    async def create(self, request: web.Request) -> web.StreamResponse:
        refused = self._auth(request)
        if refused:
            return refused
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        problems = _check_settings(body, creating=True)
        if not problems:
            key = (body["workflow_id"], body["workflow_version"])
            if key not in self.x.workflows:
                problems.append(
                    _problem(
                        ["body", "workflow_version"],
                        f"workflow {key[0]} has no version {key[1]!r}",
                    )
                )
        if problems:
            return _error(422, INVALID, "Validation Error", detail=problems)
        d = _Deployment(
            str(uuid.uuid4()),
            body["name"],
            body["workflow_id"],
            body["workflow_version"],
            list(body["hardware"]),
        )
        _update(d, body)
        self.x.deployments[d.id] = d
        return web.json_response(self.x.record(d, ()))

    async def update(self, request: web.Request) -> web.StreamResponse:
        d = self._deployment(request)
        if isinstance(d, web.Response):
            return d
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        problems = _check_settings(body, creating=False)
        version = body.get("workflow_version", d.workflow_version) if not problems else None
        if version is not None and (d.workflow_id, version) not in self.x.workflows:
            problems.append(
                _problem(["body", "workflow_version"], "no such version of the workflow")
            )
        if problems:
            return _error(422, INVALID, "Validation Error", detail=problems)
        _update(d, body)
        d.updated_at = time.time()
        return web.json_response(self.x.record(d, ()))

    async def delete(self, request: web.Request) -> web.StreamResponse:
        d = self._deployment(request)
        if isinstance(d, web.Response):
            return d
        d.deleted = True
        return web.json_response({"id": d.id, "name": d.name, "status": "deleted"})

    async def object_info(self, request: web.Request) -> web.StreamResponse:
        key = (request.match_info["workflow_id"], request.match_info["version"])
        flow = self.x.workflows.get(key)
        if flow is None:
            return _error(404, NOT_FOUND, "no such workflow version")
        return web.json_response(flow.object_info)

    # -- the queue ---------------------------------------------------------------------------

    async def inference(self, request: web.Request) -> web.StreamResponse:
        self.x.counters["submissions"] += 1
        refused = await self._faults(request, "deployment_submit") or self._auth(request)
        if refused:
            return refused
        deployment_id = request.match_info["deployment_id"]
        d = self.x.deployments.get(deployment_id)
        if d is None:
            return _error(404, NOT_FOUND, f"deployment {deployment_id} not found")
        if d.deleted:
            return _error(404, DELETED, f"deployment {deployment_id} was deleted")
        if not d.is_enabled:
            return _error(403, DISABLED, f"deployment {d.name} is disabled; enable it first")
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        if not isinstance(body, dict):
            return _error(422, INVALID, "Validation Error", [_problem(["body"], "not an object")])
        flow = self.x.workflows[(d.workflow_id, d.workflow_version)]
        workflow = flow.workflow
        problems: list[dict[str, Any]] = []
        if "workflow_api_json" in body:
            problems = check_workflow(body["workflow_api_json"])
            if not problems:
                workflow = body["workflow_api_json"]
        elif "overrides" not in body:
            problems = [_problem(["body", "overrides"], "overrides is required")]
        overrides = body.get("overrides", {})
        if not problems:
            problems = check_overrides(workflow, flow.object_info, overrides)
        webhook = request.query.get("webhook") or body.get("webhook")
        flag = request.query.get(
            "webhook_intermediate_status", body.get("webhook_intermediate_status")
        )
        if webhook is not None and (
            not isinstance(webhook, str) or not webhook.startswith(("http://", "https://"))
        ):
            problems.append(_problem(["query", "webhook"], "webhook must be an http(s) URL"))
        if problems:
            return _error(422, INVALID, "Validation Error", detail=problems)
        intermediate = flag in (True, "true", "True", "1")
        job = self.x.create_job(d, apply_overrides(workflow, overrides), webhook, intermediate)
        if self.x.s.faults:
            from ._server import drop_connection, fault_hit

            # The job exists and will run: a client that sends again pays twice.
            if fault_hit(self.x.s, "created_then_503", "deployment_submit"):
                return _error(503, INTERNAL, "Service Unavailable")
            if fault_hit(self.x.s, "lost_response", "deployment_submit"):
                drop_connection(request)
        return web.json_response({"request_id": job.request_id, **self._urls(request, job)})

    def _urls(self, request: web.Request, job: _Job) -> dict[str, str]:
        version = request.match_info.get("version", "v1")
        base = (
            f"{self.x.s.base_url}/prod/{version}/deployments/{job.deployment_id}/requests/"
            f"{job.request_id}"
        )
        return {
            "status_url": f"{base}/status",
            "result_url": f"{base}/result",
            "cancel_url": f"{base}/cancel",
        }

    async def _job(self, request: web.Request, endpoint: str) -> _Job | web.Response:
        refused = await self._faults(request, endpoint) or self._auth(request)
        if refused:
            return refused
        request_id = request.match_info["request_id"]
        job = self.x.get(request_id)
        if job is None or job.deployment_id != request.match_info["deployment_id"]:
            return _error(404, NOT_FOUND, f"request {request_id} not found")
        return job

    async def status(self, request: web.Request) -> web.StreamResponse:
        job = await self._job(request, "deployment_status")
        if isinstance(job, web.Response):
            return job
        shown = {"succeeded": "completed", "failed": "completed"}.get(job.status, job.status)
        body: dict[str, Any] = {"request_id": job.request_id, "status": shown}
        if job.status == "in_queue":
            body["queue_position"] = self.x.position(job)
        if job.instance_id is not None:
            body["instance_id"] = job.instance_id
        urls = self._urls(request, job)
        body["status_url"], body["result_url"] = urls["status_url"], urls["result_url"]
        return web.json_response(body)

    async def result(self, request: web.Request) -> web.StreamResponse:
        job = await self._job(request, "deployment_result")
        if isinstance(job, web.Response):
            return job
        body: dict[str, Any] = {
            "request_id": job.request_id,
            "status": job.status,
            "created_at": _iso(job.created_at),
            "finished_at": _iso(job.finished_at),
            "outputs": job.outputs,
        }
        if job.error is not None:
            body["error"] = job.error
        return web.json_response(body)

    async def cancel(self, request: web.Request) -> web.StreamResponse:
        job = await self._job(request, "deployment_cancel")
        if isinstance(job, web.Response):
            return job
        outcome = self.x.cancel(job)
        return web.json_response({"request_id": job.request_id, "status": outcome})

    async def download(self, request: web.Request) -> web.StreamResponse:
        job = self.x.get(request.match_info["request_id"])
        path = job.files.get(request.match_info["name"]) if job is not None else None
        if path is None or not path.is_file():
            return _error(404, NOT_FOUND, "no such output file")
        return web.FileResponse(path, headers={"Cache-Control": "no-store"})

    async def stats(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.x.stats())


_SETTINGS: dict[str, tuple[type, int | None]] = {
    "min_instances": (int, 0),
    "max_instances": (int, 1),
    "queue_size": (int, 0),
    "keep_warm_duration_in_seconds": (int, 0),
}


def _check_settings(body: Any, *, creating: bool) -> list[dict[str, Any]]:
    """The deployment fields' own rules, as the docs list them."""
    if not isinstance(body, dict):
        return [_problem(["body"], "must be a JSON object")]
    problems = []
    allowed = {"name", "workflow_id", "workflow_version", "hardware", "is_enabled", *_SETTINGS}
    if not creating:
        allowed.discard("workflow_id")
    for key in body:
        if key not in allowed:
            problems.append(_problem(["body", key], "unknown field"))
    required = ["name", "workflow_id", "workflow_version", "hardware"] if creating else ["name"]
    if creating:
        required += list(_SETTINGS)
    for key in required:
        if key not in body:
            problems.append(
                _problem(
                    ["body", key],
                    "field required"
                    if creating or key != "name"
                    else "Deployment name is required",
                )
            )
    for key in ("name", "workflow_id", "workflow_version"):
        if key in body and (not isinstance(body[key], str) or not body[key].strip()):
            problems.append(_problem(["body", key], "must be a non-empty string"))
    if "hardware" in body:
        hardware = body["hardware"]
        if not isinstance(hardware, list) or len(hardware) != 1 or not isinstance(hardware[0], str):
            problems.append(_problem(["body", "hardware"], "must list exactly one hardware SKU"))
    for key, (_, low) in _SETTINGS.items():
        value = body.get(key)
        if key in body and (
            not isinstance(value, int) or isinstance(value, bool) or value < (low or 0)
        ):
            problems.append(_problem(["body", key], f"must be an integer >= {low}"))
    if "is_enabled" in body and not isinstance(body["is_enabled"], bool):
        problems.append(_problem(["body", "is_enabled"], "must be true or false"))
    low, high = body.get("min_instances"), body.get("max_instances")
    if isinstance(low, int) and isinstance(high, int) and low > high:
        problems.append(_problem(["body", "max_instances"], "must be >= min_instances"))
    return problems


def _update(d: _Deployment, body: Mapping[str, Any]) -> None:
    for key in ("name", "workflow_version", "is_enabled", *_SETTINGS):
        if key in body:
            setattr(d, key, body[key])
    if "hardware" in body:
        d.hardware = list(body["hardware"])


def mount_serverless(app: web.Application, state: EmulatorState, config: ServerlessConfig) -> None:
    """Add the Serverless endpoints to the emulator's application (started with it)."""
    serverless = Serverless(state, config)
    app[_STATE_KEY] = serverless
    h = _Handlers(serverless)
    base = "/prod/v2/deployments"
    app.router.add_get(base, h.list)
    app.router.add_post(base, h.create)
    app.router.add_get(base + "/{deployment_id}", h.get)
    app.router.add_patch(base + "/{deployment_id}", h.update)
    app.router.add_delete(base + "/{deployment_id}", h.delete)
    queue = "/prod/{version:v[12]}/deployments/{deployment_id}"
    app.router.add_post(queue + "/inference", h.inference)
    app.router.add_get(queue + "/requests/{request_id}/status", h.status)
    app.router.add_get(queue + "/requests/{request_id}/result", h.result)
    app.router.add_post(queue + "/requests/{request_id}/cancel", h.cancel)
    own = "/_emulator/serverless"
    app.router.add_get(own + "/object_info/{workflow_id}/{version}", h.object_info)
    app.router.add_get(own + "/files/{request_id}/{name}", h.download)
    app.router.add_get(own + "/stats", h.stats)

    async def start(_app: web.Application) -> None:
        await serverless.start()

    async def stop(_app: web.Application) -> None:
        await serverless.stop()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
