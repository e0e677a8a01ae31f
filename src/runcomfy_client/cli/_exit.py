"""Exit codes, one place: every command maps errors through here."""

from __future__ import annotations

from .. import _errors as e

OK = 0
JOB_FAILED = 1
USAGE = 2
AUTH = 3
NOT_FOUND = 4
UNAVAILABLE = 5
DEADLINE = 6
INTERRUPTED = 130

EXIT_CODES_HELP = (
    "Exit codes: 0 success; 1 job failed or cancelled; 2 usage, invalid input or a failed "
    "upload (nothing sent); "
    "3 authentication, permission or balance; 4 model or request not found; 5 rate limited or "
    "service unavailable after retries; 6 deadline reached (job still running; its id printed); "
    "130 interrupted."
)


def exit_code_for(exc: BaseException) -> int:
    """The documented exit code for an error."""
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED
    if isinstance(exc, e.DeadlineExceededError):
        return JOB_FAILED if exc.cancelled else DEADLINE
    if isinstance(exc, e.JobError):
        return JOB_FAILED
    if isinstance(
        exc,
        (
            e.InputValidationError,
            e.BadRequestError,
            e.ConfigurationError,
            e.SchemaError,
            e.UploadError,  # a local file could not be uploaded: the job was never submitted
            e.BatchInputError,
        ),
    ):
        return USAGE
    if isinstance(
        exc, (e.AuthenticationError, e.PermissionDeniedError, e.InsufficientBalanceError)
    ):
        return AUTH
    if isinstance(exc, (e.UnknownModelError, e.NotFoundError)):
        return NOT_FOUND
    if isinstance(exc, (e.RateLimitError, e.ServerError, e.TransportError)):
        return UNAVAILABLE
    return JOB_FAILED
