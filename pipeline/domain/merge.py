"""Partial answers from each partition's owner, merged into force-wide ones. Pure.

Every figure a view shows is a sum (counts), a minimum (oldest call time) or
the first N of sorted rows (the longest-waiting incidents), so the answer for
the whole force is the merge of the answers for disjoint sets of partitions,
whichever worker holds each set. These functions turn those partial answers
into JSON and back and merge them; pipeline.forcewide asks the owners.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from typing import Any

from pipeline.domain.backlog import BacklogSummary

_PAIR_FIELDS = ("vulnerable_by_grade_area", "review_overdue_by_grade_area")


def summary_to_json(s: BacklogSummary) -> dict[str, Any]:
    """A BacklogSummary as JSON (tuple keys become lists)."""
    return {
        "as_of": s.as_of,
        "by_grade_area_status": [[*k, n] for k, n in s.by_grade_area_status.items()],
        "oldest_created_by_grade": s.oldest_created_by_grade,
        "by_age_bucket": s.by_age_bucket,
        **{f: [[*k, n] for k, n in getattr(s, f).items()] for f in _PAIR_FIELDS},
        "terminals": s.terminals,
    }


def merge_summaries(parts: Iterable[Mapping[str, Any]], as_of: float) -> BacklogSummary:
    """One BacklogSummary from the JSON summaries of disjoint partitions."""
    out = BacklogSummary(as_of=as_of)
    for part in parts:
        for *key, n in part["by_grade_area_status"]:
            _add(out.by_grade_area_status, tuple(key), n)
        for grade, created in part["oldest_created_by_grade"].items():
            if created < out.oldest_created_by_grade.get(grade, float("inf")):
                out.oldest_created_by_grade[grade] = created
        for bucket, n in part["by_age_bucket"].items():
            _add(out.by_age_bucket, bucket, n)
        for f in _PAIR_FIELDS:
            for *key, n in part[f]:
                _add(getattr(out, f), tuple(key), n)
        for terminal, n in part["terminals"].items():
            _add(out.terminals, terminal, n)
    return out


def merge_oldest(parts: Iterable[list[dict[str, Any]]], limit: int) -> list[dict[str, Any]]:
    """The ``limit`` longest-waiting rows of all parts (each part sorted the same way)."""
    key = _oldest_key
    return list(heapq.merge(*(sorted(p, key=key) for p in parts), key=key))[:limit]


def _oldest_key(row: Mapping[str, Any]) -> tuple[float, str]:
    return float(row["created_at"]), str(row["incident_id"])


def counts_to_json(counts: Mapping[tuple[str, str], int]) -> list[list[Any]]:
    return [[g, ch, n] for (g, ch), n in counts.items()]


def merge_counts(parts: Iterable[list[list[Any]]]) -> dict[tuple[str, str], int]:
    """Sum (grade, channel) counts given as ``[grade, channel, n]`` rows."""
    out: dict[tuple[str, str], int] = {}
    for part in parts:
        for g, ch, n in part:
            _add(out, (g, ch), n)
    return out


def _add(d: dict[Any, int], key: Any, n: int) -> None:
    d[key] = d.get(key, 0) + n
