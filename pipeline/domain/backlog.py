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

import heapq
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pipeline.domain.events import Event, parse_time

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
# The key under which a state keeps the forget horizon it was last folded at.
HORIZON = "horizon"
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
        s["review"] = [*v, parse_time(d["next_review_due"]), d.get("vulnerable")]
    if t == "scheduled" and _newer(s.get("slot"), v):
        s["slot"] = [*v, parse_time(d["slot_start"]), parse_time(d["slot_end"])]
    if t == "dispatched":
        s["dispatched_at"] = min(s.get("dispatched_at", ev.at), ev.at)
    if t == "arrived":
        s["arrived_at"] = min(s.get("arrived_at", ev.at), ev.at)
    s["last_at"] = max(s.get("last_at", ev.at), ev.at)
    return s


def forgotten(state: State | None, at: float, horizon: float | None) -> bool:
    """Whether an event at ``at`` is a late echo of an incident already forgotten.

    Closed incidents are dropped from state once everything they did is older
    than the forget horizon (the partition's watermark minus the closed
    retention). An event older than the horizon is applied only to an incident
    held whole (its ``created`` is in state): for any other it is a late echo of
    a forgotten incident, most often a resend of an event already applied, and
    applying it would bring a closed incident back to life (a redelivered
    ``created`` joining a reopen stamped days later would count it received
    twice, open). It is counted as ``late`` and not applied.

    The caller passes ``state`` as None for an incident that is *due* to be
    forgotten (:func:`due_to_forget`) even if the clock has not dropped it yet,
    so whether an event is applied depends on the log's event times only,
    never on when the clock's pass ran.
    """
    if horizon is None or at >= horizon:
        return False
    return state is None or "created" not in state


def due_to_forget(state: State | None, horizon: float | None) -> bool:
    """Whether the incident is closed and quiet since before the forget horizon: forgotten
    as far as any event is concerned, whether or not the clock has dropped it yet."""
    if state is None or horizon is None:
        return False
    status = state.get("status")
    last = state.get("last_at", status[0] if status else None)
    return status is not None and status[3] == "closed" and last is not None and last < horizon


@dataclass(frozen=True, slots=True)
class Folded:
    """What folding one event did: the state before it (None if it met a forgotten
    incident), the state after (None: the incident is forgotten and stays so), and the
    outcome counted (``accepted``, ``duplicate``, ``late``)."""

    before: State | None
    after: State | None
    outcome: str

    @property
    def forgot(self) -> bool:
        return self.after is None


def fold_event(state: State | None, ev: Event, horizon: float | None,
               remember: int) -> Folded:
    """Fold one event into its incident's state as of its place in the partition's log.

    Pure and deterministic in the log: an incident due to be forgotten at this
    event's place is treated as forgotten whether or not the clock's pass has run,
    so the same log gives the same states however it is chunked, redelivered or
    timed (docs/topics.md#forgetting-closed-incidents).

    A state keeps the horizon it was folded at (``HORIZON``), and an event meets
    at least that one. In one pass the partition's horizon only grows, so this
    changes nothing; after a crash the partition's watermark may be restored from
    a little earlier in the log than a state written in the same batch (it is
    written after the batch's states, docs/state.md), and an event read again must
    still meet that state where it left it: a creation read again for an incident
    forgotten and then reopened stays a late echo, not a phantom.
    """
    horizon = _later(horizon, state.get(HORIZON) if state else None)
    before = None if due_to_forget(state, horizon) else state
    if forgotten(before, ev.at, horizon):
        return Folded(before, before, "late")
    after, duplicate = apply_once(before, ev, remember)
    if not duplicate and horizon is not None:
        after[HORIZON] = horizon
    return Folded(before, after, "duplicate" if duplicate else "accepted")


def _later(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def apply_once(state: State | None, ev: Event, remember: int) -> tuple[State, bool]:
    """Apply ``ev`` unless its ``event_id`` was applied before; return (state, duplicate).

    The incident remembers the fingerprints of its last ``remember`` events in
    its own state, so the duplicate check and the change it guards are one
    record: no crash can separate them (a separate "seen" table could be saved
    while the event it marks was not, and the event would then be lost).
    """
    fingerprint = ev.fingerprint
    seen = state.get("seen", []) if state else []
    if fingerprint in seen:
        return state, True  # type: ignore[return-value]
    after = apply_event(state, ev)
    after["seen"] = [*seen, fingerprint][-remember:]
    return after, False


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


AGE_BUCKETS: tuple[tuple[str, float], ...] = (
    ("lt_1h", 3600.0), ("1h_6h", 6 * 3600.0), ("6h_24h", 24 * 3600.0),
    ("1d_3d", 3 * 86400.0), ("gt_3d", float("inf")),
)


def age_bucket(age_seconds: float) -> str:
    """The age bucket (< 1 h, 1-6 h, 6-24 h, 1-3 d, > 3 d) of an incident this old."""
    for name, upper in AGE_BUCKETS:
        if age_seconds < upper:
            return name
    return AGE_BUCKETS[-1][0]


def review_overdue(s: State, now: float) -> bool:
    """Whether the latest THRIVE assessment's next review is due before ``now``."""
    review = s.get("review")
    return bool(review) and review[3] < now


@dataclass
class BacklogSummary:
    """Everything the backlog metrics and views publish, from one pass over the states."""

    as_of: float
    by_grade_area_status: dict[tuple[str, str, str], int] = field(default_factory=dict)
    oldest_created_by_grade: dict[str, float] = field(default_factory=dict)
    by_age_bucket: dict[str, int] = field(default_factory=dict)
    vulnerable_by_grade_area: dict[tuple[str, str], int] = field(default_factory=dict)
    review_overdue_by_grade_area: dict[tuple[str, str], int] = field(default_factory=dict)
    terminals: dict[str, int] = field(default_factory=dict)

    @property
    def open_total(self) -> int:
        return sum(self.by_grade_area_status.values())

    @property
    def open_by_grade_area(self) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        for (g, a, _), n in self.by_grade_area_status.items():
            out[(g, a)] = out.get((g, a), 0) + n
        return out

    def total_by(self, index: int) -> dict[str, int]:
        """Open counts by grade (0), area (1) or status (2)."""
        out: dict[str, int] = {}
        for key, n in self.by_grade_area_status.items():
            out[key[index]] = out.get(key[index], 0) + n
        return out


def _bump(d: dict[Any, int], key: Any) -> None:
    d[key] = d.get(key, 0) + 1


def summarise(states: Iterable[State], now: float | None = None) -> BacklogSummary:
    """Aggregate incident states into backlog figures as at ``now`` (one pass)."""
    summary = BacklogSummary(as_of=time.time() if now is None else now)
    for s in states:
        inc = open_view(s)
        if inc is None:
            continue
        _bump(summary.by_grade_area_status, (inc.grade, inc.area, inc.status))
        if inc.created_at < summary.oldest_created_by_grade.get(inc.grade, float("inf")):
            summary.oldest_created_by_grade[inc.grade] = inc.created_at
        _bump(summary.by_age_bucket, age_bucket(summary.as_of - inc.created_at))
        if inc.vulnerable:
            _bump(summary.vulnerable_by_grade_area, (inc.grade, inc.area))
        if review_overdue(s, summary.as_of):
            _bump(summary.review_overdue_by_grade_area, (inc.grade, inc.area))
        if inc.terminal is not None:
            _bump(summary.terminals, inc.terminal)
    return summary


def oldest_open(states: Iterable[State], limit: int, grade: str | None = None,
                area: str | None = None) -> list[OpenIncident]:
    """The ``limit`` longest-waiting open incidents (ties by id), optionally filtered."""
    opens = (v for v in map(open_view, states)
             if v is not None and (grade is None or v.grade == grade)
             and (area is None or v.area == area))
    return heapq.nsmallest(limit, opens, key=lambda v: (v.created_at, v.incident_id))
