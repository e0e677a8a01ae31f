"""What the polling policy has learned per model, kept across processes in one small file.

Each model's running time (a moving mean and spread) and queue pace (jobs per second) are
learned from finished jobs. A :class:`PollingMemory` with a file loads it when first asked,
and writes it back (at most once a second, and when its client closes) so the next process,
a CLI command or a short script, starts warm. The file is written atomically (a temporary file
renamed over it), holds at most ``MAX_MODELS`` models, forgets models not seen for
``MAX_AGE``, and is ignored when it cannot be read or makes no sense. Older knowledge counts
for less: a new observation weighs more the longer ago the last one was, so a model that got
faster is relearned.

``RUNCOMFY_CACHE_DIR`` moves the folder; ``RUNCOMFY_NO_CACHE=1`` turns the file off.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["PollingMemory", "cache_dir"]

log = logging.getLogger("runcomfy_client")

CACHE_DIR_ENV = "RUNCOMFY_CACHE_DIR"
NO_CACHE_ENV = "RUNCOMFY_NO_CACHE"
FILE_NAME = "polling.json"
FORMAT = 1
MAX_MODELS = 256
MAX_FILE_BYTES = 256 * 1024
MAX_AGE = 90 * 86400.0
HALF_LIFE = 14 * 86400.0  # after this long without news, a new observation weighs ~twice
WEIGHT = 0.3  # of a new observation in the moving mean
FIRST_SPREAD = 0.05  # a model's first job: assume its running time varies by 5 %
_LARGEST = 7 * 86400.0  # no running time read from the file may exceed a week


def cache_dir() -> Path | None:
    """The folder for the learned file: ``RUNCOMFY_CACHE_DIR``, else the platform's user cache.

    None when ``RUNCOMFY_NO_CACHE`` is set (to anything but 0, false or no).
    """
    if os.environ.get(NO_CACHE_ENV, "").strip().lower() not in ("", "0", "false", "no"):
        return None
    moved = os.environ.get(CACHE_DIR_ENV, "").strip()
    if moved:
        return Path(moved).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
        return base / "runcomfy-client" / "Cache"
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "runcomfy-client"
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if xdg else home / ".cache") / "runcomfy-client"


@dataclass
class _Model:
    mean: float | None = None
    spread: float = 0.0
    count: int = 0
    rate: float | None = None
    updated: float = 0.0  # wall-clock seconds: the file outlives the process

    def to_json(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "spread": self.spread,
            "count": self.count,
            "rate": self.rate,
            "updated": self.updated,
        }

    @classmethod
    def from_json(cls, data: Any) -> _Model | None:
        """The entry if every value is sane, else None (a damaged or foreign file)."""
        if not isinstance(data, Mapping):
            return None
        mean, spread, count = data.get("mean"), data.get("spread", 0.0), data.get("count", 0)
        rate, updated = data.get("rate"), data.get("updated", -1)
        if not _number(updated, 0, 1e11):
            return None
        if mean is not None and not (_number(mean, 0, _LARGEST) and mean > 0):
            return None
        if not _number(spread, 0, _LARGEST) or not (_number(count, 0, 1e9) and count == int(count)):
            return None
        if rate is not None and not (_number(rate, 0, 1e6) and rate > 0):
            return None
        if mean is None and rate is None:
            return None
        return cls(mean, float(spread), int(count), rate, float(updated))


def _number(value: Any, low: float, high: float) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and low <= value <= high
    )


class PollingMemory:
    """Per-model running times and queue pace; thread-safe, optionally kept in a file.

    ``path`` is the file (None: this process only); ``scope`` separates APIs sharing a file
    (the clients use the API's host). ``clock`` gives wall-clock seconds (for the file's ages).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        scope: str = "",
        clock: Callable[[], float] = time.time,
        save_every: float = 1.0,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.scope = scope
        self._clock = clock
        self._save_every = save_every
        self._models: dict[str, _Model] = {}
        self._dirty: set[str] = set()
        self._loaded = self.path is None
        self._last_save: float | None = None
        self._lock = threading.Lock()

    @classmethod
    def user_cache(cls, scope: str) -> PollingMemory:
        """A memory kept in the user's cache folder (see :func:`cache_dir`), or in-process only."""
        folder = cache_dir()
        return cls(folder / FILE_NAME if folder is not None else None, scope=scope)

    def __repr__(self) -> str:
        where = str(self.path) if self.path is not None else "this process"
        return f"PollingMemory({where}, models={len(self._models)})"

    # -- reading -------------------------------------------------------------------------------

    def running_time(self, model_id: str | None) -> tuple[float, float] | None:
        """(mean, spread) of the model's running time in seconds once learned, else None."""
        if model_id is None:
            return None
        with self._lock:
            known = self._model(model_id)
            if known is None or known.mean is None:
                return None
            return known.mean, known.spread

    def queue_rate(self, model_id: str | None) -> float | None:
        """How fast the model's queue moves (jobs per second) once learned, else None."""
        if model_id is None:
            return None
        with self._lock:
            known = self._model(model_id)
            return known.rate if known is not None else None

    # -- learning ------------------------------------------------------------------------------

    def record_running(self, model_id: str, seconds: float, unsure: float = 0.0) -> None:
        """Learn from one finished job how long the model's jobs run.

        ``unsure``: how far off ``seconds`` may be (the job was seen between checks); a
        difference from the mean within it says nothing about the spread.
        """
        if not (math.isfinite(seconds) and seconds > 0 and math.isfinite(unsure)):
            return
        # A ceiling here too (the policy caps lower): one runaway job cannot teach a mean the
        # file would then refuse to read back, which would forget the model altogether.
        seconds, unsure = min(seconds, _LARGEST), min(unsure, _LARGEST)
        with self._lock:
            entry, weight = self._entry(model_id)
            if entry.mean is None:
                entry.mean, entry.spread = seconds, seconds * FIRST_SPREAD
            else:
                error = seconds - entry.mean
                entry.mean += weight * error
                # Less what the measurement's own uncertainty explains (a uniform error of up to
                # ``unsure`` has variance unsure**2 / 3).
                deviation = math.sqrt(max(0.0, error * error - unsure * unsure / 3))
                entry.spread += weight * (deviation - entry.spread)
            entry.count += 1
            self._changed(model_id, entry)

    def record_queue_rate(self, model_id: str, rate: float) -> None:
        """Learn how fast the model's queue moves (jobs per second)."""
        if not (math.isfinite(rate) and rate > 0):
            return
        with self._lock:
            entry, weight = self._entry(model_id)
            entry.rate = rate if entry.rate is None else entry.rate + weight * (rate - entry.rate)
            self._changed(model_id, entry)

    def _entry(self, model_id: str) -> tuple[_Model, float]:
        """The model's entry (new if unknown) and how much a new observation weighs."""
        entry = self._model(model_id)
        if entry is None:
            entry = self._models[model_id] = _Model()
            return entry, 1.0
        age = max(0.0, self._clock() - entry.updated)
        return entry, 1 - (1 - WEIGHT) * 0.5 ** (age / HALF_LIFE)

    def _changed(self, model_id: str, entry: _Model) -> None:
        entry.updated = self._clock()
        if self.path is None:
            return
        self._dirty.add(model_id)
        now = time.monotonic()
        if self._last_save is None or now - self._last_save >= self._save_every:
            self._save()

    def _model(self, model_id: str) -> _Model | None:
        if not self._loaded:
            self._loaded = True
            self._models.update(self._read().get(self.scope, {}))
        return self._models.get(model_id)

    # -- the file --------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write what this process learned to the file now (a no-op without a file)."""
        with self._lock:
            if self._dirty:
                self._save()

    def _read(self) -> dict[str, dict[str, _Model]]:
        """Every scope's sane entries from the file; nothing when it is missing or unreadable."""
        if self.path is None:
            return {}
        try:
            with self.path.open("rb") as f:
                raw = f.read(MAX_FILE_BYTES + 1)
            if len(raw) > MAX_FILE_BYTES:
                return {}
            data = json.loads(raw)
        except (OSError, ValueError, RecursionError):
            return {}
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return {}
        scopes = data.get("scopes")
        if not isinstance(scopes, dict):
            return {}
        oldest = self._clock() - MAX_AGE
        found: dict[str, dict[str, _Model]] = {}
        for scope, models in scopes.items():
            if not isinstance(models, dict):
                continue
            for model_id, value in models.items():
                entry = _Model.from_json(value)
                if entry is not None and entry.updated >= oldest:
                    found.setdefault(str(scope), {})[str(model_id)] = entry
        return found

    def _save(self) -> None:
        assert self.path is not None
        self._last_save = time.monotonic()
        # Another process may have written since this one read: keep its other entries.
        scopes = self._read()
        mine = scopes.setdefault(self.scope, {})
        for model_id in self._dirty:
            mine[model_id] = self._models[model_id]
        ranked = sorted(
            ((entry.updated, scope, model_id, entry)
             for scope, models in scopes.items() for model_id, entry in models.items()),
            key=lambda item: item[0],
            reverse=True,
        )  # fmt: skip
        kept: dict[str, dict[str, Any]] = {}
        for _, scope, model_id, entry in ranked[:MAX_MODELS]:
            kept.setdefault(scope, {})[model_id] = entry.to_json()
        text = json.dumps({"format": FORMAT, "scopes": kept}, separators=(",", ":"))
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(prefix=".polling-", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(text)
                os.replace(temporary, self.path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as exc:
            # A cache that cannot be written costs only a colder start next time.
            log.debug("could not write the polling cache %s: %s", self.path, exc)
            return
        self._dirty.clear()
