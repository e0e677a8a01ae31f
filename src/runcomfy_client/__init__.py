"""runcomfy_client: a JSON-Schema-driven client for the RunComfy Model API.

Each model's published input schema is a file; the runtime validates inputs against it before
anything is sent. See the README for a tour.
"""

from typing import TYPE_CHECKING, Any

from ._client import (
    AsyncClient,
    AsyncDeploymentClient,
    AsyncRequestHandle,
    AsyncResult,
    Client,
    DeploymentClient,
    RequestHandle,
    SyncResult,
)
from ._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BatchInputError,
    BatchStorageError,
    ConfigurationError,
    DeadlineExceededError,
    DownloadError,
    DuplicateModelError,
    InputValidationError,
    InsufficientBalanceError,
    JobCancelledError,
    JobError,
    JobFailedError,
    MissingExtraError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseDecodeError,
    RunComfyError,
    SchemaError,
    ServerError,
    SubmissionUncertainError,
    TransportError,
    UnknownModelError,
    UploadError,
    WebhookError,
)
from ._not_given import NOT_GIVEN, NotGiven
from ._retry import RetryPolicy
from ._types import (
    Cancelled,
    CancelOutcome,
    Completed,
    DownloadProgress,
    Ended,
    ErrorInfo,
    Failed,
    InProgress,
    JobState,
    JobStatus,
    Output,
    OutputFile,
    Queued,
    Result,
    job_document,
)
from ._version import __version__

if TYPE_CHECKING:
    from ._dialect import LintWarning
    from ._download_policy import RUNCOMFY_OUTPUT_HOSTS, DownloadPolicy
    from ._polling import PollingPolicy, PollingSettings, PollObservation
    from ._polling_memory import PollingMemory
    from ._registry import Field, ModelSchema, Registry
    from ._validation import Problem, Validator

# Loaded on first use, not on import: `from runcomfy_client import Client` stays light (the
# validator brings jsonschema; the others are only needed once a client is made).
_LAZY = {
    "LintWarning": "_dialect",
    "RUNCOMFY_OUTPUT_HOSTS": "_download_policy",
    "DownloadPolicy": "_download_policy",
    "PollingPolicy": "_polling",
    "PollingSettings": "_polling",
    "PollObservation": "_polling",
    "PollingMemory": "_polling_memory",
    "Field": "_registry",
    "ModelSchema": "_registry",
    "Registry": "_registry",
    "Problem": "_validation",
    "Validator": "_validation",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


__all__ = [
    "NOT_GIVEN",
    "RUNCOMFY_OUTPUT_HOSTS",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AsyncClient",
    "AsyncDeploymentClient",
    "AsyncRequestHandle",
    "AsyncResult",
    "AuthenticationError",
    "BadRequestError",
    "BatchInputError",
    "BatchStorageError",
    "CancelOutcome",
    "Cancelled",
    "Client",
    "Completed",
    "ConfigurationError",
    "DeadlineExceededError",
    "DeploymentClient",
    "DownloadError",
    "DownloadPolicy",
    "DownloadProgress",
    "DuplicateModelError",
    "Ended",
    "ErrorInfo",
    "Failed",
    "Field",
    "InProgress",
    "InputValidationError",
    "InsufficientBalanceError",
    "JobCancelledError",
    "JobError",
    "JobFailedError",
    "JobState",
    "JobStatus",
    "LintWarning",
    "MissingExtraError",
    "ModelSchema",
    "NotFoundError",
    "NotGiven",
    "Output",
    "OutputFile",
    "PermissionDeniedError",
    "PollObservation",
    "PollingMemory",
    "PollingPolicy",
    "PollingSettings",
    "Problem",
    "Queued",
    "RateLimitError",
    "Registry",
    "RequestHandle",
    "ResponseDecodeError",
    "Result",
    "RetryPolicy",
    "RunComfyError",
    "SchemaError",
    "ServerError",
    "SubmissionUncertainError",
    "SyncResult",
    "TransportError",
    "UnknownModelError",
    "UploadError",
    "Validator",
    "WebhookError",
    "__version__",
    "job_document",
]
