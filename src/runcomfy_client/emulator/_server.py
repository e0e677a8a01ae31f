"""The emulator's HTTP application: the Model API's endpoints, its job queue and its faults.

Endpoints (as documented by RunComfy for the Model API):

- ``POST /v1/models/{model_id}``: submit; ``GET /v1/models`` (the catalog: ``search``,
  ``category``, ``kind``, ``include_schema``, ``limit``, ``offset``), ``GET /v1/models/categories``,
  ``GET /v1/models/{model_id}``
- ``GET /v1/requests/{id}/status``, ``GET /v1/requests/{id}/result`` (``include_cost=true``
  adds the job's ``cost``), ``POST /v1/requests/{id}/cancel``

and the emulator's own, under ``/_emulator/``: ``stats``, ``reset``, ``uploads/{name}`` (PUT to
store a file, GET to fetch it: a stand-in for public storage) and ``files/{id}/{name}`` (the
outputs, with ``Content-Length`` and HTTP Range support).

Submits are checked by :mod:`._checks`, jobs run by :mod:`._produce`; the emulator shares no
schema reading, validation or protocol code with the client.

``queue_position`` counts the jobs ahead of this one: 0 means it runs next. The Serverless
API (ComfyUI deployments) is served on the same port, from ``_serverless``.
"""

from __future__ import annotations

import asyncio
import copy
import email.utils
import hashlib
import hmac
import json
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from ._answers import error_answer as _error
from ._answers import iso_time as _iso
from ._billing import Ledger, job_cost
from ._catalog import Catalog, HostedModel
from ._dialects import dialects_middleware
from ._failures import JobCannotRunError, ModelUnusableError
from ._faults import FaultPlan
from ._hold import STAGES, Holds
from ._inputs import FetchLimits, InputFetcher
from ._produce import Producer
from ._queue import QueueOrder
from ._serverless import ServerlessConfig, mount_serverless
from ._uploads import UploadStore, UploadTooLargeError, content_type, safe_name

__all__ = ["EmulatorConfig", "EmulatorState", "build_app"]

# The error codes RunComfy documents, and the emulator's own for schema failures.
BAD_MODEL = 400001
NO_BALANCE = 400002
BAD_TOKEN = 400004
PERMISSION = 403001
UNKNOWN_REQUEST = 404001
INVALID_INPUT = 422001  # not documented by RunComfy: the emulator's code for a schema failure
INTERNAL = 500001
JOB_FAILED = 500101

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# The most RunComfy's own nodes send in one request, inline media included.
MAX_BODY = 64 * 1024 * 1024
MAX_PAGE = 1000  # catalog records per page at most
TOP_UP = "top up your balance at https://www.runcomfy.com (Billing)"


@dataclass
class EmulatorConfig:
    """Settings of one emulator; see :class:`runcomfy_client.emulator.Emulator`."""

    api_key: str = "emulator-key"
    workers: int = 2
    job_seconds: float = 1.0
    request_ttl: float = 3600.0
    render: bool = True
    fetch_timeout: float = 10.0
    max_fetch_bytes: int = 50 * 1024 * 1024
    allow_private_inputs: bool = False
    max_upload_bytes: int = 100 * 1024 * 1024
    retry_after: float = 1.0
    slow_seconds: float = 2.0
    output_bytes: int | None = None
    schema_dirs: tuple[str, ...] = ()
    serverless: ServerlessConfig = field(default_factory=ServerlessConfig)
    answers: frozenset[str] = frozenset()  # answer switches (see _faults.ANSWER_SWITCHES)
    cancel_delay: float = 0.05  # with cancellation_requested: how long a cancel takes
    catalog_file: str | None = None  # a JSON list of records: the whole catalog
    balance: float | None = None  # USD; once spent, submits answer 402


@dataclass
class Job:
    request_id: str
    model_id: str
    payload: dict[str, Any]
    seq: int
    status: str = "in_queue"
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    output: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    files: dict[str, Path] = field(default_factory=dict)
    output_key: str = "video"
    cancel_requested: bool = False
    cost: float | None = None
    cancel_asked: asyncio.Event = field(default_factory=asyncio.Event)  # ends a held running job


class _DroppedError(Exception):
    """The connection was closed on purpose (drop / lost_response faults)."""


class EmulatorState:
    """Jobs, queue, counters and faults of one running emulator."""

    def __init__(self, config: EmulatorConfig, faults: FaultPlan, data_dir: Path) -> None:
        self.config = config
        self.faults = faults
        self.data_dir = data_dir
        self.catalog = Catalog(config.schema_dirs, catalog_file=config.catalog_file)
        self.ledger = Ledger(config.balance)
        self.uploads = UploadStore(data_dir / "uploads", config.max_upload_bytes)
        self.base_url = ""
        self.jobs: dict[str, Job] = {}
        self._queue: asyncio.Queue[str] | None = None
        self._queued = QueueOrder()
        self._seq = 0
        self._payloads: set[str] = set()
        limits = FetchLimits(
            config.fetch_timeout, config.max_fetch_bytes, config.allow_private_inputs
        )
        self.fetcher = InputFetcher(limits, self._own_upload)
        self.producer = Producer(
            self.fetcher, data_dir / "renders", real=config.render, output_bytes=config.output_bytes
        )
        self._tasks: list[asyncio.Task[None]] = []
        self.holds = Holds()
        self.reset_counters()

    def reset_counters(self) -> None:
        self.counters: dict[str, Any] = {
            "submissions": 0,
            "jobs": 0,
            "duplicate_payloads": 0,
            "requests": dict.fromkeys(
                ("submit", "status", "result", "cancel", "download", "models", "upload"), 0
            ),
            "faults": {},
            "states": {},
        }

    def stats(self) -> dict[str, Any]:
        states: dict[str, int] = {}
        for job in self.jobs.values():
            states[job.status] = states.get(job.status, 0) + 1
        snapshot = copy.deepcopy(self.counters)
        money = {"spent": round(self.ledger.spent, 6), "balance": self.ledger.balance}
        held = {"held": self.holds.held()}
        return {**snapshot, "states": states, "queued": len(self._queued), **money, **held}

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        # One connection pool for fetching inputs: a new one per job costs an SSL context each
        # time, which is most of a short job's CPU.
        await self.fetcher.start()
        self._queue = asyncio.Queue()
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self.config.workers)]
        self._tasks.append(asyncio.create_task(self._sweeper()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.fetcher.close()

    def _own_upload(self, url: str) -> Path | None:
        """The file behind a URL of this emulator's own upload store, read from disk: None for
        other URLs, KeyError for one of its own that holds nothing."""
        prefix = f"{self.base_url}/_emulator/uploads/"
        if not self.base_url or not url.startswith(prefix):
            return None
        found = self.uploads.find(url[len(prefix) :])
        if found is None:
            raise KeyError(url)
        return found

    # -- jobs --------------------------------------------------------------------------------

    def create(self, model_id: str, payload: dict[str, Any]) -> Job:
        assert self._queue is not None
        self._seq += 1
        job = Job(uuid.uuid4().hex, model_id, payload, self._seq)
        self.jobs[job.request_id] = job
        self.counters["jobs"] += 1
        digest = hashlib.sha256(
            json.dumps([model_id, payload], sort_keys=True, default=str).encode()
        ).hexdigest()
        if digest in self._payloads:
            self.counters["duplicate_payloads"] += 1
        self._payloads.add(digest)
        self._queued.add(job.seq)
        self._queue.put_nowait(job.request_id)
        return job

    def position(self, job: Job) -> int:
        return self._queued.position(job.seq)

    def _unqueue(self, job: Job) -> None:
        self._queued.remove(job.seq)

    def get(self, request_id: str) -> Job | None:
        job = self.jobs.get(request_id)
        if job is not None and self._expired(job):
            self.jobs.pop(request_id, None)
            return None
        return job

    def _expired(self, job: Job) -> bool:
        end = job.finished_at
        return end is not None and time.time() - end > self.config.request_ttl

    def cancel(self, job: Job) -> str:
        if "cancellation_requested" in self.config.answers:
            return self._request_cancel(job)
        if job.status == "in_queue":
            self._cancel_now(job)
            return "cancelled"
        return "not_cancellable"

    def _cancel_now(self, job: Job) -> None:
        job.status = "cancelled"
        job.finished_at = time.time()
        self._unqueue(job)

    def _request_cancel(self, job: Job) -> str:
        """Accept the cancel and end the job a moment later: queued at once, running on its end."""
        if job.status not in ("in_queue", "in_progress"):
            return "not_cancellable"
        job.cancel_requested = True
        job.cancel_asked.set()
        if job.status == "in_queue":

            def finish() -> None:
                if job.status == "in_queue":
                    self._cancel_now(job)

            asyncio.get_running_loop().call_later(self.config.cancel_delay, finish)
        return "cancellation_requested"

    async def _sweeper(self) -> None:
        while True:
            await asyncio.sleep(min(max(self.config.request_ttl / 4, 0.05), 30.0))
            for request_id in [r for r, j in self.jobs.items() if self._expired(j)]:
                self.jobs.pop(request_id, None)

    async def _worker(self) -> None:
        assert self._queue is not None
        while True:
            request_id = await self._queue.get()
            await self.holds.pass_("queued")
            job = self.jobs.get(request_id)
            if job is None or job.status != "in_queue":
                continue
            self._unqueue(job)
            job.status = "in_progress"
            job.started_at = time.time()
            try:
                model = self.catalog.get(job.model_id)
                produced = await self.producer.produce(model, job.payload)
                job.files, job.output_key = produced.files, produced.key
                left = self.config.job_seconds - (time.time() - job.started_at)
                if left > 0:
                    await asyncio.sleep(left)
                await self.holds.pass_("running", or_when=job.cancel_asked)
                if job.cancel_requested:
                    job.status = "cancelled"
                else:
                    job.output = self._output(job)
                    job.cost = job_cost(
                        model.record, files=len(job.files), seconds=produced.seconds
                    )
                    self.ledger.charge(job.cost)
                    job.status = "completed"
            except KeyError:  # withdrawn from the catalog while queued
                job.error = {"error_code": BAD_MODEL, "error_message": "the model was withdrawn"}
                job.status = "failed"
            except (JobCannotRunError, ModelUnusableError) as exc:
                job.error = {"error_code": JOB_FAILED, "error_message": str(exc)}
                job.status = "failed"
            except Exception as exc:  # noqa: BLE001 - a job's crash must not kill the worker
                job.error = {"error_code": INTERNAL, "error_message": f"render failed: {exc}"}
                job.status = "failed"
            job.finished_at = time.time()

    def _output(self, job: Job) -> dict[str, Any]:
        urls = [f"{self.base_url}/_emulator/files/{job.request_id}/{name}" for name in job.files]
        return {job.output_key: urls if job.output_key.endswith("s") else urls[0]}


def build_app(state: EmulatorState) -> web.Application:
    """The aiohttp application serving ``state``."""
    app = web.Application(
        client_max_size=MAX_BODY,
        middlewares=[_drop_middleware, dialects_middleware(lambda: state.config.answers)],
    )
    h = _Handlers(state)
    app.router.add_get("/v1/models", h.list_models)
    app.router.add_get("/v1/models/categories", h.categories)
    app.router.add_post("/v1/models/{model_id:.+}", h.submit)
    app.router.add_get("/v1/models/{model_id:.+}", h.one_model)
    app.router.add_get("/v1/requests/{request_id}/status", h.status)
    app.router.add_get("/v1/requests/{request_id}/result", h.result)
    app.router.add_post("/v1/requests/{request_id}/cancel", h.cancel)
    app.router.add_get("/_emulator/stats", h.stats)
    app.router.add_post("/_emulator/reset", h.reset)
    app.router.add_post("/_emulator/hold", h.hold)
    app.router.add_post("/_emulator/release", h.release)
    app.router.add_put("/_emulator/uploads/{name}", h.upload)
    app.router.add_post("/_emulator/uploads/{name}", h.upload)
    app.router.add_get("/_emulator/uploads/{name}", h.uploaded)
    app.router.add_get("/_emulator/files/{request_id}/{name}", h.download)
    mount_serverless(app, state, state.config.serverless)  # the Serverless API: its own module
    return app


class _Handlers:
    def __init__(self, state: EmulatorState) -> None:
        self.s = state

    # -- shared steps ------------------------------------------------------------------------

    def _count(self, endpoint: str) -> None:
        self.s.counters["requests"][endpoint] += 1

    def _hit(self, kind: str, endpoint: str) -> bool:
        hit = self.s.faults.hit(kind, endpoint)
        if hit:
            faults = self.s.counters["faults"]
            faults[kind] = faults.get(kind, 0) + 1
        return hit

    async def _faults(self, request: web.Request, endpoint: str) -> web.Response | None:
        """Apply the faults that act before the request is processed."""
        if not self.s.faults:
            return None
        outage = self._outage(request, endpoint)
        if outage is not None:
            return outage
        if self._hit("slow", endpoint):
            await asyncio.sleep(self.s.config.slow_seconds)
        if self._hit("drop", endpoint):
            _drop(request)
        if self._hit("rate_limit", endpoint):
            rng = self.s.faults.rng("rate_limit")
            wait = self.s.config.retry_after
            if rng.random() < 0.5:
                header = f"{wait:g}" if wait != int(wait) else str(int(wait))
            else:
                # HTTP-dates have whole seconds: round up so the wait is never shorter.
                header = email.utils.formatdate(math.ceil(time.time() + wait), usegmt=True)
            response = _error(429, 429001, "rate limit exceeded: slow down")
            response.headers["Retry-After"] = header
            return response
        if self._hit("server_error", endpoint):
            status = self.s.faults.rng("server_error").choice((500, 502, 503))
            return _error(status, INTERNAL, f"emulated server error {status}")
        if self._hit("error_200", endpoint):
            return _error(200, INTERNAL, "emulated internal error answered with HTTP 200")
        if self._hit("forbidden", endpoint):
            return _error(403, PERMISSION, "permission denied for this key")
        return None

    def _outage(self, request: web.Request, endpoint: str) -> web.Response | None:
        """In an outage window: a gateway's 5xx (no RunComfy error body) or a cut connection."""
        if not self._hit("outage", endpoint):
            return None
        rng = self.s.faults.rng("outage")
        if rng.random() < 0.5:
            _drop(request)
        status = rng.choice((502, 503, 504))
        return web.json_response({"message": f"emulated outage: HTTP {status}"}, status=status)

    def _auth(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _error(401, BAD_TOKEN, "missing API key: send 'Authorization: Bearer <key>'")
        if not hmac.compare_digest(token.strip().encode(), self.s.config.api_key.encode()):
            return _error(401, BAD_TOKEN, "invalid API key")
        return None

    async def _guard(self, request: web.Request, endpoint: str) -> web.Response | None:
        self._count(endpoint)
        return await self._faults(request, endpoint) or self._auth(request)

    def _job(self, request: web.Request) -> Job | web.Response:
        request_id = request.match_info["request_id"]
        job = self.s.get(request_id)
        if job is None:
            return _error(404, UNKNOWN_REQUEST, f"request {request_id} is unknown or has expired")
        return job

    def _urls(self, job: Job) -> dict[str, str]:
        base = f"{self.s.base_url}/v1/requests/{job.request_id}"
        return {
            "status_url": f"{base}/status",
            "result_url": f"{base}/result",
            "cancel_url": f"{base}/cancel",
        }

    # -- the API -----------------------------------------------------------------------------

    async def submit(self, request: web.Request) -> web.StreamResponse:
        self.s.counters["submissions"] += 1
        refused = await self._guard(request, "submit")
        if refused is not None:
            return refused
        model_id = request.match_info["model_id"]
        try:
            known = model_id in self.s.catalog
        except ModelUnusableError as exc:
            return _error(500, INTERNAL, f"the emulator cannot read its catalog: {exc}")
        if not known:
            return _error(400, BAD_MODEL, f"invalid model id: {model_id}")
        body = await _json_body(request)
        if isinstance(body, web.Response):
            return body
        try:
            model = self.s.catalog.get(model_id)
            if model.problem is not None:
                raise ModelUnusableError(model.problem)
            problems = model.checker.problems(body)
        except ModelUnusableError as exc:
            return _error(500, INTERNAL, f"the emulator cannot use {model_id}: {exc}")
        if problems:
            return _error(
                422, INVALID_INPUT, "input does not match the model's schema", detail=problems
            )
        if self.s.ledger.exhausted:
            spent = f"${self.s.ledger.spent:.2f} of ${self.s.ledger.balance or 0:.2f}"
            return _error(402, NO_BALANCE, f"insufficient balance ({spent} spent); {TOP_UP}")
        job = self.s.create(model_id, body)
        if self._hit("created_then_503", "submit"):
            return web.json_response({"message": "Service Unavailable"}, status=503)
        if self._hit("lost_response", "submit"):
            _drop(request)
        return web.json_response({"request_id": job.request_id, **self._urls(job)})

    async def status(self, request: web.Request) -> web.StreamResponse:
        refused = await self._guard(request, "status")
        if refused is not None:
            return refused
        job = self._job(request)
        if isinstance(job, web.Response):
            return job
        body: dict[str, Any] = {"request_id": job.request_id, "status": job.status}
        if job.status == "in_queue":
            body["queue_position"] = self.s.position(job)
        urls = self._urls(job)
        body["status_url"] = urls["status_url"]
        body["result_url"] = urls["result_url"]
        return web.json_response(body)

    async def result(self, request: web.Request) -> web.StreamResponse:
        refused = await self._guard(request, "result")
        if refused is not None:
            return refused
        job = self._job(request)
        if isinstance(job, web.Response):
            return job
        body: dict[str, Any] = {
            "request_id": job.request_id,
            "status": job.status,
            "output": job.output,
            "created_at": _iso(job.created_at),
            "finished_at": _iso(job.finished_at),
            "error": job.error,
        }
        if request.query.get("include_cost", "").lower() == "true":
            body["cost"] = job.cost
        return web.json_response(body)

    async def cancel(self, request: web.Request) -> web.StreamResponse:
        refused = await self._guard(request, "cancel")
        if refused is not None:
            return refused
        job = self._job(request)
        if isinstance(job, web.Response):
            return job
        outcome = self.s.cancel(job)
        return web.json_response(
            {"request_id": job.request_id, "status": job.status, "outcome": outcome}
        )

    async def list_models(self, request: web.Request) -> web.StreamResponse:
        self._count("models")
        refused = self._auth(request)
        if refused is not None:
            return refused
        query = request.query
        try:
            limit = int(query.get("limit", "50"))
            offset = int(query.get("offset", "0"))
        except ValueError:
            return _error(400, INVALID_INPUT, "limit and offset must be integers")
        if limit < 0 or offset < 0:
            return _error(400, INVALID_INPUT, "limit and offset must be 0 or more")
        try:
            models = [self.s.catalog.get(m) for m in self.s.catalog.model_ids()]
        except ModelUnusableError as exc:
            return _error(500, INTERNAL, f"the emulator cannot list its models: {exc}")
        search = query.get("search", "").strip().lower()
        if search:
            models = [m for m in models if search in _searchable(m)]
        category = query.get("category", "").strip().lower()
        if category:
            models = [m for m in models if category in _categories_of(m)]
        kind = query.get("kind", "").strip().lower()
        if kind:
            models = [m for m in models if str(m.record.get("kind", "")).lower() == kind]
        schemas = query.get("include_schema", "").lower() == "true"
        page = models[offset : offset + min(limit, MAX_PAGE)]
        return web.json_response(
            {"models": [self._record(m, schemas) for m in page], "total": len(models)}
        )

    def _record(self, model: HostedModel, with_schema: bool) -> dict[str, Any]:
        record = dict(model.record)
        if with_schema:
            record["input_schema"] = model.published
        return record

    async def categories(self, request: web.Request) -> web.StreamResponse:
        self._count("models")
        refused = self._auth(request)
        if refused is not None:
            return refused
        found: dict[str, None] = {}
        try:
            for model_id in self.s.catalog.model_ids():
                for name in self.s.catalog.get(model_id).record.get("categories", []):
                    found.setdefault(str(name), None)
        except ModelUnusableError as exc:
            return _error(500, INTERNAL, f"the emulator cannot list its models: {exc}")
        return web.json_response({"categories": sorted(found)})

    async def one_model(self, request: web.Request) -> web.StreamResponse:
        self._count("models")
        refused = self._auth(request)
        if refused is not None:
            return refused
        model_id = request.match_info["model_id"]
        try:
            if model_id not in self.s.catalog:
                return _error(400, BAD_MODEL, f"invalid model id: {model_id}")
            model = self.s.catalog.get(model_id)
        except ModelUnusableError as exc:
            return _error(500, INTERNAL, f"the emulator cannot use {model_id}: {exc}")
        return web.json_response(
            {**self._record(model, True), "output_schema": {"output": model.output_schema}}
        )

    # -- the emulator's own ------------------------------------------------------------------

    async def stats(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.s.stats())

    async def reset(self, request: web.Request) -> web.StreamResponse:
        self.s.reset_counters()
        return web.json_response(self.s.stats())

    async def hold(self, request: web.Request) -> web.StreamResponse:
        """``{"stages": ["queued", "running"]}`` (both when no body): jobs stay where they are."""
        return await self._gate(request, self.s.holds.hold)

    async def release(self, request: web.Request) -> web.StreamResponse:
        return await self._gate(request, self.s.holds.release)

    async def _gate(
        self, request: web.Request, change: Callable[[Iterable[str]], None]
    ) -> web.StreamResponse:
        body = await request.read()
        try:
            stages = json.loads(body)["stages"] if body.strip() else list(STAGES)
            if not isinstance(stages, list):
                raise TypeError("stages must be a list")
            change([str(stage) for stage in stages])
        except (ValueError, TypeError, KeyError) as exc:
            named = " and ".join(STAGES)
            return _error(400, 400001, f'send {{"stages": [...]}} with {named}: {exc}')
        return web.json_response({"held": self.s.holds.held()})

    async def upload(self, request: web.Request) -> web.StreamResponse:
        self._count("upload")
        store = self.s.uploads
        if (request.content_length or 0) > store.max_bytes:
            return _error(413, 413001, f"an upload may hold at most {store.max_bytes} bytes")
        try:
            saved = await store.save(
                request.match_info["name"], request.content.iter_chunked(1 << 20)
            )
        except UploadTooLargeError as exc:
            return _error(413, 413001, str(exc))
        url = f"{self.s.base_url}/_emulator/uploads/{saved.ref}"
        return web.json_response({"url": url, "size": saved.size}, status=201)

    async def uploaded(self, request: web.Request) -> web.StreamResponse:
        path = self.s.uploads.find(request.match_info["name"])
        if path is None:
            return _error(404, 404002, "no such upload")
        with path.open("rb") as f:
            head = f.read(16)
        # Served as what it is and as a download, never as a page of the emulator's origin.
        headers = {
            "Content-Type": content_type(head),
            "Content-Disposition": f'attachment; filename="{safe_name(path.name)}"',
            "X-Content-Type-Options": "nosniff",
        }
        return web.FileResponse(path, headers=headers)

    async def download(self, request: web.Request) -> web.StreamResponse:
        self._count("download")
        if self.s.faults:
            outage = self._outage(request, "download")
            if outage is not None:
                return outage
        job = self._job(request)
        if isinstance(job, web.Response):
            return job
        path = job.files.get(request.match_info["name"])
        if path is None or not path.is_file():
            return _error(404, 404002, "no such output file")
        if self.s.faults and self._hit("truncate", "download"):
            return await _truncated(request, path)
        return web.FileResponse(path, headers={"Cache-Control": "no-store"})


async def request_faults(
    state: EmulatorState, request: web.Request, endpoint: str
) -> web.Response | None:
    """The faults that act before a request is processed, for the Serverless API's handlers
    (the same plan, counters and answers as the Model API's)."""
    return await _Handlers(state)._faults(request, endpoint)


def fault_hit(state: EmulatorState, kind: str, endpoint: str) -> bool:
    """Whether fault ``kind`` hits this request to ``endpoint`` (counted when it does)."""
    return _Handlers(state)._hit(kind, endpoint)


def drop_connection(request: web.Request) -> None:
    """Close the connection without an answer (a fault that loses the answer)."""
    _drop(request)


def _searchable(model: HostedModel) -> str:
    name = model.record.get("display_name")
    return f"{model.model_id} {name if isinstance(name, str) else ''}".lower()


def _categories_of(model: HostedModel) -> list[str]:
    found = model.record.get("categories")
    return [str(c).lower() for c in found] if isinstance(found, list) else []


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


async def _json_body(request: web.Request) -> Any:
    """The submitted JSON, or the error to answer: too large, not JSON, NaN, too deep."""
    try:
        text = await request.text()
    except web.HTTPRequestEntityTooLarge:
        return _error(413, INVALID_INPUT, f"request body is larger than {MAX_BODY} bytes")
    except UnicodeDecodeError as exc:
        return _error(400, INVALID_INPUT, f"request body is not UTF-8 text: {exc}")
    try:
        return json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        return _error(400, INVALID_INPUT, f"request body is not JSON: {exc}")


@web.middleware
async def _drop_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except _DroppedError:
        # The transport is already aborted: nothing reaches the client, by design.
        return web.Response(status=204)


def _drop(request: web.Request) -> None:
    """Close the connection without an answer."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise _DroppedError


async def _truncated(request: web.Request, path: Path) -> web.StreamResponse:
    """Promise the whole file (or range), send about half of it, then cut the connection."""
    size = path.stat().st_size
    start, end = 0, size - 1
    status = 200
    rng = request.http_range
    if rng.start is not None or rng.stop is not None:
        start = rng.start or 0
        if start < 0:
            start = max(size + start, 0)
        end = (rng.stop - 1) if rng.stop is not None else size - 1
        status = 206
    length = end - start + 1
    response = web.StreamResponse(status=status)
    response.content_length = length
    response.content_type = "video/mp4" if path.suffix == ".mp4" else "application/octet-stream"
    response.headers["Accept-Ranges"] = "bytes"
    if status == 206:
        response.headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    await response.prepare(request)
    with path.open("rb") as f:
        f.seek(start)
        # Strictly less than promised, so the cut is always a real truncation.
        await response.write(f.read(length // 2))
    await asyncio.sleep(0.01)  # let the half leave before the cut
    _drop(request)
    return response  # pragma: no cover - _drop raises
