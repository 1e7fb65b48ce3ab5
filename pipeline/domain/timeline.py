"""Alerts as a function of the event log: rules evaluated at every instant that matters.

A replay must raise the same alerts as the live run, whatever its speed. So
alerts are not raised by sampling the state now and then (a fast replay would
sample once per minutes of event time and miss a grade 1 attended three
seconds late); :class:`AlertTimeline` walks event time forward instead:

- events are held back, then applied in event-time order (``occurred_at``,
  lifecycle rank, event id) up to a *frontier* the caller gives: the instant
  before which every event is assumed to have arrived (the wall clock less a
  few seconds live, the stream's watermark less the grace for replays);
- after the events of each instant, only the rule subjects they touched are
  evaluated (an incident, a grade x area, a terminal, a caller, a grade's
  demand), as of that instant;
- between events, each evaluated subject has a timer at the next instant its
  condition can change with no event at all (a target passing, a review
  falling due, a slot ending, a call leaving the repeat-caller window, a
  minute leaving the surge window), and a cleared alert one at the end of its
  cool-down;
- every transition is stamped with the instant it happened, not with when
  the worker noticed.

The same log therefore gives the same alert records, live or replayed. An
event that arrives after the frontier has passed its time (later than the
settle time live, beyond the grace in a replay) is applied at the frontier,
as a live control room would have seen it.

The timeline keeps its own record of each incident as of its frontier (the
incident table is ahead of it by the held-back events, and lives on other
workers' partitions), but not a second full copy: only the fields the rules
read, packed into one compact string per incident (:func:`pack`), unpacked
only when an event or a rule touches that incident; the open ones' views
(grade, area, status, call time, terminal) stay unpacked beside them. It says
what changed (:meth:`AlertTimeline.take_changes`) so the caller can save
exactly those strings beside the frontier (the same objects: the saved table
holds no third copy on this worker) and start a successor from them
(:meth:`AlertTimeline.seed`). Pure: no Faust.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import sys
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import fields
from typing import Any, cast

import orjson
from sortedcontainers import SortedList

from pipeline.config import DemandConfig, Rule
from pipeline.domain.alerting import Active, step
from pipeline.domain.backlog import RANK, OpenIncident, State, apply_event, open_view
from pipeline.domain.clocks import attendance_deadline
from pipeline.domain.due import DueIndex
from pipeline.domain.events import Event
from pipeline.domain.rules import (
    _KINDS,
    MAX_IDS,
    Condition,
    _in_scope,
    backlog_condition,
    oldest_condition,
    surge_condition,
    surge_window,
    terminal_condition,
)
from pipeline.domain.windows import MINUTE, WEEK, minute_of, week_after, week_before

HOUR = 3600
# Which subject each rule kind is about: the index its members are found by.
INDEX_OF = {
    "attendance_overdue": "incident",
    "review_overdue_vulnerable": "incident",
    "appointment_missed": "incident",
    "backlog_above": "grade_area",
    "oldest_open": "grade_area",
    "terminal_overloaded": "terminal",
    "repeat_caller": "caller",
    "surge": "grade",
}
CONDITION_FIELDS = [f.name for f in fields(Condition)]
SWEEP_EVERY_S = HOUR  # how often (event time) forgotten incidents and old minutes go

Key = tuple[str, Hashable]  # (index, subject key)
Changes = dict[str, Active | None]
MinuteKey = tuple[str, int]  # (grade, minute)


def just_after(instant: float) -> float:
    """The first instant at which ``now > instant`` holds (rules say "past", not "at")."""
    return math.nextafter(instant, math.inf)


# What of an incident's ``created`` event the rules read (channel and category they do not).
CREATED_FIELDS = ("at", "area", "grade", "vulnerable")
Packed = str  # one incident's rule record, as saved: compact JSON


def slim(state: State, callers: bool) -> State:
    """The part of an incident's state the rules read: its registers and clocks, and of
    its call the time, area, grade and vulnerability (and the caller reference only when
    a repeat-caller rule needs it). Still a :data:`State`, so the fold
    (``apply_event``) and the rules read it unchanged."""
    out = {k: v for k, v in state.items() if k not in ("seen", "created", "breached")}
    created = state.get("created")
    if created is not None:
        kept = {k: created[k] for k in CREATED_FIELDS if k in created}
        if callers and created.get("caller_ref"):
            kept["caller_ref"] = created["caller_ref"]
        out["created"] = kept
    return out


def pack(state: State) -> Packed:
    """One incident's rule record as one compact string (floats round-trip exactly)."""
    return orjson.dumps(state).decode()


def unpack(packed: Packed | State) -> State:
    """The record :func:`pack` made (or, saved by an older version, the state itself)."""
    return orjson.loads(packed) if isinstance(packed, str) else dict(packed)


def _interned_view(state: State, incident_id: str) -> OpenIncident | None:
    """The open view, its strings shared (the id with the timeline's keys, the codes with
    every other incident) rather than fresh ones from each unpacking."""
    v = open_view(state)
    if v is None:
        return None
    return OpenIncident(incident_id, sys.intern(v.grade), sys.intern(v.area),
                        sys.intern(v.status), v.created_at, v.vulnerable,
                        None if v.terminal is None else sys.intern(v.terminal))


def _keys(s: State, v: OpenIncident | None) -> dict[str, Hashable]:
    """The subject keys an incident state (open view ``v``) belongs to, by index."""
    keys: dict[str, Hashable] = {"incident": s["id"]}
    created = s.get("created")
    if created is not None and created.get("caller_ref"):
        keys["caller"] = created["caller_ref"]
    if v is not None:
        keys["grade_area"] = (v.grade, v.area)
        if v.terminal is not None:
            keys["terminal"] = v.terminal
    return keys


class AlertTimeline:
    """Holds events back, applies them in event-time order, raises alerts at exact instants."""

    def __init__(self, config: DemandConfig, retention_s: float) -> None:
        self.config = config
        self.zone = config.force.zone()
        self.cool_down = float(config.alerting.cool_down_seconds)
        # Closed incidents are kept this long (event time) for the repeat-caller window.
        self.retention_s = max(retention_s, *(r.within_seconds for r in config.rules), 0)
        self.rules_by_index: dict[str, list[Rule]] = {}
        for rule in config.rules:
            self.rules_by_index.setdefault(INDEX_OF[rule.kind], []).append(rule)
        self.callers = "caller" in self.rules_by_index
        # Each incident's rule record, packed (see pack()); the open ones' views unpacked.
        self.states: dict[str, Packed] = {}
        self.views: dict[str, OpenIncident] = {}
        # The incidents with no open view, by their last event: forgotten past retention.
        self._quiet = DueIndex()
        self._unpacked: tuple[str, State] | None = None  # the last one unpacked
        # (call time, id) of the incidents in each caller, grade x area and terminal group,
        # in waiting order: counts and the longest-waiting ids without a pass over a group.
        self.members: dict[Key, SortedList] = {}
        self.minutes: dict[str, dict[int, int]] = {}  # grade -> minute -> incidents
        self.minute_list: dict[str, list[int]] = {}  # grade -> sorted minutes with counts
        self.holding: dict[str, Condition] = {}
        self.produced: dict[tuple[str, Key], set[str]] = {}
        self.active: dict[str, Active] = {}
        self.frontier: float | None = None
        self._held: list[tuple[float, int, str, int, Event]] = []
        self._late: list[Event] = []
        # Events offered after the frontier had passed them that changed an incident (a
        # redelivered event, already applied, is not late: at-least-once, not lateness).
        self.late_count = 0
        self._timers: list[tuple[float, int, Any]] = []
        self._due: dict[Any, float] = {}
        self._seq = itertools.count()
        self._next_sweep: float | None = None
        # What changed since take_changes() last ran: what a saved copy must rewrite.
        self._dirty: set[str] = set()
        self._dirty_minutes: set[MinuteKey] = set()

    # -- input -------------------------------------------------------------------------

    def offer(self, ev: Event) -> None:
        """Take an event: held until the frontier passes it (or applied at the frontier if
        it has already passed)."""
        if self.frontier is not None and ev.at <= self.frontier:
            self._late.append(ev)
        else:
            heapq.heappush(self._held, (ev.at, RANK[ev.event_type], ev.event_id,
                                        next(self._seq), ev))

    def seed(self, states: Iterable[State], minutes: Iterable[tuple[str, int, int]],
             active: Mapping[str, Active], frontier: float | None) -> tuple[Changes, list[Active]]:
        """Start from saved state (a restart or a takeover): the incidents and the minute
        counts (grade, minute, calls) as of ``frontier``, the active alerts, the frontier.

        Every subject is evaluated at the frontier; what changed while no worker was
        evaluating is returned like any other transition.
        """
        for saved in states:
            s = unpack(saved) if saved else None
            if s and s.get("id"):
                state = slim(s, self.callers)
                self._store(state)
                for index, key in _keys(state, self.views.get(state["id"])).items():
                    if index != "incident":
                        self._join((index, key), (state["created"]["at"], state["id"]))
        for grade, minute, n in minutes:
            self._count(grade, int(minute), int(n))
        self._dirty.clear()  # what was just read back needs no saving
        self._dirty_minutes.clear()
        self.active = {fp: dict(a) for fp, a in active.items() if a}
        if frontier is None and self.states:
            frontier = max(cast(State, self.state(i)).get("last_at", -math.inf)
                           for i in self.states)
        self.frontier = frontier
        if frontier is None:
            return {}, []
        touched: set[Key] = set(self.members)
        touched |= {("incident", i) for i in self.states}
        touched |= {("grade", g) for g in self.minutes}
        changed = self._evaluate(touched, frontier) | set(self.active)
        for fp, a in self.active.items():
            if fp in self.holding and a.get("clear_since") is None:
                # Still firing: keep it as it was last evaluated (its summary says "N min
                # overdue" as of then), exactly as a worker that never stopped would.
                self.holding[fp] = Condition(**{k: a[k] for k in CONDITION_FIELDS
                                                if k != "incident_ids"},
                                             incident_ids=tuple(a["incident_ids"]))
                changed.discard(fp)
        changes: Changes = {}
        notes: list[Active] = []
        self._lifecycle(changed, frontier, changes, notes)
        for fp, a in self.active.items():
            if a.get("clear_since") is not None:
                self._schedule(("cool", fp), a["clear_since"] + self.cool_down)
        return changes, notes

    # -- walking time forward ----------------------------------------------------------

    def advance(self, to: float | None) -> tuple[Changes, list[Active]]:
        """Apply held events and fire timers up to ``to``, in order; return the changes to
        the active alerts (fingerprint -> record, None: gone) and the notifications."""
        changes: Changes = {}
        notes: list[Active] = []
        if self._late and self.frontier is not None:
            late, self._late = self._late, []
            touched: set[Key] = set()
            for ev in late:
                changed = self._apply(ev)
                if changed:
                    self.late_count += 1
                    touched |= changed
            self._lifecycle(self._evaluate(touched, self.frontier), self.frontier,
                            changes, notes)
        if to is None:
            return changes, notes
        while True:
            t_event = self._held[0][0] if self._held and self._held[0][0] <= to else math.inf
            t_timer = self._timers[0][0] if self._timers and self._timers[0][0] <= to \
                else math.inf
            t = min(t_event, t_timer)
            if t == math.inf:
                break
            touched = set()
            cooling: set[str] = set()
            while self._held and self._held[0][0] == t:
                touched |= self._apply(heapq.heappop(self._held)[4])
            while self._timers and self._timers[0][0] == t:
                _, _, what = heapq.heappop(self._timers)
                if self._due.get(what) != t:
                    continue  # superseded by a later schedule
                del self._due[what]
                if what[0] == "cool":
                    cooling.add(what[1])
                else:
                    touched.add(what)
            self.frontier = t
            self._lifecycle(self._evaluate(touched, t) | cooling, t, changes, notes)
            self._maybe_sweep(t)
        if self.frontier is None or to > self.frontier:
            self.frontier = to
            self._maybe_sweep(to)
        return changes, notes

    # -- saving ------------------------------------------------------------------------

    def take_changes(self) -> tuple[dict[str, Packed | None], dict[MinuteKey, int | None]]:
        """The incidents (packed records) and minute counts changed since the last call
        (None: forgotten).

        Saved with the frontier after each step, they are what :meth:`seed` needs to
        carry on exactly where this timeline stopped.
        """
        states = {i: self.states.get(i) for i in self._dirty}
        minutes = {k: self.minutes.get(k[0], {}).get(k[1]) for k in self._dirty_minutes}
        self._dirty.clear()
        self._dirty_minutes.clear()
        return states, minutes

    # -- state -------------------------------------------------------------------------

    def _apply(self, ev: Event) -> set[Key]:
        """Fold one event into the timeline's incidents; the subjects it may have changed."""
        before = self.state(ev.incident_id)
        if before is None and self.frontier is not None and \
                ev.at < self.frontier - self.retention_s:
            return set()  # an echo of an incident already forgotten (see domain.backlog)
        after = slim(apply_event(before, ev), self.callers)
        if after == before:
            return set()
        old = _keys(before, self.views.get(ev.incident_id)) if before else {}
        incident_id = sys.intern(ev.incident_id)
        old_entry = (before["created"]["at"], incident_id) \
            if before and "created" in before else None
        self._store(after)
        new = _keys(after, self.views.get(ev.incident_id))
        new_entry = (after["created"]["at"], incident_id) if "created" in after else None
        touched: set[Key] = set()
        for index in old.keys() | new.keys():
            a, b = old.get(index), new.get(index)
            if a is not None:
                touched.add((index, a))
            if b is not None:
                touched.add((index, b))
            if index == "incident" or (a == b and old_entry == new_entry):
                continue
            if a is not None:
                self._leave((index, a), old_entry)
            if b is not None:
                self._join((index, b), new_entry)
        created = after.get("created")
        if created is not None and (before is None or "created" not in before):
            self._count(created["grade"], minute_of(created["at"]), 1)
            touched.add(("grade", created["grade"]))
        return touched

    def state(self, incident_id: str) -> State | None:
        """One incident's rule record, unpacked (the last one is kept unpacked: a step
        reads the incident it touched several times)."""
        if self._unpacked is not None and self._unpacked[0] == incident_id:
            return self._unpacked[1]
        packed = self.states.get(incident_id)
        if packed is None:
            return None
        state = unpack(packed)
        self._unpacked = (incident_id, state)
        return state

    def _store(self, state: State) -> None:
        incident_id = sys.intern(state["id"])  # one string for it in keys, views, groups
        self.states[incident_id] = pack(state)
        self._unpacked = (incident_id, state)
        self._dirty.add(incident_id)
        view = _interned_view(state, incident_id)
        if view is None:
            self.views.pop(incident_id, None)
            self._quiet.set(incident_id, state.get("last_at", math.inf))
        else:
            self.views[incident_id] = view
            self._quiet.set(incident_id, None)

    def _join(self, key: Key, entry: tuple[float, str] | None) -> None:
        group = self.members.get(key)
        if group is None:
            group = self.members[key] = SortedList()
        group.add(entry)

    def _leave(self, key: Key, entry: tuple[float, str] | None) -> None:
        group = self.members.get(key)
        if group is not None:
            group.discard(entry)
            if not group:
                del self.members[key]

    def _count(self, grade: str, minute: int, n: int) -> None:
        counts = self.minutes.setdefault(grade, {})
        if minute not in counts:
            bisect.insort(self.minute_list.setdefault(grade, []), minute)
        counts[minute] = counts.get(minute, 0) + n
        self._dirty_minutes.add((grade, minute))

    def _maybe_sweep(self, now: float) -> None:
        """Forget closed incidents past retention and minute counts past the surge baseline."""
        if self._next_sweep is not None and now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_EVERY_S
        for incident_id in self._quiet.pop_due(now - self.retention_s, strictly_before=True):
            s = cast(State, self.state(str(incident_id)))
            del self.states[str(incident_id)]
            self._unpacked = None
            self._dirty.add(str(incident_id))
            for index, key in _keys(s, None).items():
                if index != "incident":
                    self._leave((index, key), (s["created"]["at"], incident_id))
        oldest = minute_of(now) - WEEK - 2 * HOUR - MINUTE  # a local week: up to 1 h longer
        for grade, xs in self.minute_list.items():
            cut = bisect.bisect_left(xs, oldest)
            for minute in xs[:cut]:
                del self.minutes[grade][minute]
                self._dirty_minutes.add((grade, minute))
            del xs[:cut]

    # -- rules -------------------------------------------------------------------------

    def _evaluate(self, touched: Iterable[Key], now: float) -> set[str]:
        """Evaluate the touched subjects as of ``now``; the fingerprints whose condition
        changed. Each subject gets a timer for its next change with no event."""
        changed: set[str] = set()
        for key in touched:
            index, subject = key
            rules = self.rules_by_index.get(index)
            if not rules:
                continue
            items: list[State] | None = None
            views: list[Any] = []
            next_at = math.inf
            for rule in rules:
                fast = self._fast(rule, key, now)
                if fast is not None:
                    produced = fast
                else:
                    if items is None:
                        items = self._items(key)
                        views = [(s, v) for s in items
                                 if (v := self.views.get(s["id"])) is not None]
                    produced = self._conditions(rule, key, items, views, now)
                before = self.produced.pop((rule.name, key), set())
                for fp in before - produced.keys():
                    self.holding.pop(fp, None)
                    changed.add(fp)
                for fp, c in produced.items():
                    if self.holding.get(fp) != c:
                        self.holding[fp] = c
                        changed.add(fp)
                if produced:
                    self.produced[(rule.name, key)] = set(produced)
                next_at = min(next_at, self._next_change(rule, key, now))
            if next_at < math.inf:
                self._schedule(key, next_at)
        return changed

    def _items(self, key: Key) -> list[State]:
        if key[0] == "incident":
            s = self.state(str(key[1]))
            return [s] if s is not None else []
        return [unpack(self.states[i]) for _, i in self.members.get(key, ())]

    def _fast(self, rule: Rule, key: Key, now: float) -> dict[str, Condition] | None:
        """Group rules from the group's count and longest-waiting members alone (None:
        this rule needs the full pass)."""
        index, subject = key
        if index == "incident":  # attendance, review, appointment: open and in scope only
            v = self.views.get(str(subject))
            return {} if v is None or not _in_scope(rule, v.grade, v.area) else None
        if index == "grade":
            if rule.grades and subject not in rule.grades:
                return {}
            c = self._surge(rule, str(subject), now)
            return {} if c is None else {c.fingerprint: c}
        group = self.members.get(key, ())
        if rule.kind in ("backlog_above", "oldest_open"):
            grade, area = cast(tuple[str, str], subject)
            if (rule.grades and grade not in rule.grades) or \
                    (rule.areas and area not in rule.areas) or not group:
                return {}
            if rule.kind == "backlog_above":
                c = backlog_condition(rule, grade, area, len(group), group[:MAX_IDS])
            else:
                c = oldest_condition(rule, grade, area, group[0], now)
        elif rule.kind == "terminal_overloaded" and not rule.grades and not rule.areas:
            c = terminal_condition(rule, self.config, str(key[1]), len(group),
                                   group[:MAX_IDS])
        else:
            return None
        return {} if c is None else {c.fingerprint: c}

    def _conditions(self, rule: Rule, key: Key, items: list[State], views: list[Any],
                    now: float) -> dict[str, Condition]:
        out = _KINDS[rule.kind](rule, self.config, items, views, now, None)
        return {c.fingerprint: c for c in out}

    def _surge(self, rule: Rule, grade: str, now: float) -> Condition | None:
        """The surge rule for one grade, from the timeline's own minute counts."""
        counts = self.minutes.get(grade, {})
        start, end = surge_window(now)

        def calls(since: float, until: float) -> int:
            return sum(counts.get(m, 0) for m in range(int(since), int(until), MINUTE))

        zone = self.zone
        return surge_condition(rule, grade, calls(start, end),
                               calls(week_before(start, zone), week_before(end, zone)))

    def _next_change(self, rule: Rule, key: Key, now: float) -> float:
        """The next instant after ``now`` at which this rule's result for the subject can
        change with no event (inf: only an event can change it)."""
        threshold = rule.threshold or 0
        candidates: list[float] = []
        index, subject = key
        if index == "incident":
            v = self.views.get(str(subject))
            s = self.state(str(subject)) if v is not None else None
            if s is None or v is None or not _in_scope(rule, v.grade, v.area):
                return math.inf
            if rule.kind == "attendance_overdue":
                deadline = attendance_deadline(s, self.config)
                if s.get("arrived_at") is None and deadline is not None:
                    candidates.append(just_after(deadline + threshold))
            elif rule.kind == "review_overdue_vulnerable":
                if v.vulnerable and s.get("review") is not None:
                    candidates.append(just_after(s["review"][3] + threshold))
            elif rule.kind == "appointment_missed":
                if v.status == "scheduled" and s.get("slot") is not None:
                    candidates.append(just_after(s["slot"][4] + threshold))
        elif rule.kind == "oldest_open":
            group = self.members.get(key)
            if group:
                candidates.append(just_after(group[0][0] + threshold))
        elif rule.kind == "repeat_caller":
            for created_at, _ in self.members.get(key, ()):
                candidates.append(created_at)  # enters the window
                candidates.append(just_after(created_at + rule.within_seconds))
        elif rule.kind == "surge":
            # A minute with calls leaves this hour, enters last week's hour, leaves it.
            # Last week's hour is the same local hour (week_before): a minute enters it a
            # local week after it happened and leaves it an hour later.
            xs = self.minute_list.get(str(key[1]), [])
            i = bisect.bisect_right(xs, now - HOUR)
            if i < len(xs):
                candidates.append(float(xs[i] + HOUR))
            for extra in (0, HOUR):
                i = bisect.bisect_right(xs, week_before(now - extra, self.zone))
                while i < len(xs) and week_after(xs[i], self.zone) + extra <= now:
                    i += 1
                if i < len(xs):
                    candidates.append(week_after(xs[i], self.zone) + extra)
        later = [c for c in candidates if c > now]
        return min(later, default=math.inf)

    def _schedule(self, what: Any, at: float) -> None:
        if self._due.get(what) == at:
            return
        self._due[what] = at
        heapq.heappush(self._timers, (at, next(self._seq), what))

    # -- lifecycle ---------------------------------------------------------------------

    def _lifecycle(self, fps: set[str], now: float, changes: Changes,
                   notes: list[Active]) -> None:
        """Fire, continue or resolve the alerts whose condition changed (or cool-down ended)."""
        if not fps:
            return
        active = {fp: self.active[fp] for fp in fps if fp in self.active}
        holding = {fp: self.holding[fp] for fp in fps if fp in self.holding}
        step_changes, step_notes = step(active, holding, now, self.cool_down)
        for fp, record in step_changes.items():
            changes[fp] = record
            if record is None:
                self.active.pop(fp, None)
            else:
                self.active[fp] = record
                if record.get("clear_since") is not None and \
                        (fp not in active or active[fp].get("clear_since") is None):
                    self._schedule(("cool", fp), record["clear_since"] + self.cool_down)
        notes.extend(step_notes)
