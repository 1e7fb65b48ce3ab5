"""The simulator behaves like the real force its profile was learned from, reproducibly."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import orjson

from pipeline.config import load_config
from pipeline.domain.events import decode_event
from pipeline.domain.profile import Surge, arrivals
from pipeline.simulator import (
    SimStats,
    SimulatorOptions,
    load_profile,
    plan_incident,
    run_simulator,
)

PROFILE = load_profile()
CONFIG = load_config()
START = datetime(2026, 3, 2, tzinfo=UTC).timestamp()  # a Monday
WEEK = 7 * 86400
# Stated tolerance: with 8 simulated weeks at 10x the real rate (~66,000 calls, ~2,750 per
# hour of the day), each hour of the average day is within 10 % of the profile's shape.
TOLERANCE = 0.10


def test_the_shipped_profile_was_learned_from_real_exports() -> None:
    assert PROFILE.source.startswith("decc") and PROFILE.timezone == "America/New_York"
    assert abs(sum(PROFILE.hour_of_week) / 168 - 1) < 1e-3
    day = PROFILE.hour_of_day()
    assert min(day[2:6]) < 0.6 < 1.3 < max(day[9:17]), "nights are quiet, days are busy"
    assert {"1", "2"} <= set(PROFILE.to_dispatch) and {"1", "2"} <= set(PROFILE.to_arrive)


def test_same_seed_same_arrivals() -> None:
    def first(seed: int) -> list[float]:
        gen = arrivals(PROFILE, START, START + WEEK, random.Random(seed), scale=5)
        return [next(gen) for _ in range(500)]

    assert first(1) == first(1) != first(2)


def test_arrivals_reproduce_the_hourly_profile_within_tolerance() -> None:
    zone = ZoneInfo(PROFILE.timezone)
    counts = [0] * 24
    calls = list(arrivals(PROFILE, START, START + 8 * WEEK, random.Random(7), scale=10))
    for t in calls:
        counts[datetime.fromtimestamp(t, zone).hour] += 1
    expected_total = PROFILE.incidents_per_hour * 10 * 8 * 168
    assert abs(len(calls) / expected_total - 1) < 0.03
    mean = len(calls) / 24
    for hour, (n, shape) in enumerate(zip(counts, PROFILE.hour_of_day(), strict=True)):
        assert abs(n / mean - shape) <= TOLERANCE * shape, (hour, n / mean, shape)


def test_a_surge_multiplies_demand_only_while_it_lasts() -> None:
    surge = Surge(1.5, START + 2 * WEEK, 7 * 24)  # the third week, x1.5
    calls = list(arrivals(PROFILE, START, START + 4 * WEEK, random.Random(3), scale=10,
                          surge=surge))
    weeks = [sum(1 for t in calls if START + w * WEEK <= t < START + (w + 1) * WEEK)
             for w in range(4)]
    normal = (weeks[0] + weeks[1] + weeks[3]) / 3
    assert abs(weeks[2] / normal - 1.5) < 0.06, weeks


def test_a_dispatcher_shortage_slows_dispatch_by_the_lost_capacity() -> None:
    def dispatch_delays(capacity: float) -> list[float]:
        rng = random.Random(11)
        out = []
        for n in range(300):
            for delay, doc in plan_incident(rng, f"S{n}", CONFIG, SimStats(), PROFILE, capacity):
                if doc["event_type"] == "dispatched":
                    out.append(delay)
        return out

    full, half = dispatch_delays(1.0), dispatch_delays(0.5)
    assert len(full) == len(half) > 50
    assert all(abs(h - 2 * f) < 1e-9 for f, h in zip(full, half, strict=True))


def test_the_whole_simulated_stream_is_reproducible_and_valid() -> None:
    def stream(seed: int) -> list[bytes]:
        sent: list[bytes] = []
        now = [START]

        def sleep(s: float) -> None:
            now[0] += max(s, 0.01)

        opts = SimulatorOptions(rate=2.0, duration=120, seed=seed, progress=False,
                                duplicates=0, malformed=0, profile=PROFILE)
        run_simulator(opts, send=lambda k, v: sent.append(v), clock=lambda: now[0],
                      sleep=sleep)
        return sent

    a = stream(5)
    assert a == stream(5) and len(a) > 100
    for raw in a:
        decode_event(raw, CONFIG, 65536)
    grades = {orjson.loads(r)["data"]["grade"] for r in a
              if orjson.loads(r)["event_type"] == "created"}
    assert grades <= set(PROFILE.grade_mix)
