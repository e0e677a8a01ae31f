"""The emulator's own exceptions (it shares none with the client)."""

from __future__ import annotations

__all__ = ["JobCannotRunError", "ModelUnusableError"]


class JobCannotRunError(Exception):
    """A job cannot run (an input cannot be fetched or used); the message becomes its error."""


class ModelUnusableError(Exception):
    """A hosted model's files cannot be read or its schema cannot be checked; names the file."""
