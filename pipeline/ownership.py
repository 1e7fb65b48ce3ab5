"""Which partitions this worker owns, and the gate that makes a rebalance hand state over whole.

The invariant (docs/state.md): **an offset is committed only after every state
change it caused is durable in its changelog, and only the partition's owner
writes that changelog.** :meth:`Ownership.batch` holds the first half: a batch
leaves it only once its table writes are acknowledged by the broker (Faust's
flush before a commit does not ensure that: pipeline.tables). A rebalance
breaks it unless three things are also true, and this module makes them true:

1. *No batch straddles a rebalance.* Each agent processes a batch (fold, table
   writes) inside :meth:`Ownership.batch`. When partitions are revoked, the
   revoke handler waits for the batch in flight, makes its writes durable (so
   the new owner's restore reads every one of them), and keeps the gate closed until the
   new assignment is known. Faust alone does not wait (``stream_wait_empty`` is
   off, faust#133): a batch taken before the revocation used to be folded after
   it, writing a revoked partition's changelog behind the new owner's back.
2. *Only owned partitions are written.* :meth:`owns` is checked before an event
   is folded and before a table write; an event of a partition this worker no
   longer owns is skipped (its offset is not committed: Faust discards commits
   for revoked partitions, so the new owner reads it again).
3. *Only owned, restored partitions are read.* A table keeps the rows of
   partitions it lost (the memory store does not drop them) and, with standby
   replicas, the rows of partitions it shadows. Views, gauges and timers read
   :meth:`ready` partitions only: owned, and not being restored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

log = logging.getLogger(__name__)


class Ownership:
    """The partitions a worker owns (actively, not as a standby) and its batch gate."""

    def __init__(self, actives: Callable[[], set[int]], durable: Callable[[], Awaitable[Any]],
                 flush: Callable[[], Awaitable[Any]], gate_timeout_s: float,
                 evaluates: Callable[[], bool] = lambda: False) -> None:
        self._actives = actives
        self._evaluates = evaluates
        self._durable = durable
        self._flush = flush
        self._gate_timeout_s = gate_timeout_s
        self._gate = asyncio.Lock()
        self._held_for_rebalance = False
        self.owned: frozenset[int] = frozenset()
        self._ready: frozenset[int] = frozenset()
        self.generation = 0  # bumped at every assignment
        # Whether this worker owns the alert input (the one partition all events meet on).
        self.evaluator = False
        self._restored = False

    def owns(self, partition: int) -> bool:
        """Whether this worker may fold and write ``partition`` now."""
        return partition in self.owned

    def ready(self) -> frozenset[int]:
        """Owned partitions whose state is complete (restored since the last assignment)."""
        return self._ready

    def evaluating(self) -> bool:
        """Whether this worker raises the alerts now: it owns the alert input and the
        alert timeline's table is restored."""
        return self.evaluator and self._restored

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        """Hold the gate while a batch is folded and written, and leave only once its table
        writes are durable: the batch's events are acknowledged after this returns, so
        their offsets are never committed ahead of their state (docs/state.md)."""
        async with self._gate:
            yield
            await self._durable()

    async def on_revoked(self) -> None:
        """Close the gate: wait for the batch in flight, then make its writes durable."""
        if self._held_for_rebalance:
            return  # revoked twice without an assignment between: already closed
        try:
            await asyncio.wait_for(self._gate.acquire(), self._gate_timeout_s)
            self._held_for_rebalance = True
        except TimeoutError:
            # A batch stuck (e.g. on a producer that cannot reach the broker) must not stall
            # the rebalance past the session timeout; rule 2 still fences its writes.
            log.warning("rebalance: a batch was still running after %.0f s; not waiting",
                        self._gate_timeout_s)
        self.owned = self._ready = frozenset()
        self.evaluator = self._restored = False
        await self._durable()
        await self._flush()

    def on_assigned(self) -> None:
        """Take the new assignment and open the gate."""
        self.owned = frozenset(self._actives())
        self._ready = frozenset()  # until the restore of the new assignment completes
        self.evaluator = self._evaluates()
        self._restored = False
        self.generation += 1
        log.info("assignment %d: owning partitions %s", self.generation, sorted(self.owned))
        if self._held_for_rebalance:
            self._held_for_rebalance = False
            self._gate.release()

    def on_restored(self) -> None:
        """Every owned partition's tables are restored: answer for them."""
        self._ready = self.owned
        self._restored = True
