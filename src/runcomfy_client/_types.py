"""Typed values the API answers with: job states, results, outputs, errors, cancel outcomes.

Also the one JSON shape every ``--json`` document about a job takes (:func:`job_document`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ._protocol import Call

__all__ = [
    "CancelOutcome",
    "Cancelled",
    "Completed",
    "DownloadProgress",
    "Ended",
    "ErrorInfo",
    "Failed",
    "HandleData",
    "InProgress",
    "JobState",
    "JobStatus",
    "Output",
    "OutputFile",
    "ProgressCallback",
    "Queued",
    "Result",
    "UnknownStatus",
    "job_document",
    "normalise_status",
    "parse_status",
]

JobState = Literal["in_queue", "in_progress", "completed", "failed", "cancelled"]
"""A job's state, however the server spelled it (``JobStatus.status`` holds one, except in an
:class:`UnknownStatus`, which keeps the server's own text)."""

# Every spelling of a job's state seen in RunComfy's APIs and its own clients, and the state it
# means. The one table for the runtime, the CLI, the batch engine and the emulator's tests.
STATUS_SPELLINGS: Mapping[str, JobState] = {
    "in_queue": "in_queue",
    "queued": "in_queue",
    "pending": "in_queue",
    "in_progress": "in_progress",
    "running": "in_progress",
    "completed": "completed",
    "succeeded": "completed",
    "success": "completed",
    "failed": "failed",
    "error": "failed",
    "cancelled": "cancelled",
    "canceled": "cancelled",
}
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
# Cancel outcomes: accepted and done, accepted and pending, refused.
_CANCELLED = frozenset({"cancelled", "canceled"})
_NOT_CANCELLABLE = frozenset({"not_cancellable", "not_cancelable"})
# A server's text shown back to the user is cut to this many characters.
_SHOWN_TEXT = 100


def normalise_status(value: object) -> JobState | None:
    """The state a status spelling means (``succeeded`` -> ``completed``); None if unknown."""
    if not isinstance(value, str):
        return None
    return STATUS_SPELLINGS.get(value.strip().lower().replace("-", "_").replace(" ", "_"))


@dataclass(frozen=True)
class JobStatus:
    """A job's state. One of :class:`Queued`, :class:`InProgress`, :class:`Completed`,
    :class:`Failed` or :class:`Cancelled` (match on the class, or read ``status``)."""

    request_id: str
    status: str
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def done(self) -> bool:
        """True once the job can no longer change."""
        return self.status in TERMINAL

    @property
    def queue_position(self) -> int | None:
        """Jobs ahead of this one while it is queued (0: it runs next); None otherwise."""
        return getattr(self, "position", None)

    @property
    def instance_id(self) -> str | None:
        """The machine running the job, when the API says (a Serverless deployment's does)."""
        value = self.raw.get("instance_id")
        return value[:200] if isinstance(value, str) and value else None

    def as_dict(self) -> dict[str, Any]:
        """The job's JSON document (see :func:`job_document`)."""
        return job_document(
            self.request_id,
            self.status,
            queue_position=getattr(self, "position", None),
            error=getattr(self, "error", None),
        )


@dataclass(frozen=True)
class Queued(JobStatus):
    """Waiting in the queue; ``position`` jobs are ahead of it (0: it runs next)."""

    position: int | None = None


@dataclass(frozen=True)
class InProgress(JobStatus):
    """Running on the server: it can no longer be cancelled."""


@dataclass(frozen=True)
class Completed(JobStatus):
    """Finished with a result: fetch it with ``result()``."""


@dataclass(frozen=True)
class Failed(JobStatus):
    """Finished without a result; ``error`` holds what the server said, when it said it.

    The status answer rarely says why: the clients fill ``error`` in from the job's result.
    """

    error: ErrorInfo | None = None


@dataclass(frozen=True)
class Cancelled(JobStatus):
    """Cancelled while it was queued."""


@dataclass(frozen=True)
class UnknownStatus(JobStatus):
    """A state this client does not know; ``status`` holds the server's text as given.

    It never means "wait for ever": while a job reads like this, waiting asks ``/result`` too and
    ends as soon as that carries an output or an error.
    """


@dataclass(frozen=True)
class Ended(UnknownStatus):
    """Ended, but its status does not say how: the Serverless API's status reads ``completed``
    for a failed job too. Waiting reads the job's result to know (``done`` stays False until
    then, so nothing stops at a state that may be wrong)."""

    @property
    def done(self) -> bool:
        return False


def _position(value: object) -> int | None:
    # A queue position is a small count; anything else (a bool, a float, 10**400) is not one.
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**9:
        return value
    return None


@dataclass(frozen=True)
class ErrorInfo:
    """What the server said went wrong: RunComfy's error code, its message and any detail.

    Read from a job's ``error`` (``{"error_code", "error_message", "detail"}``, a gateway's
    ``{"message"}``, a plain string, or a list of those); ``str()`` gives one readable line.
    """

    code: int | str | None
    message: str
    detail: Any = None

    def __str__(self) -> str:
        return self.message if self.code is None else f"{self.message} (error_code {self.code})"

    def as_dict(self) -> dict[str, Any]:
        """The JSON form: ``{"code", "message", "detail"}``."""
        return {"code": self.code, "message": self.message, "detail": self.detail}

    @classmethod
    def from_body(cls, value: object) -> ErrorInfo | None:
        """The error in an answer's ``error`` value; None when the server gave none."""
        if value is None or value in ("", {}, []):
            return None
        if isinstance(value, str):
            return cls(None, value)
        if isinstance(value, Mapping):
            code = next((value[k] for k in ("error_code", "errorCode", "code") if k in value), None)
            if isinstance(code, bool) or not isinstance(code, (int, str)):
                code = None
            message = next(
                (
                    value[k]
                    for k in ("error_message", "message", "error", "detail")
                    if isinstance(value.get(k), str) and value[k]
                ),
                None,
            )
            if message is None:
                import json

                message = json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
            return cls(code, message, value.get("detail"))
        if isinstance(value, (list, tuple)):
            found = [info for info in map(cls.from_body, value) if info is not None]
            if not found:
                return None
            first = found[0]
            return first if len(found) == 1 else cls(first.code, first.message, list(value))
        return cls(None, str(value))


def job_document(
    request_id: str | None,
    status: str | None,
    *,
    queue_position: int | None = None,
    output: Mapping[str, Any] | None = None,
    files: Sequence[Path | str] = (),
    error: ErrorInfo | None = None,
    cost: float | None = None,
) -> dict[str, Any]:
    """The one JSON shape for a job, whatever said it (run, wait, result, status, cancel, batch).

    Always the same keys: ``request_id``, ``status``, ``queue_position`` (while queued),
    ``output`` (the result's output object, once completed), ``files`` (saved paths), ``error``
    (``{"code", "message", "detail"}`` or null) and ``cost`` (USD, when the API reported it).
    """
    return {
        "request_id": request_id,
        "status": status,
        "queue_position": queue_position,
        "output": dict(output) if output is not None else None,
        "files": [str(p) for p in files],
        "error": error.as_dict() if error is not None else None,
        "cost": cost,
    }


def parse_status(body: Mapping[str, Any], request_id: str) -> JobStatus:
    """The typed state for a status (or result) body, by the table of spellings."""
    rid = str(body.get("request_id") or request_id)
    raw = dict(body)
    text = body.get("status")
    state = normalise_status(text)
    if state == "in_queue":
        return Queued(rid, state, raw, _position(body.get("queue_position")))
    if state == "in_progress":
        return InProgress(rid, state, raw)
    if state == "completed":
        return Completed(rid, state, raw)
    if state == "failed":
        return Failed(rid, state, raw, ErrorInfo.from_body(body.get("error")))
    if state == "cancelled":
        return Cancelled(rid, state, raw)
    shown = text[:_SHOWN_TEXT] if isinstance(text, str) else ("" if text is None else repr(text))
    return UnknownStatus(rid, shown[:_SHOWN_TEXT], raw)


def _urls(value: Any) -> list[str]:
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v]
    return []


@dataclass(frozen=True)
class OutputFile:
    """One file a ComfyUI workflow's job wrote: which node, which channel (``images``,
    ``gifs``...), and where to fetch it."""

    node: str
    channel: str
    url: str
    filename: str | None = None
    subfolder: str | None = None
    type: str | None = None


@dataclass(frozen=True)
class Output:
    """A job's outputs as the Output schema names them, plus every URL in one list.

    A Serverless deployment's job keys its outputs by node id, then channel: ``raw`` holds them
    as answered and ``files`` lists each file with its node and channel.
    """

    video: str | None = None
    videos: tuple[str, ...] = ()
    image: str | None = None
    images: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)
    files: tuple[OutputFile, ...] = ()

    def by_node(self, node: str) -> tuple[OutputFile, ...]:
        """The files node ``node`` wrote (a deployment's job), in the answer's order."""
        return tuple(f for f in self.files if f.node == str(node))

    @classmethod
    def from_body(cls, output: object) -> Output:
        data = output if isinstance(output, Mapping) else {}
        video = data.get("video")
        image = data.get("image")
        return cls(
            video=video if isinstance(video, str) else None,
            videos=tuple(_urls(data.get("videos"))),
            image=image if isinstance(image, str) else None,
            images=tuple(_urls(data.get("images"))),
            raw=dict(data),
        )

    @property
    def urls(self) -> list[str]:
        """Every output URL, videos first, without repeats; other keys' URLs last."""
        found: list[str] = []
        for value in (self.video, *self.videos, self.image, *self.images):
            if value and value not in found:
                found.append(value)
        for key, value in self.raw.items():
            if key not in ("video", "videos", "image", "images"):
                for url in _urls(value):
                    if url.startswith(("http://", "https://")) and url not in found:
                        found.append(url)
        for item in self.files:
            if item.url not in found:
                found.append(item.url)
        return found


@dataclass(frozen=True)
class Result:
    """A finished job: its status, outputs, timestamps, error, and the files saved so far."""

    request_id: str
    status: str
    output: Output
    created_at: str | None = None
    finished_at: str | None = None
    error: ErrorInfo | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)
    files: tuple[Path, ...] = ()

    @property
    def video(self) -> str | None:
        return self.output.video or (self.output.videos[0] if self.output.videos else None)

    @property
    def urls(self) -> list[str]:
        return self.output.urls

    @property
    def cost(self) -> float | None:
        """What the job cost in USD, when the API said (``include_cost``)."""
        value = self.raw.get("cost")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return float(value)

    @classmethod
    def from_body(cls, body: Mapping[str, Any], request_id: str) -> Result:
        text = body.get("status")
        created, finished = body.get("created_at"), body.get("finished_at")
        output = Output.from_body(body.get("output"))
        status: str | None = normalise_status(text)
        if status is None:
            # A state this client does not know: a result that carries outputs has completed,
            # one that carries an error has failed; otherwise the server's text is kept.
            if output.urls:
                status = "completed"
            elif body.get("error") not in (None, "", {}, []):
                status = "failed"
            else:
                status = text[:_SHOWN_TEXT] if isinstance(text, str) else ""
        return cls(
            request_id=str(body.get("request_id") or request_id),
            status=status,
            output=output,
            created_at=created if isinstance(created, str) else None,
            finished_at=finished if isinstance(finished, str) else None,
            error=ErrorInfo.from_body(body.get("error")),
            raw=dict(body),
        )

    def as_dict(self) -> dict[str, Any]:
        """The job's JSON document (see :func:`job_document`)."""
        return job_document(
            self.request_id,
            self.status,
            output=self.output.raw if self.status == "completed" else None,
            files=self.files,
            error=self.error,
            cost=self.cost,
        )


CancelWord = Literal["cancelled", "cancellation_requested", "not_cancellable"]


@dataclass(frozen=True)
class CancelOutcome:
    """What a cancel did. ``outcome`` is one of:

    - ``cancelled``: the job is cancelled;
    - ``cancellation_requested``: the server accepted the cancel but the job had not ended yet
      when the client stopped following it (``client.cancel`` follows it for a while);
    - ``not_cancellable``: refused (the job was running or had ended; ``status`` says which).
    """

    request_id: str
    outcome: CancelWord
    status: str | None = None

    @property
    def cancelled(self) -> bool:
        """True when the job is known to be cancelled."""
        return self.outcome == "cancelled"

    @property
    def accepted(self) -> bool:
        """True unless the server refused the cancel."""
        return self.outcome != "not_cancellable"

    @classmethod
    def from_body(cls, body: Mapping[str, Any], request_id: str) -> CancelOutcome:
        text = body.get("status")
        status = normalise_status(text) or (text[:_SHOWN_TEXT] if isinstance(text, str) else None)
        word = body.get("outcome")
        word = word.strip().lower() if isinstance(word, str) else None
        if word in _CANCELLED or status == "cancelled":
            return cls(request_id, "cancelled", "cancelled")
        if word in _NOT_CANCELLABLE:
            return cls(request_id, "not_cancellable", status)
        # "cancellation_requested", or a word this client does not know: accepted for now,
        # and followed until the job's own state says how it ended.
        return cls(request_id, "cancellation_requested", status)

    def followed(self, last: JobStatus | None) -> CancelOutcome:
        """The outcome once the job was followed after an accepted cancel, to ``last``."""
        if self.outcome != "cancellation_requested" or last is None:
            return self
        if isinstance(last, Cancelled):
            return CancelOutcome(self.request_id, "cancelled", "cancelled")
        if last.done:
            return CancelOutcome(self.request_id, "not_cancellable", last.status)
        return CancelOutcome(self.request_id, "cancellation_requested", last.status)


@dataclass(frozen=True)
class DownloadProgress:
    """Progress of one file: bytes received so far of ``total`` (None when unknown)."""

    url: str
    path: Path
    received: int
    total: int | None
    done: bool = False


# Told of each download's progress (bytes so far, total when known).
ProgressCallback = Callable[["DownloadProgress"], None]


@dataclass(frozen=True)
class HandleData:
    """What a submit's answer says about the job (only ``request_id`` is certain)."""

    request_id: str
    model_id: str | None = None
    status_url: str | None = None
    result_url: str | None = None
    cancel_url: str | None = None

    @classmethod
    def from_submit(cls, body: Mapping[str, Any], call: Call) -> HandleData:
        """The job a submit created; SubmissionUncertainError when its id cannot be read."""
        request_id = body.get("request_id")
        if not isinstance(request_id, str) or not request_id.strip() or len(request_id) > 200:
            from ._errors import SubmissionUncertainError

            raise SubmissionUncertainError(
                "the submit's answer carries no usable request_id",
                model_id=call.model_id,
                fingerprint=call.fingerprint(),
            )
        return cls(
            request_id,
            call.model_id,
            _text_or_none(body.get("status_url")),
            _text_or_none(body.get("result_url")),
            _text_or_none(body.get("cancel_url")),
        )


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
