"""Offsets a consumer passed over and never delivered: input the agent never saw.

Kafka gives a partition's records consecutive offsets, so an agent handed offset
1,721 right after 1,633 on one partition has 87 records outstanding. Usually they
still come (after a takeover the consumer can hand over records from two fetch
positions out of order). Seen after a broker restart (docs/state.md, limits): they
never came, and the events among them were lost for good. This cannot bring them
back; it makes a loss loud: a range still outstanding ``overdue_s`` after it was
passed over is reported once. (Offsets also jump, legitimately, over a
transactional producer's control records and over records deleted by retention
before they were read.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

Gap = list[float]  # [first offset, last offset, passed over at (monotonic s), reported]


@dataclass
class OffsetGaps:
    """Per partition, the next offset expected and the ranges still outstanding."""

    overdue_s: float = 60.0
    _next: dict[int, int] = field(default_factory=dict)
    _open: dict[int, list[Gap]] = field(default_factory=dict)
    _generation: int = -1

    def check(self, generation: int, partition: int, offset: int, now: float) -> None:
        """Record that ``offset`` of ``partition`` was delivered."""
        if generation != self._generation:  # a new assignment starts wherever it starts
            self._next.clear()
            self._open.clear()
            self._generation = generation
        expected = self._next.get(partition)
        if expected is None or offset >= expected:
            if expected is not None and offset > expected:
                self._open.setdefault(partition, []).append([expected, offset - 1, now, 0])
            self._next[partition] = offset + 1
        else:
            self._fill(partition, offset)

    def _fill(self, partition: int, offset: int) -> None:
        gaps = self._open.get(partition, [])
        for i, (first, last, since, reported) in enumerate(gaps):
            if first <= offset <= last:
                parts = [[first, offset - 1, since, reported], [offset + 1, last, since, reported]]
                gaps[i:i + 1] = [g for g in parts if g[0] <= g[1]]
                return

    def overdue(self, now: float) -> list[tuple[int, int, int]]:
        """(partition, first, last) of ranges outstanding too long, each reported once."""
        out = []
        for partition, gaps in self._open.items():
            for gap in gaps:
                if not gap[3] and now - gap[2] >= self.overdue_s:
                    gap[3] = 1
                    out.append((partition, int(gap[0]), int(gap[1])))
        return out
