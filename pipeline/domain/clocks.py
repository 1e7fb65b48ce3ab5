"""Response clocks and attendance targets. Pure: no Faust.

Stages: call->dispatch, call->arrival, dispatch->arrival (first dispatch and
first arrival). The attendance target of an incident's *current* grade comes
from configuration; it runs from the call or from dispatch as the grade says,
with a rural target in rural areas.
"""

from __future__ import annotations

from pipeline.config import DemandConfig
from pipeline.domain.backlog import State

STAGES = ("call_to_dispatch", "call_to_arrival", "dispatch_to_arrival")


def stage_seconds(s: State) -> dict[str, float]:
    """The response times this incident has so far (negative gaps clamp to 0)."""
    created = s.get("created")
    out: dict[str, float] = {}
    dispatched, arrived = s.get("dispatched_at"), s.get("arrived_at")
    if created is not None:
        if dispatched is not None:
            out["call_to_dispatch"] = max(0.0, dispatched - created["at"])
        if arrived is not None:
            out["call_to_arrival"] = max(0.0, arrived - created["at"])
    if dispatched is not None and arrived is not None:
        out["dispatch_to_arrival"] = max(0.0, arrived - dispatched)
    return out


def attendance_deadline(s: State, config: DemandConfig) -> float | None:
    """When attendance becomes late for this incident; None if no target applies (yet)."""
    created = s.get("created")
    if created is None or "grade" not in s:
        return None
    try:
        grade = config.grade(s["grade"][3])
    except KeyError:
        return None
    target = grade.attend_within_seconds
    rural = any(a.code == created["area"] and a.rural for a in config.areas)
    if rural and grade.attend_within_seconds_rural is not None:
        target = grade.attend_within_seconds_rural
    if target is None:
        return None
    if grade.clock_starts_at == "dispatch":
        start = s.get("dispatched_at")
        return None if start is None else start + target
    return created["at"] + target


def attendance_breached(s: State, config: DemandConfig, now: float) -> bool:
    """Whether attendance was (or, with nobody there yet, is already) later than target.

    Exactly at the deadline is on time; one second past is a breach. An
    incident closed without attendance breached if it closed after the deadline.
    ``now`` is the caller's clock: wall time live, or event time minus the grace
    when the stream's own time is the clock (see ``effective_now``).
    """
    deadline = attendance_deadline(s, config)
    if deadline is None:
        return False
    arrived = s.get("arrived_at")
    if arrived is not None:
        return arrived > deadline
    status = s.get("status")
    if status is not None and status[3] == "closed":
        # Closed with nobody there: a breach if it was still waiting when the target passed.
        return status[0] > deadline
    return now > deadline


def effective_now(mode: str, wall: float, watermark: float | None, grace: float) -> float | None:
    """The instant that time-driven rules may treat as "now"; None if not known yet.

    Live (``wall``), it is the wall clock. For a replay or catch-up (``event``)
    it is the stream's event time: the partition's watermark minus the grace,
    before which every event is assumed to have arrived, so a replay marks the
    same breaches whatever its speed. (Alerts walk their own timeline to the same
    kind of frontier: pipeline.domain.timeline.)
    """
    if mode == "wall":
        return wall
    return None if watermark is None else watermark - grace
