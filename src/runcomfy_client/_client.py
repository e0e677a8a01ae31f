"""``Client`` and ``AsyncClient``: thin sync and async shells over the shared protocol.

Both have the same methods and behaviour; every decision lives in ``_protocol``, ``_waiting``,
``_polling`` and ``_download``, and these classes only send, sleep and hand back.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, TypeVar
from urllib.parse import urlsplit

import httpx

from . import _protocol as p
from ._budget import bounded, clip_timeout
from ._deployments import AsyncDeployments, Deployments
from ._deployments import serverless_base_url as resolve_serverless_base_url
from ._download import DownloadJob, ProgressCallback, download_async, download_sync, plan_targets
from ._download_policy import DownloadPolicy
from ._errors import DeadlineExceededError
from ._media_inputs import LocalMedia, check_inputs_type
from ._model_info import ModelInfo
from ._polling import PollingPolicy, default_policy
from ._registry import ModelSchema, Registry
from ._remote_catalog import CatalogPager, CatalogQuery, categories_call, parse_categories
from ._retry import Attempts, Deadline, RetryNotice, RetryPolicy, parse_retry_after
from ._types import CancelOutcome, JobStatus, Result, parse_status
from ._waiting import (
    StatusCallback,
    Waiter,
    download_refusal,
    ended_without_result,
    needs_reason,
    terminal_error,
    with_reason,
)

if TYPE_CHECKING:  # only for annotations: validation and uploads load when first used
    from ._validation import LocalFile, Validator
    from .uploaders import Uploader

__all__ = ["AsyncClient", "AsyncRequestHandle", "Client", "RequestHandle"]


class _InputModel(Protocol):
    """A generated input model (``runcomfy_client.typed.InputModel``), seen structurally."""

    def to_payload(self) -> dict[str, Any]: ...


# What the lifecycle accepts as inputs: a mapping, or a generated input model.
Inputs: TypeAlias = Mapping[str, Any] | _InputModel


def _asyncio() -> ModuleType:
    # asyncio costs a tenth of `import runcomfy_client`; only the async client needs it, and
    # by the time it runs an event loop has imported it already.
    import asyncio

    return asyncio


def _model_id(model: str | ModelSchema) -> str:
    return model.model_id if isinstance(model, ModelSchema) else model


def _deadline(clock: Callable[[], float], timeout: float | None) -> Deadline | None:
    return None if timeout is None else Deadline(clock() + timeout, timeout)


def _left(clock: Callable[[], float], deadline: Deadline | None) -> float | None:
    """Seconds until ``deadline`` (never negative), for the next step of a whole-job deadline."""
    return None if deadline is None else max(0.0, deadline.at - clock())


async def _async_sleep(seconds: float) -> None:
    await _asyncio().sleep(seconds)


_R = TypeVar("_R", bound=Result)
# A request made under a deadline may run this long past it (see _Common._request_budget).
REQUEST_GRACE = 0.5
# How long cancel() follows a job whose cancellation the server accepted but had not finished.
CANCEL_FOLLOW = 30.0


def _read_capped(chunks: Iterable[bytes], limit: int) -> bytes | None:
    """An answer's bytes, or None as soon as it grows past ``limit`` (nothing more is read)."""
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


async def _aread_capped(chunks: AsyncIterable[bytes], limit: int) -> bytes | None:
    """The async twin of :func:`_read_capped`."""
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


@dataclass(frozen=True)
class _HandleData:
    request_id: str
    model_id: str | None = None
    status_url: str | None = None
    result_url: str | None = None
    cancel_url: str | None = None


class _Common:
    """Configuration and request preparation shared by both clients."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        retry: RetryPolicy | None = None,
        max_retries: int | None = None,
        schema_dirs: Iterable[str | os.PathLike[str]] = (),
        registry: Registry | None = None,
        polling: PollingPolicy | None = None,
        uploader: Uploader | None = None,
        allow_any_file: bool = False,
        downloads: DownloadPolicy | None = None,
        serverless_base_url: str | None = None,
        submit_timeout: float | None = None,
        outage_budget: float | None = None,
    ) -> None:
        if max_retries is not None:
            retry = replace(retry or RetryPolicy(), max_retries=max_retries)
        if outage_budget is None and retry is None:
            outage_budget = p.outage_budget_from_env()
        if outage_budget is not None:
            retry = replace(retry or RetryPolicy(), outage_budget=outage_budget)
        self._settings = p.Settings.resolve(api_key, base_url, timeout, retry, submit_timeout)
        self.serverless_base_url = resolve_serverless_base_url(serverless_base_url)
        self.registry = registry if registry is not None else Registry(schema_dirs)
        self.polling = polling if polling is not None else default_policy(self.base_url)
        if uploader is None:
            from .uploaders import uploader_from_env

            uploader = uploader_from_env(self._settings.base_url)
        self.uploader = uploader
        # Upload local files whose content is not media of the field's kind (off: a path typed
        # by mistake, or put in an input file by someone else, must not upload a private file).
        self.allow_any_file = allow_any_file
        self.downloads = downloads if downloads is not None else DownloadPolicy()
        self._rng = random.Random()  # noqa: S311 - jitter only
        # Told of every answer's status (and Retry-After), so a batch can slow all its jobs.
        self.response_listeners: list[Callable[[int, float | None], None]] = []
        # Told of every retry about to happen: progress displays show why the job is quiet.
        self.retry_listeners: list[Callable[[RetryNotice], None]] = []
        self._clock: Callable[[], float] = time.monotonic  # tests drive a virtual one

    @property
    def base_url(self) -> str:
        return self._settings.base_url

    @property
    def retry(self) -> RetryPolicy:
        return self._settings.retry

    def __repr__(self) -> str:
        key = "set" if self._settings.api_key else "missing"
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key=<{key}>)"

    def validate(self, model: str | ModelSchema, inputs: Inputs) -> dict[str, Any]:
        """The wire payload for ``inputs``; raises InputValidationError listing every problem.

        ``model`` is a model id looked up in the registry, or a :class:`ModelSchema` (what
        generated wrappers pass: the schema they were generated from). ``inputs`` is a mapping
        by readable names or wire keys, or a generated input model (only the fields it set).
        """
        validator, mapping = self._validator_for(model, inputs)
        return validator.validate(mapping)

    def _validator_for(
        self, model: str | ModelSchema, inputs: Inputs
    ) -> tuple[Validator, Mapping[str, Any]]:
        check_inputs_type(inputs)
        if not isinstance(model, ModelSchema) and not isinstance(inputs, Mapping):
            # A generated input class knows the schema it came from: no registry needed.
            typed = getattr(type(inputs), "runcomfy_model", None)
            if typed is not None and typed.model_id == model:
                model = typed.schema
        if isinstance(model, ModelSchema):
            validator = model.validator
        else:
            validator = self.registry.validator(model)
        if not isinstance(inputs, Mapping):
            inputs = inputs.to_payload()
        return validator, inputs

    def _local_media(
        self, model: str | ModelSchema, inputs: Inputs
    ) -> AbstractContextManager[Inputs]:
        """Paths and open files given for media fields, as path strings, while submitting."""
        check_inputs_type(inputs)
        if not isinstance(inputs, Mapping):
            return nullcontext(inputs)
        schema = model if isinstance(model, ModelSchema) else self.registry.get(model)
        names = [n for f in schema.fields if f.media for n in (f.name, f.key)]
        return LocalMedia(inputs, names)

    def _plan(
        self, model: str | ModelSchema, inputs: Inputs
    ) -> tuple[Validator, dict[str, Any], list[LocalFile]]:
        """Validate; with an uploader, local media files are listed for upload, not refused."""
        validator, mapping = self._validator_for(model, inputs)
        if self.uploader is None:
            return validator, validator.validate(mapping), []
        payload, files = validator.check_with_uploads(mapping, allow_any_file=self.allow_any_file)
        if files:
            self._settings.headers()  # no API key: fail before uploading anything
            from .uploaders import preflight_uploads

            preflight_uploads(self.uploader, files, payload)
        return validator, payload, files

    def _notice(self, response: httpx.Response) -> None:
        if self.response_listeners:
            retry_after = parse_retry_after(
                response.headers.get("Retry-After"), cap=self.retry.retry_after_max
            )
            for listener in list(self.response_listeners):
                listener(response.status_code, retry_after)

    def _url(self, call: p.Call) -> str:
        return (call.base_url or self._settings.base_url) + call.path

    def _request_budget(self, deadline: Deadline | None) -> float | None:
        """Seconds one request may take under ``deadline``: what is left, and a little grace
        (so that a result fetched right at the deadline is not lost to it)."""
        if deadline is None:
            return None
        return max(deadline.at - self._clock(), REQUEST_GRACE)

    def _request_args(self, call: p.Call, deadline: Deadline | None = None) -> dict[str, Any]:
        settings = self._settings
        headers = settings.headers() if call.authenticated else {"Accept": "application/json"}
        timeout = settings.submit_timeout if call.is_submit else settings.timeout
        args: dict[str, Any] = {
            "headers": headers,
            # Under a deadline each phase's timeout is clipped to it; the read is also cut at
            # it (see _send): per-read timeouts alone let a trickling answer run for ever.
            "timeout": clip_timeout(timeout, self._request_budget(deadline)),
        }
        if call.json is not None:
            args["json"] = call.json
        return args

    def _download_plan(
        self,
        result: Result,
        directory: str | os.PathLike[str],
        overwrite: bool,
        on_progress: ProgressCallback | None,
        max_bytes: int | None,
        timeout: float | None,
        owns_http: bool,
    ) -> tuple[DownloadJob, list[tuple[str, Path]]]:
        """What ``download()`` fetches, where to, and under which rules and deadline."""
        refusal = download_refusal(result)
        if refusal is not None:
            raise refusal
        job = DownloadJob(
            policy=self.downloads.with_max_bytes(max_bytes),
            retry=self.retry,
            local=p.is_loopback(urlsplit(self.base_url).hostname or ""),
            timeout=self._settings.timeout,
            owns_http=owns_http,
            deadline=None if timeout is None else time.monotonic() + timeout,
            budget=timeout,
            on_progress=on_progress,
            on_retry=self._download_retrying,
            request_id=result.request_id or None,
        )
        targets = plan_targets(result.urls, Path(directory), overwrite=overwrite)
        return job, list(zip(result.urls, targets, strict=True))

    def _attempts(self, call: p.Call, deadline: Deadline | None) -> Attempts:
        return Attempts(
            self.retry,
            persistent=call.persistent,
            clock=self._clock,
            deadline=deadline,
            rng=self._rng,
        )

    def _retrying(self, call: p.Call, attempts: Attempts, retry: p.Retry) -> None:
        p.log_retry(call, attempts, retry)
        if self.retry_listeners:
            notice = retry.notice(call, attempts)
            for listener in list(self.retry_listeners):
                listener(notice)

    def _download_retrying(self, notice: RetryNotice) -> None:
        p.logger.warning("download of job %s: %s", notice.request_id, notice)
        for listener in list(self.retry_listeners):
            listener(notice)

    def _handle_data(self, body: Mapping[str, Any], call: p.Call) -> _HandleData:
        request_id = body.get("request_id")
        if not isinstance(request_id, str) or not request_id.strip() or len(request_id) > 200:
            from ._errors import SubmissionUncertainError

            raise SubmissionUncertainError(
                "the submit's answer carries no usable request_id",
                model_id=call.model_id,
                fingerprint=call.fingerprint(),
            )
        return _HandleData(
            request_id,
            call.model_id,
            body.get("status_url"),
            body.get("result_url"),
            body.get("cancel_url"),
        )


# -- sync -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncResult(Result):
    """A :class:`Result` that can download its outputs with the client that fetched it."""

    _client: Client | None = field(default=None, repr=False, compare=False)

    def download(
        self,
        directory: str | os.PathLike[str] = ".",
        *,
        overwrite: bool = False,
        on_progress: ProgressCallback | None = None,
        max_bytes: int | None = None,
        timeout: float | None = None,
    ) -> list[Path]:
        """Save every output into ``directory``; returns the paths (see Client.download)."""
        if self._client is None:
            raise RuntimeError("this result is not bound to a client; use client.download()")
        return self._client.download(
            self,
            directory,
            overwrite=overwrite,
            on_progress=on_progress,
            max_bytes=max_bytes,
            timeout=timeout,
        )


class RequestHandle:
    """One submitted job. Re-attach later with ``client.attach(request_id)``."""

    def __init__(self, client: Client, data: _HandleData) -> None:
        self._client = client
        self._data = data

    request_id = property(lambda self: self._data.request_id)
    model_id = property(lambda self: self._data.model_id)
    status_url = property(lambda self: self._data.status_url)
    result_url = property(lambda self: self._data.result_url)
    cancel_url = property(lambda self: self._data.cancel_url)

    def __repr__(self) -> str:
        return f"RequestHandle({self.request_id!r}, model_id={self.model_id!r})"

    def status(self) -> JobStatus:
        return self._client.status(self.request_id)

    def result(self) -> SyncResult:
        return self._client.result(self.request_id)

    def cancel(self) -> CancelOutcome:
        return self._client.cancel(self.request_id)

    def iter_status(
        self, *, timeout: float | None = None, cancel_on_timeout: bool = True
    ) -> Iterator[JobStatus]:
        return self._client.iter_status(
            self.request_id,
            timeout=timeout,
            cancel_on_timeout=cancel_on_timeout,
            model_id=self.model_id,
        )

    def wait(
        self,
        *,
        timeout: float | None = None,
        cancel_on_timeout: bool = True,
        on_status: StatusCallback | None = None,
    ) -> SyncResult:
        return self._client.wait(
            self.request_id,
            timeout=timeout,
            cancel_on_timeout=cancel_on_timeout,
            on_status=on_status,
            model_id=self.model_id,
        )


class Client(_Common):
    """Synchronous client for the RunComfy Model API.

    ``api_key`` defaults to ``RUNCOMFY_API_KEY``; ``base_url`` to ``RUNCOMFY_BASE_URL``, else
    the public API; ``serverless_base_url`` (the Serverless API, ``client.deployments``) to
    ``RUNCOMFY_SERVERLESS_BASE_URL``, else https://api.runcomfy.net; ``uploader`` to the one
    ``RUNCOMFY_UPLOAD_TO`` names (``emulator``, ``inline`` or ``s3://BUCKET/PREFIX``), else none.
    Pass ``http_client`` to use your own ``httpx.Client`` (it is not closed).
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        retry: RetryPolicy | None = None,
        max_retries: int | None = None,
        schema_dirs: Iterable[str | os.PathLike[str]] = (),
        registry: Registry | None = None,
        polling: PollingPolicy | None = None,
        uploader: Uploader | None = None,
        allow_any_file: bool = False,
        downloads: DownloadPolicy | None = None,
        serverless_base_url: str | None = None,
        http_client: httpx.Client | None = None,
        submit_timeout: float | None = None,
        outage_budget: float | None = None,
    ) -> None:
        super().__init__(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            retry=retry,
            max_retries=max_retries,
            schema_dirs=schema_dirs,
            registry=registry,
            polling=polling,
            uploader=uploader,
            allow_any_file=allow_any_file,
            downloads=downloads,
            serverless_base_url=serverless_base_url,
            submit_timeout=submit_timeout,
            outage_budget=outage_budget,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=self._settings.timeout)
        self._sleep: Callable[[float], None] = time.sleep

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
        return Deployments(self._send, self.serverless_base_url)

    def close(self) -> None:
        """Close the connections (not those of an ``http_client`` you passed in).

        What polling learned is written to the user's cache now (see ``PollingMemory``).
        """
        self.polling.flush()
        if self._owns_http:
            self._http.close()

    def _send(self, call: p.Call, deadline: Deadline | None = None) -> Mapping[str, Any]:
        attempts = self._attempts(call, deadline)
        while True:
            try:
                args = self._request_args(call, deadline)
                with (
                    self._http.stream(call.method, self._url(call), **args) as response,
                    bounded(response, self._request_budget(deadline)),
                ):
                    content = _read_capped(response.iter_bytes(), call.max_bytes)
                self._notice(response)
                outcome = p.decide(
                    call, attempts, self._settings, response=response, content=content
                )
            except httpx.HTTPError as exc:
                outcome = p.decide(call, attempts, self._settings, exc=exc)
            if isinstance(outcome, p.Retry):
                self._retrying(call, attempts, outcome)
                self._sleep(outcome.delay)
                attempts.advance()
                continue
            if isinstance(outcome, Exception):
                raise outcome
            return outcome  # type: ignore[no-any-return]

    # -- the lifecycle -----------------------------------------------------------------------

    def submit(self, model: str | ModelSchema, inputs: Inputs) -> RequestHandle:
        """Validate ``inputs`` (readable names or wire keys), submit, return the handle.

        With an ``uploader``, local files given for media fields are uploaded first (after
        everything else validated) and sent as the URLs it returns.
        """
        with self._local_media(model, inputs) as given:
            validator, payload, files = self._plan(model, given)
            if files:
                from ._validation import apply_uploads

                assert self.uploader is not None
                uploader = self.uploader
                urls = [uploader.upload(Path(local.path), media=local.media) for local in files]
                payload = validator.validate(apply_uploads(payload, files, urls))
        call = p.submit_call(_model_id(model), payload)
        return RequestHandle(self, self._handle_data(self._send(call), call))

    def attach(self, request_id: str, model_id: str | None = None) -> RequestHandle:
        """A handle for a job submitted earlier (by this process or another)."""
        return RequestHandle(self, _HandleData(request_id, model_id))

    def status(self, request_id: str) -> JobStatus:
        """The job's state now; a ``Failed`` one carries the server's error (from its result)."""
        status = parse_status(self._send(p.status_call(request_id)), request_id)
        if needs_reason(status):  # a failed status rarely says why; the job's result does
            status = with_reason(status, self._send(p.result_call(request_id)))
        return status

    def result(self, request_id: str) -> SyncResult:
        """The job's result; before it ends, its current state (``status`` says which).

        Raises JobFailedError (with the server's error code and message) for a failed job and
        JobCancelledError for a cancelled one.
        """
        return _raise_if_ended(self._result(request_id, None))

    def _result(self, request_id: str, deadline: Deadline | None) -> SyncResult:
        body = self._send(p.result_call(request_id), deadline)
        return SyncResult(**vars(Result.from_body(body, request_id)), _client=self)

    def cancel(self, request_id: str, *, wait: float = CANCEL_FOLLOW) -> CancelOutcome:
        """Cancel a queued job; a running one answers ``not_cancellable``.

        When the server only accepts the cancellation (``cancellation_requested``), the job is
        followed for up to ``wait`` seconds until it ends, and the outcome says how it did.
        """
        outcome = CancelOutcome.from_body(self._send(p.cancel_call(request_id)), request_id)
        if outcome.outcome != "cancellation_requested" or wait <= 0:
            return outcome
        last: JobStatus | None = None
        with contextlib.suppress(DeadlineExceededError):
            for status in self.iter_status(request_id, timeout=wait, cancel_on_timeout=False):
                last = status
        return outcome.followed(last)

    def iter_status(
        self,
        request_id: str,
        *,
        timeout: float | None = None,
        cancel_on_timeout: bool = True,
        model_id: str | None = None,
    ) -> Iterator[JobStatus]:
        """Yield the job's status each time it changes, until it ends (or the deadline)."""
        waiter = Waiter(request_id, model_id, self.polling, timeout, clock=self._clock)
        while True:
            body = self._send(p.status_call(request_id), waiter.deadline)
            status = parse_status(body, request_id)
            if waiter.needs_result(status):
                status = waiter.settle(status, self._result(request_id, waiter.deadline))
            if needs_reason(status):  # a failed status rarely says why; the job's result does
                status = with_reason(status, self._result(request_id, waiter.deadline).raw)
            if waiter.changed(status):
                yield status
            delay = waiter.next_delay(status)
            if delay is None:
                return
            if waiter.expired():
                outcome = (
                    self.cancel(request_id)
                    if waiter.should_cancel(status, cancel_on_timeout)
                    else None
                )
                raise waiter.deadline_error(status, outcome)
            self._sleep(delay)

    def wait(
        self,
        request_id: str,
        *,
        timeout: float | None = None,
        cancel_on_timeout: bool = True,
        on_status: StatusCallback | None = None,
        model_id: str | None = None,
    ) -> SyncResult:
        """Follow the job to its end and return its result.

        Raises JobFailedError or JobCancelledError when it ends without one, and
        DeadlineExceededError when ``timeout`` seconds pass first: the job is then cancelled
        if it is still queued (unless ``cancel_on_timeout=False``).
        """
        deadline = _deadline(self._clock, timeout)
        last: JobStatus | None = None
        for status in self.iter_status(
            request_id, timeout=timeout, cancel_on_timeout=cancel_on_timeout, model_id=model_id
        ):
            last = status
            if on_status is not None:
                on_status(status)
        assert last is not None
        error = terminal_error(last)
        if error is not None:
            raise error
        return _raise_if_ended(self._result(request_id, deadline))

    def run(
        self,
        model: str | ModelSchema,
        inputs: Inputs,
        *,
        timeout: float | None = None,
        cancel_on_timeout: bool = True,
        on_status: StatusCallback | None = None,
        download_to: str | os.PathLike[str] | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> SyncResult:
        """Validate, submit, wait, and (with ``download_to``) save the outputs.

        ``timeout`` is a deadline for all of it, the download included.
        """
        deadline = _deadline(self._clock, timeout)
        handle = self.submit(model, inputs)
        result = handle.wait(
            timeout=_left(self._clock, deadline),
            cancel_on_timeout=cancel_on_timeout,
            on_status=on_status,
        )
        if download_to is not None:
            files = self.download(
                result, download_to, on_progress=on_progress, timeout=_left(self._clock, deadline)
            )
            result = _with_files(result, files)
        return result

    def download(
        self,
        result: Result,
        directory: str | os.PathLike[str] = ".",
        *,
        overwrite: bool = False,
        on_progress: ProgressCallback | None = None,
        max_bytes: int | None = None,
        timeout: float | None = None,
    ) -> list[Path]:
        """Save every output of ``result`` into ``directory``; returns the paths.

        Each file is verified (length, range, encoding) and renamed into place only when
        complete; ``max_bytes`` overrides the client's size cap for this call, and ``timeout``
        bounds the whole call in seconds. Raises DownloadError (naming the URL without its
        query string) and leaves no partial file behind.
        """
        job, plan = self._download_plan(
            result, directory, overwrite, on_progress, max_bytes, timeout, self._owns_http
        )
        label = f"job {result.request_id}: " if result.request_id else ""
        return [download_sync(self._http, job, url, path, label) for url, path in plan]

    def fetch_model(self, model_id: str) -> Any:
        """The API's description of one model, including its published ``input_schema``."""
        return dict(self._send(p.model_call(model_id)))

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
        pager = CatalogPager(query)
        while (call := pager.next_call()) is not None:
            yield from pager.take(self._send(call))

    def model_info(self, model_id: str) -> ModelInfo:
        """One model's catalog record, with its published ``input_schema``."""
        return _info_of(model_id, self._send(p.model_call(model_id)))

    def categories(self) -> list[str]:
        """The catalog's categories (``image``, ``video`` ...), as the API lists them."""
        return parse_categories(self._send(categories_call()))


def _info_of(model_id: str, body: Mapping[str, Any]) -> ModelInfo:
    """A one-model answer as a record (an answer without its own id is the model asked for)."""
    record = body if "model_id" in body else {**body, "model_id": model_id}
    return ModelInfo.from_record(record, source=f"GET /v1/models/{model_id}")


def _raise_if_ended(result: _R) -> _R:
    """``result``, unless its job failed or was cancelled: then the error that says so."""
    ended = ended_without_result(result)
    if ended is not None:
        raise ended
    return result


def _with_files(result: _R, files: list[Path]) -> _R:
    from dataclasses import replace

    return replace(result, files=tuple(files))


# -- async ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AsyncResult(Result):
    """A :class:`Result` whose ``download`` is awaited, using the client that fetched it."""

    _client: AsyncClient | None = field(default=None, repr=False, compare=False)

    async def download(
        self,
        directory: str | os.PathLike[str] = ".",
        *,
        overwrite: bool = False,
        on_progress: ProgressCallback | None = None,
        max_bytes: int | None = None,
        timeout: float | None = None,
    ) -> list[Path]:
        if self._client is None:
            raise RuntimeError("this result is not bound to a client; use client.download()")
        return await self._client.download(
            self,
            directory,
            overwrite=overwrite,
            on_progress=on_progress,
            max_bytes=max_bytes,
            timeout=timeout,
        )


class AsyncRequestHandle:
    """One submitted job, for ``AsyncClient``."""

    def __init__(self, client: AsyncClient, data: _HandleData) -> None:
        self._client = client
        self._data = data

    request_id = property(lambda self: self._data.request_id)
    model_id = property(lambda self: self._data.model_id)
    status_url = property(lambda self: self._data.status_url)
    result_url = property(lambda self: self._data.result_url)
    cancel_url = property(lambda self: self._data.cancel_url)

    def __repr__(self) -> str:
        return f"AsyncRequestHandle({self.request_id!r}, model_id={self.model_id!r})"

    async def status(self) -> JobStatus:
        return await self._client.status(self.request_id)

    async def result(self) -> AsyncResult:
        return await self._client.result(self.request_id)

    async def cancel(self) -> CancelOutcome:
        return await self._client.cancel(self.request_id)

    def iter_status(
        self, *, timeout: float | None = None, cancel_on_timeout: bool = True
    ) -> AsyncIterator[JobStatus]:
        return self._client.iter_status(
            self.request_id,
            timeout=timeout,
            cancel_on_timeout=cancel_on_timeout,
            model_id=self.model_id,
        )

    async def wait(
        self,
        *,
        timeout: float | None = None,
        cancel_on_timeout: bool = True,
        on_status: StatusCallback | None = None,
    ) -> AsyncResult:
        return await self._client.wait(
            self.request_id,
            timeout=timeout,
            cancel_on_timeout=cancel_on_timeout,
            on_status=on_status,
            model_id=self.model_id,
        )


class AsyncClient(_Common):
    """Asynchronous client: the same methods as :class:`Client`, awaited."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        retry: RetryPolicy | None = None,
        max_retries: int | None = None,
        schema_dirs: Iterable[str | os.PathLike[str]] = (),
        registry: Registry | None = None,
        polling: PollingPolicy | None = None,
        uploader: Uploader | None = None,
        allow_any_file: bool = False,
        downloads: DownloadPolicy | None = None,
        serverless_base_url: str | None = None,
        http_client: httpx.AsyncClient | None = None,
        submit_timeout: float | None = None,
        outage_budget: float | None = None,
    ) -> None:
        super().__init__(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            retry=retry,
            max_retries=max_retries,
            schema_dirs=schema_dirs,
            registry=registry,
            polling=polling,
            uploader=uploader,
            allow_any_file=allow_any_file,
            downloads=downloads,
            serverless_base_url=serverless_base_url,
            submit_timeout=submit_timeout,
            outage_budget=outage_budget,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=self._settings.timeout)
        self._sleep: Callable[[float], Awaitable[None]] = _async_sleep

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
        return AsyncDeployments(self._send, self.serverless_base_url)

    async def aclose(self) -> None:
        self.polling.flush()
        if self._owns_http:
            await self._http.aclose()

    async def _send(self, call: p.Call, deadline: Deadline | None = None) -> Mapping[str, Any]:
        attempts = self._attempts(call, deadline)
        while True:
            try:
                args = self._request_args(call, deadline)
                async with self._http.stream(call.method, self._url(call), **args) as response:
                    with bounded(response, self._request_budget(deadline)):
                        content = await _aread_capped(response.aiter_bytes(), call.max_bytes)
                self._notice(response)
                outcome = p.decide(
                    call, attempts, self._settings, response=response, content=content
                )
            except httpx.HTTPError as exc:
                outcome = p.decide(call, attempts, self._settings, exc=exc)
            if isinstance(outcome, p.Retry):
                self._retrying(call, attempts, outcome)
                await self._sleep(outcome.delay)
                attempts.advance()
                continue
            if isinstance(outcome, Exception):
                raise outcome
            return outcome  # type: ignore[no-any-return]

    async def submit(self, model: str | ModelSchema, inputs: Inputs) -> AsyncRequestHandle:
        """Validate ``inputs`` (readable names or wire keys), submit, return the handle.

        With an ``uploader``, local files given for media fields are uploaded first (in worker
        threads, after everything else validated) and sent as the URLs it returns.
        """
        with self._local_media(model, inputs) as given:
            validator, payload, files = self._plan(model, given)
            if files:
                from ._validation import apply_uploads

                uploader = self.uploader
                assert uploader is not None
                aio = _asyncio()
                urls = await aio.gather(
                    *(
                        aio.to_thread(uploader.upload, Path(local.path), media=local.media)
                        for local in files
                    )
                )
                payload = validator.validate(apply_uploads(payload, files, urls))
        call = p.submit_call(_model_id(model), payload)
        return AsyncRequestHandle(self, self._handle_data(await self._send(call), call))

    def attach(self, request_id: str, model_id: str | None = None) -> AsyncRequestHandle:
        return AsyncRequestHandle(self, _HandleData(request_id, model_id))

    async def status(self, request_id: str) -> JobStatus:
        status = parse_status(await self._send(p.status_call(request_id)), request_id)
        if needs_reason(status):  # a failed status rarely says why; the job's result does
            status = with_reason(status, await self._send(p.result_call(request_id)))
        return status

    async def result(self, request_id: str) -> AsyncResult:
        return _raise_if_ended(await self._result(request_id, None))

    async def _result(self, request_id: str, deadline: Deadline | None) -> AsyncResult:
        body = await self._send(p.result_call(request_id), deadline)
        return AsyncResult(**vars(Result.from_body(body, request_id)), _client=self)

    async def cancel(self, request_id: str, *, wait: float = CANCEL_FOLLOW) -> CancelOutcome:
        body = await self._send(p.cancel_call(request_id))
        outcome = CancelOutcome.from_body(body, request_id)
        if outcome.outcome != "cancellation_requested" or wait <= 0:
            return outcome
        last: JobStatus | None = None
        with contextlib.suppress(DeadlineExceededError):
            async for status in self.iter_status(request_id, timeout=wait, cancel_on_timeout=False):
                last = status
        return outcome.followed(last)

    async def iter_status(
        self,
        request_id: str,
        *,
        timeout: float | None = None,
        cancel_on_timeout: bool = True,
        model_id: str | None = None,
    ) -> AsyncIterator[JobStatus]:
        waiter = Waiter(request_id, model_id, self.polling, timeout, clock=self._clock)
        while True:
            body = await self._send(p.status_call(request_id), waiter.deadline)
            status = parse_status(body, request_id)
            if waiter.needs_result(status):
                result = await self._result(request_id, waiter.deadline)
                status = waiter.settle(status, result)
            if needs_reason(status):  # a failed status rarely says why; the job's result does
                status = with_reason(status, (await self._result(request_id, waiter.deadline)).raw)
            if waiter.changed(status):
                yield status
            delay = waiter.next_delay(status)
            if delay is None:
                return
            if waiter.expired():
                outcome = (
                    await self.cancel(request_id)
                    if waiter.should_cancel(status, cancel_on_timeout)
                    else None
                )
                raise waiter.deadline_error(status, outcome)
            await self._sleep(delay)

    async def wait(
        self,
        request_id: str,
        *,
        timeout: float | None = None,
        cancel_on_timeout: bool = True,
        on_status: StatusCallback | None = None,
        model_id: str | None = None,
    ) -> AsyncResult:
        deadline = _deadline(self._clock, timeout)
        last: JobStatus | None = None
        async for status in self.iter_status(
            request_id, timeout=timeout, cancel_on_timeout=cancel_on_timeout, model_id=model_id
        ):
            last = status
            if on_status is not None:
                on_status(status)
        assert last is not None
        error = terminal_error(last)
        if error is not None:
            raise error
        return _raise_if_ended(await self._result(request_id, deadline))

    async def run(
        self,
        model: str | ModelSchema,
        inputs: Inputs,
        *,
        timeout: float | None = None,
        cancel_on_timeout: bool = True,
        on_status: StatusCallback | None = None,
        download_to: str | os.PathLike[str] | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> AsyncResult:
        deadline = _deadline(self._clock, timeout)
        handle = await self.submit(model, inputs)
        result = await handle.wait(
            timeout=_left(self._clock, deadline),
            cancel_on_timeout=cancel_on_timeout,
            on_status=on_status,
        )
        if download_to is not None:
            files = await self.download(
                result, download_to, on_progress=on_progress, timeout=_left(self._clock, deadline)
            )
            result = _with_files(result, files)
        return result

    async def download(
        self,
        result: Result,
        directory: str | os.PathLike[str] = ".",
        *,
        overwrite: bool = False,
        on_progress: ProgressCallback | None = None,
        max_bytes: int | None = None,
        timeout: float | None = None,
    ) -> list[Path]:
        job, plan = self._download_plan(
            result, directory, overwrite, on_progress, max_bytes, timeout, self._owns_http
        )
        label = f"job {result.request_id}: " if result.request_id else ""
        return [await download_async(self._http, job, url, path, label) for url, path in plan]

    async def fetch_model(self, model_id: str) -> Any:
        return dict(await self._send(p.model_call(model_id)))

    async def catalog(
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
        pager = CatalogPager(query)
        while (call := pager.next_call()) is not None:
            for info in pager.take(await self._send(call)):
                yield info

    async def model_info(self, model_id: str) -> ModelInfo:
        return _info_of(model_id, await self._send(p.model_call(model_id)))

    async def categories(self) -> list[str]:
        return parse_categories(await self._send(categories_call()))
