"""Typed values the API answers with: job states, results, outputs, cancel outcomes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "CancelOutcome",
    "Cancelled",
    "Completed",
    "DownloadProgress",
    "Failed",
    "InProgress",
    "JobStatus",
    "Output",
    "Queued",
    "Result",
    "parse_status",
]

TERMINAL = frozenset({"completed", "failed", "cancelled"})


@dataclass(frozen=True)
class JobStatus:
    """A job's state. One of :class:`Queued`, :class:`InProgress`, :class:`Completed`,
    :class:`Failed` or :class:`Cancelled` (match on the class, or read ``status``)."""

    request_id: str
    status: str
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def done(self) -> bool:
        """True once the job can no longer change."""
        return self.status in TERMINAL


@dataclass(frozen=True)
class Queued(JobStatus):
    """Waiting in the queue; ``position`` jobs are ahead of it (0: it runs next)."""

    position: int | None = None


@dataclass(frozen=True)
class InProgress(JobStatus):
    """Running on the server: it can no longer be cancelled."""


@dataclass(frozen=True)
class Completed(JobStatus):
    """Finished with a result: fetch it with ``result()``."""


@dataclass(frozen=True)
class Failed(JobStatus):
    """Finished without a result; ``error`` holds what the server said, when it said it."""

    error: Any = None


@dataclass(frozen=True)
class Cancelled(JobStatus):
    """Cancelled while it was queued."""


def parse_status(body: Mapping[str, Any], request_id: str) -> JobStatus:
    """The typed state for a status (or result) body. Unknown states count as in progress."""
    rid = str(body.get("request_id") or request_id)
    state = str(body.get("status") or "").lower()
    raw = dict(body)
    if state in ("in_queue", "queued", "pending"):
        position = body.get("queue_position")
        pos = position if isinstance(position, int) and not isinstance(position, bool) else None
        return Queued(rid, "in_queue", raw, pos)
    if state in ("completed", "succeeded"):  # the Serverless API's result says succeeded
        return Completed(rid, "completed", raw)
    if state in ("failed", "error"):
        return Failed(rid, "failed", raw, body.get("error"))
    if state in ("cancelled", "canceled"):
        return Cancelled(rid, "cancelled", raw)
    return InProgress(rid, state or "in_progress", raw)


def _urls(value: Any) -> list[str]:
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v]
    return []


@dataclass(frozen=True)
class Output:
    """A job's outputs as the Output schema names them, plus every URL in one list."""

    video: str | None = None
    videos: tuple[str, ...] = ()
    image: str | None = None
    images: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_body(cls, output: Any) -> Output:
        data = output if isinstance(output, Mapping) else {}
        video = data.get("video")
        image = data.get("image")
        return cls(
            video=video if isinstance(video, str) else None,
            videos=tuple(_urls(data.get("videos"))),
            image=image if isinstance(image, str) else None,
            images=tuple(_urls(data.get("images"))),
            raw=dict(data),
        )

    @property
    def urls(self) -> list[str]:
        """Every output URL, videos first, without repeats; other keys' URLs last."""
        found: list[str] = []
        for value in (self.video, *self.videos, self.image, *self.images):
            if value and value not in found:
                found.append(value)
        for key, value in self.raw.items():
            if key not in ("video", "videos", "image", "images"):
                for url in _urls(value):
                    if url.startswith(("http://", "https://")) and url not in found:
                        found.append(url)
        return found


@dataclass(frozen=True)
class Result:
    """A finished job: its status, outputs, timestamps, error, and the files saved so far."""

    request_id: str
    status: str
    output: Output
    created_at: str | None = None
    finished_at: str | None = None
    error: Any = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)
    files: tuple[Path, ...] = ()

    @property
    def video(self) -> str | None:
        return self.output.video or (self.output.videos[0] if self.output.videos else None)

    @property
    def urls(self) -> list[str]:
        return self.output.urls

    @classmethod
    def from_body(cls, body: Mapping[str, Any], request_id: str) -> Result:
        return cls(
            request_id=str(body.get("request_id") or request_id),
            status=str(body.get("status") or ""),
            output=Output.from_body(body.get("output")),
            created_at=body.get("created_at"),
            finished_at=body.get("finished_at"),
            error=body.get("error"),
            raw=dict(body),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "status": self.status,
            "output": dict(self.output.raw),
            "files": [str(p) for p in self.files],
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "error": self.error,
        }


@dataclass(frozen=True)
class CancelOutcome:
    """What a cancel did: ``outcome`` is ``cancelled`` or ``not_cancellable``."""

    request_id: str
    outcome: Literal["cancelled", "not_cancellable"]
    status: str | None = None

    @property
    def cancelled(self) -> bool:
        return self.outcome == "cancelled"

    @classmethod
    def from_body(cls, body: Mapping[str, Any], request_id: str) -> CancelOutcome:
        status = body.get("status")
        if body.get("outcome") == "cancelled":
            return cls(request_id, "cancelled", status)
        return cls(request_id, "not_cancellable", status)


@dataclass(frozen=True)
class DownloadProgress:
    """Progress of one file: bytes received so far of ``total`` (None when unknown)."""

    url: str
    path: Path
    received: int
    total: int | None
    done: bool = False
