"""Receiving RunComfy's Serverless webhooks without a web framework.

RunComfy POSTs a JSON event to your webhook each time a job changes state (with
``webhook_intermediate_status``) or only when it ends. Delivery is at least once and unordered:
an event may come twice, an ``in_progress`` may arrive after the final ``succeeded``, and a
final event may never come at all. RunComfy's advice is to pair webhooks with polling. This
module does the bookkeeping:

- :func:`parse_event` reads one body into a :class:`WebhookEvent` (statuses normalised by the
  client's one status table: ``succeeded`` is ``completed``, ``canceled`` is ``cancelled``);
- :class:`WebhookInbox` keeps each job's latest state: a repeat (same request id and status)
  is a duplicate, an earlier state arriving after a later one is stale and not applied, and a
  job's first final state is the only one it ever gets (``on_final`` is called once per job);
- :class:`Reconciler` polls the jobs whose final event has not come within a while, with a
  poll function you give it (sync or async), and feeds the answers into the inbox;
- :func:`serve` runs a small stdlib HTTP receiver (``runcomfy-client webhooks listen``).

Use it from any framework: hand the request body to ``inbox.receive(body)`` and answer 2xx.
"""

from __future__ import annotations

import inspect
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ._errors import RunComfyError, WebhookError
from ._types import JobStatus, parse_status

__all__ = [
    "Delivery",
    "PendingJob",
    "Reconciler",
    "WebhookEvent",
    "WebhookInbox",
    "parse_event",
    "serve",
]

logger = logging.getLogger("runcomfy_client")

MAX_BODY_BYTES = 16 * 1024 * 1024
# How far along a job is: a state never replaces one further along.
_RANK = {"in_queue": 0, "in_progress": 1}
_FINAL_RANK = 2


@dataclass(frozen=True)
class WebhookEvent:
    """One state of one job, from a webhook (or a poll, ``source="poll"``)."""

    request_id: str
    status: str
    """Normalised: ``in_queue``, ``in_progress``, ``completed``, ``failed`` or ``cancelled``."""
    deployment_id: str | None
    sent_status: str
    """The status as RunComfy spelled it (``succeeded``, ``canceled``...)."""
    body: Mapping[str, Any] = field(repr=False)
    source: str = "webhook"

    @property
    def final(self) -> bool:
        return self.state.done

    @property
    def state(self) -> JobStatus:
        return parse_status(self.body, self.request_id)

    @property
    def outputs(self) -> Mapping[str, Any]:
        outputs = self.body.get("outputs")
        return outputs if isinstance(outputs, Mapping) else {}

    @property
    def error(self) -> Any:
        return self.body.get("error")

    def as_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "deployment_id": self.deployment_id,
            "status": self.status,
            "sent_status": self.sent_status,
            "final": self.final,
            "source": self.source,
            "body": dict(self.body),
        }


def parse_event(body: bytes | str | Mapping[str, Any], *, source: str = "webhook") -> WebhookEvent:
    """Read one webhook body. WebhookError says what is wrong with one that is not an event."""
    data: Any = body
    if isinstance(body, (bytes, str)):
        if len(body) > MAX_BODY_BYTES:
            raise WebhookError(f"the body is larger than {MAX_BODY_BYTES} bytes")
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise WebhookError(f"the body is not JSON ({exc})") from None
    if not isinstance(data, Mapping):
        raise WebhookError(f"an event is a JSON object, not {type(data).__name__}")
    request_id = data.get("request_id")
    if not isinstance(request_id, str) or not request_id.strip():
        raise WebhookError("the event has no request_id")
    sent = data.get("status")
    if not isinstance(sent, str) or not sent.strip():
        raise WebhookError(f"the event for {request_id} has no status")
    deployment_id = data.get("deployment_id")
    status = parse_status(data, request_id).status
    return WebhookEvent(
        request_id,
        status,
        deployment_id if isinstance(deployment_id, str) else None,
        sent,
        dict(data),
        source,
    )


def _rank(event: WebhookEvent) -> int:
    return _FINAL_RANK if event.final else _RANK.get(event.status, 1)


@dataclass(frozen=True)
class Delivery:
    """What one received event did to the inbox."""

    event: WebhookEvent
    duplicate: bool = False
    """The same request id and status came before: nothing changed."""
    stale: bool = False
    """A state further along is known already (out of order, or a second final): not applied."""
    new_final: bool = False
    """This is the job's final state, seen for the first time."""

    @property
    def applied(self) -> bool:
        return not (self.duplicate or self.stale)

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.event.as_dict(),
            "duplicate": self.duplicate,
            "stale": self.stale,
            "new_final": self.new_final,
        }


@dataclass(frozen=True)
class PendingJob:
    """A job whose final state has not been seen: what a poll function is given."""

    request_id: str
    deployment_id: str | None


@dataclass
class _Track:
    deployment_id: str | None
    last_news: float
    last_poll: float | None = None
    event: WebhookEvent | None = None
    seen: set[str] = field(default_factory=set)


class WebhookInbox:
    """Each job's latest state, fed by webhooks and polls. Thread-safe.

    ``on_final(event)`` is called exactly once per job, with its first final state, whichever
    way it arrives (duplicate or late events never call it again).
    """

    def __init__(
        self,
        *,
        on_final: Callable[[WebhookEvent], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._on_final = on_final
        self._clock = clock
        self._lock = threading.Lock()
        self._jobs: dict[str, _Track] = {}

    def track(self, request_id: str, *, deployment_id: str | None = None) -> None:
        """Expect events for a job you submitted: it is polled if its final event never comes."""
        with self._lock:
            track = self._jobs.get(request_id)
            if track is None:
                self._jobs[request_id] = _Track(deployment_id, self._clock())
            elif deployment_id and track.deployment_id is None:
                track.deployment_id = deployment_id

    def receive(self, body: bytes | str | Mapping[str, Any]) -> Delivery:
        """Parse a webhook body and record it (WebhookError when it is not an event)."""
        return self.record(parse_event(body))

    def record(self, event: WebhookEvent) -> Delivery:
        """Record an event (from a webhook or a poll) and say what it changed."""
        with self._lock:
            track = self._jobs.get(event.request_id)
            if track is None:
                track = self._jobs[event.request_id] = _Track(event.deployment_id, self._clock())
            if track.deployment_id is None:
                track.deployment_id = event.deployment_id
            current = track.event
            if event.status in track.seen:
                delivery = Delivery(event, duplicate=True)
            elif current is not None and (current.final or _rank(event) < _rank(current)):
                delivery = Delivery(event, stale=True)
            else:
                track.event = event
                track.last_news = self._clock()
                delivery = Delivery(event, new_final=event.final)
            track.seen.add(event.status)
        if delivery.stale and current is not None and current.final and event.final:
            logger.warning(
                "job %s: a second final state %r after %r was ignored",
                event.request_id,
                event.sent_status,
                current.sent_status,
            )
        if delivery.new_final and self._on_final is not None:
            self._on_final(event)
        return delivery

    def state(self, request_id: str) -> WebhookEvent | None:
        """The job's latest state, or None when nothing was heard of it."""
        with self._lock:
            track = self._jobs.get(request_id)
            return track.event if track is not None else None

    def finals(self) -> dict[str, WebhookEvent]:
        """Every job's final state, by request id."""
        with self._lock:
            return {
                rid: t.event
                for rid, t in self._jobs.items()
                if t.event is not None and t.event.final
            }

    def pending(self) -> list[PendingJob]:
        """The jobs whose final state has not been seen yet."""
        with self._lock:
            return [
                PendingJob(rid, t.deployment_id)
                for rid, t in self._jobs.items()
                if t.event is None or not t.event.final
            ]

    def _quiet(self, after: float, every: float) -> list[PendingJob]:
        now = self._clock()
        with self._lock:
            due = []
            for rid, t in self._jobs.items():
                if t.event is not None and t.event.final:
                    continue
                if now - t.last_news < after:
                    continue
                if t.last_poll is not None and now - t.last_poll < every:
                    continue
                t.last_poll = now
                due.append(PendingJob(rid, t.deployment_id))
            return due


PollFunction = Callable[[PendingJob], Mapping[str, Any]]
AsyncPollFunction = Callable[[PendingJob], Awaitable[Mapping[str, Any]]]


class Reconciler:
    """Polls the jobs whose final event has not come, so every job ends in the inbox.

    ``poll(job)`` returns the job's result answer (``GET .../requests/{id}/result``: its
    ``status`` is ``succeeded``, ``failed`` or ``canceled`` once it ended). A job is polled
    once it has had no news for ``after`` seconds, then at most every ``every`` seconds. Call
    :meth:`run_once` (or ``await`` :meth:`arun_once` with an async poll) on a timer.
    """

    def __init__(
        self,
        inbox: WebhookInbox,
        poll: PollFunction | AsyncPollFunction,
        *,
        after: float = 60.0,
        every: float = 30.0,
    ) -> None:
        self.inbox = inbox
        self._poll = poll
        self.after = after
        self.every = every

    def due(self) -> list[PendingJob]:
        """The jobs to poll now (each is then not due again for ``every`` seconds)."""
        return self.inbox._quiet(self.after, self.every)

    def _record(self, job: PendingJob, answer: Any) -> Delivery | None:
        try:
            body = dict(answer) if isinstance(answer, Mapping) else answer
            if isinstance(body, dict):
                body.setdefault("request_id", job.request_id)
                if job.deployment_id is not None:
                    body.setdefault("deployment_id", job.deployment_id)
            return self.inbox.record(parse_event(body, source="poll"))
        except WebhookError as exc:
            logger.warning("polling job %s gave no usable state: %s", job.request_id, exc)
            return None

    def run_once(self) -> list[Delivery]:
        """Poll every due job once (a failed poll is logged and tried again later)."""
        if inspect.iscoroutinefunction(self._poll):
            raise TypeError("this poll function is async: use `await reconciler.arun_once()`")
        found = []
        for job in self.due():
            try:
                answer = self._poll(job)
            except RunComfyError as exc:
                logger.warning("polling job %s failed: %s", job.request_id, exc)
                continue
            if isinstance(answer, Awaitable):
                close = getattr(answer, "close", None)
                if close is not None:
                    close()
                raise TypeError("this poll function is async: use `await reconciler.arun_once()`")
            delivery = self._record(job, answer)
            if delivery is not None:
                found.append(delivery)
        return found

    async def arun_once(self) -> list[Delivery]:
        """:meth:`run_once` for an async poll function."""
        found = []
        for job in self.due():
            try:
                answer = self._poll(job)
                if isinstance(answer, Awaitable):
                    answer = await answer
            except RunComfyError as exc:
                logger.warning("polling job %s failed: %s", job.request_id, exc)
                continue
            delivery = self._record(job, answer)
            if delivery is not None:
                found.append(delivery)
        return found


# -- a stdlib receiver ---------------------------------------------------------------------------


def serve(
    inbox: WebhookInbox,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    on_delivery: Callable[[Delivery], None] | None = None,
) -> ThreadingHTTPServer:
    """An HTTP server that records every POSTed event in ``inbox`` (any path) and answers 200.

    A body that is not an event gets 400 (RunComfy would retry it in vain); a body over 16 MB
    gets 413. ``on_delivery`` is told of each delivery before the sender gets its 200, so one
    job's deliveries reach it in the order they were sent. Call ``serve_forever()`` on it (or
    run that in a thread) and ``shutdown()`` to stop.
    """

    class Handler(BaseHTTPRequestHandler):
        server_version = "runcomfy-webhooks"

        def do_POST(self) -> None:  # the stdlib names it
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                self._answer(411, {"error": "Content-Length required"})
                return
            if int(length) > MAX_BODY_BYTES:
                self._answer(413, {"error": f"larger than {MAX_BODY_BYTES} bytes"})
                return
            body = self.rfile.read(int(length))
            try:
                delivery = inbox.receive(body)
            except WebhookError as exc:
                self._answer(400, {"error": str(exc)})
                return
            # Told before the sender hears 200: it sends the job's next event only then, so
            # on_delivery sees one job's deliveries in the order they were sent (after the
            # answer, a second thread could overtake this one).
            if on_delivery is not None:
                on_delivery(delivery)
            self._answer(200, {"ok": True})

        def _answer(self, status: int, body: Mapping[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("webhook receiver: " + format, *args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def timestamp() -> str:
    """Now, as an ISO 8601 UTC time (for printed events)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
