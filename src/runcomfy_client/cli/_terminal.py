"""Text from a server, made harmless before it reaches a terminal.

Error messages, statuses, URLs and file names come from the API's answers. A control character
in them (an ESC sequence that recolours, moves the cursor or retitles the window, a carriage
return that overwrites the line, a bidi override that reorders it) is shown as a visible escape
(``\\x1b``) instead of being obeyed. Newlines and tabs stay: messages are multi-line.
"""

from __future__ import annotations

import re

__all__ = ["json_safe", "terminal_safe"]

# C0 controls but tab and newline, DEL and C1 controls, and Unicode's direction controls.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# What json.dumps(ensure_ascii=False) leaves raw: it escapes only C0 itself.
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: str) -> str:
    """``text`` with every control character but newline and tab shown as an escape."""
    return _UNSAFE.sub(_escape, text)


def json_safe(document: str) -> str:
    """A JSON document with the controls JSON leaves raw written as ``\\uXXXX`` escapes."""
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", document)
