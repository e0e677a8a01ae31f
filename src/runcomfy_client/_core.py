"""What a client knows, and how one of its calls becomes a request: no I/O here.

:class:`ClientCore` holds a client's configuration (settings, registry, polling, uploader,
download rules, listeners, clock) and prepares what the flows in ``_lifecycle`` ask for: the
validated payload, the request of a call, the retry bookkeeping of an attempt, the plan of a
download. ``Client`` and ``AsyncClient`` are this class with a driver (``_drivers``) attached.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeAlias, TypeVar
from urllib.parse import urlsplit

import httpx

from . import _protocol as p
from ._budget import clip_timeout
from ._flow import Exchange
from ._media_inputs import LocalMedia, check_inputs_type
from ._retry import Attempts, Deadline, RetryNotice, RetryPolicy, parse_retry_after
from ._types import Result
from ._waiting import Waiter, download_refusal

if TYPE_CHECKING:  # only for annotations: these load when a client is made or first used
    from ._download_flow import DownloadJob, ProgressCallback
    from ._download_policy import DownloadPolicy
    from ._polling import PollingPolicy
    from ._registry import ModelSchema, Registry
    from ._validation import LocalFile, Validator
    from .uploaders import Uploader

__all__ = ["ClientCore", "Inputs", "ResponseListener", "RetryListener"]

# The client's own HTTP client: httpx.Client for Client, httpx.AsyncClient for AsyncClient.
HttpT = TypeVar("HttpT", httpx.Client, httpx.AsyncClient)
ResponseListener: TypeAlias = Callable[[int, "float | None"], None]
RetryListener: TypeAlias = Callable[[RetryNotice], None]
# A request made under a deadline may run this long past it (see ClientCore._request_budget).
REQUEST_GRACE = 0.5


class _InputModel(Protocol):
    """A generated input model (``runcomfy_client.typed.InputModel``), seen structurally."""

    def to_payload(self) -> dict[str, Any]: ...


# What the lifecycle accepts as inputs: a mapping, or a generated input model.
Inputs: TypeAlias = Mapping[str, object] | _InputModel


class ClientCore(Generic[HttpT]):
    """Configuration and request preparation shared by both clients.

    ``api_key`` defaults to ``RUNCOMFY_API_KEY``; ``base_url`` to ``RUNCOMFY_BASE_URL``, else
    the public API; ``serverless_base_url`` (the Serverless API, ``client.deployments``) to
    ``RUNCOMFY_SERVERLESS_BASE_URL``, else https://api.runcomfy.net. Pass ``http_client`` to
    use your own httpx client (it is not closed); ``outage_budget`` (seconds,
    ``RUNCOMFY_OUTAGE_BUDGET``) bounds how long a job's calls are retried without a deadline.
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
        http_client: HttpT | None = None,
        submit_timeout: float | None = None,
        outage_budget: float | None = None,
    ) -> None:
        if max_retries is not None:
            retry = replace(retry or RetryPolicy(), max_retries=max_retries)
        if outage_budget is None and retry is None:
            outage_budget = p.outage_budget_from_env()
        if outage_budget is not None:
            retry = replace(retry or RetryPolicy(), outage_budget=outage_budget)
        from ._deployments import serverless_base_url as resolve_serverless_base_url
        from ._download_policy import DownloadPolicy, environment_proxies
        from ._polling import default_policy
        from ._registry import Registry

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
        # Told of every answer's status (and Retry-After), so a batch can slow all its jobs.
        self.response_listeners: list[ResponseListener] = []
        # Told of every retry about to happen: progress displays show why the job is quiet.
        self.retry_listeners: list[RetryListener] = []
        self._clock: Callable[[], float] = time.monotonic  # tests drive a virtual one
        self._owns_http = http_client is None
        self._proxies = environment_proxies()  # as httpx reads them: once, when made
        self._http: HttpT = http_client if http_client is not None else self._new_http()

    def _new_http(self) -> HttpT:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        return self._settings.base_url

    @property
    def retry(self) -> RetryPolicy:
        return self._settings.retry

    def __repr__(self) -> str:
        key = "set" if self._settings.api_key else "missing"
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key=<{key}>)"

    # -- inputs -----------------------------------------------------------------------------

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
        from ._registry import ModelSchema

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
        from ._registry import ModelSchema

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

    # -- one call ---------------------------------------------------------------------------

    def _exchange(self, call: p.Call, deadline: Deadline | None = None) -> Exchange:
        """The request for one attempt of ``call`` (AuthenticationError without a key).

        Under a deadline each phase's timeout is clipped to it and the read is cut at it:
        per-read timeouts alone let a trickling answer run for ever.
        """
        settings = self._settings
        headers = settings.headers() if call.authenticated else {"Accept": "application/json"}
        timeout = settings.submit_timeout if call.is_submit else settings.timeout
        budget = self._request_budget(deadline)
        return Exchange(
            call,
            (call.base_url or settings.base_url) + call.path,
            headers,
            clip_timeout(timeout, budget),
            budget,
        )

    def _request_budget(self, deadline: Deadline | None) -> float | None:
        """Seconds one request may take under ``deadline``: what is left, and a little grace
        (so that a result fetched right at the deadline is not lost to it)."""
        if deadline is None:
            return None
        return max(deadline.at - self._clock(), REQUEST_GRACE)

    def _attempts(self, call: p.Call, deadline: Deadline | None) -> Attempts:
        return Attempts(
            self.retry, persistent=call.persistent, clock=self._clock, deadline=deadline
        )

    def _notice(self, response: httpx.Response) -> None:
        if self.response_listeners:
            retry_after = parse_retry_after(
                response.headers.get("Retry-After"), cap=self.retry.retry_after_max
            )
            for listener in list(self.response_listeners):
                listener(response.status_code, retry_after)

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

    # -- following a job ----------------------------------------------------------------------

    def _deadline(self, timeout: float | None) -> Deadline | None:
        """A whole-job deadline ``timeout`` seconds from now on the client's clock."""
        return None if timeout is None else Deadline(self._clock() + timeout, timeout)

    def _left(self, deadline: Deadline | None) -> float | None:
        """Seconds until ``deadline`` (never negative), for the next step of a whole job."""
        return None if deadline is None else max(0.0, deadline.at - self._clock())

    def _waiter(self, request_id: str, model_id: str | None, timeout: float | None) -> Waiter:
        return Waiter(request_id, model_id, self.polling, timeout, clock=self._clock)

    def _download_plan(
        self,
        result: Result,
        directory: str | os.PathLike[str],
        overwrite: bool,
        on_progress: ProgressCallback | None,
        max_bytes: int | None,
        timeout: float | None,
    ) -> tuple[DownloadJob, list[tuple[str, Path]]]:
        """What ``download()`` fetches, where to, and under which rules and deadline."""
        from ._download import plan_targets
        from ._download_flow import DownloadJob

        refusal = download_refusal(result)
        if refusal is not None:
            raise refusal
        job = DownloadJob(
            policy=self.downloads.with_max_bytes(max_bytes),
            retry=self.retry,
            local=p.is_loopback(urlsplit(self.base_url).hostname or ""),
            timeout=self._settings.timeout,
            owns_http=self._owns_http,
            deadline=None if timeout is None else self._clock() + timeout,
            budget=timeout,
            on_progress=on_progress,
            on_retry=self._download_retrying,
            request_id=result.request_id or None,
            clock=self._clock,
            proxies=self._proxies,
        )
        targets = plan_targets(result.urls, Path(directory), overwrite=overwrite)
        return job, list(zip(result.urls, targets, strict=True))
