"""What the job commands print about a job: one JSON document, or plain lines.

Every ``--json`` document about a job (run, wait, result, status, cancel, batch lines) is
:func:`runcomfy_client.job_document`'s shape, also when the job failed, was cancelled or is
still running; :func:`failure_document` builds it from the exception that said so. Plain lines
pass every server-provided string through :func:`terminal_safe`.
"""

from __future__ import annotations

from typing import Any

import click

from .. import _errors as e
from .._types import ErrorInfo, Failed, JobStatus, Queued, job_document
from ._terminal import terminal_safe

__all__ = ["echo_cost", "echo_safe", "failure_document", "failure_line", "money", "status_line"]


def failure_document(exc: e.JobError, *, status: str | None = None) -> dict[str, Any]:
    """The document for a job that ended without outputs, or whose deadline passed first."""
    error: ErrorInfo | None = ErrorInfo(None, str(exc))
    if isinstance(exc, e.JobFailedError):
        state = "failed"
        error = exc.error or ErrorInfo(None, "the server gave no reason")
    elif isinstance(exc, e.JobCancelledError):
        state, error = "cancelled", None
    elif isinstance(exc, e.DeadlineExceededError):
        state = "cancelled" if exc.cancelled else "in_progress"
    else:
        state = status or "unknown"
    return job_document(exc.request_id, status or state, error=error)


def money(usd: float | None) -> str:
    """``$0.50``; amounts under a cent keep their digits (``$0.004``); nothing for None."""
    if usd is None:
        return ""
    return f"${usd:.2f}" if usd == 0 or abs(usd) >= 0.01 else f"${usd:.4g}"


def echo_cost(usd: float | None) -> None:
    """``cost: $0.50`` on stderr (stdout keeps the paths and URLs) when the API reported one."""
    if usd is not None:
        click.echo(f"cost: {money(usd)}", err=True)


def status_line(status: JobStatus) -> str:
    """``ID  in_queue (position 2)``, ``ID  failed: message (error_code N)``: one line."""
    extra = ""
    if isinstance(status, Queued) and status.position is not None:
        extra = f" (position {status.position})"
    elif isinstance(status, Failed) and status.error is not None:
        extra = f": {status.error}"
    return terminal_safe(f"{status.request_id}  {status.status}{extra}")


def failure_line(exc: e.JobError) -> str:
    """The plain line for a job that ended without outputs."""
    if isinstance(exc, e.JobFailedError):
        reason = f": {exc.error}" if exc.error is not None else " (the server gave no reason)"
        return terminal_safe(f"{exc.request_id}  failed{reason}")
    if isinstance(exc, e.JobCancelledError):
        return terminal_safe(f"{exc.request_id}  cancelled")
    return terminal_safe(str(exc))


def echo_safe(text: str, *, err: bool = False) -> None:
    """click.echo for text holding server-provided strings (URLs, names, messages)."""
    click.echo(terminal_safe(text), err=err)
