"""The API key: where it comes from, checked when it is read, never shown.

Sources, first found wins: ``api_key=`` (the CLI: ``--api-key-file``/``RUNCOMFY_API_KEY_FILE``),
then ``RUNCOMFY_API_KEY``, ``RUNCOMFY_API_TOKEN`` and ``RUNCOMFY_TOKEN`` (the names RunComfy's own
CLI and ComfyUI nodes read). A key with a line break, a control character or a non-ASCII
character is refused with a message that names its source and never its value: such a key
cannot be sent, and the HTTP library's own error would quote the header it refused.
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from ._errors import ConfigurationError

__all__ = ["KEY_ENVS", "KeyFile", "Secret", "check_key", "read_key_file", "resolve_key"]

KEY_ENVS = ("RUNCOMFY_API_KEY", "RUNCOMFY_API_TOKEN", "RUNCOMFY_TOKEN")
_MAX_KEY_FILE = 64 * 1024  # a key file holds one line; anything larger is the wrong file
_MAX_KEY = 4096


class Secret:
    """Holds the API key so that no repr, str or log line can show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def hint(self) -> str:
        """Enough to tell two keys apart: the last 4 characters of a long key, else nothing."""
        if len(self._value) < 16:
            return f"{len(self._value)} characters"
        return f"ends in ...{self._value[-4:]}"

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


def check_key(value: str, source: str) -> str:
    """``value`` without surrounding whitespace, or ConfigurationError naming ``source``."""
    key = value.strip()
    problem = None
    for index, char in enumerate(key, start=1):
        if char in "\r\n":
            problem = f"a line break at character {index} (does it hold more than one line?)"
        elif not char.isascii():
            problem = f"a non-ASCII character at character {index}"
        elif not char.isprintable():
            problem = f"a control character at character {index}"
        if problem:
            break
    if problem is None and len(key) > _MAX_KEY:
        problem = f"{len(key)} characters, far more than any API key"
    if problem is not None:
        raise ConfigurationError(
            f"the API key from {source} has {problem}; an API key is one line of printable "
            "ASCII characters. It was not used and nothing was sent"
        )
    return key


def resolve_key(explicit: str | None, explicit_source: str = "api_key=") -> tuple[Secret, str]:
    """The key and where it came from (``""`` when there is none)."""
    if explicit is not None:
        return Secret(check_key(explicit, explicit_source)), explicit_source
    for name in KEY_ENVS:
        value = os.environ.get(name)
        if value and value.strip():
            return Secret(check_key(value, name)), name
    return Secret(""), ""


@dataclass(frozen=True)
class KeyFile:
    """A key read from a file (or stdin): the key, its source, and a warning to show if any."""

    key: str
    source: str
    warning: str | None = None


def read_key_file(path: str) -> KeyFile:
    """Read a key from ``path`` (``-``: the first line of stdin); checked, never echoed."""
    if path == "-":
        return KeyFile(check_key(sys.stdin.readline(_MAX_KEY_FILE), "stdin"), "stdin")
    source = f"the file {path}"
    file = Path(path).expanduser()
    try:
        with file.open("rb") as stream:
            info = os.fstat(stream.fileno())
            data = stream.read(_MAX_KEY_FILE + 1)
    except OSError as exc:
        raise ConfigurationError(f"cannot read the API key file {path}: {exc.strerror}") from None
    if len(data) > _MAX_KEY_FILE:
        raise ConfigurationError(f"{path} is not an API key file: it is over {_MAX_KEY_FILE} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigurationError(
            f"the API key from {source} is not text; an API key is one line of printable "
            "ASCII characters"
        ) from None
    key = check_key(text, source)
    if not key:
        raise ConfigurationError(f"{path} holds no API key")
    warning = None
    if os.name == "posix" and info.st_mode & (stat.S_IRGRP | stat.S_IROTH):
        mode = stat.S_IMODE(info.st_mode)
        warning = (
            f"the API key file {path} can be read by other users (mode {mode:04o}); "
            f"make it private with: chmod 600 {path}"
        )
    return KeyFile(key, source, warning)
