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
    cli(prog_name="runcomfy-client")


__all__ = ["__version__", "cli", "click", "main"]
