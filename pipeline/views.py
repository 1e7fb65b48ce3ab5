"""Worker HTTP: /healthz, /backlog, /incidents/oldest, /demand (and /metrics, mounted by
Faust's Prometheus sensor, with the table-backed gauges registered here).

Views read this worker's tables: with several workers each answers for the
partitions it owns. ``at=`` (RFC 3339 UTC) evaluates a view as at another
instant, which replays and their checks need; the default is now.
"""

from __future__ import annotations

from typing import Any

from faust import web

from agents import windows
from agents.backlog import incidents
from agents.snapshots import backlog_document, pairs
from pipeline.app import app, config, registry
from pipeline.domain.backlog import oldest_open
from pipeline.domain.events import format_time, parse_time
from pipeline.domain.windows import WEEK, demand, parse_window, window_name
from pipeline.metrics import BacklogCollector

registry.register(BacklogCollector(config, lambda: list(incidents.values()), windows.buckets,
                                   clock=windows.display_now))


def health() -> tuple[bool, dict[str, Any]]:
    """Whether the worker is healthy, and why not."""
    crashed = [name for name, agent in app.agents.items()
               if any(actor.crashed for actor in list(agent._actors))]
    ok = not crashed and app.started and not app.should_stop
    return ok, {"status": "ok" if ok else "unhealthy", "crashed_agents": crashed,
                "rebalancing": bool(app.rebalancing)}


class BadRequest(ValueError):
    pass


def _at(request: web.Request) -> float:
    text = request.query.get("at")
    if not text:
        return windows.display_now()
    try:
        return parse_time(text)
    except ValueError as exc:
        raise BadRequest("at must be an RFC 3339 instant") from exc


@app.page("/healthz")
async def healthz(self: web.View, request: web.Request) -> web.Response:
    ok, body = health()
    return self.json(body, status=200 if ok else 503)


@app.page("/backlog")
async def backlog_view(self: web.View, request: web.Request) -> web.Response:
    try:
        return self.json(backlog_document(_at(request)))
    except BadRequest as exc:
        return self.json({"error": str(exc)}, status=400)


@app.page("/incidents/oldest")
async def oldest_view(self: web.View, request: web.Request) -> web.Response:
    q = request.query
    try:
        limit = int(q.get("limit", "20"))
        if not 1 <= limit <= 1000:
            raise ValueError
    except ValueError:
        return self.json({"error": "limit must be an integer from 1 to 1000"}, status=400)
    grade, area = q.get("grade") or None, q.get("area") or None
    if grade is not None and grade not in config.grade_codes:
        return self.json({"error": "unknown grade"}, status=400)
    if area is not None and area not in config.area_codes:
        return self.json({"error": "unknown area"}, status=400)
    now = windows.display_now()
    rows = oldest_open(list(incidents.values()), limit, grade, area)
    return self.json({"as_of": format_time(now), "incidents": [
        {"incident_id": r.incident_id, "grade": r.grade, "area": r.area, "status": r.status,
         "created_at": format_time(r.created_at), "age_seconds": round(now - r.created_at, 3),
         "vulnerable": r.vulnerable, "terminal": r.terminal} for r in rows]})


@app.page("/demand")
async def demand_view(self: web.View, request: web.Request) -> web.Response:
    try:
        size = parse_window(request.query.get("window", "15m"), config.windows.sizes_seconds)
        now = _at(request)
    except (ValueError, BadRequest) as exc:
        return self.json({"error": str(exc)}, status=400)
    # The window and the same window last week: nothing older is needed.
    result = demand(windows.buckets(since=now - WEEK - size - 60), size, now)
    return self.json({
        "as_of": format_time(now), "window": window_name(size),
        "start": format_time(float(result["start"])), "end": format_time(float(result["end"])),
        "current": pairs(result["current"]),  # type: ignore[arg-type]
        "last_week": pairs(result["last_week"]),  # type: ignore[arg-type]
    })
