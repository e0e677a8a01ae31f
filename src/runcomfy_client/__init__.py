"""runcomfy_client: a JSON-Schema-driven client for the RunComfy Model API.

Each model's published input schema is a file; the runtime validates inputs against it before
anything is sent. See the README for a tour.
"""

from ._dialect import LintWarning
from ._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    DeadlineExceededError,
    DownloadError,
    DuplicateModelError,
    InputValidationError,
    InsufficientBalanceError,
    JobCancelledError,
    JobError,
    JobFailedError,
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
)
from ._registry import Field, ModelSchema, Registry
from ._validation import Problem, Validator
from ._version import __version__

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "DeadlineExceededError",
    "DownloadError",
    "DuplicateModelError",
    "Field",
    "InputValidationError",
    "InsufficientBalanceError",
    "JobCancelledError",
    "JobError",
    "JobFailedError",
    "LintWarning",
    "ModelSchema",
    "NotFoundError",
    "PermissionDeniedError",
    "Problem",
    "RateLimitError",
    "Registry",
    "ResponseDecodeError",
    "RunComfyError",
    "SchemaError",
    "ServerError",
    "SubmissionUncertainError",
    "TransportError",
    "UnknownModelError",
    "Validator",
    "__version__",
]
