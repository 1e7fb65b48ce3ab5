"""Risk rules: which alert conditions hold now. Pure: no Faust, no Kafka, no clock.

:func:`evaluate` looks at incident states (and demand minute buckets for the
surge rule) as at ``now`` and returns every condition that holds, keyed by a
stable fingerprint of rule and subject. Whether that is a new alert, the same
episode continuing, or a resolution is :mod:`pipeline.domain.alerting`'s job.

Alerts carry pseudonymous references only: incident ids, terminal ids, and
for a repeat caller a hash of the (already pseudonymous) ``caller_ref``.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from pipeline.config import DemandConfig, Rule
from pipeline.domain.backlog import OpenIncident, State, open_view
from pipeline.domain.clocks import attendance_deadline
from pipeline.domain.windows import total, week_before

FORCE_WIDE = "force"  # the `area` of alerts that belong to no single area
MAX_IDS = 20  # incident ids listed on one alert (the oldest first)

Buckets = Iterable[tuple[int, Mapping[str, int]]]


@dataclass(frozen=True, slots=True)
class Condition:
    """One alert condition that holds now."""

    fingerprint: str
    rule: str
    severity: str
    area: str
    subject: str
    summary: str
    runbook: str
    incident_ids: tuple[str, ...]


def fingerprint(rule: str, subject: str) -> str:
    """Stable id of an alert: the same rule about the same subject is the same alert."""
    return hashlib.blake2b(f"{rule}|{subject}".encode(), digest_size=8).hexdigest()


def evaluate(config: DemandConfig, states: Iterable[State], now: float,
             buckets: Callable[[], Buckets] | None = None) -> dict[str, Condition]:
    """Every configured rule's conditions that hold at ``now``, by fingerprint."""
    items = [s for s in states if s]
    views = [(s, v) for s in items if (v := open_view(s)) is not None]
    out: dict[str, Condition] = {}
    for rule in config.rules:
        for c in _KINDS[rule.kind](rule, config, items, views, now, buckets):
            out[c.fingerprint] = c
    return out


def _in_scope(rule: Rule, grade: str, area: str) -> bool:
    return (not rule.grades or grade in rule.grades) and (not rule.areas or area in rule.areas)


def _condition(rule: Rule, subject: str, area: str, summary: str,
               incidents: Iterable[tuple[float, str]]) -> Condition:
    ids = tuple(i for _, i in heapq.nsmallest(MAX_IDS, incidents))
    return Condition(fingerprint(rule.name, subject), rule.name, rule.severity, area, subject,
                     summary, rule.runbook, ids)


Views = list[tuple[State, OpenIncident]]


def _attendance_overdue(rule, config, items, views: Views, now, buckets):
    for s, v in views:
        if s.get("arrived_at") is not None or not _in_scope(rule, v.grade, v.area):
            continue
        deadline = attendance_deadline(s, config)
        if deadline is not None and now > deadline + (rule.threshold or 0):
            yield _condition(rule, v.incident_id, v.area,
                             f"Grade {v.grade} incident {v.incident_id} in {v.area}: nobody "
                             f"there {int(now - deadline) // 60} min after its target",
                             [(v.created_at, v.incident_id)])


def _review_overdue_vulnerable(rule, config, items, views: Views, now, buckets):
    for s, v in views:
        review = s.get("review")
        if not v.vulnerable or review is None or not _in_scope(rule, v.grade, v.area):
            continue
        if now > review[3] + (rule.threshold or 0):
            yield _condition(rule, v.incident_id, v.area,
                             f"Vulnerable grade {v.grade} incident {v.incident_id} in {v.area}: "
                             f"THRIVE review {int(now - review[3]) // 60} min overdue",
                             [(v.created_at, v.incident_id)])


def _backlog_above(rule, config, items, views: Views, now, buckets):
    groups: dict[tuple[str, str], list[tuple[float, str]]] = {}
    for _, v in views:
        if _in_scope(rule, v.grade, v.area):
            groups.setdefault((v.grade, v.area), []).append((v.created_at, v.incident_id))
    for (grade, area), members in sorted(groups.items()):
        c = backlog_condition(rule, grade, area, len(members), members)
        if c is not None:
            yield c


def backlog_condition(rule: Rule, grade: str, area: str, count: int,
                      oldest: Iterable[tuple[float, str]]) -> Condition | None:
    """A grade x area's backlog alert, if ``count`` open incidents is above the threshold.
    ``oldest``: (call time, id) of at least its :data:`MAX_IDS` longest-waiting ones."""
    if count <= (rule.threshold or 0):
        return None
    return _condition(rule, f"{grade}/{area}", area,
                      f"{count} open grade {grade} incidents in {area} "
                      f"(threshold {rule.threshold:g})", oldest)


def _terminal_overloaded(rule, config, items, views: Views, now, buckets):
    groups: dict[str, list[tuple[float, str]]] = {}
    for _, v in views:
        if v.terminal is not None and _in_scope(rule, v.grade, v.area):
            groups.setdefault(v.terminal, []).append((v.created_at, v.incident_id))
    for terminal, members in sorted(groups.items()):
        c = terminal_condition(rule, config, terminal, len(members), members)
        if c is not None:
            yield c


def terminal_condition(rule: Rule, config: DemandConfig, terminal: str, count: int,
                       oldest: Iterable[tuple[float, str]]) -> Condition | None:
    """A terminal's overload alert, if it holds more open logs than the limit."""
    limit = rule.threshold if rule.threshold is not None else config.terminals.band_high
    if count <= limit:
        return None
    return _condition(rule, terminal, FORCE_WIDE,
                      f"Terminal {terminal} holds {count} open logs "
                      f"(band {config.terminals.band_low}-{limit:g})", oldest)


def _caller_key(caller_ref: str) -> str:
    return "caller-" + hashlib.blake2b(caller_ref.encode(), digest_size=6).hexdigest()


def _repeat_caller(rule, config, items, views: Views, now, buckets):
    since = now - rule.within_seconds
    groups: dict[str, list[State]] = {}
    for s in items:
        created = s.get("created")
        if created and created.get("caller_ref") and since <= created["at"] <= now and \
                _in_scope(rule, s["grade"][3], created["area"]):
            groups.setdefault(created["caller_ref"], []).append(s)
    for caller, members in groups.items():
        still_open = [s for s in members if open_view(s) is not None]
        if len(members) >= (rule.threshold or 0) and still_open:
            latest = max(members, key=lambda s: s["created"]["at"])
            subject = _caller_key(caller)
            yield _condition(rule, subject, latest["created"]["area"],
                             f"One caller ({subject}) behind {len(members)} incidents in "
                             f"{rule.within_seconds // 3600} h, {len(still_open)} still open",
                             [(s["created"]["at"], s["id"]) for s in members])


def _appointment_missed(rule, config, items, views: Views, now, buckets):
    for s, v in views:
        slot = s.get("slot")
        if v.status != "scheduled" or slot is None or not _in_scope(rule, v.grade, v.area):
            continue
        arrived = s.get("arrived_at")
        if (arrived is None or arrived < slot[3]) and now > slot[4] + (rule.threshold or 0):
            yield _condition(rule, v.incident_id, v.area,
                             f"Appointment for {v.incident_id} in {v.area} ended "
                             f"{int(now - slot[4]) // 60} min ago with nobody arrived",
                             [(v.created_at, v.incident_id)])


def _surge(rule, config, items, views: Views, now, buckets):
    if buckets is None:
        return
    cells = list(buckets())
    start, end = surge_window(now)
    current = total(cells, start, end)
    zone = config.force.zone()
    baseline = total(cells, week_before(start, zone), week_before(end, zone))
    grades = rule.grades or [g.code for g in config.grades]
    for grade in grades:
        now_n = sum(n for (g, _), n in current.items() if g == grade)
        then_n = sum(n for (g, _), n in baseline.items() if g == grade)
        c = surge_condition(rule, grade, now_n, then_n)
        if c is not None:
            yield c


def surge_window(now: float) -> tuple[float, float]:
    """The surge rule's last hour at ``now``: [start, end), to the end of the minute."""
    end = now // 60 * 60 + 60
    return end - 3600, end


def surge_condition(rule: Rule, grade: str, now_n: int, then_n: int) -> Condition | None:
    """A grade's surge alert, from its calls this hour and the same hour last week."""
    if then_n < rule.min_baseline or now_n < (rule.threshold or 0) * then_n:
        return None
    return _condition(rule, f"grade-{grade}", FORCE_WIDE,
                      f"Grade {grade} demand in the last hour: {now_n}, "
                      f"{now_n / then_n:.1f}x the same hour last week ({then_n})", [])


def _oldest_open(rule, config, items, views: Views, now, buckets):
    oldest: dict[tuple[str, str], tuple[float, str]] = {}
    for _, v in views:
        if _in_scope(rule, v.grade, v.area):
            key = (v.grade, v.area)
            if key not in oldest or (v.created_at, v.incident_id) < oldest[key]:
                oldest[key] = (v.created_at, v.incident_id)
    for (grade, area), first in sorted(oldest.items()):
        c = oldest_condition(rule, grade, area, first, now)
        if c is not None:
            yield c


def oldest_condition(rule: Rule, grade: str, area: str, oldest: tuple[float, str],
                     now: float) -> Condition | None:
    """A grade x area's alert if its oldest open incident, (call time, id), is too old."""
    created_at, incident_id = oldest
    if now - created_at <= (rule.threshold or 0):
        return None
    return _condition(rule, f"{grade}/{area}", area,
                      f"Oldest open grade {grade} incident in {area} ({incident_id}) "
                      f"is {(now - created_at) / 3600:.1f} h old", [oldest])


_KINDS = {
    "attendance_overdue": _attendance_overdue,
    "review_overdue_vulnerable": _review_overdue_vulnerable,
    "backlog_above": _backlog_above,
    "terminal_overloaded": _terminal_overloaded,
    "repeat_caller": _repeat_caller,
    "appointment_missed": _appointment_missed,
    "surge": _surge,
    "oldest_open": _oldest_open,
}
