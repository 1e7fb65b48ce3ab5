"""Worker HTTP pages besides /metrics (which Faust's Prometheus sensor mounts).

``/healthz`` answers 200 while the worker is running and no agent has crashed,
503 otherwise, so an orchestrator restarts a worker that stopped processing.
``/backlog`` is the open-incident summary as JSON.
"""

from __future__ import annotations

import time
from typing import Any

from faust import web

from agents.backlog import incidents
from pipeline.app import app
from pipeline.domain.backlog import summarise
from pipeline.domain.events import format_time


def health() -> tuple[bool, dict[str, Any]]:
    """Whether the worker is healthy, and why not."""
    crashed = [name for name, agent in app.agents.items()
               if any(actor.crashed for actor in list(agent._actors))]  # noqa: SLF001
    ok = not crashed and app.started and not app.should_stop
    return ok, {"status": "ok" if ok else "unhealthy", "crashed_agents": crashed,
                "rebalancing": bool(app.rebalancing)}


@app.page("/healthz")
async def healthz(self: web.View, request: web.Request) -> web.Response:
    ok, body = health()
    return self.json(body, status=200 if ok else 503)


@app.page("/backlog")
async def backlog_view(self: web.View, request: web.Request) -> web.Response:
    summary = summarise(list(incidents.values()))
    by_grade: dict[str, int] = {}
    by_area: dict[str, int] = {}
    for (grade, area), n in summary.open_by_grade_area.items():
        by_grade[grade] = by_grade.get(grade, 0) + n
        by_area[area] = by_area.get(area, 0) + n
    now = time.time()
    return self.json({
        "as_of": format_time(now),
        "open_total": summary.open_total,
        "by_grade": by_grade,
        "by_area": by_area,
        "oldest_age_seconds_by_grade": {g: round(now - t, 3)
                                        for g, t in summary.oldest_created_by_grade.items()},
    })
