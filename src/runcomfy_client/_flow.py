"""Flows: the client's work written once, as generators that ask for I/O and get the answers.

In the spirit of httpx's ``auth_flow``: a flow is a generator that yields *effects* (send this
request, sleep this long, report this status ...) and is sent back each effect's answer, or has
the effect's exception thrown into it, until it returns its value. A flow does no I/O and reads
time only from the clock it is given, so every branch of it runs in tests on scripted answers
and a virtual clock. Two drivers perform the effects: :class:`~._drivers.SyncDriver` (blocking
httpx) and :class:`~._drivers.AsyncDriver` (asyncio). They are the only code that differs
between ``Client`` and ``AsyncClient``.

The loops below are the whole contract between a flow and a driver: :func:`steps` and
:func:`asteps` advance a flow, hand ``Report`` effects to the caller and every other effect to the
driver's ``handle``. Anything ``handle`` raises (a connection error, a cancellation, Ctrl-C) is
thrown into the flow at the ``yield`` that asked for it, so a flow's ``except`` and ``finally``
see it where it happened.

Writing a flow for another API: build its :class:`~._protocol.Call` values and ``yield from
send(core, call)`` (``_lifecycle``) to get an answer through the same retries and errors.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Mapping
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

if TYPE_CHECKING:
    from pathlib import Path

    import httpx

    from ._download_flow import Transfer
    from ._download_policy import Address, Target
    from ._protocol import Call

__all__ = [
    "Answer",
    "Close",
    "Detach",
    "Effect",
    "Exchange",
    "Flow",
    "Offload",
    "Open",
    "Read",
    "Report",
    "Resolve",
    "Shielded",
    "Sleep",
    "asteps",
    "steps",
]

T = TypeVar("T")
R = TypeVar("R")


# -- effects: what a flow may ask of its driver ------------------------------------------------
# NamedTuples, not dataclasses: a dataclass costs several times as much to define (at import)
# and to build (one per request). Drivers tell them apart with isinstance, never by equality.


class Exchange(NamedTuple):
    """Send one API request; the answer is an :class:`Answer` (an httpx error is thrown in)."""

    call: Call
    url: str
    headers: Mapping[str, str]  # carries the API key: never shown (see __repr__)
    timeout: httpx.Timeout
    budget: float | None = None  # seconds the whole exchange may take: its read is cut then

    def __repr__(self) -> str:
        call, url, budget = self.call, self.url, self.budget
        return f"Exchange(call={call!r}, url={url!r}, headers=<hidden>, budget={budget!r})"


class Answer(NamedTuple):
    """An API answer: its status and headers, and its body (None: longer than the call allows,
    and not read further)."""

    response: httpx.Response
    content: bytes | None


class Sleep(NamedTuple):
    """Wait ``seconds`` (on the client's clock: a virtual one in tests)."""

    seconds: float


class Report(NamedTuple, Generic[R]):
    """Hand ``value`` to the caller (a job's new status) and go on; the answer is None."""

    value: R


class Offload(NamedTuple, Generic[R]):
    """Run blocking work (uploads): one after the other when sync, in worker threads when
    async. The answer is the list of their results, in order."""

    tasks: tuple[Callable[[], R], ...]


class Shielded(NamedTuple, Generic[R]):
    """Run ``flow`` to its end even if the caller is stopped meanwhile (a batch's submit): when
    stopped, wait up to ``grace`` seconds for it, hand its value to ``late``, then stop."""

    flow: Flow[R]
    grace: float
    late: Callable[[R], None]


# Downloads: one transfer's network steps. Streams are the drivers' own objects.


class Resolve(NamedTuple):
    """Look up the addresses of a download's current host."""

    target: Target


class Open(NamedTuple):
    """Send the transfer's GET; the answer is a stream with ``status``, ``headers``, ``peer``.
    ``addresses`` (checked) pin the connection: the fast reader is used, which only a blocking
    driver has."""

    transfer: Transfer
    addresses: list[Address] | None = None


class Read(NamedTuple):
    """The next piece of an open stream's body, or None at its end."""

    stream: object


class Close(NamedTuple):
    """Release a stream (always asked for, whatever happened)."""

    stream: object


class Detach(NamedTuple):
    """Run a transfer's flow where blocking reads are fine: inline when sync, on a thread of
    its own when async (a cancel cuts its connection; progress callbacks stay on the loop)."""

    flow: Flow[Path]
    transfer: Transfer


Effect = (
    Exchange
    | Sleep
    | Report[Any]
    | Offload[Any]
    | Shielded[Any]
    | Resolve
    | Open
    | Read
    | Close
    | Detach
)
# A flow yields effects, is sent their answers, and returns a T. The answers' types depend on
# the effect, so the send type is Any inside flows (typed again where they return).
Flow = Generator[Effect, Any, T]


# -- the two loops -----------------------------------------------------------------------------


class _Cursor(Generic[T]):
    """A flow being advanced: its next effect, given the last one's answer or error."""

    __slots__ = ("answer", "error", "flow", "value")

    def __init__(self, flow: Flow[T]) -> None:
        self.flow = flow
        self.answer: object = None
        self.error: BaseException | None = None

    def next(self) -> Effect | None:
        """The flow's next effect (None once it returned: its value is in ``value``)."""
        answer, error = self.answer, self.error
        self.answer, self.error = None, None
        try:
            return self.flow.send(answer) if error is None else self.flow.throw(error)
        except StopIteration as stop:
            self.value: T = stop.value
            return None

    def settle(self, handle: Callable[[Effect], object], effect: Effect) -> None:
        """Perform ``effect`` with a blocking ``handle``; what it raised goes to the flow."""
        try:
            self.answer = handle(effect)
        except BaseException as exc:  # noqa: BLE001 - thrown into the flow, where it arose
            self.error = exc

    async def asettle(self, handle: Callable[[Effect], Awaitable[object]], effect: Effect) -> None:
        """:meth:`settle` for an awaited ``handle`` (a cancellation goes to the flow too)."""
        try:
            self.answer = await handle(effect)
        except BaseException as exc:  # noqa: BLE001 - thrown into the flow, where it arose
            self.error = exc


def steps(flow: Flow[T], handle: Callable[[Effect], object]) -> Generator[Any, None, T]:
    """Advance ``flow`` with a blocking ``handle``; yields what it reports, returns its value."""
    cursor = _Cursor(flow)
    try:
        while (effect := cursor.next()) is not None:
            if type(effect) is Report:
                yield effect.value
            else:
                cursor.settle(handle, effect)
        return cursor.value
    finally:
        flow.close()


async def asteps(
    flow: Flow[T], handle: Callable[[Effect], Awaitable[object]], cursor: _Cursor[T] | None = None
) -> AsyncGenerator[Any, None]:
    """:func:`steps` for an awaited ``handle``; the value is left in ``cursor``."""
    cursor = cursor or _Cursor(flow)
    try:
        while (effect := cursor.next()) is not None:
            if type(effect) is Report:
                yield effect.value
            else:
                await cursor.asettle(handle, effect)
    finally:
        flow.close()


def run(
    flow: Flow[T], handle: Callable[[Effect], object], on_report: Callable[[Any], None] | None
) -> T:
    """Drive ``flow`` to its value; each report goes to ``on_report``."""
    stepping = steps(flow, handle)
    try:
        while True:
            try:
                value = next(stepping)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            if on_report is not None:
                on_report(value)
    finally:
        stepping.close()  # a report's callback raised: the flow's own cleanup runs now


async def arun(
    flow: Flow[T],
    handle: Callable[[Effect], Awaitable[object]],
    on_report: Callable[[Any], None] | None,
) -> T:
    """:func:`run` for an awaited ``handle``."""
    cursor = _Cursor(flow)
    stepping = asteps(flow, handle, cursor)
    try:
        async for value in stepping:
            if on_report is not None:
                on_report(value)
    finally:
        await stepping.aclose()
    return cursor.value
