"""The incident-state record published on ``incidents.state.v1``. Pure."""

from __future__ import annotations

from typing import Any

from pipeline.config import DemandConfig
from pipeline.domain.backlog import State
from pipeline.domain.clocks import attendance_deadline
from pipeline.domain.events import format_time


def _t(value: float | None) -> str | None:
    return None if value is None else format_time(value)


def state_record(s: State, config: DemandConfig) -> dict[str, Any] | None:
    """The downstream view of an incident (schemas/incident-state.v1.schema.json).

    None while the incident's ``created`` event has not arrived: without it
    there is no area or call time to publish.
    """
    created = s.get("created")
    if created is None or "status" not in s:
        return None
    review = s.get("review")
    terminal = s.get("terminal")
    deadline = attendance_deadline(s, config)
    return {
        "schema_version": 1,
        "incident_id": s["id"],
        "grade": s["grade"][3],
        "initial_grade": created["grade"],
        "status": s["status"][3],
        "open": s["status"][3] != "closed",
        "area": created["area"],
        "channel": created["channel"],
        "terminal": terminal[3] if terminal else None,
        "vulnerable": bool(review[4]) if review and review[4] is not None
        else created["vulnerable"],
        "called_at": _t(created["at"]),
        "first_dispatched_at": _t(s.get("dispatched_at")),
        "first_arrived_at": _t(s.get("arrived_at")),
        "status_changed_at": _t(s["status"][0]),
        "next_review_due": _t(review[3]) if review else None,
        "attend_by": _t(deadline),
        "attendance_breached": bool(s.get("breached")),
    }
