"""What a model id may be: the one check used by ``schema add``, page reading and the registry.

A model id is also a relative file path (``schemas/<id>.json``), so it must be safe as one on
every system. Published ids are not always slugs (``minimax/Hailuo Video 01 Live``): spaces
inside a segment are kept, never trimmed or shortened; what is refused is what could not be a
file name or could hide something (control characters, ``..``, hidden segments, a huge length).
"""

from __future__ import annotations

from ._errors import SchemaError

__all__ = ["MAX_MODEL_ID", "MODEL_ID_PATTERN", "check_model_id", "model_id_problem"]

MAX_MODEL_ID = 200
"""Characters in a whole id; published ones are under 80."""
MAX_SEGMENT = 100
# Not in file names on some system, or path syntax.
_FORBIDDEN = frozenset('\\:*?"<>|')
MODEL_ID_PATTERN = (
    "segments joined by '/', each of printable characters (spaces inside are fine) without "
    "\\ : * ? \" < > |, not starting with '.' nor starting or ending with a space; at most "
    f"{MAX_MODEL_ID} characters"
)


def model_id_problem(model_id: object) -> str | None:
    """Why ``model_id`` cannot be a model id, or None when it can."""
    if not isinstance(model_id, str):
        return f"a model id is a string, not {type(model_id).__name__}"
    if not model_id:
        return "the id is empty"
    if len(model_id) > MAX_MODEL_ID:
        return f"the id is {len(model_id):,} characters long; at most {MAX_MODEL_ID} are allowed"
    bad = next((c for c in model_id if not c.isprintable()), None)
    if bad is not None:
        return f"the id holds a control or invisible character ({bad!r})"
    bad = next((c for c in model_id if c in _FORBIDDEN), None)
    if bad is not None:
        return f"the id holds {bad!r}, which cannot be part of a file name"
    for segment in model_id.split("/"):
        if not segment:
            return "the id has an empty segment (a leading, trailing or doubled '/')"
        if segment.startswith("."):
            return f"segment {segment!r} starts with '.' (hidden files and '..' are refused)"
        if segment != segment.strip():
            return f"segment {segment!r} starts or ends with a space"
        if len(segment.encode("utf-8")) > MAX_SEGMENT:
            return f"segment {segment[:20]!r}... is longer than {MAX_SEGMENT} bytes"
    return None


def check_model_id(model_id: str, *, file: str | None = None) -> str:
    """``model_id`` when it is usable; else :class:`SchemaError` saying why."""
    problem = model_id_problem(model_id)
    if problem is not None:
        shown = model_id if len(model_id) <= 60 else model_id[:57] + "..."
        raise SchemaError(f"{shown!r} is not a usable model id: {problem}", file=file)
    return model_id
