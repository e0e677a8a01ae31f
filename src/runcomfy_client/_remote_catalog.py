"""The API's model catalog, without I/O: paging through ``GET /v1/models``, categories.

Written once: :class:`CatalogPager` says which call to make next and turns each answer into
typed records; ``Client.catalog`` and ``AsyncClient.catalog`` only send its calls.

Paging follows ``limit``/``offset`` up to ``total``. A catalog can change while it is paged
(a model published or withdrawn shifts the pages), so records are de-duplicated by id; a server
that ignores ``offset`` (the same page again) is caught, not followed for ever.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from ._errors import ResponseDecodeError
from ._protocol import Call

if TYPE_CHECKING:
    from ._model_info import ModelInfo

__all__ = ["CatalogPager", "CatalogQuery", "categories_call", "parse_categories"]

logger = logging.getLogger("runcomfy_client")

PAGE_SIZE = 100
MAX_RECORDS = 100_000
"""More records than any catalog holds (RunComfy's has hundreds): paging stops with an error."""


@dataclass(frozen=True)
class CatalogQuery:
    """What to list: filters as the API takes them, and how many records at most."""

    search: str | None = None
    category: str | None = None
    kind: str | None = None
    include_schema: bool = False
    limit: int | None = None
    """Records in all (None: every one)."""
    page_size: int = PAGE_SIZE

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 0:
            raise ValueError(f"limit must be 0 or more, not {self.limit}")
        if not 1 <= self.page_size <= 1000:
            raise ValueError(f"page_size must be 1 to 1000, not {self.page_size}")


@dataclass
class CatalogPager:
    """The paging rule: the next call to make, and the records of each answer."""

    query: CatalogQuery
    offset: int = 0
    total: int | None = None
    seen: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    """Records that could not be read (skipped), for the caller to report."""
    _done: bool = False
    _stale: int = 0  # pages in a row that brought no new record
    _asked: int = 0  # records the last call asked for

    def next_call(self) -> Call | None:
        """The call for the next page, or None when every page has been read."""
        if self._done or (self.total is not None and self.offset >= self.total):
            return None
        wanted = self.query.page_size
        if self.query.limit is not None:
            wanted = min(wanted, self.query.limit - len(self.seen))
            if wanted <= 0:
                return None
        self._asked = wanted
        params: dict[str, str | int] = {"limit": wanted, "offset": self.offset}
        for name in ("search", "category", "kind"):
            value = getattr(self.query, name)
            if value:
                params[name] = value
        if self.query.include_schema:
            params["include_schema"] = "true"
        return Call("GET", f"/v1/models?{urlencode(params)}", kind="models")

    def take(self, body: Mapping[str, Any]) -> list[ModelInfo]:
        """The new records of one page's answer (ResponseDecodeError for an unusable page)."""
        models = body.get("models")
        if not isinstance(models, list):
            shown = ", ".join(sorted(str(k) for k in body)[:8]) or "nothing"
            raise ResponseDecodeError(
                f"GET /v1/models answered without a 'models' list (it holds {shown})"
            )
        total = body.get("total")
        if isinstance(total, int) and not isinstance(total, bool) and total >= 0:
            self.total = total
        if not models:
            self._done = True
            return []
        where = f"the catalog page at offset {self.offset}"
        room = None if self.query.limit is None else self.query.limit - len(self.seen)
        from ._model_info import ModelInfo

        found: list[ModelInfo] = []
        fresh = False
        for item in models:
            if room is not None and len(found) >= room:
                break
            try:
                info = ModelInfo.from_record(item, source=where)
            except ResponseDecodeError as exc:
                self.problems.append(str(exc))
                logger.warning("skipped a catalog record: %s", exc)
                fresh = True  # unreadable, but not a page seen before
                continue
            if info.model_id not in self.seen:
                self.seen.add(info.model_id)
                found.append(info)
                fresh = True
        self._stale = 0 if fresh else self._stale + 1
        if self._stale >= 2:
            raise ResponseDecodeError(
                f"{where} holds only models already listed, twice in a row: the API seems to "
                "ignore 'offset'; paging stopped"
            )
        self.offset += len(models)
        if self.total is None and len(models) < self._asked:
            self._done = True  # a short page without a total: the last one
        if self.offset > MAX_RECORDS:
            raise ResponseDecodeError(
                f"the catalog lists more than {MAX_RECORDS:,} models; paging stopped"
            )
        return found


def categories_call() -> Call:
    return Call("GET", "/v1/models/categories", kind="models", list_key="categories")


def parse_categories(body: Mapping[str, Any]) -> list[str]:
    """The category names of a ``/v1/models/categories`` answer (strings, or objects that name
    one), in the API's order."""
    items = body.get("categories")
    if not isinstance(items, list):
        raise ResponseDecodeError("GET /v1/models/categories answered without a 'categories' list")
    names: list[str] = []
    for item in items:
        name = item
        if isinstance(item, Mapping):
            name = item.get("name", item.get("category", item.get("id")))
        if isinstance(name, str) and name.strip() and name.isprintable() and name not in names:
            names.append(name.strip()[:100])
    return names
