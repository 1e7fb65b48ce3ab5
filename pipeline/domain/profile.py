"""Demand profiles: when calls come and how long stages take, learned from real exports. Pure.

A profile holds the shape of a week (168 hour-of-week weights, mean 1, in the
force's local time), the grade and channel mix, and per grade the empirical
quantiles of call → dispatch and call → arrival. :func:`learn` builds one from
replayed incidents; the simulator draws arrivals from it with
:func:`arrivals` (a non-homogeneous Poisson process by thinning) and stage
durations with :func:`sample`. Surges and dispatcher shortages are scenarios
layered on top, so the same seed gives the same stream.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

QUANTILES = tuple(round(q / 20, 2) for q in range(0, 21))  # 0, 0.05, ..., 1


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    timezone: str
    weeks: float = Field(gt=0)
    incidents_per_hour: float = Field(gt=0)
    # Index: Monday 00:00-01:00 local = 0 ... Sunday 23:00 = 167. Mean 1.
    hour_of_week: list[float] = Field(min_length=168, max_length=168)
    grade_mix: dict[str, float]
    channel_mix: dict[str, float]
    # grade -> seconds at QUANTILES (0, 0.05, ..., 1)
    to_dispatch: dict[str, list[float]]
    to_arrive: dict[str, list[float]]

    def weight(self, at: float) -> float:
        local = datetime.fromtimestamp(at, ZoneInfo(self.timezone))
        return self.hour_of_week[local.weekday() * 24 + local.hour]

    def hour_of_day(self) -> list[float]:
        """The average day's shape (24 weights, mean 1)."""
        return [sum(self.hour_of_week[d * 24 + h] for d in range(7)) / 7 for h in range(24)]


@dataclass(frozen=True)
class Observed:
    """One real incident, as the learner needs it."""

    call: float
    grade: str
    channel: str
    to_dispatch: float | None
    to_arrive: float | None


def _quantiles(values: list[float]) -> list[float]:
    values = sorted(values)
    out = []
    for q in QUANTILES:
        pos = q * (len(values) - 1)
        lo, hi = math.floor(pos), math.ceil(pos)
        out.append(round(values[lo] + (values[hi] - values[lo]) * (pos - lo), 3))
    return out


def learn(incidents: Iterable[Observed], timezone: str, source: str,
          min_samples: int = 20) -> Profile:
    """A profile from real incidents (grades with fewer samples get no stage quantiles)."""
    zone = ZoneInfo(timezone)
    counts = [0] * 168
    grades: dict[str, int] = {}
    channels: dict[str, int] = {}
    dispatch: dict[str, list[float]] = {}
    arrive: dict[str, list[float]] = {}
    first = last = None
    n = 0
    for i in incidents:
        n += 1
        local = datetime.fromtimestamp(i.call, zone)
        counts[local.weekday() * 24 + local.hour] += 1
        grades[i.grade] = grades.get(i.grade, 0) + 1
        channels[i.channel] = channels.get(i.channel, 0) + 1
        if i.to_dispatch is not None:
            dispatch.setdefault(i.grade, []).append(i.to_dispatch)
        if i.to_arrive is not None:
            arrive.setdefault(i.grade, []).append(i.to_arrive)
        first = i.call if first is None else min(first, i.call)
        last = i.call if last is None else max(last, i.call)
    if n == 0 or first is None or last is None:
        raise ValueError("no incidents to learn from")
    mean = n / 168
    weeks = max((last - first) / (7 * 86400), 1 / 168)
    return Profile(
        source=source, timezone=timezone, weeks=round(weeks, 3),
        incidents_per_hour=round(n / (weeks * 168), 4),
        hour_of_week=[round(c / mean, 4) for c in counts],
        grade_mix={g: round(c / n, 4) for g, c in sorted(grades.items())},
        channel_mix={c: round(k / n, 4) for c, k in sorted(channels.items())},
        to_dispatch={g: _quantiles(v) for g, v in sorted(dispatch.items())
                     if len(v) >= min_samples},
        to_arrive={g: _quantiles(v) for g, v in sorted(arrive.items()) if len(v) >= min_samples},
    )


def sample(quantiles: list[float], rng: random.Random) -> float:
    """A draw from the empirical distribution (inverse CDF, linear between quantiles)."""
    u = rng.random() * (len(quantiles) - 1)
    lo = int(u)
    hi = min(lo + 1, len(quantiles) - 1)
    return quantiles[lo] + (quantiles[hi] - quantiles[lo]) * (u - lo)


@dataclass(frozen=True)
class Surge:
    """Demand multiplied by ``factor`` from ``start`` for ``hours`` (e.g. the summer peak)."""

    factor: float
    start: float
    hours: float

    def at(self, t: float) -> float:
        return self.factor if self.start <= t < self.start + self.hours * 3600 else 1.0


def arrivals(profile: Profile, start: float, end: float, rng: random.Random,
             scale: float = 1.0, surge: Surge | None = None) -> Iterator[float]:
    """Call instants in ``[start, end)``: ``scale`` x the profile's rate, shaped by its week."""
    peak = max(profile.hour_of_week) * (surge.factor if surge else 1.0)
    base = profile.incidents_per_hour / 3600 * scale
    bound = base * max(peak, 1e-9)
    t = start
    while True:
        t += rng.expovariate(bound)
        if t >= end:
            return
        rate = base * profile.weight(t) * (surge.at(t) if surge else 1.0)
        if rng.random() * bound < rate:
            yield t
