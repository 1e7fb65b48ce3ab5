"""Incident state and the backlog arithmetic. Pure: no Faust, no Kafka.

Events arrive late, twice, or out of order (at-least-once delivery, replays),
so :func:`apply_event` is built to be order-independent and idempotent: each
part of an incident (grade, status, terminal, risk review) is a
last-writer-wins register ordered by ``(occurred_at, lifecycle rank,
event_id)``, and first-dispatch / first-arrival are minimums. Folding the same
set of events in any order, any number of times, gives the same state.

The state is a plain JSON-able dict so it can live in a Faust table and its
changelog without a custom codec.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pipeline.domain.events import Event

State = dict[str, Any]

# Lifecycle rank breaks ties between events stamped with the same instant.
RANK = {
    "created": 0, "graded": 1, "risk_assessed": 2, "assigned": 3, "scheduled": 4,
    "transferred": 5, "dispatched": 6, "arrived": 7, "closed": 8, "reopened": 9,
}

STATUS_OF = {
    "created": "awaiting_dispatch",
    "dispatched": "dispatched",
    "arrived": "on_scene",
    "scheduled": "scheduled",
    "transferred": "with_team",
    "closed": "closed",
    "reopened": "awaiting_dispatch",
}
OPEN_STATUSES = ("awaiting_dispatch", "dispatched", "on_scene", "scheduled", "with_team")


def _version(ev: Event) -> list[Any]:
    return [ev.at, RANK[ev.event_type], ev.event_id]


def _newer(reg: list[Any] | None, version: list[Any]) -> bool:
    return reg is None or version > reg[:3]


def apply_event(state: State | None, ev: Event) -> State:
    """Return the incident state after ``ev`` (a new dict; ``state`` is not changed)."""
    s: State = dict(state) if state else {"id": ev.incident_id}
    v = _version(ev)
    d = ev.data
    t = ev.event_type
    if t == "created" and ("created" not in s or ev.at < s["created"]["at"]):
        s["created"] = {"at": ev.at, "area": d["area"], "channel": d["channel"],
                        "category": d["category"], "grade": d["grade"],
                        "vulnerable": d["vulnerable"], "caller_ref": d.get("caller_ref")}
    if "grade" in d and t in ("created", "graded", "risk_assessed") and _newer(s.get("grade"), v):
        s["grade"] = [*v, d["grade"]]
    if t in STATUS_OF and _newer(s.get("status"), v):
        s["status"] = [*v, STATUS_OF[t]]
    if t == "assigned" and _newer(s.get("terminal"), v):
        s["terminal"] = [*v, d["terminal"]]
    if t == "risk_assessed" and _newer(s.get("review"), v):
        s["review"] = [*v, d["next_review_due"], d.get("vulnerable")]
    if t == "dispatched":
        s["dispatched_at"] = min(s.get("dispatched_at", ev.at), ev.at)
    if t == "arrived":
        s["arrived_at"] = min(s.get("arrived_at", ev.at), ev.at)
    return s


@dataclass(frozen=True, slots=True)
class OpenIncident:
    """The view of an open incident that the backlog counts."""

    incident_id: str
    grade: str
    area: str
    status: str
    created_at: float
    vulnerable: bool
    terminal: str | None


def open_view(s: State) -> OpenIncident | None:
    """The incident as the backlog sees it, or None if it is not (yet) open.

    An incident whose ``created`` event has not arrived yet is not counted:
    without it there is no area or call time to count it by.
    """
    created = s.get("created")
    status = s.get("status")
    if created is None or status is None or status[3] == "closed":
        return None
    review = s.get("review")
    vulnerable = bool(review[4]) if review and review[4] is not None else created["vulnerable"]
    terminal = s.get("terminal")
    return OpenIncident(s["id"], s["grade"][3], created["area"], status[3], created["at"],
                        vulnerable, terminal[3] if terminal else None)


@dataclass
class BacklogSummary:
    """Counts the metrics and views publish, computed from the open incidents."""

    open_by_grade_area: dict[tuple[str, str], int]
    oldest_created_by_grade: dict[str, float]

    @property
    def open_total(self) -> int:
        return sum(self.open_by_grade_area.values())


def summarise(states: Iterable[State]) -> BacklogSummary:
    """Aggregate incident states into backlog counts (one pass)."""
    counts: dict[tuple[str, str], int] = {}
    oldest: dict[str, float] = {}
    for s in states:
        inc = open_view(s)
        if inc is None:
            continue
        key = (inc.grade, inc.area)
        counts[key] = counts.get(key, 0) + 1
        if inc.created_at < oldest.get(inc.grade, float("inf")):
            oldest[inc.grade] = inc.created_at
    return BacklogSummary(counts, oldest)
