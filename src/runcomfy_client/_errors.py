"""Every error the package raises, in one tree.

```
RunComfyError
├── ConfigurationError            bad client settings (no key, plain http to a remote host)
├── SchemaError                   a schema file that cannot be used (file, line or JSON pointer)
│   └── DuplicateModelError       two user files claim one model id
├── UnknownModelError             no schema for that model id (with did-you-mean)
├── InputValidationError          inputs fail the model's schema; nothing was sent
├── BatchInputError               lines of a batch file are invalid; nothing was submitted
├── APIError                      the API answered with an error
│   ├── BadRequestError           400 / 422: the server rejected the input
│   ├── AuthenticationError       401, error_code 400004
│   ├── PermissionDeniedError     403, error_code 403001
│   ├── InsufficientBalanceError  error_code 400002
│   ├── NotFoundError             404, error_code 400001 / 404001
│   ├── RateLimitError            429 after retries
│   └── ServerError               5xx after retries
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

from collections.abc import Sequence
from typing import Any

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BatchInputError",
    "ConfigurationError",
    "DeadlineExceededError",
    "DownloadError",
    "DuplicateModelError",
    "InputValidationError",
    "InsufficientBalanceError",
    "JobCancelledError",
    "JobError",
    "JobFailedError",
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

    def __init__(self, model_id: str, problems: Sequence[Any]) -> None:
        self.model_id = model_id
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"invalid input for {model_id} ({count} {noun}):\n{lines}")


class APIError(RunComfyError):
    """The API answered with an error.

    Attributes: ``status_code`` (HTTP), ``error_code`` (RunComfy's, when given),
    ``message``, ``detail`` and ``request_id`` (when known).
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
        parts = []
        if status_code is not None:
            parts.append(f"HTTP {status_code}")
        if error_code is not None:
            parts.append(f"error_code {error_code}")
        if request_id is not None:
            parts.append(f"request {request_id}")
        suffix = f" ({', '.join(parts)})" if parts else ""
        head, newline, rest = message.partition("\n")  # a detail list follows the first line
        super().__init__(f"{head}{suffix}{newline}{rest}")


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
    """The submit request was sent but its answer was lost.

    The server may have created the job: it was *not* resubmitted, so that nothing is paid
    for twice. Check the RunComfy dashboard, or submit again if a duplicate is acceptable.
    """


class JobError(RunComfyError):
    """The job ended without a usable result."""

    def __init__(self, message: str, *, request_id: str) -> None:
        self.request_id = request_id
        super().__init__(message)


class JobFailedError(JobError):
    """The job's status is ``failed``; ``error`` holds what the server said."""

    def __init__(self, request_id: str, error: Any) -> None:
        self.error = error
        super().__init__(f"job {request_id} failed: {error}", request_id=request_id)


class JobCancelledError(JobError):
    """The job was cancelled before it produced a result."""

    def __init__(self, request_id: str) -> None:
        super().__init__(f"job {request_id} was cancelled", request_id=request_id)


class DeadlineExceededError(JobError):
    """The whole-job deadline passed before the job finished.

    ``cancelled`` is True when the job was still queued and has been cancelled; False when
    it keeps running on the server (re-attach later with its ``request_id``).
    """

    def __init__(self, request_id: str, *, deadline: float, cancelled: bool, status: str) -> None:
        self.deadline = deadline
        self.cancelled = cancelled
        self.status = status
        if cancelled:
            tail = "it was still queued and has been cancelled"
        else:
            tail = (
                f"it was {status} and keeps running on the server; re-attach with "
                f"request id {request_id}"
            )
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

    def __init__(self, problems: Sequence[Any], *, shown: int = 50) -> None:
        self.problems = list(problems)
        lines = [f"  {p}" for p in self.problems[:shown]]
        if len(self.problems) > shown:
            lines.append(f"  ... and {len(self.problems) - shown} more")
        count = len({p.line for p in self.problems})
        noun = "line is" if count == 1 else "lines are"
        super().__init__(f"{count} {noun} invalid; nothing was submitted:\n" + "\n".join(lines))


class WebhookError(RunComfyError, ValueError):
    """A webhook body that is not a RunComfy event (not JSON, no request_id or status)."""
