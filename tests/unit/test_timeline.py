"""The alert timeline: alerts are a function of the event log, not of when it is read.

The reference is the plain rule evaluator (``rules.evaluate``, unit-tested rule by
rule in test_rules.py) run on the incidents as of every second of a scenario: the
timeline must raise exactly the episodes that says hold, stamped at the instants
they began and ended, however the events arrive and however its frontier moves.
"""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from pipeline.config import default_config_text, parse_config
from pipeline.domain import windows as w
from pipeline.domain.backlog import apply_event
from pipeline.domain.events import Event, decode_event, format_time, parse_time
from pipeline.domain.rules import evaluate
from pipeline.domain.timeline import AlertTimeline
from tests.factories import THRIVE, created, event, ts

T0 = parse_time(ts(0))
SPAN_S = 3 * 3600


def config(cool_down: int = 0) -> Any:
    """The shipped rules with thresholds a small scenario reaches."""
    text = default_config_text()
    for old, new in (("band_low = 20\nband_high = 50", "band_low = 1\nband_high = 3"),
                     ("threshold = 40", "threshold = 3"),
                     ("threshold = 259200", "threshold = 5400"),
                     ("cool_down_seconds = 120", f"cool_down_seconds = {cool_down}")):
        assert old in text
        text = text.replace(old, new)
    return parse_config(text, "test")


CONFIG = config()


def decode(doc: dict[str, Any]) -> Event:
    return decode_event(orjson.dumps(doc), CONFIG, 65536)


def at(seconds: float) -> str:
    return format_time(T0 + seconds)


def scenario(seed: int) -> list[Event]:
    """Thirty incidents over two hours, with clocks running out either side of events."""
    rng = random.Random(seed)
    docs: list[dict[str, Any]] = []
    for n in range(30):
        i = f"S{seed}-{n}"
        t = rng.randrange(0, 7200)
        grade = rng.choice("11234")
        doc = created(i, grade=grade, area=rng.choice(["north", "south", "east"]),
                      vulnerable=rng.random() < 0.3)
        doc["occurred_at"] = at(t)
        doc["data"]["caller_ref"] = f"caller{rng.randrange(4):04d}"
        docs.append(doc)

        def later(etype: str, delay: float, data: dict[str, Any], i: str = i,
                  t: float = t) -> None:
            e = event(i, etype, 0, data)
            e["occurred_at"] = at(t + delay)
            docs.append(e)

        if rng.random() < 0.5:
            later("risk_assessed", rng.randrange(0, 300), {
                "thrive": THRIVE, "trigger": "initial", "vulnerable": rng.random() < 0.5,
                "next_review_due": at(t + rng.randrange(300, 1800))})
        if rng.random() < 0.7:
            later("assigned", rng.randrange(0, 600), {"terminal": rng.choice(["T1", "T2"])})
        if grade in "34" and rng.random() < 0.4:
            start = t + rng.randrange(600, 1800)
            later("scheduled", 60, {"slot_start": at(start), "slot_end": at(start + 600)})
            if rng.random() < 0.5:
                later("arrived", start - t + rng.randrange(0, 900), {})
        elif rng.random() < 0.8:
            arrive = rng.choice([rng.randrange(800, 1000), rng.randrange(2000, 4000)])
            later("dispatched", arrive // 2, {"resource_ref": "unit-1"})
            later("arrived", arrive, {})
        if rng.random() < 0.6:
            later("closed", rng.randrange(1000, 6000), {"disposition": "done"})
    docs += rng.sample(docs, 10)  # duplicates, as at-least-once delivery gives
    return [decode(d) for d in docs]


# Event times are whole seconds, so every episode (even one from just past a target to
# an arrival a second later) contains a half second.
GRID = [s / 2 for s in range(2 * SPAN_S)]


def reference(events: list[Event]) -> set[tuple[str, float]]:
    """(fingerprint, instant) for every half second at which the plain evaluator says a
    condition holds, on the incidents as of that instant."""
    ordered = sorted(events, key=lambda e: e.at)
    states: dict[str, dict[str, Any]] = {}
    out: set[tuple[str, float]] = set()
    i = 0
    for second in GRID:
        now = T0 + second
        while i < len(ordered) and ordered[i].at <= now:
            e = ordered[i]
            states[e.incident_id] = apply_event(states.get(e.incident_id), e)
            i += 1
        out |= {(fp, second) for fp in evaluate(CONFIG, states.values(), now)}
    return out


def episodes(notes: list[dict[str, Any]]) -> set[tuple[str, float]]:
    """(fingerprint, instant) for every half second inside a notified episode."""
    starts: dict[str, float] = {}
    out: set[tuple[str, float]] = set()
    for note in notes:
        fp = note["fingerprint"]
        if note["status"] == "firing":
            starts[fp] = note["starts_at"]
        else:
            out |= {(fp, s) for s in GRID if starts[fp] <= T0 + s < note["ends_at"]}
            del starts[fp]
    for fp, start in starts.items():
        out |= {(fp, s) for s in GRID if start <= T0 + s}
    return out


def run(events: list[Event], steps: list[float], cfg: Any = CONFIG) -> list[dict[str, Any]]:
    timeline = AlertTimeline(cfg, retention_s=2 * 86400)
    for e in events:
        timeline.offer(e)
    notes: list[dict[str, Any]] = []
    for to in steps:
        notes += timeline.advance(to)[1]
    return notes


@pytest.mark.parametrize("seed", range(6))
def test_every_episode_begins_and_ends_when_the_evaluator_says_whatever_the_pace(
        seed: int) -> None:
    events = scenario(seed)
    rng = random.Random(seed)
    in_one_go = run(events, [T0 + SPAN_S])  # a replay read all at once
    shuffled = rng.sample(events, len(events))  # arrival order is not event order
    second_by_second = run(shuffled, [T0 + s for s in range(0, SPAN_S + 1, 7)])
    assert in_one_go, "the scenario raises alerts"
    assert second_by_second == in_one_go
    want = reference(events)
    assert episodes(in_one_go) == want
    assert {fp for fp, _ in want} >= {n["fingerprint"] for n in in_one_go}


@pytest.mark.parametrize("seed", range(3))
def test_group_alerts_list_the_same_incidents_and_counts_as_the_evaluator(seed: int) -> None:
    """Group rules read a group's size and longest-waiting members from the group kept in
    order, not from a pass over it; what they say must not differ."""
    events = scenario(seed)
    timeline = AlertTimeline(CONFIG, retention_s=2 * 86400)
    for e in events:
        timeline.offer(e)
    groups = {"Grade2BacklogHigh", "TerminalOverloaded", "RepeatCaller"}
    compared = 0
    for minute in range(0, SPAN_S // 60, 10):
        now = T0 + minute * 60
        timeline.advance(now)
        states: dict[str, dict[str, Any]] = {}
        for e in sorted(events, key=lambda e: e.at):
            if e.at <= now:
                states[e.incident_id] = apply_event(states.get(e.incident_id), e)
        want = {fp: c for fp, c in evaluate(CONFIG, states.values(), now).items()
                if c.rule in groups}
        got = {fp: c for fp, c in timeline.holding.items() if c.rule in groups}
        assert got == want, now - T0
        compared += len(want)
    assert compared, "the scenario raises group alerts"


def test_a_grade1_attended_three_seconds_late_is_raised_and_resolved_at_those_instants() -> None:
    events = [decode(created("G1", grade="1")),  # urban target: 15 min
              decode(event("G1", "arrived", 15 + 3 / 60, {}))]
    notes = run(events, [T0 + 3600])  # a replay at any speed: one step over the hour
    assert [(n["status"], n["rule"]) for n in notes] == \
        [("firing", "Grade1AttendanceOverdue"), ("resolved", "Grade1AttendanceOverdue")]
    assert format_time(notes[0]["starts_at"]) == "2026-01-15T08:15:00.000Z"  # just past it
    assert notes[0]["starts_at"] > T0 + 900
    assert notes[1]["ends_at"] == T0 + 903


def test_arriving_exactly_at_the_target_raises_nothing() -> None:
    events = [decode(created("G1", grade="1")), decode(event("G1", "arrived", 15, {}))]
    assert run(events, [T0 + 3600]) == []


def test_a_flicker_within_the_cool_down_is_one_episode_resolved_when_it_ended() -> None:
    cfg = config(cool_down=120)
    calls = [created(f"B{n}", grade="2", area="north") for n in range(4)]  # 4 > 3: holds
    close = event("B0", "closed", 10, {"disposition": "done"})
    reopen = event("B0", "reopened", 11, {"reason": "rang back"})  # 60 s later: same episode
    close_again = event("B0", "closed", 20, {"disposition": "done"})
    notes = run([decode(d) for d in [*calls, close, reopen, close_again]], [T0 + 7200], cfg)
    backlog = [n for n in notes if n["rule"] == "Grade2BacklogHigh"]
    assert [(n["status"], n["starts_at"]) for n in backlog] == \
        [("firing", T0), ("resolved", T0)]
    assert backlog[1]["ends_at"] == T0 + 20 * 60  # when it cleared, not when cool-down ended


def test_surge_fires_on_the_call_that_makes_it_and_resolves_as_the_hour_moves_on() -> None:
    week = w.WEEK / 60
    last_week = [created(f"L{n}", minutes=-week + n, grade="4") for n in range(10)]
    this_week = [created(f"N{n}", minutes=n, grade="4") for n in range(15)]  # 1.5 x 10
    notes = [n for n in run([decode(d) for d in [*last_week, *this_week]], [T0 + 7200])
             if n["rule"] == "DemandSurge"]
    assert [n["status"] for n in notes] == ["firing", "resolved"]
    assert notes[0]["starts_at"] == T0 + 14 * 60  # the fifteenth call
    # The first call's minute leaves the last hour at T0 + 1 h: 14 < 1.5 x 10.
    assert notes[1]["ends_at"] == T0 + 3600


def test_an_event_arriving_after_the_frontier_is_applied_there() -> None:
    timeline = AlertTimeline(CONFIG, retention_s=2 * 86400)
    timeline.offer(decode(created("G1", grade="1")))
    timeline.advance(T0 + 1000)  # fired at 15 min
    timeline.offer(decode(event("G1", "arrived", 10, {})))  # said 10 min, came after 16
    changes, notes = timeline.advance(T0 + 1001)
    assert timeline.late_count == 1  # counted: the worker reports it
    assert [(n["status"], n["ends_at"]) for n in notes] == [("resolved", T0 + 1000)]
    assert list(changes.values()) == [None]


def test_an_event_delivered_again_after_the_frontier_is_not_late() -> None:
    """At-least-once: after a rebalance the new owner sends events already applied. They
    change nothing and are not counted late (a worker would otherwise warn of lateness
    at every rebalance)."""
    timeline = AlertTimeline(CONFIG, retention_s=2 * 86400)
    first = decode(created("G1", grade="1"))
    timeline.offer(first)
    timeline.advance(T0 + 1000)
    timeline.offer(first)
    changes, notes = timeline.advance(T0 + 1001)
    assert timeline.late_count == 0 and notes == [] and changes == {}


def test_a_restart_from_saved_state_carries_on_as_if_never_stopped() -> None:
    events = scenario(3)
    whole = run(events, [T0 + SPAN_S])
    first = AlertTimeline(CONFIG, retention_s=2 * 86400)
    for e in events:
        first.offer(e)
    # What the worker saves after each step: the changed incidents and minute counts,
    # the active alerts and the frontier; a successor starts from the last save and the
    # events not yet applied arrive again (with some applied ones: at-least-once).
    saved_states: dict[str, Any] = {}
    saved_minutes: dict[tuple[str, int], int] = {}
    notes: list[Any] = []
    for step in (T0 + 600, T0 + 1800, T0 + 3600):
        notes += first.advance(step)[1]
        states, minutes = first.take_changes()
        for i, s in states.items():
            saved_states.pop(i, None) if s is None else saved_states.__setitem__(i, s)
        for k, n in minutes.items():
            saved_minutes.pop(k, None) if n is None else saved_minutes.__setitem__(k, n)
    assert first.take_changes() == ({}, {}), "a step with nothing new saves nothing"
    second = AlertTimeline(CONFIG, retention_s=2 * 86400)
    changes, seeded = second.seed(saved_states.values(),
                                  [(g, m, n) for (g, m), n in saved_minutes.items()],
                                  first.active, first.frontier)
    assert seeded == [] and changes == {}, "nothing fires twice, nothing is forgotten"
    for e in events:
        second.offer(e)
    notes += second.advance(T0 + SPAN_S)[1]
    assert notes == whole


def test_a_timeline_saved_before_records_were_packed_carries_on_the_same() -> None:
    """An existing deployment's table holds whole incident states (before 2026-12-03): a
    successor seeded from them raises what one seeded from packed records raises."""
    events = scenario(4)
    first = AlertTimeline(CONFIG, retention_s=2 * 86400)
    for e in events:
        first.offer(e)
    first.advance(T0 + 3600)
    packed, minutes = first.take_changes()
    # What the older version saved: the folded state, with what the rules never read.
    whole: dict[str, Any] = {}
    for e in sorted(events, key=lambda e: e.at):
        if e.at <= T0 + 3600:
            whole[e.incident_id] = apply_event(whole.get(e.incident_id), e)
    assert set(whole) == {i for i, s in packed.items() if s is not None}
    runs = []
    for saved in (list(packed.values()), list(whole.values())):
        successor = AlertTimeline(CONFIG, retention_s=2 * 86400)
        successor.seed(saved, [(g, m, n) for (g, m), n in minutes.items() if n],
                       first.active, first.frontier)
        for e in events:
            successor.offer(e)
        runs.append(successor.advance(T0 + SPAN_S)[1])
    assert runs[0] == runs[1] and runs[0], "the same alerts from either form"


@pytest.mark.parametrize("with_repeat_caller", [True, False])
def test_the_timeline_keeps_only_what_the_rules_read_of_an_incident(
        with_repeat_caller: bool) -> None:
    """Not a second full copy: no channel, no category, and no caller reference unless a
    rule reads it (it is pseudonymous, but what is not needed is not held)."""
    rules = CONFIG if with_repeat_caller else CONFIG.model_copy(update={"rules": [
        r for r in CONFIG.rules if r.kind != "repeat_caller"]})
    timeline = AlertTimeline(rules, retention_s=2 * 86400)
    doc = created("K1", grade="2", area="north")
    doc["data"]["caller_ref"] = "caller0001"
    timeline.offer(decode(doc))
    timeline.advance(T0 + 60)
    record = orjson.loads(timeline.take_changes()[0]["K1"])
    full = apply_event(None, decode(doc))
    assert {"channel", "category"} <= full["created"].keys()
    assert "channel" not in record["created"] and "category" not in record["created"]
    assert ("caller_ref" in record["created"]) is with_repeat_caller
    assert record["created"]["area"] == "north" and record["grade"][3] == "2"


def _decc_events() -> list[Event]:
    from pipeline.domain.events import event_from_document
    from pipeline.replay import load_mapping, plan
    from tests.integration.test_replay_real_data import FILES

    if not FILES:
        pytest.skip("the shared DECC export is not here")
    docs, _ = plan(FILES, load_mapping("decc-cad"), SHIPPED)
    return [event_from_document(d) for d in docs]


SHIPPED = parse_config(default_config_text(), "shipped")


def test_the_real_log_raises_the_same_alerts_live_or_replayed_at_any_speed() -> None:
    """Eight weeks of a real control room's calls (27,759 events), the shipped rules: read
    at once, as a 600x replay in one-second batches, and as they happened (ten-second steps,
    events arriving up to two seconds after their time) — the same alert records."""
    events = _decc_events()
    end = events[-1].at + 86400
    grace = SHIPPED.windows.grace_seconds

    at_once = AlertTimeline(SHIPPED, retention_s=2 * 86400)
    for e in events:
        at_once.offer(e)
    want = at_once.advance(end)[1]

    replay = AlertTimeline(SHIPPED, retention_s=2 * 86400)
    replayed: list[dict[str, Any]] = []
    batch = 600.0  # one wall second at 600x
    i = 0
    t = events[0].at
    while i < len(events):
        t += batch
        while i < len(events) and events[i].at <= t:
            replay.offer(events[i])
            i += 1
        replayed += replay.advance(events[i - 1].at - grace)[1]
    replayed += replay.advance(end)[1]

    live = AlertTimeline(SHIPPED, retention_s=2 * 86400)
    lived: list[dict[str, Any]] = []
    i = 0
    t = events[0].at
    while t < end:
        t += 10.0
        while i < len(events) and events[i].at <= t:  # arrived by now
            live.offer(events[i])
            i += 1
        lived += live.advance(t - 2.0)[1]  # the settle time

    assert len(want) > 100, "the real log raises alerts"
    assert replayed == want
    assert lived == want


def test_surge_compares_the_same_hour_on_the_force_s_clocks_across_the_end_of_summer_time(
        ) -> None:
    """Monday 27 Oct 2025 09:00-10:00 in London (GMT, 09:00Z) against Monday 20 Oct
    09:00-10:00 (BST, 08:00Z): 7 x 24 h earlier would be 10:00-11:00 on last week's clocks."""
    from datetime import datetime

    def call(iid: str, when: datetime) -> Event:
        doc = created(iid, grade="4")
        doc["occurred_at"] = format_time(when.timestamp())
        return decode(doc)

    this_monday = datetime(2025, 10, 27, 9, 0, tzinfo=w.UTC)
    last_monday = datetime(2025, 10, 20, 8, 0, tzinfo=w.UTC)  # 09:00 BST
    assert CONFIG.force.timezone == "Europe/London"
    events = [call(f"L{n}", last_monday.replace(minute=n)) for n in range(10)] + \
        [call(f"N{n}", this_monday.replace(minute=n)) for n in range(15)]
    notes = [n for n in run(events, [this_monday.timestamp() + 7200])
             if n["rule"] == "DemandSurge"]
    assert notes and notes[0]["status"] == "firing"
    assert notes[0]["starts_at"] == this_monday.timestamp() + 14 * 60  # the fifteenth call
    # The demand view's "same window last week" is the same local hour too.
    buckets = [(w.minute_of(e.at), {w.cell("4", "999"): 1}) for e in events]
    shown = w.demand(buckets, 3600, this_monday.timestamp() + 1800, CONFIG.force.zone())
    assert sum(shown["last_week"].values()) == 10 and sum(shown["current"].values()) == 15
    assert sum(w.demand(buckets, 3600, this_monday.timestamp() + 1800)["last_week"].values()) \
        == 0  # what 7 x 24 h in UTC compared it with
