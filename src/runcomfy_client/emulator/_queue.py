"""Queue positions: how many jobs are ahead of one, kept cheap for thousands queued."""

from __future__ import annotations

import bisect

__all__ = ["QueueOrder"]


class QueueOrder:
    """The sequence numbers of queued jobs, sorted, so a position is one bisect."""

    def __init__(self) -> None:
        self._seqs: list[int] = []

    def __len__(self) -> int:
        return len(self._seqs)

    def add(self, seq: int) -> None:
        """Queue a job; sequence numbers only grow, so appending keeps the list sorted."""
        self._seqs.append(seq)

    def position(self, seq: int) -> int:
        """Jobs ahead of this one: 0 means it runs next."""
        return bisect.bisect_left(self._seqs, seq)

    def remove(self, seq: int) -> None:
        """The job left the queue (started or cancelled); unknown ones are ignored."""
        i = bisect.bisect_left(self._seqs, seq)
        if i < len(self._seqs) and self._seqs[i] == seq:
            del self._seqs[i]
