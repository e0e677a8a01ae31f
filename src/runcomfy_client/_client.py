"""``Client`` and ``AsyncClient``: two doors to the one lifecycle.

Every method builds a flow (``_lifecycle``: submit, status, wait, run, download ...) and hands it
to the client's driver (``_drivers``): a blocking one for :class:`Client`, an awaited one for
:class:`AsyncClient`. Decisions live in the flows and in ``_protocol``, ``_waiting``,
``_polling`` and ``_download_flow``; configuration in ``_core.ClientCore``.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar, cast

import httpx

from . import _lifecycle as lc
from . import _protocol as p
from ._core import ClientCore, Inputs
from ._deployment_jobs import DeploymentRequest, DeploymentTarget, find_target, routes_for
from ._deployment_jobs import submit as submit_to_deployment
from ._drivers import AsyncDriver, SyncDriver
from ._flow import Flow, Report
from ._remote_catalog import CatalogPager, CatalogQuery, categories_call, parse_categories
from ._retry import Deadline
from ._tls import shared_context
from ._types import CancelOutcome, HandleData, JobStatus, ProgressCallback, Result
from ._waiting import StatusCallback

if TYPE_CHECKING:  # annotations only (typing.Unpack is 3.11+); the rest loads when first used
    from typing_extensions import Unpack

    from ._deployments import AsyncDeployments, Deployments
    from ._model_info import ModelInfo
    from ._registry import ModelSchema

__all__ = [
    "AsyncClient",
    "AsyncDeploymentClient",
    "AsyncRequestHandle",
    "AsyncResult",
    "Client",
    "DeploymentClient",
    "DeploymentRunOptions",
    "DownloadOptions",
    "FollowOptions",
    "RequestHandle",
    "RunOptions",
    "SyncResult",
    "WaitOptions",
]

_B = TypeVar("_B", bound=Result)


# -- the options every door shares ----------------------------------------------------------------


class FollowOptions(TypedDict, total=False):
    """How long to follow a job, and what to do at the deadline."""

    timeout: float | None
    """Whole-job deadline in seconds (default None: as long as it takes)."""
    cancel_on_timeout: bool
    """Cancel the job at the deadline if it is still queued (default True)."""


class WaitOptions(FollowOptions, total=False):
    """``wait()``'s keywords: a deadline, and who hears of each status."""

    on_status: StatusCallback | None
    """Called with each new status (``Queued`` with its position, ``InProgress`` ...)."""


class RunOptions(WaitOptions, total=False):
    """``run()``'s keywords: ``wait()``'s, and where to save the outputs."""

    download_to: str | os.PathLike[str] | None
    """Folder to save the outputs in (the result's ``files`` lists them); the deadline covers
    the download too."""
    on_progress: ProgressCallback | None
    """Called with download progress while saving outputs."""


class DeploymentRunOptions(RunOptions, DeploymentRequest, total=False):
    """A deployment's ``run()`` keywords: ``run()``'s, and what its submit may carry."""


class DownloadOptions(TypedDict, total=False):
    """``download()``'s keywords."""

    overwrite: bool
    """Replace files of the same name (default False: a new name is chosen)."""
    on_progress: ProgressCallback | None
    """Called with each file's progress."""
    max_bytes: int | None
    """This call's size cap per file (default: the client's ``DownloadPolicy``)."""
    timeout: float | None
    """Seconds for the whole call (default None)."""


def _waiting(
    core: ClientCore[Any], request_id: str, model_id: str | None, options: WaitOptions
) -> tuple[Flow[Result], StatusCallback | None]:
    flow = lc.wait(
        core,
        request_id,
        timeout=options.get("timeout"),
        cancel_on_timeout=options.get("cancel_on_timeout", True),
        model_id=model_id,
        routes=routes_for(core, model_id),
    )
    return flow, options.get("on_status")


def _running(
    core: ClientCore[Any], submitting: Flow[HandleData], options: RunOptions
) -> tuple[Flow[Result], StatusCallback | None]:
    flow = lc.run_submitted(
        core,
        submitting,
        timeout=options.get("timeout"),
        cancel_on_timeout=options.get("cancel_on_timeout", True),
        download_to=options.get("download_to"),
        on_progress=options.get("on_progress"),
    )
    return flow, options.get("on_status")


def _following(
    core: ClientCore[Any], request_id: str, model_id: str | None, options: FollowOptions
) -> Flow[JobStatus]:
    return lc.statuses(
        core,
        request_id,
        timeout=options.get("timeout"),
        cancel_on_timeout=options.get("cancel_on_timeout", True),
        model_id=model_id,
        routes=routes_for(core, model_id),
    )


def _catalog(core: ClientCore[Any], pager: CatalogPager) -> Flow[None]:
    """The catalog, page by page: each record is reported as its page arrives."""
    while (call := pager.next_call()) is not None:
        for info in pager.take((yield from lc.send(core, call))):
            yield Report(info)


def _info_of(model_id: str, body: Mapping[str, Any]) -> ModelInfo:
    """A one-model answer as a record (an answer without its own id is the model asked for)."""
    from ._model_info import ModelInfo

    record = body if "model_id" in body else {**body, "model_id": model_id}
    return ModelInfo.from_record(record, source=f"GET /v1/models/{model_id}")


def _bound(cls: Callable[..., _B], result: Result, client: ClientCore[Any]) -> _B:
    """``result`` as a ``cls`` bound to the client that fetched it."""
    values = {f.name: getattr(result, f.name) for f in fields(Result)}
    return cls(**values, _client=client)


class _Handle:
    """What both handles know of their job."""

    def __init__(self, data: HandleData) -> None:
        self._data = data

    @property
    def request_id(self) -> str:
        return self._data.request_id

    @property
    def model_id(self) -> str | None:
        return self._data.model_id

    @property
    def status_url(self) -> str | None:
        return self._data.status_url

    @property
    def result_url(self) -> str | None:
        return self._data.result_url

    @property
    def cancel_url(self) -> str | None:
        return self._data.cancel_url

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.request_id!r}, model_id={self.model_id!r})"


# -- sync -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncResult(Result):
    """A :class:`Result` that can download its outputs with the client that fetched it."""

    _client: Client | None = field(default=None, repr=False, compare=False)

    def download(
        self, directory: str | os.PathLike[str] = ".", **options: Unpack[DownloadOptions]
    ) -> list[Path]:
        """Save every output into ``directory``; returns the paths (see Client.download)."""
        if self._client is None:
            raise RuntimeError("this result is not bound to a client; use client.download()")
        return self._client.download(self, directory, **options)


class RequestHandle(_Handle):
    """One submitted job. Re-attach later with ``client.attach(request_id)``."""

    def __init__(self, client: Client, data: HandleData) -> None:
        super().__init__(data)
        self._client = client

    def status(self) -> JobStatus:
        return self._client.status(self.request_id, model_id=self.model_id)

    def result(self) -> SyncResult:
        return self._client.result(self.request_id, model_id=self.model_id)

    def cancel(self) -> CancelOutcome:
        return self._client.cancel(self.request_id, model_id=self.model_id)

    def iter_status(self, **options: Unpack[FollowOptions]) -> Iterator[JobStatus]:
        """Each new status until the job ends (see ``Client.iter_status``)."""
        return self._client.iter_status(self.request_id, model_id=self.model_id, **options)

    def wait(self, **options: Unpack[WaitOptions]) -> SyncResult:
        """Follow the job to its end and return its result (see ``Client.wait``)."""
        return self._client.wait(self.request_id, model_id=self.model_id, **options)


class Client(ClientCore[httpx.Client]):
    """Synchronous client for the RunComfy Model API.

    ``api_key`` defaults to ``RUNCOMFY_API_KEY``; ``base_url`` to ``RUNCOMFY_BASE_URL``, else
    the public API; ``serverless_base_url`` (the Serverless API, ``client.deployments``) to
    ``RUNCOMFY_SERVERLESS_BASE_URL``, else https://api.runcomfy.net; ``uploader`` to the one
    ``RUNCOMFY_UPLOAD_TO`` names (``emulator``, ``inline`` or ``s3://BUCKET/PREFIX``), else none.
    Pass ``http_client`` to use your own ``httpx.Client`` (it is not closed).
    """

    def _new_http(self) -> httpx.Client:
        return httpx.Client(timeout=self._settings.timeout, verify=shared_context())

    def _sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    @cached_property
    def _driver(self) -> SyncDriver:
        # The client's sleep is read at each sleep: tests put a virtual clock's in its place.
        return SyncDriver(self._http, lambda seconds: self._sleep(seconds))  # noqa: PLW0108

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @cached_property
    def deployments(self) -> Deployments:
        """Your Serverless API deployments: list, get, create, update, delete, enable, disable."""
        from ._deployments import Deployments

        return Deployments(self, self._driver)

    def close(self) -> None:
        """Close the connections (not those of an ``http_client`` you passed in).

        What polling learned is written to the user's cache now (see ``PollingMemory``).
        """
        self.polling.flush()
        if self._owns_http:
            self._http.close()

    def _send(self, call: p.Call, deadline: Deadline | None = None) -> Mapping[str, Any]:
        """One call through the lifecycle's retries (for calls without a door of their own)."""
        return self._driver.run(lc.send(self, call, deadline))

    # -- the lifecycle -----------------------------------------------------------------------

    def submit(self, model: str | ModelSchema, inputs: Inputs) -> RequestHandle:
        """Validate ``inputs`` (readable names or wire keys), submit, return the handle.

        With an ``uploader``, local files given for media fields are uploaded first (after
        everything else validated) and sent as the URLs it returns. A submit is never sent
        twice unless nothing was certainly created (SubmissionUncertainError says when unsure).
        """
        return RequestHandle(self, self._driver.run(lc.submit(self, model, inputs)))

    def attach(self, request_id: str, model_id: str | None = None) -> RequestHandle:
        """A handle for a job submitted earlier (by this process or another).

        A deployment's job is named by its model id: ``deployments/NAME`` (a derived schema)
        or ``deployments/<deployment id>``.
        """
        return RequestHandle(self, HandleData(request_id, model_id))

    def deployment(self, deployment: str | ModelSchema) -> DeploymentClient:
        """Jobs on a Serverless deployment: by its id, or by the schema derived for it
        (``deployments/NAME`` or its :class:`ModelSchema`)."""
        return DeploymentClient(self, find_target(self, deployment))

    def status(self, request_id: str, *, model_id: str | None = None) -> JobStatus:
        """The job's state now; a ``Failed`` one carries the server's error (from its result).

        ``model_id`` names a deployment's job (``deployments/NAME``): it is asked there.
        """
        return self._driver.run(lc.status(self, request_id, routes_for(self, model_id)))

    def result(self, request_id: str, *, model_id: str | None = None) -> SyncResult:
        """The job's result; before it ends, its current state (``status`` says which).

        Raises JobFailedError (with the server's error code and message) for a failed job and
        JobCancelledError for a cancelled one.
        """
        flow = lc.result_or_raise(self, request_id, None, routes_for(self, model_id))
        return _bound(SyncResult, self._driver.run(flow), self)

    def cancel(
        self, request_id: str, *, wait: float = lc.CANCEL_FOLLOW, model_id: str | None = None
    ) -> CancelOutcome:
        """Cancel a queued job; a running one answers ``not_cancellable`` (a deployment's
        running job can be cancelled too).

        When the server only accepts the cancellation (``cancellation_requested``), the job is
        followed for up to ``wait`` seconds until it ends, and the outcome says how it did.
        """
        return self._driver.run(lc.cancel(self, request_id, wait, routes_for(self, model_id)))

    def iter_status(
        self, request_id: str, *, model_id: str | None = None, **options: Unpack[FollowOptions]
    ) -> Iterator[JobStatus]:
        """Yield the job's status each time it changes, until it ends (or the deadline)."""
        return self._driver.iterate(_following(self, request_id, model_id, options))

    def wait(
        self, request_id: str, *, model_id: str | None = None, **options: Unpack[WaitOptions]
    ) -> SyncResult:
        """Follow the job to its end and return its result.

        Raises JobFailedError or JobCancelledError when it ends without one, and
        DeadlineExceededError when ``timeout`` seconds pass first: the job is then cancelled
        if it is still queued (unless ``cancel_on_timeout=False``).
        """
        flow, on_status = _waiting(self, request_id, model_id, options)
        return _bound(SyncResult, self._driver.run(flow, on_status), self)

    def run(
        self, model: str | ModelSchema, inputs: Inputs, **options: Unpack[RunOptions]
    ) -> SyncResult:
        """Validate, submit, wait, and (with ``download_to``) save the outputs.

        ``timeout`` is a deadline for all of it, the download included; the other keywords are
        ``wait()``'s (``cancel_on_timeout``, ``on_status``) and ``on_progress``.
        """
        flow, on_status = _running(self, lc.submit(self, model, inputs), options)
        return _bound(SyncResult, self._driver.run(flow, on_status), self)

    def download(
        self,
        result: Result,
        directory: str | os.PathLike[str] = ".",
        **options: Unpack[DownloadOptions],
    ) -> list[Path]:
        """Save every output of ``result`` into ``directory``; returns the paths.

        Each file is verified (length, range, encoding) and renamed into place only when
        complete; ``max_bytes`` overrides the client's size cap for this call, and ``timeout``
        bounds the whole call in seconds. Raises DownloadError (naming the URL without its
        query string) and leaves no partial file behind.
        """
        return self._driver.run(lc.download(self, result, directory, **options))

    def fetch_model(self, model_id: str) -> dict[str, Any]:
        """The API's description of one model, including its published ``input_schema``."""
        return self._driver.run(lc.fetch_model(self, model_id))

    # -- the catalog -------------------------------------------------------------------------

    def catalog(
        self,
        *,
        search: str | None = None,
        category: str | None = None,
        kind: str | None = None,
        include_schema: bool = False,
        limit: int | None = None,
        page_size: int = CatalogQuery.page_size,
    ) -> Iterator[ModelInfo]:
        """Every model the API publishes (or those matching the filters), page by page.

        Records are typed (:class:`ModelInfo`: display name, categories, price ...);
        ``include_schema=True`` adds each one's ``input_schema``. ``limit`` caps the records.
        """
        query = CatalogQuery(search, category, kind, include_schema, limit, page_size)
        return self._driver.iterate(_catalog(self, CatalogPager(query)))

    def model_info(self, model_id: str) -> ModelInfo:
        """One model's catalog record, with its published ``input_schema``."""
        return _info_of(model_id, self._send(p.model_call(model_id)))

    def categories(self) -> list[str]:
        """The catalog's categories (``image``, ``video`` ...), as the API lists them."""
        return parse_categories(self._send(categories_call()))


# -- async ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AsyncResult(Result):
    """A :class:`Result` whose ``download`` is awaited, using the client that fetched it."""

    _client: AsyncClient | None = field(default=None, repr=False, compare=False)

    async def download(
        self, directory: str | os.PathLike[str] = ".", **options: Unpack[DownloadOptions]
    ) -> list[Path]:
        if self._client is None:
            raise RuntimeError("this result is not bound to a client; use client.download()")
        return await self._client.download(self, directory, **options)


class AsyncRequestHandle(_Handle):
    """One submitted job, for ``AsyncClient``."""

    def __init__(self, client: AsyncClient, data: HandleData) -> None:
        super().__init__(data)
        self._client = client

    async def status(self) -> JobStatus:
        return await self._client.status(self.request_id, model_id=self.model_id)

    async def result(self) -> AsyncResult:
        return await self._client.result(self.request_id, model_id=self.model_id)

    async def cancel(self) -> CancelOutcome:
        return await self._client.cancel(self.request_id, model_id=self.model_id)

    def iter_status(self, **options: Unpack[FollowOptions]) -> AsyncIterator[JobStatus]:
        return self._client.iter_status(self.request_id, model_id=self.model_id, **options)

    async def wait(self, **options: Unpack[WaitOptions]) -> AsyncResult:
        return await self._client.wait(self.request_id, model_id=self.model_id, **options)


class AsyncClient(ClientCore[httpx.AsyncClient]):
    """Asynchronous client: the same methods as :class:`Client`, awaited."""

    def _new_http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self._settings.timeout, verify=shared_context())

    async def _sleep(self, seconds: float) -> None:
        import asyncio

        await asyncio.sleep(seconds)

    @cached_property
    def _driver(self) -> AsyncDriver:
        return AsyncDriver(self._http, lambda seconds: self._sleep(seconds))  # noqa: PLW0108

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @cached_property
    def deployments(self) -> AsyncDeployments:
        """Your Serverless API deployments, awaited: the same methods as ``Client.deployments``."""
        from ._deployments import AsyncDeployments

        return AsyncDeployments(self, self._driver)

    async def aclose(self) -> None:
        self.polling.flush()
        if self._owns_http:
            await self._http.aclose()

    async def _send(self, call: p.Call, deadline: Deadline | None = None) -> Mapping[str, Any]:
        return await self._driver.run(lc.send(self, call, deadline))

    async def submit(self, model: str | ModelSchema, inputs: Inputs) -> AsyncRequestHandle:
        """Validate ``inputs`` (readable names or wire keys), submit, return the handle.

        With an ``uploader``, local files given for media fields are uploaded first (in worker
        threads, after everything else validated) and sent as the URLs it returns.
        """
        return AsyncRequestHandle(self, await self._driver.run(lc.submit(self, model, inputs)))

    def attach(self, request_id: str, model_id: str | None = None) -> AsyncRequestHandle:
        return AsyncRequestHandle(self, HandleData(request_id, model_id))

    def deployment(self, deployment: str | ModelSchema) -> AsyncDeploymentClient:
        """:meth:`Client.deployment`, awaited."""
        return AsyncDeploymentClient(self, find_target(self, deployment))

    async def status(self, request_id: str, *, model_id: str | None = None) -> JobStatus:
        return await self._driver.run(lc.status(self, request_id, routes_for(self, model_id)))

    async def result(self, request_id: str, *, model_id: str | None = None) -> AsyncResult:
        flow = lc.result_or_raise(self, request_id, None, routes_for(self, model_id))
        return _bound(AsyncResult, await self._driver.run(flow), self)

    async def cancel(
        self, request_id: str, *, wait: float = lc.CANCEL_FOLLOW, model_id: str | None = None
    ) -> CancelOutcome:
        return await self._driver.run(lc.cancel(self, request_id, wait, routes_for(self, model_id)))

    def iter_status(
        self, request_id: str, *, model_id: str | None = None, **options: Unpack[FollowOptions]
    ) -> AsyncIterator[JobStatus]:
        return self._driver.iterate(_following(self, request_id, model_id, options))

    async def wait(
        self, request_id: str, *, model_id: str | None = None, **options: Unpack[WaitOptions]
    ) -> AsyncResult:
        flow, on_status = _waiting(self, request_id, model_id, options)
        return _bound(AsyncResult, await self._driver.run(flow, on_status), self)

    async def run(
        self, model: str | ModelSchema, inputs: Inputs, **options: Unpack[RunOptions]
    ) -> AsyncResult:
        flow, on_status = _running(self, lc.submit(self, model, inputs), options)
        return _bound(AsyncResult, await self._driver.run(flow, on_status), self)

    async def download(
        self,
        result: Result,
        directory: str | os.PathLike[str] = ".",
        **options: Unpack[DownloadOptions],
    ) -> list[Path]:
        return await self._driver.run(lc.download(self, result, directory, **options))

    async def fetch_model(self, model_id: str) -> dict[str, Any]:
        return await self._driver.run(lc.fetch_model(self, model_id))

    def catalog(
        self,
        *,
        search: str | None = None,
        category: str | None = None,
        kind: str | None = None,
        include_schema: bool = False,
        limit: int | None = None,
        page_size: int = CatalogQuery.page_size,
    ) -> AsyncIterator[ModelInfo]:
        """:meth:`Client.catalog`, awaited: ``async for info in client.catalog(): ...``."""
        query = CatalogQuery(search, category, kind, include_schema, limit, page_size)
        return self._driver.iterate(_catalog(self, CatalogPager(query)))

    async def model_info(self, model_id: str) -> ModelInfo:
        return _info_of(model_id, await self._send(p.model_call(model_id)))

    async def categories(self) -> list[str]:
        return parse_categories(await self._send(categories_call()))


# -- a deployment's jobs --------------------------------------------------------------------------


def _request(options: DeploymentRunOptions) -> DeploymentRequest:
    keys = DeploymentRequest.__annotations__
    return cast(DeploymentRequest, {k: v for k, v in options.items() if k in keys})


class _DeploymentDoor:
    """What both deployment doors know: the deployment, and the schema derived for it."""

    def __init__(self, target: DeploymentTarget) -> None:
        self._target = target

    @property
    def deployment_id(self) -> str:
        return self._target.deployment_id

    @property
    def model_id(self) -> str:
        """The name its jobs go by (``attach(request_id, model_id)``, the CLI's ``--model``)."""
        return self._target.model_id

    @property
    def schema(self) -> ModelSchema | None:
        """The schema derived for it (``schema derive``), which its inputs are checked by."""
        return self._target.model

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.deployment_id!r}, model_id={self.model_id!r})"


class DeploymentClient(_DeploymentDoor):
    """``client.deployment(ID)``: jobs on one Serverless deployment, with the Model API's handle.

    ``submit(inputs)`` checks the inputs by the schema derived for the deployment and compiles
    them into the workflow's ``overrides``; ``overrides=`` sends raw ones (merged with them).
    The handle's status, wait, result, cancel and download are the Model API's, on the same
    lifecycle (deadlines, retries, never submitting twice).
    """

    def __init__(self, client: Client, target: DeploymentTarget) -> None:
        super().__init__(target)
        self._client = client

    def submit(
        self, inputs: Inputs | None = None, **request: Unpack[DeploymentRequest]
    ) -> RequestHandle:
        flow = submit_to_deployment(self._client, self._target, inputs, request)
        return RequestHandle(self._client, self._client._driver.run(flow))

    def run(
        self, inputs: Inputs | None = None, **options: Unpack[DeploymentRunOptions]
    ) -> SyncResult:
        """Submit, wait and (with ``download_to``) save the outputs, like ``Client.run``."""
        submitting = submit_to_deployment(self._client, self._target, inputs, _request(options))
        flow, on_status = _running(self._client, submitting, options)
        return _bound(SyncResult, self._client._driver.run(flow, on_status), self._client)

    def attach(self, request_id: str) -> RequestHandle:
        """A handle for a job submitted to this deployment earlier."""
        return self._client.attach(request_id, self.model_id)


class AsyncDeploymentClient(_DeploymentDoor):
    """:class:`DeploymentClient` for :class:`AsyncClient`: the same methods, awaited."""

    def __init__(self, client: AsyncClient, target: DeploymentTarget) -> None:
        super().__init__(target)
        self._client = client

    async def submit(
        self, inputs: Inputs | None = None, **request: Unpack[DeploymentRequest]
    ) -> AsyncRequestHandle:
        flow = submit_to_deployment(self._client, self._target, inputs, request)
        return AsyncRequestHandle(self._client, await self._client._driver.run(flow))

    async def run(
        self, inputs: Inputs | None = None, **options: Unpack[DeploymentRunOptions]
    ) -> AsyncResult:
        submitting = submit_to_deployment(self._client, self._target, inputs, _request(options))
        flow, on_status = _running(self._client, submitting, options)
        return _bound(AsyncResult, await self._client._driver.run(flow, on_status), self._client)

    def attach(self, request_id: str) -> AsyncRequestHandle:
        return self._client.attach(request_id, self.model_id)
