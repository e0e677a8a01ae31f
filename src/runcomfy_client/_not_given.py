"""The one "not given" marker of the package (``NOT_GIVEN``), told apart from ``None``."""

from __future__ import annotations

from typing import ClassVar, Final

__all__ = ["NOT_GIVEN", "NotGiven"]


class NotGiven:
    """The default of every optional keyword in a generated wrapper: "not passed".

    A keyword left ``NOT_GIVEN`` is not sent, so the server's own default applies (the docs of
    each parameter say what it is). ``None`` would be a value, and most fields do not accept it.
    Internally it marks any field whose value was not given (an overlay's absent default).
    """

    _instance: ClassVar[NotGiven | None] = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOT_GIVEN"

    def __bool__(self) -> bool:
        return False


NOT_GIVEN: Final = NotGiven()
