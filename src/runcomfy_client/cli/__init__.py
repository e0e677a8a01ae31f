"""The ``runcomfy-client`` command line.

Exit codes: 0 success; 1 job failed or cancelled; 2 usage or invalid input (nothing sent);
3 authentication, permission or balance; 4 model or request not found; 5 rate limited or service
unavailable after retries; 6 deadline reached (job still running); 130 interrupted.
"""

from __future__ import annotations

import click

from .._version import __version__
from ._app import cli


def main() -> None:
    """Console-script entry point."""
    _exit_cleanly_on_sigterm()
    _log_warnings_safely()
    cli(prog_name="runcomfy-client")


def _log_warnings_safely() -> None:
    """The library's warnings (retries, ...) on stderr as plain lines, as Python's fallback
    would print them, but with the server's text in them made harmless for the terminal."""
    import logging

    from ._terminal import terminal_safe

    class SafeFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return terminal_safe(super().format(record))

    logger = logging.getLogger("runcomfy_client")
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setLevel(logging.WARNING)
        handler.setFormatter(SafeFormatter("%(message)s"))
        logger.addHandler(handler)


def _exit_cleanly_on_sigterm() -> None:
    """SIGTERM ends the program as an exception would: cleanup runs, no partial file is left.

    (Python's default is to die at once, skipping every ``finally``.) Exit status 143 as for a
    process killed by SIGTERM.
    """
    import signal

    def terminate(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, terminate)


__all__ = ["__version__", "cli", "click", "main"]
