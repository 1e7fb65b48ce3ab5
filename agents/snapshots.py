"""Snapshots: the /backlog document, published every few seconds for downstream systems.

Each worker publishes what its own partitions hold (``partitions`` says
which), keyed by worker, to ``demand.backlog-snapshots.v1``; with one worker
a snapshot is the force-wide backlog.
"""

from __future__ import annotations

from typing import Any

import orjson

from agents import windows
from agents.backlog import incidents
from pipeline.app import app, config, settings, snapshot_topic
from pipeline.domain.backlog import summarise
from pipeline.domain.events import format_time


def pairs(d: dict[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for (a, b), n in sorted(d.items()):
        out.setdefault(a, {})[b] = n
    return out


def backlog_document(now: float) -> dict[str, Any]:
    """The /backlog JSON (schemas/backlog-snapshot.v1.schema.json)."""
    s = summarise(list(incidents.values()), now)
    band = config.terminals
    assigned = app.assignor.assigned_actives() if app.assignor else set()
    return {
        "schema_version": 1,
        "as_of": format_time(s.as_of),
        "worker": f"{settings.app_id}@{settings.web_host}:{settings.web_port}",
        "partitions": sorted({tp.partition for tp in assigned}),
        "open_total": s.open_total,
        "by_grade": s.total_by(0),
        "by_area": s.total_by(1),
        "by_status": s.total_by(2),
        "by_grade_area": pairs(s.open_by_grade_area),
        "by_age_bucket": s.by_age_bucket,
        "oldest_age_seconds_by_grade": {g: round(s.as_of - t, 3)
                                        for g, t in sorted(s.oldest_created_by_grade.items())},
        "vulnerable": sum(s.vulnerable_by_grade_area.values()),
        "review_overdue": sum(s.review_overdue_by_grade_area.values()),
        "review_overdue_by_grade_area": pairs(s.review_overdue_by_grade_area),
        "terminals": {"band_low": band.band_low, "band_high": band.band_high,
                      "open_logs": dict(sorted(s.terminals.items())),
                      "above_band": sorted(t for t, n in s.terminals.items()
                                           if n > band.band_high)},
    }


@app.timer(settings.snapshot_interval_s)
async def publish_snapshot() -> None:
    document = backlog_document(windows.display_now())
    await snapshot_topic.send(key=document["worker"].encode(), value=orjson.dumps(document))
