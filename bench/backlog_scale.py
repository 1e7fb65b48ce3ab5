"""Cost per event and per tick as the backlog grows: 10,000 and 200,000 open incidents.

Issue 19 asks that nothing scans every incident per second or per partition. This
holds N open incidents in what a worker holds (the incident states with the
clock's due index, and the alert timeline's copy) and times, in the same process:

- per event: fold it (``fold_event``), keep the due index, offer it to the alert
  timeline and walk the timeline over it (rules for what it touched);
- per tick: the clock's due lookup and the timeline's one-second step when
  nothing is due, against the baseline of the pass over every incident that the
  clock made before (its ratio says how many ticks fit in one old tick);
- memory: the bytes the alert timeline holds per incident for the rules (its
  packed rule records and open views), against the full incident state it used to
  copy (the incident table's state less its duplicate-check history).

    python -m bench.backlog_scale          (also run by ``make bench``)
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from typing import Any

import orjson

from pipeline.config import load_config
from pipeline.domain.backlog import State, due_to_forget, fold_event
from pipeline.domain.clocks import attendance_breached
from pipeline.domain.due import DueIndex, breach_due_at, forget_due_at
from pipeline.domain.events import Event, decode_event, format_time
from pipeline.domain.timeline import AlertTimeline

CONFIG = load_config()
T0 = 1.78e9
SIZES = (10_000, 200_000)
MEASURED_EVENTS = 20_000
TICKS = 200


def _event(iid: str, kind: str, at: float, data: dict[str, Any], n: int) -> Event:
    doc = {"event_id": f"e{n}", "incident_id": iid, "event_type": kind,
           "occurred_at": format_time(at), "schema_version": 1, "source": "bench",
           "data": data}
    return decode_event(orjson.dumps(doc), CONFIG, 65536)


def _created(rng: random.Random, i: int, at: float) -> Event:
    grade = rng.choice([g.code for g in CONFIG.grades])
    area = rng.choice([a.code for a in CONFIG.areas])
    return _event(f"I{i:07d}", "created", at, {
        "grade": grade, "category": "ASB", "channel": "101", "area": area,
        "vulnerable": False, "caller_ref": f"caller{rng.randrange(10**6):07d}"}, i * 4)


class Held:
    """What a worker holds for its incidents (as the agents keep it, without Faust)."""

    def __init__(self) -> None:
        self.states: dict[str, State] = {}
        self.breach, self.forget = DueIndex(), DueIndex()
        self.timeline = AlertTimeline(CONFIG, 2 * 86400)
        self.watermark = T0

    def take(self, ev: Event) -> None:
        f = fold_event(self.states.get(ev.incident_id), ev, self.watermark - 2 * 86400, 64)
        if f.after is not None and f.outcome == "accepted":
            self.states[ev.incident_id] = f.after
            self.breach.set(ev.incident_id, breach_due_at(f.after, CONFIG))
            self.forget.set(ev.incident_id, forget_due_at(f.after))
        self.watermark = max(self.watermark, ev.at)
        self.timeline.offer(ev)


def build(n: int, rng: random.Random) -> tuple[Held, float]:
    """N open incidents, called over the last day, none due to breach in the run."""
    held = Held()
    span = 86400.0
    for i in range(n):
        held.take(_created(rng, i, T0 + span * i / n))
    end = T0 + span
    held.timeline.advance(end)
    # Their attendance deadlines are long past: mark them as the clock would have, so
    # the measured ticks find nothing newly due (the steady state of a big backlog).
    for iid, s in held.states.items():
        s["breached"] = True
        held.breach.set(iid, None)
    return held, end


def per_event(held: Held, start: float, rng: random.Random, n: int) -> float:
    """Seconds per event: new calls and closes of held ones, folded and walked."""
    ids = list(held.states)
    events = []
    for k in range(MEASURED_EVENTS):
        at = start + k * 0.5
        if k % 2:
            events.append(_event(rng.choice(ids), "closed", at, {"disposition": "done"},
                                 10**8 + k))
        else:
            events.append(_created(rng, n + k, at))
    began = time.perf_counter()
    for e in events:
        held.take(e)
    held.timeline.advance(events[-1].at)
    return (time.perf_counter() - began) / len(events)


def per_tick(held: Held, now: float) -> tuple[float, float, float]:
    """Seconds per tick: the due lookups, the timeline's step, and the old full pass."""
    lookups, steps = [], []
    for k in range(TICKS):
        t = now + k
        began = time.perf_counter()
        held.forget.pop_due(t - 2 * 86400, strictly_before=True)
        held.breach.pop_due(t, strictly_before=True)
        lookups.append(time.perf_counter() - began)
        began = time.perf_counter()
        held.timeline.advance(t)
        steps.append(time.perf_counter() - began)
    began = time.perf_counter()
    cutoff = now - 2 * 86400
    for s in held.states.values():  # what on_tick did before: every incident, every tick
        if not due_to_forget(s, cutoff) and not s.get("breached"):
            attendance_breached(s, CONFIG, now)
    scan = time.perf_counter() - began
    return statistics.median(lookups), statistics.median(steps), scan


def deep_bytes(roots: Any) -> int:
    """Bytes of everything reachable from ``roots`` (dicts, lists, tuples, slotted
    objects), each object counted once: what holding them costs."""
    seen: set[int] = set()
    stack, total = [roots], 0
    while stack:
        o = stack.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        total += sys.getsizeof(o)
        if isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, (list, tuple)):
            stack.extend(o)
        elif hasattr(o, "__slots__"):
            stack.extend(getattr(o, f) for f in o.__slots__ if hasattr(o, f))
    return total


def rule_memory(held: Held) -> tuple[float, float]:
    """Bytes per incident: the full states the timeline copied before, and what it holds."""
    n = len(held.states)
    full = deep_bytes([{k: v for k, v in s.items() if k not in ("seen", "breached")}
                       for s in held.states.values()])
    held_now = deep_bytes([held.timeline.states, held.timeline.views])
    return full / n, held_now / n


def main() -> None:
    print("backlog scale: cost per event and per tick with N open incidents")
    print(f"{'open incidents':>15} {'µs/event':>10} {'µs/tick due':>12} {'µs/tick alerts':>15}"
          f" {'old full pass µs':>17} {'old/new tick':>13}"
          f" {'full state B':>13} {'rule record B':>14} {'record/full':>12}")
    for n in SIZES:
        rng = random.Random(19)
        held, end = build(n, rng)
        event_s = per_event(held, end, rng, n)
        lookup, step, scan = per_tick(held, end + MEASURED_EVENTS * 0.5)
        full, record = rule_memory(held)
        print(f"{n:>15,} {event_s * 1e6:>10.1f} {lookup * 1e6:>12.1f} {step * 1e6:>15.1f}"
              f" {scan * 1e6:>17,.0f} {scan / max(lookup + step, 1e-9):>13,.0f}"
              f" {full:>13,.0f} {record:>14,.0f} {record / full:>12.2f}")


if __name__ == "__main__":
    main()
