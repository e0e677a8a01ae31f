"""Every error the package raises, in one tree.

```
RunComfyError
├── ConfigurationError            bad client settings (no key, plain http to a remote host)
│   └── MissingExtraError         a feature's optional extra is not installed (it is named)
├── SchemaError                   a schema file that cannot be used (file, line or JSON pointer)
│   └── DuplicateModelError       two user files claim one model id
├── UnknownModelError             no schema for that model id (with did-you-mean)
├── InputValidationError          inputs fail the model's schema; nothing was sent
├── BatchInputError               lines of a batch file are invalid; nothing was submitted
├── APIError                      the API answered with an error
│   ├── BadRequestError           400 / 422, error_code 422001: the server rejected the input
│   ├── AuthenticationError       401, error_code 400004 / 401001
│   ├── PermissionDeniedError     403, error_code 403001 / 403003; 10002 (disabled deployment)
│   ├── InsufficientBalanceError  error_code 400002 / 10001
│   ├── NotFoundError             404, error_code 400001 / 404001; 10003 (deleted deployment)
│   ├── RateLimitError            429 after retries
│   └── ServerError               5xx (error_code 500001) after retries
├── TransportError                no usable answer from the API
│   ├── APIConnectionError        the connection failed
│   ├── APITimeoutError           the API did not answer in time
│   ├── ResponseDecodeError       the answer was not the JSON the protocol promises
│   └── SubmissionUncertainError  the submit was sent but its answer was lost: a job may exist
├── JobError                      the job ended without a usable result
│   ├── JobFailedError            status failed, with the server's error
│   ├── JobCancelledError         status cancelled
│   └── DeadlineExceededError     the whole-job deadline passed (says if it was cancelled)
├── DownloadError                 an output could not be saved
├── UploadError                   a local input file could not be uploaded; nothing was submitted
└── WebhookError                  a webhook body that is not a RunComfy event
```

Messages never include the API key: it is not passed to any of these classes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._problem import Problem
    from ._types import ErrorInfo
    from .batch import LineProblem

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BatchInputError",
    "BatchStorageError",
    "ConfigurationError",
    "DeadlineExceededError",
    "DownloadError",
    "DuplicateModelError",
    "InputValidationError",
    "InsufficientBalanceError",
    "JobCancelledError",
    "JobError",
    "JobFailedError",
    "MissingExtraError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseDecodeError",
    "RunComfyError",
    "SchemaError",
    "ServerError",
    "SubmissionUncertainError",
    "TransportError",
    "UnknownModelError",
    "UploadError",
    "WebhookError",
]


class RunComfyError(Exception):
    """Base class of every error raised by runcomfy_client."""


class ConfigurationError(RunComfyError, ValueError):
    """The client was configured in a way that cannot work."""


class MissingExtraError(ConfigurationError, ImportError):
    """A feature needs an optional extra that is not installed; the message names it."""

    def __init__(self, extra: str, feature: str, distribution: str) -> None:
        self.extra = extra
        self.distribution = distribution
        super().__init__(
            f"{feature} needs the '{extra}' extra ({distribution} is not installed): "
            f"pip install 'runcomfy-client[{extra}]' (from a clone of the repository: "
            f"pip install '.[{extra}]', or make install for every extra)"
        )


class SchemaError(RunComfyError):
    """A schema file cannot be used. ``file`` and ``pointer``/``line`` say where."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        pointer: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.file = file
        self.pointer = pointer
        self.line = line
        self.column = column
        self.reason = message
        where = file or "<schema>"
        if line is not None:
            where += f":{line}:{column or 1}"
        if pointer is not None:
            where += f" at {pointer or '/'}"
        super().__init__(f"{where}: {message}")


class DuplicateModelError(SchemaError):
    """Two schema files in the user's folders define the same model id."""

    def __init__(self, model_id: str, files: Sequence[str]) -> None:
        self.model_id = model_id
        self.files = tuple(files)
        super().__init__(
            f"model id {model_id!r} is defined by more than one file: "
            + ", ".join(self.files)
            + "; keep one or move the other out of RUNCOMFY_SCHEMA_PATH",
            file=self.files[0],
        )


class UnknownModelError(RunComfyError, LookupError):
    """No schema is known for the model id."""

    def __init__(self, model_id: str, suggestions: Sequence[str] = ()) -> None:
        self.model_id = model_id
        self.suggestions = tuple(suggestions)
        message = f"unknown model {model_id!r}"
        if self.suggestions:
            message += "; did you mean " + " or ".join(repr(s) for s in self.suggestions) + "?"
        message += (
            " (list models with `runcomfy-client models`; add a schema folder with "
            "RUNCOMFY_SCHEMA_PATH)"
        )
        super().__init__(message)


class InputValidationError(RunComfyError, ValueError):
    """The inputs do not match the model's schema. Nothing was sent.

    ``problems`` holds one :class:`~runcomfy_client.Problem` per thing that is wrong.
    """

    def __init__(self, model_id: str, problems: Sequence[Problem]) -> None:
        self.model_id = model_id
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"invalid input for {model_id} ({count} {noun}):\n{lines}")


class APIError(RunComfyError):
    """The API answered with an error.

    Attributes: ``status_code`` (HTTP), ``error_code`` (RunComfy's, when given),
    ``message``, ``detail`` (as the server sent it: text, object or list; shown in the message,
    item by item for a list) and ``request_id`` (when known).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_code: int | None = None,
        detail: Any = None,
        request_id: str | None = None,
    ) -> None:
        self.message = message
        self.status_code = status_code
        self.error_code = error_code
        self.detail = detail
        self.request_id = request_id
        super().__init__(self._text())

    def _text(self) -> str:
        parts = []
        if self.status_code is not None:
            parts.append(f"HTTP {self.status_code}")
        if self.error_code is not None:
            parts.append(f"error_code {self.error_code}")
        if self.request_id is not None:
            parts.append(f"request {self.request_id}")
        suffix = f" ({', '.join(parts)})" if parts else ""
        return f"{self.message}{suffix}{format_detail(self.detail)}"

    def add_note_to_message(self, note: str) -> None:
        """Append ``note`` to the message (and so to ``str(error)``)."""
        self.message = f"{self.message}{note}"
        self.args = (self._text(),)


_DETAIL_ITEMS = 20  # list items shown in a message; the rest are counted
_DETAIL_CHARS = 300  # characters of one shown item


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= _DETAIL_CHARS else text[: _DETAIL_CHARS - 3] + "..."


def _detail_item(item: Any) -> str:
    # FastAPI-style {"loc": [...], "msg": ...}, the emulator's own, or anything else.
    if isinstance(item, Mapping):
        msg = item.get("msg", item.get("message"))
        loc = item.get("loc", item.get("field"))
        if msg is not None:
            if isinstance(loc, (list, tuple)):
                loc = ".".join(str(part) for part in loc if part not in ("body", "query"))
            return f"{_short(loc)}: {_short(msg)}" if loc else _short(msg)
    return _short(item)


def format_detail(detail: Any) -> str:
    """An error's ``detail`` for its message: text after a colon, a list or object line by line."""
    if detail is None or detail in ("", [], {}):
        return ""
    if isinstance(detail, str):
        return f": {_short(detail)}"
    if isinstance(detail, Mapping) and not {"msg", "message"} & set(detail):
        items = [f"{_short(k)}: {_short(v)}" for k, v in list(detail.items())[:_DETAIL_ITEMS]]
        extra = len(detail) - len(items)
    elif isinstance(detail, (list, tuple)):
        items = [_detail_item(item) for item in detail[:_DETAIL_ITEMS]]
        extra = len(detail) - len(items)
    else:
        items, extra = [_detail_item(detail)], 0
    lines = [f"\n  - {item}" for item in items]
    if extra > 0:
        lines.append(f"\n  ... and {extra} more")
    return "".join(lines)


class BadRequestError(APIError):
    """The server rejected the request's input (400 or 422)."""


class AuthenticationError(APIError):
    """The API key is missing, wrong or its account has a problem."""


class PermissionDeniedError(APIError):
    """The key is valid but may not do this."""


class InsufficientBalanceError(APIError):
    """The account has no balance left for this job."""


class NotFoundError(APIError):
    """The model id or request id is unknown to the server (or has expired)."""


class RateLimitError(APIError):
    """The API kept answering 429 after every retry."""


class ServerError(APIError):
    """The API kept answering 5xx after every retry."""


class TransportError(RunComfyError):
    """No usable answer came back from the API."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        self.request_id = request_id
        super().__init__(message)


class APIConnectionError(TransportError):
    """The connection to the API failed (after retries where retrying was safe)."""


class APITimeoutError(TransportError):
    """The API did not answer within the configured timeout."""


class ResponseDecodeError(TransportError):
    """The API answered something that is not the JSON the protocol promises."""


class SubmissionUncertainError(TransportError):
    """The submit request was sent but no usable answer came back.

    The server may have created the job: it was *not* resubmitted, so that nothing is paid
    for twice. ``model_id`` and ``fingerprint`` (the first characters of the SHA-256 of the model
    id and payload) say which job to look for in your RunComfy requests before submitting again.
    Without a ``model_id`` (a request that is not a model's submit) the message is used as given.
    """

    def __init__(
        self, reason: str, *, model_id: str | None = None, fingerprint: str | None = None
    ) -> None:
        self.reason = reason
        self.model_id = model_id
        self.fingerprint = fingerprint
        if model_id is None:
            super().__init__(reason)
            return
        which = f"a job of {model_id}"
        if fingerprint:
            which += f" (inputs fingerprint {fingerprint})"
        super().__init__(
            f"{reason}; {which} may have been created and was NOT resubmitted, so nothing is "
            "paid for twice. Check your RunComfy requests (dashboard) for it before "
            "submitting again"
        )


class JobError(RunComfyError):
    """The job ended without a usable result."""

    def __init__(self, message: str, *, request_id: str) -> None:
        self.request_id = request_id
        super().__init__(message)


class JobFailedError(JobError):
    """The job's status is ``failed``.

    ``error`` is what the server said (an :class:`~runcomfy_client.ErrorInfo`, or None when it
    gave no reason); ``error_code``, ``error_message`` and ``detail`` are its parts.
    """

    def __init__(self, request_id: str, error: ErrorInfo | None) -> None:
        self.error = error
        self.error_code = error.code if error is not None else None
        self.error_message = error.message if error is not None else None
        self.detail = error.detail if error is not None else None
        reason = f": {error}" if error is not None else "; the server gave no reason"
        super().__init__(f"job {request_id} failed{reason}", request_id=request_id)


class JobCancelledError(JobError):
    """The job was cancelled before it produced a result."""

    def __init__(self, request_id: str) -> None:
        super().__init__(f"job {request_id} was cancelled", request_id=request_id)


def reattach_hint(request_id: str) -> str:
    """How to pick up a job again later, from a shell or from Python."""
    return (
        f"re-attach with: runcomfy-client wait {request_id} (then runcomfy-client result "
        f"{request_id} --out DIR), or client.attach({request_id!r}).wait()"
    )


class DeadlineExceededError(JobError):
    """The whole-job deadline passed before the job finished.

    ``cancelled`` is True when the job was still queued and has been cancelled; False when
    it keeps running on the server (re-attach later with its ``request_id``), when its
    cancellation was requested but not yet confirmed (``status`` is then
    ``"cancellation requested"``), or when the API could not be reached before the deadline
    (``status`` is then ``"unknown"``).
    """

    def __init__(
        self,
        request_id: str,
        *,
        deadline: float,
        cancelled: bool,
        status: str,
        unreachable: str | None = None,
    ) -> None:
        self.deadline = deadline
        self.cancelled = cancelled
        self.status = status
        if unreachable is not None:
            tail = (
                f"its state is unknown, as {unreachable}; it may still be running on the "
                f"server. {reattach_hint(request_id)}"
            )
        elif cancelled:
            tail = "it was still queued and has been cancelled"
        elif status == "cancellation requested":
            tail = (
                "it was still queued; its cancellation was accepted but the job had not ended "
                f"yet (check with: runcomfy-client status {request_id})"
            )
        else:
            tail = f"it was {status} and keeps running on the server; {reattach_hint(request_id)}"
        super().__init__(
            f"job {request_id} did not finish within {deadline:g} s: {tail}",
            request_id=request_id,
        )


class DownloadError(RunComfyError):
    """An output file could not be downloaded and saved."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        self.url = url
        super().__init__(message)


class UploadError(RunComfyError):
    """A local file could not be uploaded by the configured uploader. No job was submitted."""


class BatchInputError(RunComfyError, ValueError):
    """Lines of a batch file are invalid; nothing was submitted.

    ``problems`` holds one ``runcomfy_client.batch.LineProblem`` (line number and message) per
    thing wrong; the message lists them, line by line.
    """

    def __init__(self, problems: Sequence[LineProblem], *, shown: int = 50) -> None:
        self.problems = list(problems)
        lines = [f"  {p}" for p in self.problems[:shown]]
        if len(self.problems) > shown:
            lines.append(f"  ... and {len(self.problems) - shown} more")
        count = len({p.line for p in self.problems})
        noun = "line is" if count == 1 else "lines are"
        super().__init__(f"{count} {noun} invalid; nothing was submitted:\n" + "\n".join(lines))


class BatchStorageError(ConfigurationError):
    """A batch's journal or output folder cannot be used: damaged, another program's or another
    batch's, in use by another run, or a write failed (a full disk). Nothing more is submitted.

    ``unrecorded`` maps line numbers to the request ids of jobs that were created but could not
    be written to the journal (the message names them; a resume reports those lines as
    uncertain and does not submit them again).
    """

    def __init__(self, message: str, *, unrecorded: Mapping[int, str] | None = None) -> None:
        self.unrecorded = unrecorded if unrecorded is not None else {}
        super().__init__(message)


class WebhookError(RunComfyError, ValueError):
    """A webhook body that is not a RunComfy event (not JSON, no request_id or status)."""
