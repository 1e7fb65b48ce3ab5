"""A crash at any record of an evaluator step leaves the whole step or none of it.

What reaches the changelog before a SIGKILL is a prefix of the records sent
(one partition, in order), so every prefix is tried: what the successor reads
back must be the state before the step or after it, never a mix.
"""

from __future__ import annotations

import random

import pytest

from pipeline.domain import journal
from pipeline.domain.journal import CHUNK_WRITES, apply, journaled, recover


def _step(rng: random.Random, rows: dict[str, object], n: int) -> list[journal.Write]:
    """A step's writes: new and changed incidents, alerts fired and cleared, the frontier."""
    writes: list[journal.Write] = []
    for k in range(n):
        key = rng.choice([f"i:{rng.randrange(50)}", f"a:{rng.randrange(10)}",
                          f"m:1|{rng.randrange(5)}"])
        writes.append((key, None if key in rows and rng.random() < 0.3 else f"v{k}"))
    writes.append(("frontier", rng.random()))
    return writes


@pytest.mark.parametrize("size", [1, 3, CHUNK_WRITES + 7])
def test_any_cut_of_a_step_reads_back_as_before_or_after_it(size: int) -> None:
    rng = random.Random(size)
    before = {f"i:{k}": f"old{k}" for k in range(20)} | {"frontier": 1.0}
    writes = _step(rng, before, size)
    after = apply(before, writes)
    sent = journaled(writes, step=7)
    outcomes = set()
    for cut in range(len(sent) + 1):
        table = apply(before, sent[:cut])
        state, fix = recover(table)
        assert state in (before, after), f"a cut after {cut} of {len(sent)} records mixed steps"
        mended = apply(table, fix)
        assert mended == state, "mended: the step's rows, and no journal rows left"
        assert recover(mended) == (state, []), "mended: nothing left to roll forward"
        outcomes.add("after" if state == after else "before")
    assert outcomes == {"before", "after"}


def test_a_step_after_a_mended_crash_is_again_all_or_none() -> None:
    """The successor sends the mending writes, then steps on: a crash in that next step
    must not resurrect the first step's journal or mix its chunks with the new ones."""
    rng = random.Random(2)
    start = {f"i:{k}": f"old{k}" for k in range(20)}
    first = _step(rng, start, CHUNK_WRITES * 2 + 5)  # three chunks
    sent = journaled(first, step=1)
    marker = sent.index((journal.MARKER, {"step": 1, "chunks": 3}))
    crashed = apply(start, sent[:marker + 4])  # the marker and a few rows, then SIGKILL
    state, fix = recover(crashed)
    assert state == apply(start, first)
    table = apply(crashed, fix)
    second = _step(rng, state, 30)  # one chunk, j:0 again
    later = journaled(second, step=2)
    for cut in range(len(later) + 1):
        got, _ = recover(apply(table, later[:cut]))
        assert got in (state, apply(state, second)), f"cut {cut} of the second step"


def test_a_single_write_needs_no_journal_and_a_whole_step_leaves_none() -> None:
    assert journaled([("frontier", 2.0)], step=1) == [("frontier", 2.0)]
    writes = [("i:1", "x"), ("frontier", 2.0)]
    assert apply({}, journaled(writes, step=1)) == dict(writes)


def test_a_journal_missing_a_chunk_is_an_error_not_a_silent_mix() -> None:
    rows = {"j": {"step": 3, "chunks": 2}, "j:0": {"step": 3, "writes": [["i:1", "x"]]},
            "j:1": {"step": 2, "writes": [["i:2", "y"]]}}
    with pytest.raises(ValueError, match="lacks chunk 1"):
        recover(rows)
