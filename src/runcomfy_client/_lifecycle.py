"""The job lifecycle, written once: flows that both clients drive.

Each function here is a flow (see ``_flow``): it yields the requests, sleeps and status reports
it needs and returns its value. ``Client`` runs them with a blocking driver, ``AsyncClient``
with an asyncio one; tests run them on scripted answers and a virtual clock. What each decides:

- :func:`send`: one call through its retries. ``_protocol.decide`` judges every attempt (the
  submit rule: never resent unless certainly nothing was created; the outage budget for a paid
  job's calls; Retry-After capped); listeners hear every answer and every retry.
- :func:`submit`: inputs validated (and local files uploaded) before the one POST.
- :func:`status`, :func:`result`, :func:`cancel`: one call each; a cancel the server only
  accepted is followed until the job says how it ended.
- :func:`follow`: status checks at the polling policy's pace until the job ends; an unknown
  state asks the result too; at the deadline a queued job is cancelled, and the error says
  how things stand.
- :func:`wait`, :func:`run`: follow then fetch the result (then save the outputs), all under one
  whole-job deadline.
- :func:`download`: each output through a verified transfer (``_download_flow.fetch``).

A job of another API (a Serverless deployment's) follows the same flows with its own
:class:`JobRoutes`: its paths and how its answers read.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

from . import _protocol as p
from ._errors import DeadlineExceededError
from ._flow import Flow, Offload, Report, Sleep
from ._retry import Deadline
from ._types import (
    CancelOutcome,
    Ended,
    HandleData,
    JobStatus,
    ProgressCallback,
    Result,
    parse_status,
)
from ._waiting import (
    Waiter,
    ended_without_result,
    needs_reason,
    settled,
    terminal_error,
    with_reason,
)

if TYPE_CHECKING:  # annotations only: typing.Unpack is 3.11+
    from typing_extensions import Unpack

    from ._core import ClientCore, Inputs
    from ._registry import ModelSchema

__all__ = [
    "CANCEL_FOLLOW",
    "MODEL_API",
    "Following",
    "JobRoutes",
    "cancel",
    "download",
    "follow",
    "prepared",
    "result",
    "result_or_raise",
    "run",
    "run_submitted",
    "send",
    "status",
    "statuses",
    "submit",
    "wait",
]

_R = TypeVar("_R", bound=Result)
# How long cancel() follows a job whose cancellation the server accepted but had not finished.
CANCEL_FOLLOW = 30.0


@dataclass(frozen=True)
class JobRoutes:
    """Where one kind of job is asked about, and how its answers read."""

    status_call: Callable[[str], p.Call] = p.status_call
    result_call: Callable[[str], p.Call] = p.result_call
    cancel_call: Callable[[str], p.Call] = p.cancel_call
    read_status: Callable[[Mapping[str, Any], str], JobStatus] = parse_status
    read_result: Callable[[Mapping[str, Any], str], Result] = Result.from_body
    read_cancel: Callable[[Mapping[str, Any], str], CancelOutcome] = CancelOutcome.from_body


MODEL_API = JobRoutes()


def send(
    core: ClientCore[Any], call: p.Call, deadline: Deadline | None = None
) -> Flow[Mapping[str, Any]]:
    """One call, retried as ``_protocol.decide`` says; its answer's JSON object."""
    import httpx

    attempts = core._attempts(call, deadline)
    while True:
        try:
            answer = yield core._exchange(call, deadline)
        except httpx.HTTPError as exc:
            outcome = p.decide(call, attempts, core._settings, exc=exc)
        else:
            core._notice(answer.response)
            outcome = p.decide(
                call, attempts, core._settings, response=answer.response, content=answer.content
            )
        if isinstance(outcome, p.Retry):
            core._retrying(call, attempts, outcome)
            yield Sleep(outcome.delay)
            attempts.advance()
            continue
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def prepared(
    core: ClientCore[Any], model: str | ModelSchema, inputs: Inputs
) -> Flow[dict[str, Any]]:
    """The wire payload: ``inputs`` validated, local files uploaded (with an uploader)."""
    with core._local_media(model, inputs) as given:
        validator, payload, files = core._plan(model, given)
        if files:
            from ._validation import apply_uploads

            uploader = core.uploader
            assert uploader is not None
            tasks = tuple(
                _upload(uploader.upload, Path(local.path), local.media) for local in files
            )
            urls: list[str] = yield Offload(tasks)
            payload = validator.validate(apply_uploads(payload, files, urls))
    return payload


def submit(core: ClientCore[Any], model: str | ModelSchema, inputs: Inputs) -> Flow[HandleData]:
    """Validate ``inputs``, upload local files (with an uploader), submit once.

    A schema derived from a ComfyUI workflow (``deployments/NAME``) submits to its deployment,
    its inputs compiled into the workflow's overrides (``_deployment_jobs``).
    """
    from . import _deployment_jobs as dj

    target = dj.target_for(core, model)
    if target is not None:
        return (yield from dj.submit(core, target, inputs, {}))
    payload = yield from prepared(core, model, inputs)
    call = p.submit_call(model if isinstance(model, str) else model.model_id, payload)
    return HandleData.from_submit((yield from send(core, call)), call)


def _upload(upload: Callable[..., str], path: Path, media: str | None) -> Callable[[], str]:
    return lambda: upload(path, media=media)


def status(
    core: ClientCore[Any], request_id: str, routes: JobRoutes = MODEL_API
) -> Flow[JobStatus]:
    """The job's state now; a ``Failed`` one carries the server's error (from its result)."""
    now = routes.read_status((yield from send(core, routes.status_call(request_id))), request_id)
    if isinstance(now, Ended):  # "completed" said of a failed job too: the result says how
        now = settled(now, (yield from result(core, request_id, None, routes)))
    if needs_reason(now):  # a failed status rarely says why; the job's result does
        now = with_reason(now, (yield from send(core, routes.result_call(request_id))))
    return now


def result(
    core: ClientCore[Any],
    request_id: str,
    deadline: Deadline | None = None,
    routes: JobRoutes = MODEL_API,
) -> Flow[Result]:
    """The job's result, or its current state before it ends (``status`` says which)."""
    body = yield from send(core, routes.result_call(request_id), deadline)
    return routes.read_result(body, request_id)


def result_or_raise(
    core: ClientCore[Any],
    request_id: str,
    deadline: Deadline | None = None,
    routes: JobRoutes = MODEL_API,
) -> Flow[Result]:
    """:func:`result`, but JobFailedError or JobCancelledError for a job that ended so."""
    done = yield from result(core, request_id, deadline, routes)
    ended = ended_without_result(done)
    if ended is not None:
        raise ended
    return done


def cancel(
    core: ClientCore[Any],
    request_id: str,
    wait: float = CANCEL_FOLLOW,
    routes: JobRoutes = MODEL_API,
) -> Flow[CancelOutcome]:
    """Cancel; an accepted but unfinished cancel is followed for up to ``wait`` seconds."""
    body = yield from send(core, routes.cancel_call(request_id))
    outcome = routes.read_cancel(body, request_id)
    if outcome.outcome == "not_cancellable" and outcome.status is None:
        # Refused without saying why: the job's own state does (running, or ended how).
        now = yield from status(core, request_id, routes)
        return replace(outcome, status=now.status)
    if outcome.outcome != "cancellation_requested" or wait <= 0:
        return outcome
    waiter = core._waiter(request_id, None, wait)
    with suppress(DeadlineExceededError):  # not ended yet: the outcome says it was requested
        yield from follow(core, waiter, cancel_on_timeout=False, routes=routes, quiet=True)
    return outcome.followed(waiter.last)


def follow(
    core: ClientCore[Any],
    waiter: Waiter,
    *,
    cancel_on_timeout: bool = True,
    routes: JobRoutes = MODEL_API,
    quiet: bool = False,
) -> Flow[JobStatus]:
    """Check the job's status until it ends; reports each change (unless ``quiet``) and
    returns the last status. At the waiter's deadline a queued job is cancelled (unless
    ``cancel_on_timeout`` is False) and DeadlineExceededError says how things stand."""
    request_id = waiter.request_id
    while True:
        body = yield from send(core, routes.status_call(request_id), waiter.deadline)
        now = routes.read_status(body, request_id)
        if waiter.needs_result(now):
            ended = yield from result(core, request_id, waiter.deadline, routes)
            now = waiter.settle(now, ended)
        if needs_reason(now):  # a failed status rarely says why; the job's result does
            ended = yield from result(core, request_id, waiter.deadline, routes)
            now = with_reason(now, ended.raw)
        if waiter.changed(now) and not quiet:
            yield Report(now)
        delay = waiter.next_delay(now)
        if delay is None:
            return now
        if waiter.expired():
            outcome = None
            if waiter.should_cancel(now, cancel_on_timeout):
                outcome = yield from cancel(core, request_id, routes=routes)
            raise waiter.deadline_error(now, outcome)
        yield Sleep(delay)


class Following(TypedDict, total=False):
    """How a job is followed: its deadline, what happens then, and whose job it is."""

    timeout: float | None
    cancel_on_timeout: bool
    model_id: str | None
    routes: JobRoutes


def _routes(core: ClientCore[Any], following: Following) -> JobRoutes:
    """The routes given, else those the job's model id names (a deployment's, or MODEL_API)."""
    given = following.get("routes")
    if given is not None:
        return given
    from ._deployment_jobs import routes_for

    return routes_for(core, following.get("model_id"))


def statuses(
    core: ClientCore[Any], request_id: str, **following: Unpack[Following]
) -> Flow[JobStatus]:
    """:func:`follow` with a waiter of its own (made when the flow starts)."""
    waiter = core._waiter(request_id, following.get("model_id"), following.get("timeout"))
    return (
        yield from follow(
            core,
            waiter,
            cancel_on_timeout=following.get("cancel_on_timeout", True),
            routes=_routes(core, following),
        )
    )


def wait(core: ClientCore[Any], request_id: str, **following: Unpack[Following]) -> Flow[Result]:
    """Follow the job to its end and return its result (reports each status change).

    JobFailedError or JobCancelledError when it ends without one; DeadlineExceededError when
    ``timeout`` seconds pass first.
    """
    deadline = core._deadline(following.get("timeout"))
    last = yield from statuses(core, request_id, **following)
    error = terminal_error(last)
    if error is not None:
        raise error
    routes = _routes(core, following)
    return (yield from result_or_raise(core, request_id, deadline, routes))


def run(
    core: ClientCore[Any],
    model: str | ModelSchema,
    inputs: Inputs,
    *,
    timeout: float | None = None,
    cancel_on_timeout: bool = True,
    download_to: str | os.PathLike[str] | None = None,
    on_progress: ProgressCallback | None = None,
) -> Flow[Result]:
    """Submit, wait, and (with ``download_to``) save the outputs, all within ``timeout``."""
    return (
        yield from run_submitted(
            core,
            submit(core, model, inputs),
            timeout=timeout,
            cancel_on_timeout=cancel_on_timeout,
            download_to=download_to,
            on_progress=on_progress,
        )
    )


def run_submitted(
    core: ClientCore[Any],
    submitting: Flow[HandleData],
    *,
    timeout: float | None = None,
    cancel_on_timeout: bool = True,
    download_to: str | os.PathLike[str] | None = None,
    on_progress: ProgressCallback | None = None,
) -> Flow[Result]:
    """:func:`run` for any submit flow: a Model API model's, or a deployment's (its job is
    followed by the routes its model id names)."""
    from ._deployment_jobs import routes_for

    deadline = core._deadline(timeout)
    handle = yield from submitting
    try:
        done = yield from wait(
            core,
            handle.request_id,
            timeout=core._left(deadline),
            cancel_on_timeout=cancel_on_timeout,
            model_id=handle.model_id,
            routes=routes_for(core, handle.model_id),
        )
        if download_to is None:
            return done
        files = yield from download(
            core, done, download_to, on_progress=on_progress, timeout=core._left(deadline)
        )
    except GeneratorExit:  # the flow is being closed: nobody will read a note
        raise
    except BaseException as exc:  # Ctrl-C, a cancel, any error: the paid job's id goes with it
        if getattr(exc, "request_id", None) != handle.request_id and handle.request_id not in str(
            exc
        ):
            _note_job(exc, handle.request_id)
        raise
    return with_files(done, files)


def _note_job(exc: BaseException, request_id: str) -> None:
    """Say on ``exc`` (whatever stopped run() after its submit, when it does not name the job
    itself) which job was submitted, so that it is re-attached rather than paid for again."""
    from ._errors import reattach_hint

    note = f"job {request_id} was submitted and may still be running; {reattach_hint(request_id)}"
    setattr(exc, "__notes__", [*getattr(exc, "__notes__", []), note])  # noqa: B010 - 3.10 too


def download(
    core: ClientCore[Any],
    done: Result,
    directory: str | os.PathLike[str] = ".",
    *,
    overwrite: bool = False,
    on_progress: ProgressCallback | None = None,
    max_bytes: int | None = None,
    timeout: float | None = None,
) -> Flow[list[Path]]:
    """Save every output of ``done`` into ``directory``, each verified; returns the paths."""
    from ._download_flow import save

    job, plan = core._download_plan(done, directory, overwrite, on_progress, max_bytes, timeout)
    label = f"job {done.request_id}: " if done.request_id else ""
    saved: list[Path] = []
    for url, path in plan:
        saved.append((yield from save(job, url, path, label)))
    return saved


def with_files(done: _R, files: list[Path]) -> _R:
    return replace(done, files=tuple(files))


def fetch_model(core: ClientCore[Any], model_id: str) -> Flow[dict[str, Any]]:
    return dict((yield from send(core, p.model_call(model_id))))
