"""Run the emulator: in a background thread of the caller's process, or in the foreground."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from ._binding import exposure_warning, is_loopback_host, key_for
from ._faults import Fault, FaultPlan, check_answers
from ._hold import STAGES
from ._server import EmulatorConfig, EmulatorState, build_app
from ._serverless import ServedDeployment, ServerlessConfig, parse_deployment_spec

__all__ = ["Emulator"]


class Emulator:
    """A real HTTP server speaking the RunComfy Model API, on a free port of this machine.

    >>> with Emulator(job_seconds=0.5) as emu:          # doctest: +SKIP
    ...     client = Client(base_url=emu.base_url, api_key=emu.api_key)

    :meth:`hold` and :meth:`release` decide when jobs move (``POST /_emulator/hold`` and
    ``/_emulator/release`` over HTTP): a held job stays queued or running until released.

    ``faults`` takes :class:`Fault` objects or specs such as ``"rate_limit=0.1"`` and
    ``"server_error:status=@1,2"``; ``seed`` makes their choices repeatable. ``render=False``
    swaps the real rendering for tiny stand-in files, for load tests.

    Models come from ``schema_dirs``, then ``RUNCOMFY_SCHEMA_PATH``, then the bundled schemas.
    Inputs are fetched from public addresses only (each within ``fetch_timeout`` seconds and
    ``max_fetch_bytes``); ``allow_private_inputs=True`` lets a test serve them from this
    machine. URLs from :meth:`upload` always work. ``api_key`` defaults to the public
    ``emulator-key`` on loopback; any other ``host`` needs a key of its own (ValueError
    otherwise) and warns that the emulator is reachable.

    ``deployments`` serves ComfyUI workflows on the Serverless API, each given as
    ``"NAME=workflow_api.json:object_info.json"`` or a :class:`ServedDeployment`;
    ``webhook_backoff`` is the first wait before a failed webhook delivery is retried.
    ``answers`` turns on answer switches (``"succeeded"``, ``"canceled"``, ``"null_errors"``,
    ``"cancellation_requested"``, ``"detail_lists"``): the other spellings RunComfy's services
    are known to use.

    The catalog (``GET /v1/models``) lists each model's record from its sidecar
    (``<id>.info.json``: display name, categories, price); ``catalog_file`` (a JSON list of
    records, each with its ``input_schema``) replaces the schema folders and is read again
    whenever it is replaced, so a test can publish, change and withdraw models. Results carry
    ``cost`` on ``include_cost=true``, from the record's price; with ``balance`` (USD) submits
    answer HTTP 402 (error 400002) once the jobs' costs have spent it.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        workers: int = 2,
        job_seconds: float = 1.0,
        faults: Iterable[Fault | str] = (),
        seed: int = 0,
        request_ttl: float = 3600.0,
        render: bool = True,
        retry_after: float = 1.0,
        slow_seconds: float = 2.0,
        output_bytes: int | None = None,
        fetch_timeout: float = 10.0,
        max_fetch_bytes: int = 50 * 1024 * 1024,
        allow_private_inputs: bool = False,
        max_upload_bytes: int = 100 * 1024 * 1024,
        schema_dirs: Iterable[str | Path] = (),
        deployments: Iterable[str | ServedDeployment] = (),
        webhook_backoff: float = 0.5,
        answers: Iterable[str] = (),
        catalog_file: str | Path | None = None,
        balance: float | None = None,
    ) -> None:
        if balance is not None and not balance >= 0:
            raise ValueError(f"balance must be 0 USD or more, not {balance}")
        self.host = host
        self.port = port
        self.config = EmulatorConfig(
            api_key=key_for(host, api_key),
            workers=workers,
            job_seconds=job_seconds,
            request_ttl=request_ttl,
            render=render,
            retry_after=retry_after,
            slow_seconds=slow_seconds,
            output_bytes=output_bytes,
            fetch_timeout=fetch_timeout,
            max_fetch_bytes=max_fetch_bytes,
            allow_private_inputs=allow_private_inputs,
            max_upload_bytes=max_upload_bytes,
            schema_dirs=tuple(str(d) for d in schema_dirs),
            serverless=ServerlessConfig(
                tuple(parse_deployment_spec(d) if isinstance(d, str) else d for d in deployments),
                webhook_backoff=webhook_backoff,
            ),
            answers=check_answers(answers),
            catalog_file=str(catalog_file) if catalog_file is not None else None,
            balance=balance,
        )
        if catalog_file is not None:
            from ._catalog import read_catalog_file

            read_catalog_file(Path(catalog_file))  # a broken file is refused before starting
        self.faults = FaultPlan(faults, seed=seed)
        self._data_dir: Path | None = None
        self._state: EmulatorState | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        where = self.base_url if self._state else "not started"
        return f"Emulator({where}, workers={self.config.workers})"

    @property
    def api_key(self) -> str:
        """The key the emulator accepts (a test key, never a real one)."""
        return self.config.api_key

    @property
    def deployments(self) -> dict[str, str]:
        """The deployments served from the start: name -> deployment id (stable per name)."""
        return {d.name: d.deployment_id for d in self.config.serverless.deployments}

    @property
    def base_url(self) -> str:
        if self._state is None:
            raise RuntimeError("the emulator is not running: use it as a context manager")
        return self._state.base_url

    @property
    def state(self) -> EmulatorState:
        if self._state is None:
            raise RuntimeError("the emulator is not running")
        return self._state

    # -- running in a background thread ------------------------------------------------------

    def start(self) -> Emulator:
        """Start serving in a daemon thread; returns once the port is listening."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._serve_thread, name="runcomfy-emulator")
        self._thread.daemon = True
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise RuntimeError(f"the emulator failed to start: {self._error}") from self._error
        if not is_loopback_host(self.host):
            warnings.warn(exposure_warning(self.base_url), RuntimeWarning, stacklevel=2)
        return self

    def stop(self) -> None:
        """Stop serving and delete the emulator's files."""
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(30)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(30)
        self._thread = None
        self._loop = None
        if self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _serve_thread(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup())
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _startup(self) -> None:
        self._data_dir = Path(tempfile.mkdtemp(prefix="runcomfy-emulator-"))
        state = EmulatorState(self.config, self.faults, self._data_dir)
        await state.start()
        runner = web.AppRunner(build_app(state), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, backlog=2048, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None
        sockets: Any = getattr(server, "sockets", None)
        port = sockets[0].getsockname()[1] if sockets else self.port
        host = f"[{self.host}]" if ":" in self.host else self.host
        state.base_url = f"http://{host}:{port}"
        self.port = port
        self._runner = runner
        self._state = state

    async def _shutdown(self) -> None:
        if self._state is not None:
            await self._state.stop()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- run in the foreground ---------------------------------------------------------------

    def serve_forever(self) -> None:
        """Serve until interrupted (Ctrl-C or SIGTERM): the CLI's ``emulator`` command."""
        self.start()
        try:
            assert self._thread is not None
            while self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()

    # -- inspection --------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """The counters: submissions, jobs, duplicate_payloads, requests per endpoint, ..."""
        stats: dict[str, Any] = self._call(self.state.stats)
        return stats

    def jobs(self) -> list[dict[str, Any]]:
        """Every job received, oldest first: request id, model id, the payload as sent, status."""

        def collect() -> list[dict[str, Any]]:
            return [
                {
                    "request_id": job.request_id,
                    "model_id": job.model_id,
                    "payload": dict(job.payload),
                    "status": job.status,
                }
                for job in sorted(self.state.jobs.values(), key=lambda j: j.seq)
            ]

        found: list[dict[str, Any]] = self._call(collect)
        return found

    def reset_stats(self) -> None:
        self._call(self.state.reset_counters)

    def set_faults(self, faults: Iterable[Fault | str]) -> None:
        """Replace the active faults (for example to turn them off mid-test)."""
        self.faults.replace(faults)

    def set_answers(self, answers: Iterable[str]) -> None:
        """Replace the answer switches in force (see the class docstring)."""
        self.config.answers = check_answers(answers)

    def hold(self, *stages: str) -> None:
        """Keep jobs where they are until :meth:`release`: ``"queued"`` jobs are not started,
        ``"running"`` jobs do not end (however long ``job_seconds`` is); no stage named holds
        both. Tests decide when a job moves instead of betting on how long it takes."""
        self._call(lambda: self.state.holds.hold(stages or STAGES))

    def release(self, *stages: str) -> None:
        """Let jobs held at ``stages`` (all, when none is named) move on at once."""
        self._call(lambda: self.state.holds.release(stages or STAGES))

    def status(self, request_id: str) -> str:
        """One job's status as the emulator sees it (``in_queue``, ``in_progress``, ...)."""
        found: str = self._call(lambda: self.state.jobs[request_id].status)
        return found

    def upload(self, data: bytes, name: str) -> str:
        """Store bytes in the emulator's stand-in for public storage; returns their URL."""
        import httpx

        response = httpx.put(f"{self.base_url}/_emulator/uploads/{name}", content=data)
        response.raise_for_status()
        url: str = response.json()["url"]
        return url

    def _call(self, fn: Any) -> Any:
        loop = self._loop
        if loop is None:
            raise RuntimeError("the emulator is not running")

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(10)
