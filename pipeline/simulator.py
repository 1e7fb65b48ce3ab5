"""A demand simulator: plausible incident lifecycles produced to the raw topic.

The lifecycle planning is pure (:func:`plan_incident`: a seeded RNG in, a list
of ``(delay_seconds, event document)`` out) so it is tested without Kafka; the
producing loop around it uses kafka-python. Lifecycle delays are real-life
seconds divided by ``speed``, and event times are the wall-clock instants the
events are sent, so the live backlog and its ages look like a control room's.

Arrivals follow a demand profile learned from a real centre's exports
(``pipeline/defaults/profile.json``, ``demandflow learn-profile``): the week's
shape runs on a simulated clock ``speed`` times faster than the wall (at 60x a
day passes in 24 minutes), so nights and weekends show. Grade and channel mix
and the call -> dispatch / arrival times come from the profile too. Scenarios:
a surge (demand x k for some hours) and a dispatcher shortage (dispatch takes
1/capacity times longer, so the backlog grows). The same seed gives the same stream.
"""

from __future__ import annotations

import heapq
import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from pipeline.config import DemandConfig
from pipeline.domain.events import format_time
from pipeline.domain.profile import Profile, Surge, arrivals, sample

Doc = dict[str, Any]
Plan = list[tuple[float, Doc]]

# Mean real-life stage durations (seconds) by grade, for what a profile does not cover
# (the profile gives dispatch/arrival quantiles only for grades with enough data).
TO_DISPATCH = {"1": 180.0, "2": 1500.0}
TO_ARRIVE = {"1": 540.0, "2": 1200.0}
ON_SCENE = {"1": 3600.0, "2": 2700.0, "3": 1800.0}
CATEGORIES = ("ASB", "CONCERN_FOR_SAFETY", "DOMESTIC", "THEFT", "RTC", "SUSPICIOUS", "ASSAULT")
TERMINALS = tuple(f"T{n:02d}" for n in range(1, 13))


@dataclass
class SimulatorOptions:
    rate: float = 5.0
    max_incidents: int | None = None
    duration: float | None = None
    seed: int | None = None
    speed: float = 60.0
    duplicates: float = 0.01
    malformed: float = 0.005
    progress: bool = True
    surge: float = 1.0  # demand x this ...
    surge_after_hours: float = 0.0  # ... starting this many simulated hours in ...
    surge_hours: float = 6.0  # ... for this many simulated hours
    capacity: float = 1.0  # dispatcher capacity: 0.5 = half the dispatchers, twice as slow
    profile: Profile | None = None  # None: the shipped profile


def load_profile(path: str | None = None) -> Profile:
    """A profile file, or the shipped one (learned from a real centre's exports)."""
    from importlib import resources
    from pathlib import Path

    text = Path(path).read_bytes() if path else \
        resources.files("pipeline").joinpath("defaults/profile.json").read_bytes()
    return Profile.model_validate(orjson.loads(text))


@dataclass
class SimStats:
    incidents: int = 0
    events: int = 0
    duplicates: int = 0
    malformed: int = 0
    callers: list[str] = field(default_factory=list)


def _pick(rng: random.Random, mix: dict[str, float]) -> str:
    return rng.choices(list(mix), weights=list(mix.values()))[0]


def plan_incident(rng: random.Random, incident_id: str, config: DemandConfig,
                  stats: SimStats, profile: Profile, capacity: float = 1.0) -> Plan:
    """The events of one incident with their delays (real-life seconds) after the call."""
    grades = [g.code for g in config.grades]
    grade_mix = {g: w for g, w in profile.grade_mix.items() if g in grades}
    grade = _pick(rng, grade_mix) if grade_mix else rng.choice(grades)
    channel = _pick(rng, profile.channel_mix)
    vulnerable = rng.random() < 0.15
    if stats.callers and rng.random() < 0.05:  # a repeat caller
        caller = rng.choice(stats.callers[-200:])
    else:
        caller = f"c{rng.getrandbits(64):016x}"
        stats.callers.append(caller)
    plan: Plan = [(0.0, {"event_type": "created", "data": {
        "grade": grade, "category": rng.choice(CATEGORIES), "channel": channel,
        "area": rng.choice(config.areas).code, "vulnerable": vulnerable, "caller_ref": caller}})]
    t = rng.uniform(20, 120)
    plan.append((t, {"event_type": "assigned", "data": {"terminal": rng.choice(TERMINALS)}}))
    if vulnerable or (grade in ("1", "2", "3") and rng.random() < 0.6):
        review = 3600.0 if grade in ("1", "2") else 4 * 3600.0
        t += rng.uniform(30, 300)
        plan.append((t, {"event_type": "risk_assessed", "data": {
            "thrive": {k: rng.choice(("low", "medium", "high")) for k in
                       ("threat", "harm", "risk", "investigation", "vulnerability", "engagement")},
            "next_review_due": review, "trigger": "initial", "vulnerable": vulnerable}}))
    if grade in ("2", "3") and rng.random() < 0.1:
        new_grade = "1" if grade == "2" else "2"
        t += rng.uniform(60, 600)
        plan.append((t, {"event_type": "graded", "data": {"grade": new_grade}}))
        grade = new_grade
    if grade in ("1", "2"):
        if grade in profile.to_dispatch and grade in profile.to_arrive:
            to_dispatch = sample(profile.to_dispatch[grade], rng)
            to_arrive = max(sample(profile.to_arrive[grade], rng) - to_dispatch, 0.0)
        else:
            to_dispatch = rng.expovariate(1 / TO_DISPATCH[grade])
            to_arrive = rng.expovariate(1 / TO_ARRIVE[grade])
        t = to_dispatch / capacity
        plan.append((t, {"event_type": "dispatched", "data": {}}))
        t += to_arrive
        plan.append((t, {"event_type": "arrived", "data": {}}))
        t += rng.expovariate(1 / ON_SCENE[grade])
    elif grade == "3":
        slot = rng.uniform(3600, 2 * 86400)
        plan.append((t + 60, {"event_type": "scheduled", "data": {"slot_start": slot,
                                                                  "slot_end": slot + 4 * 3600}}))
        t = slot + rng.uniform(0, 4 * 3600)
        plan.append((t, {"event_type": "arrived", "data": {}}))
        t += rng.expovariate(1 / ON_SCENE["3"])
    elif grade == "4":
        t += rng.uniform(60, 900)
        plan.append((t, {"event_type": "transferred", "data": {"team": "resolution"}}))
        t += rng.uniform(3600, 8 * 3600)
    else:
        t += rng.uniform(300, 1800)
    plan.append((t, {"event_type": "closed", "data": {"disposition": "resolved"}}))
    plan.sort(key=lambda item: item[0])
    return plan


def finish_document(plan_doc: Doc, incident_id: str, event_id: str, at: float,
                    call_at: float, speed: float) -> Doc:
    """Stamp a planned event with ids and its instant; relative times become instants."""
    data = dict(plan_doc["data"])
    for key in ("next_review_due", "slot_start", "slot_end"):
        if key in data:
            data[key] = format_time(call_at + data[key] / speed)
    return {"event_id": event_id, "incident_id": incident_id,
            "event_type": plan_doc["event_type"], "occurred_at": format_time(at),
            "schema_version": 1, "source": "simulator", "data": data}


MALFORMED: tuple[Callable[[Doc], bytes], ...] = (
    lambda d: b"{not json" + orjson.dumps(d)[:20],
    lambda d: orjson.dumps({k: v for k, v in d.items() if k != "occurred_at"}),
    lambda d: orjson.dumps({**d, "data": {**d["data"], "grade": "9"}, "event_type": "graded"}),
    lambda d: orjson.dumps({**d, "schema_version": "one"}),
    lambda d: orjson.dumps([d]),
)


def run_simulator(opts: SimulatorOptions, send: Callable[[bytes, bytes], None] | None = None,
                  clock: Callable[[], float] = time.time,
                  sleep: Callable[[float], None] = time.sleep) -> SimStats:
    """Produce lifecycles until the incident or time limit; return what was sent."""
    from pipeline.config import load_config
    from pipeline.settings import get_settings

    settings = get_settings()
    config = load_config(settings.config_path)
    producer = None
    if send is None:
        from kafka import KafkaProducer

        from pipeline.kafkasecurity import kafka_python
        from pipeline.topics import RAW, ensure_topics, topic_name

        ensure_topics(settings)
        producer = KafkaProducer(**kafka_python(settings), linger_ms=5, acks="all")
        topic = topic_name(settings, RAW)

        def send(key: bytes, value: bytes) -> None:
            producer.send(topic, key=key, value=value)

    seed = opts.seed if opts.seed is not None else random.SystemRandom().getrandbits(32)
    rng = random.Random(seed)
    profile = opts.profile or load_profile()
    stats = SimStats()
    run_tag = f"{seed:08x}"[-8:]
    start = clock()
    queue: list[tuple[float, int, str, float, Doc]] = []
    seq = 0
    # Arrivals on the simulated clock (speed x the wall), mapped back to wall instants.
    per_sim_second = opts.rate / opts.speed
    surge = Surge(opts.surge, start + opts.surge_after_hours * 3600, opts.surge_hours) \
        if opts.surge != 1.0 else None
    sim_calls = arrivals(profile, start, math.inf, random.Random(seed ^ 0x5EED),
                         scale=per_sim_second / (profile.incidents_per_hour / 3600), surge=surge)

    def next_arrival() -> float:
        return start + (next(sim_calls) - start) / opts.speed

    next_call = next_arrival()
    display = _Progress(opts, stats) if opts.progress else None
    try:
        while True:
            now = clock()
            out_of_time = opts.duration is not None and now - start >= opts.duration
            out_of_incidents = (opts.max_incidents is not None
                                and stats.incidents >= opts.max_incidents)
            if out_of_time or (out_of_incidents and not queue):
                break
            while not out_of_time and not out_of_incidents and next_call <= now:
                stats.incidents += 1
                incident_id = f"SIM-{run_tag}-{stats.incidents:07d}"
                for delay, doc in plan_incident(rng, incident_id, config, stats, profile,
                                                opts.capacity):
                    seq += 1
                    heapq.heappush(queue, (next_call + delay / opts.speed, seq, incident_id,
                                           next_call, doc))
                next_call = next_arrival()
                out_of_incidents = (opts.max_incidents is not None
                                    and stats.incidents >= opts.max_incidents)
            while queue and queue[0][0] <= now:
                _, _, incident_id, call_at, doc = heapq.heappop(queue)
                event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                full = finish_document(doc, incident_id, event_id, max(now, call_at), call_at,
                                       opts.speed)
                value = orjson.dumps(full)
                send(incident_id.encode(), value)
                stats.events += 1
                if rng.random() < opts.duplicates:
                    send(incident_id.encode(), value)
                    stats.duplicates += 1
                if rng.random() < opts.malformed:
                    send(incident_id.encode(), rng.choice(MALFORMED)(full))
                    stats.malformed += 1
            if display:
                display.update()
            wake = min([q[0] for q in queue[:1]] + [next_call, now + 0.25])
            sleep(max(0.0, min(0.25, wake - clock())))
    finally:
        if producer is not None:
            producer.flush()
            producer.close()
        if display:
            display.close()
    return stats


class _Progress:
    """A one-line live progress display (rich)."""

    def __init__(self, opts: SimulatorOptions, stats: SimStats) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._stats = stats
        self._bar = Progress(TextColumn("[bold]simulate[/]"), BarColumn(),
                             TextColumn("{task.description}"), TimeElapsedColumn())
        total = opts.max_incidents or opts.duration
        self._by_time = opts.max_incidents is None
        self._task = self._bar.add_task("", total=total)
        self._start = time.monotonic()
        self._bar.start()

    def update(self) -> None:
        s = self._stats
        done = time.monotonic() - self._start if self._by_time else s.incidents
        self._bar.update(self._task, completed=done, description=(
            f"incidents {s.incidents}  events {s.events}  duplicates {s.duplicates}  "
            f"malformed {s.malformed}"))

    def close(self) -> None:
        self.update()
        self._bar.stop()
