"""A step's table writes, made so that a crash leaves all of them or none. Pure: no Faust.

The alert evaluator saves each step of its timeline (incidents, minute counts,
active alerts, read progress, frontier) as many rows of one table, and a table
row is one changelog record. A SIGKILL between the first and the last record of
a step used to leave part of a step behind: alerts saved as firing that were
never published (the successor would never publish them), a minute count
without the incident that made it.

So a step of more than one write goes out as a journal first, in the same
changelog partition, and records of one partition reach the log in the order
they were sent (the producer keeps one request in flight per partition), so
what survives a crash is always a *prefix* of::

    j:0 … j:k-1   the step's writes, in chunks, each tagged with the step
    j             the marker: the step and its number of chunks
    <rows>        the writes themselves
    j = None      the marker removed: the step is whole in the rows
    j:n = None    the chunks removed (no journal rows outlive a step)

:func:`recover` reads the rows back: with no marker, the rows are the last whole
step (a cut before the marker left only chunks, which are ignored); with a
marker, the step's writes are laid over the rows, and the writes that make the
table itself whole again are returned for the successor to send before its own
first step (they also remove any journal rows left, so afterwards there are
none). A journal is never overwritten while its marker stands: a step begins
only after the previous marker was removed (by that step or by the recovery),
and a later chunk cannot reach the log before that removal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

MARKER = "j"
CHUNK_PREFIX = "j:"
CHUNK_WRITES = 200  # writes per chunk record: a few hundred KB at most, under 1 MB

Write = tuple[str, Any]  # (key, value); value None removes the row


def is_journal(key: str) -> bool:
    """Whether a row belongs to the journal rather than to the saved state."""
    return key == MARKER or key.startswith(CHUNK_PREFIX)


def journaled(writes: list[Write], step: int) -> list[Write]:
    """The table writes, in order, that carry ``writes`` all-or-none (module docstring).
    ``step``: any number that differs from the previous step's."""
    if len(writes) <= 1:
        return list(writes)  # one record is atomic by itself
    chunks = [writes[i:i + CHUNK_WRITES] for i in range(0, len(writes), CHUNK_WRITES)]
    out: list[Write] = [(f"{CHUNK_PREFIX}{n}", {"step": step, "writes": [list(w) for w in c]})
                        for n, c in enumerate(chunks)]
    out.append((MARKER, {"step": step, "chunks": len(chunks)}))
    out.extend(writes)
    out.append((MARKER, None))
    out.extend((f"{CHUNK_PREFIX}{n}", None) for n in range(len(chunks)))
    return out


def apply(rows: Mapping[str, Any], writes: Iterable[Write]) -> dict[str, Any]:
    """``rows`` after ``writes`` (a new dict)."""
    out = dict(rows)
    for key, value in writes:
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def recover(rows: Mapping[str, Any]) -> tuple[dict[str, Any], list[Write]]:
    """The saved state as of the last whole step (journal rows left out), and the writes
    that make the table itself so, without journal rows (empty when it already is)."""
    state = {k: v for k, v in rows.items() if not is_journal(k)}
    leftovers: list[Write] = [(k, None) for k in rows if is_journal(k) and k != MARKER]
    marker = rows.get(MARKER)
    if not marker:
        return state, leftovers  # a cut before the marker: its chunks are not the step
    writes: list[Write] = []
    for n in range(int(marker["chunks"])):
        chunk = rows.get(f"{CHUNK_PREFIX}{n}")
        if chunk is None or chunk.get("step") != marker["step"]:
            # Cannot happen with records kept in order; if it does, the journal is not
            # whole and the rows are all there is (said, not hidden, by the caller).
            raise ValueError(f"journal of step {marker['step']} lacks chunk {n}")
        writes.extend((str(k), v) for k, v in chunk["writes"])
    return apply(state, writes), [*writes, (MARKER, None), *leftovers]
