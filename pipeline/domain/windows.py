"""Incoming demand in event-time windows. Pure: no Faust.

State is a set of one-minute buckets of counts by ``grade|channel`` — small
accumulators, never event lists. Every window (1 min, 15 min, 1 h, the
rolling 24 h, and the same window one week earlier for the surge baseline) is
a sum of minute buckets, so one store answers all sizes and a window never
needs to "close". An incident counts once, in the minute of its call
(``created.occurred_at``), if it arrives within ``grace`` of the partition's
watermark (the latest call time seen); later ones are counted as late.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta, tzinfo

MINUTE = 60
WEEK = 7 * 86400
DAY = 86400
Counts = dict[str, int]  # "grade|channel" -> incidents
# A source clock running fast must not make everyone else "late": an event stamped further
# ahead of the wall clock than this does not move a watermark.
FUTURE_TOLERANCE_S = 300.0


def week_before(at: float, zone: tzinfo = UTC) -> float:
    """The same local time one week earlier in ``zone`` (the force's time zone).

    A control room compares "Monday 09:00-10:00" with last Monday's 09:00-10:00 as
    its clocks show them: across a change to or from summer time that is 7 x 24 h
    plus or minus an hour, not 7 x 24 h.
    """
    local = datetime.fromtimestamp(at, zone)
    return (local - timedelta(days=7)).timestamp()


def week_after(at: float, zone: tzinfo = UTC) -> float:
    """The same local time one week later in ``zone`` (the inverse of :func:`week_before`)."""
    local = datetime.fromtimestamp(at, zone)
    return (local + timedelta(days=7)).timestamp()


def minute_of(at: float) -> int:
    """Start (epoch seconds) of the minute that contains ``at``."""
    return int(at // MINUTE) * MINUTE


def cell(grade: str, channel: str) -> str:
    return f"{grade}|{channel}"


def split_cell(key: str) -> tuple[str, str]:
    grade, channel = key.split("|", 1)
    return grade, channel


def is_late(at: float, watermark: float | None, grace: float) -> bool:
    """Whether a call at ``at`` is too late to count in its window."""
    return watermark is not None and at < watermark - grace


def add(counts: Mapping[str, int] | None, grade: str, channel: str) -> Counts:
    """A new bucket with one more incident of ``grade`` via ``channel``."""
    out = dict(counts or {})
    key = cell(grade, channel)
    out[key] = out.get(key, 0) + 1
    return out


def tumbling(at: float, size: int) -> tuple[int, int]:
    """The ``[start, end)`` of the ``size``-second window that contains ``at`` (UTC-aligned)."""
    start = int(at // size) * size
    return start, start + size


def total(buckets: Iterable[tuple[int, Mapping[str, int]]], start: float,
          end: float) -> dict[tuple[str, str], int]:
    """Sum minute buckets whose minute lies in ``[start, end)``, by (grade, channel)."""
    out: dict[tuple[str, str], int] = {}
    for minute, counts in buckets:
        if start <= minute < end:
            for key, n in counts.items():
                gc = split_cell(key)
                out[gc] = out.get(gc, 0) + n
    return out


def retention_seconds(sizes: Iterable[int]) -> int:
    """How far back buckets are needed: a week (a local one can be an hour longer) plus
    the largest window (at least 24 h)."""
    return WEEK + 3600 + max([DAY, *sizes]) + MINUTE


WINDOW_NAMES = {60: "1m", 900: "15m", 3600: "1h", 86400: "24h"}


def window_name(size: int) -> str:
    return WINDOW_NAMES.get(size, f"{size}s")


def parse_window(name: str, sizes: Iterable[int]) -> int:
    """``"15m"`` -> 900 if it is a configured size (or the rolling ``24h``); ValueError if not."""
    for size in [*sizes, DAY]:
        if window_name(size) == name:
            return size
    raise ValueError(f"unknown window {name!r}")


def bounds(size: int, now: float) -> tuple[int, int]:
    """The ``[start, end)`` of the window of ``size`` shown as at ``now`` (see :func:`demand`)."""
    if size == DAY:
        end = minute_of(now) + MINUTE
        return end - DAY, end
    return tumbling(now, size)


def demand(buckets: list[tuple[int, Mapping[str, int]]], size: int, now: float,
           zone: tzinfo = UTC) -> dict[str, object]:
    """Current and same-window-last-week counts for a window size, as at ``now``.

    Sizes below a day are tumbling windows aligned to UTC; 24 h is rolling (the
    24 hours up to ``now``'s minute, inclusive). Last week's is the same local-time
    window in the force's ``zone``.
    """
    start, end = bounds(size, now)
    current = total(buckets, start, end)
    last_week = total(buckets, week_before(start, zone), week_before(end, zone))
    return {"start": start, "end": end, "current": current, "last_week": last_week}
