"""Worker HTTP: /healthz, /backlog, /incidents/oldest, /demand (and /metrics, mounted by
Faust's Prometheus sensor, with the table-backed gauges registered here).

Every view answers for the whole force from any worker: it answers the
partitions this worker owns and asks the owners of the others
(pipeline.forcewide); ``complete`` says whether every partition answered, and
``missing_partitions`` which did not (a rebalance, a crashed worker). The
gauges on /metrics are this worker's own partitions (``sum`` in PromQL).
``at=`` (RFC 3339 UTC) evaluates a view as at another instant, which replays
and their checks need; the default is now.
"""

from __future__ import annotations

import logging
from typing import Any

from faust import web

from agents import windows
from agents.backlog import incidents
from agents.snapshots import backlog_document, pairs
from pipeline import forcewide
from pipeline.app import app, config, exposure, ownership, registry, settings, view_token
from pipeline.auth import LOOPBACK
from pipeline.brokerwatch import BrokerWatch
from pipeline.domain.events import format_time, parse_time
from pipeline.domain.merge import merge_counts, merge_oldest
from pipeline.domain.windows import bounds, parse_window, week_before, window_name
from pipeline.metrics import BacklogCollector

registry.register(BacklogCollector(config, lambda: incidents.values_in(ownership.ready()),
                                   windows.buckets, clock=windows.display_now,
                                   partitions_ready=lambda: len(ownership.ready())))


broker = BrokerWatch.for_bootstrap(settings.bootstrap_servers)
log = logging.getLogger(__name__)


@app.task
async def say_who_may_read() -> None:
    """Say at start how the views are protected (never the token itself)."""
    loud = view_token is None and settings.web_host not in LOOPBACK
    log.log(logging.WARNING if loud else logging.INFO, exposure)


@app.timer(2.0)
async def probe_broker() -> None:
    await broker.probe()


def health() -> tuple[bool, dict[str, Any]]:
    """Whether the worker is healthy and ready, and why not."""
    crashed = [name for name, agent in app.agents.items()
               if any(actor.crashed for actor in list(agent._actors))]
    ok = not crashed and app.started and not app.should_stop and broker.reachable
    status = "ok" if ok else "broker_unreachable" if not broker.reachable else "unhealthy"
    body: dict[str, Any] = {"status": status, "crashed_agents": crashed,
                            "rebalancing": bool(app.rebalancing),
                            "partitions_ready": sorted(ownership.ready())}
    if not broker.reachable:
        body["reason"] = broker.reason
        body["since"] = format_time(broker.since)
    return ok, body


class BadRequest(ValueError):
    pass


async def _at(request: web.Request) -> float:
    text = request.query.get("at")
    if not text:
        return await forcewide.stream_now()
    try:
        return parse_time(text)
    except ValueError as exc:
        raise BadRequest("at must be an RFC 3339 instant") from exc


@app.page("/healthz")
async def healthz(self: web.View, request: web.Request) -> web.Response:
    """Readiness: running, no crashed agent, and Kafka reachable."""
    ok, body = health()
    return self.json(body, status=200 if ok else 503)


@app.page("/livez")
async def livez(self: web.View, request: web.Request) -> web.Response:
    """Liveness: running and no crashed agent. A broker outage is not a reason to restart
    the worker (it recovers by itself), so it does not fail this probe."""
    _, body = health()
    alive = not body["crashed_agents"] and not app.should_stop
    return self.json({"status": "alive" if alive else "dead"}, status=200 if alive else 503)


@app.page("/backlog")
async def backlog_view(self: web.View, request: web.Request) -> web.Response:
    try:
        return self.json(await backlog_document(await _at(request)))
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
    now = await forcewide.stream_now()
    got = await forcewide.gather("oldest", {"at": str(now), "limit": str(limit),
                                            "grade": grade or "", "area": area or ""})
    rows = merge_oldest(got.parts(), limit)
    return self.json({"as_of": format_time(now), **got.status(), "incidents": [
        {"incident_id": r["incident_id"], "grade": r["grade"], "area": r["area"],
         "status": r["status"], "created_at": format_time(r["created_at"]),
         "age_seconds": round(now - r["created_at"], 3), "vulnerable": r["vulnerable"],
         "terminal": r["terminal"]} for r in rows]})


@app.page("/demand")
async def demand_view(self: web.View, request: web.Request) -> web.Response:
    try:
        size = parse_window(request.query.get("window", "15m"), config.windows.sizes_seconds)
        now = await _at(request)
    except (ValueError, BadRequest) as exc:
        return self.json({"error": str(exc)}, status=400)
    got = await forcewide.gather("demand", {"at": str(now), "size": str(size)})
    start, end = bounds(size, now)
    # History is kept for a week and the largest window: older windows are gone, and
    # saying zero for them would be a lie.
    kept = [p["retained_from"] for p in got.parts() if p.get("retained_from") is not None]
    retained_from = max(kept) if kept else None
    if retained_from is not None and end <= retained_from:
        return self.json({"error": "that window is older than the demand history kept",
                          "retained_from": format_time(float(retained_from)),
                          "retained_until": format_time(await forcewide.stream_now())},
                         status=410)
    status = got.status()
    body: dict[str, object] = {}
    if retained_from is not None and week_before(start, config.force.zone()) < retained_from:
        status["complete"] = False  # the current window is whole; last week's is not
        body["retained_from"] = format_time(float(retained_from))
    return self.json({
        "as_of": format_time(now), "window": window_name(size), **status, **body,
        "start": format_time(float(start)), "end": format_time(float(end)),
        "current": pairs(merge_counts(p["current"] for p in got.parts())),
        "last_week": pairs(merge_counts(p["last_week"] for p in got.parts())),
    })


@app.page("/internal/partitions")
async def partitions_view(self: web.View, request: web.Request) -> web.Response:
    """One owner's per-partition answers, for another worker's force-wide view."""
    q = dict(request.query)
    try:
        wanted = [int(p) for p in q.pop("partitions", "").split(",") if p]
        view = q.pop("view")
        answers = forcewide.answer_local(view, wanted, q)
    except (KeyError, ValueError) as exc:
        return self.json({"error": f"bad request: {type(exc).__name__}"}, status=400)
    return self.json({"worker": settings.advertised_url or str(app.conf.canonical_url),
                      "answers": {str(p): a for p, a in answers.items()}})
