"""Snapshots: the /backlog document, published every few seconds for downstream systems.

The leader publishes the force-wide backlog (every partition, from their
owners: pipeline.forcewide) to ``demand.backlog-snapshots.v1``, keyed by app;
``complete`` says whether every partition answered (``missing_partitions``
which did not, e.g. during a rebalance).
"""

from __future__ import annotations

from typing import Any

import orjson

from pipeline.app import app, config, settings, snapshot_topic
from pipeline.domain.events import format_time
from pipeline.domain.merge import merge_summaries


def pairs(d: dict[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for (a, b), n in sorted(d.items()):
        out.setdefault(a, {})[b] = n
    return out


async def backlog_document(now: float) -> dict[str, Any]:
    """The /backlog JSON (schemas/backlog-snapshot.v1.schema.json), force-wide."""
    from pipeline import forcewide  # the views' module imports this one

    got = await forcewide.gather("backlog", {"at": str(now)})
    s = merge_summaries(got.parts(), now)
    band = config.terminals
    return {
        "schema_version": 1,
        "as_of": format_time(s.as_of),
        "worker": f"{settings.app_id}@{settings.web_host}:{settings.web_port}",
        **got.status(),
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


@app.timer(settings.snapshot_interval_s, on_leader=True)
async def publish_snapshot() -> None:
    from pipeline import forcewide

    document = await backlog_document(await forcewide.stream_now())
    await snapshot_topic.send(key=settings.app_id.encode(), value=orjson.dumps(document))
