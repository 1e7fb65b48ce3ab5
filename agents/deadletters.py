"""Sending a refused record to the dead-letter topic, shared by the agents."""

from __future__ import annotations

import logging
import time

from faust.types import Message

from pipeline.app import dead_letter_topic, metrics
from pipeline.deadletter import dead_letter_record

log = logging.getLogger(__name__)


async def send_dead_letter(agent: str, message: Message, reason: str, detail: str) -> None:
    """Record why ``message`` was refused, with its original bytes, and count it."""
    record = dead_letter_record(
        reason=reason, detail=detail, agent=agent, topic=message.topic,
        partition=message.partition, offset=message.offset,
        key=message.key, value=message.value, now=time.time(),
    )
    await dead_letter_topic.send(key=message.key, value=record)
    metrics.dead_letters.labels(reason).inc()


async def guard_failed(agent: str, message: Message, exc: BaseException) -> None:
    """Handle an unexpected error for one record without letting the agent crash.

    A crashed Faust agent can leave its worker hung (faust#133), so every
    record is processed under a guard: the error is logged (type and position
    only; values may be personal data), counted, and the record dead-lettered.
    """
    metrics.agent_errors.labels(agent).inc()
    log.error("%s: unexpected %s at %s[%d]@%d; record dead-lettered", agent,
              type(exc).__name__, message.topic, message.partition, message.offset)
    try:
        await send_dead_letter(agent, message, "internal_error",
                               f"{agent} failed with {type(exc).__name__}")
    except Exception:  # the dead-letter send itself failed: still never crash
        log.exception("%s: could not dead-letter the record at offset %d", agent, message.offset)
