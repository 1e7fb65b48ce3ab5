"""Grafana dashboards as code: the control-room wall and pipeline health.

Generated as plain Grafana JSON (no SDK: two dashboards of a dozen panels do
not need one) by ``demandflow dashboards``, written to
``deploy/grafana/dashboards/``. The committed files must equal what this
module generates (a test checks), so nobody hand-edits them and every panel
query is tested against a real Prometheus (tests/integration/test_prometheus.py).

Wall panels are built to be read from across a room: big stats, coloured
thresholds, few panels, no legends where a title says it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from pipeline.config import DemandConfig

DS = {"type": "prometheus", "uid": "${datasource}"}
GREEN, AMBER, RED, BLUE = "green", "orange", "red", "blue"


def _steps(*pairs: tuple[float | None, str]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in pairs]}


def _panel(kind: str, title: str, exprs: list[tuple[str, str]], pos: tuple[int, int, int, int],
           unit: str = "short", thresholds: dict[str, Any] | None = None,
           options: dict[str, Any] | None = None, description: str = "") -> dict[str, Any]:
    x, y, w, h = pos
    return {
        "type": kind, "title": title, "description": description, "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": [{"refId": chr(ord("A") + i), "datasource": DS, "expr": expr,
                     "legendFormat": legend, "instant": kind in ("stat", "bargauge")}
                    for i, (expr, legend) in enumerate(exprs)],
        "fieldConfig": {"defaults": {"unit": unit, "decimals": 0 if unit == "short" else None,
                                     "thresholds": thresholds or _steps((None, GREEN)),
                                     "color": {"mode": "thresholds"}},
                        "overrides": []},
        "options": options or {},
    }


def _stat(title: str, exprs: list[tuple[str, str]], pos: tuple[int, int, int, int],
          **kw: Any) -> dict[str, Any]:
    options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
               "colorMode": "background", "graphMode": "none", "textMode": "value_and_name",
               "justifyMode": "center", "orientation": "horizontal"}
    return _panel("stat", title, exprs, pos, options=options, **kw)


def _bars(title: str, exprs: list[tuple[str, str]], pos: tuple[int, int, int, int],
          **kw: Any) -> dict[str, Any]:
    options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
               "displayMode": "lcd", "orientation": "horizontal", "showUnfilled": True}
    return _panel("bargauge", title, exprs, pos, options=options, **kw)


def _series(title: str, exprs: list[tuple[str, str]], pos: tuple[int, int, int, int],
            **kw: Any) -> dict[str, Any]:
    options = {"legend": {"displayMode": "list", "placement": "bottom"},
               "tooltip": {"mode": "multi"}}
    return _panel("timeseries", title, exprs, pos, options=options, **kw)


def _datasource_variable() -> dict[str, Any]:
    return {"name": "datasource", "label": "Prometheus", "type": "datasource",
            "query": "prometheus", "current": {}, "hide": 0}


def _query_variable(name: str, label: str, metric: str) -> dict[str, Any]:
    query = f"label_values({metric}, {name})"
    return {"name": name, "label": label, "type": "query", "datasource": DS,
            "query": {"query": query, "refId": f"{name}-values"}, "definition": query,
            "includeAll": True, "multi": True, "allValue": ".*", "refresh": 2,
            "current": {"text": "All", "value": "$__all"}, "sort": 1}


def _dashboard(uid: str, title: str, panels: list[dict[str, Any]],
               variables: list[dict[str, Any]], refresh: str) -> dict[str, Any]:
    for i, p in enumerate(panels, start=1):
        p["id"] = i
    return {"uid": uid, "title": title, "tags": ["demandflow"], "timezone": "utc",
            "schemaVersion": 39, "version": 1, "editable": False, "graphTooltip": 1,
            "refresh": refresh, "time": {"from": "now-6h", "to": "now"},
            "templating": {"list": variables}, "annotations": {"list": []}, "panels": panels}


def control_room(config: DemandConfig) -> dict[str, Any]:
    """The wall: what a duty inspector needs to see from across the room."""
    band = config.terminals
    first = config.grades[0]
    target = first.attend_within_seconds or 900
    area = 'area=~"$area"'
    panels = [
        _stat("Open incidents by grade",
              [(f"sum by (grade) (demand_backlog_open{{{area}}})", "Grade {{grade}}")],
              (0, 0, 12, 6), thresholds=_steps((None, GREEN), (50, AMBER), (150, RED))),
        _stat("Oldest open incident",
              [("max by (grade) (demand_backlog_oldest_age_seconds)", "Grade {{grade}}")],
              (12, 0, 12, 6), unit="s",
              thresholds=_steps((None, GREEN), (target, AMBER), (3 * 3600, RED))),
        _stat(f"Grade {first.code} attended within target (24 h)",
              [(f'grade:demand_sla_compliance:ratio_24h{{grade="{first.code}"}}',
                f"Grade {first.code}")],
              (0, 6, 6, 5), unit="percentunit",
              thresholds=_steps((None, RED), (0.8, AMBER), (0.9, GREEN))),
        _stat("Alerts firing",
              [("sum by (severity) (demand_alerts_firing)", "{{severity}}")],
              (6, 6, 6, 5), thresholds=_steps((None, GREEN), (1, RED))),
        _stat("Vulnerable, risk review overdue",
              [(f"sum(demand_backlog_review_overdue{{{area}}})", "review overdue")],
              (12, 6, 6, 5), thresholds=_steps((None, GREEN), (1, AMBER), (5, RED)),
              description="Open incidents whose THRIVE next review has passed."),
        _stat("Demand this hour vs last week",
              [('sum(demand_window_incidents{window="1h",period="current"})', "this hour"),
               ('sum(demand_window_incidents{window="1h",period="last_week"})', "last week")],
              (18, 6, 6, 5), thresholds=_steps((None, BLUE))),
        _bars("Open incidents by area",
              [(f"sum by (area) (demand_backlog_open{{{area}}})", "{{area}}")],
              (0, 11, 12, 8), thresholds=_steps((None, GREEN), (50, AMBER), (150, RED))),
        _bars(f"Dispatcher terminal load (band {band.band_low}-{band.band_high})",
              [("sum by (terminal) (demand_terminal_open_logs)", "{{terminal}}")],
              (12, 11, 12, 8),
              thresholds=_steps((None, BLUE), (band.band_low, GREEN), (band.band_high + 1, RED))),
        _series("Open incidents by grade",
                [("grade:demand_backlog_open:sum", "Grade {{grade}}")], (0, 19, 12, 8)),
        _series("Backlog growth (incidents per hour)",
                [("grade:demand_backlog_open:deriv15m_per_hour", "Grade {{grade}}")],
                (12, 19, 12, 8)),
        _series("Incoming demand (per hour) by grade",
                [("grade:demand_incidents_received:rate5m_per_hour", "Grade {{grade}}")],
                (0, 27, 24, 8)),
    ]
    variables = [_datasource_variable(), _query_variable("area", "Area", "demand_backlog_open")]
    return _dashboard("demandflow-wall", "Control room wall", panels, variables, "10s")


def pipeline_health() -> dict[str, Any]:
    """For whoever runs demandflow: is it up, keeping up, and fed good data?"""
    panels = [
        _stat("Workers up", [('sum(up{job="demandflow"})', "up")], (0, 0, 6, 5),
              thresholds=_steps((None, RED), (1, GREEN))),
        _stat("Agent errors (since start)",
              [("sum by (agent) (demand_agent_errors_total)", "{{agent}}")], (6, 0, 9, 5),
              thresholds=_steps((None, GREEN), (1, RED))),
        _stat("Alert notifications failed (1 h)",
              [('sum(increase(demand_alert_notifications_total{outcome="failed"}[1h]))',
                "failed")], (15, 0, 9, 5), thresholds=_steps((None, GREEN), (1, AMBER))),
        _series("Events per second by outcome", [("outcome:demand_events:rate1m", "{{outcome}}")],
                (0, 5, 12, 8), unit="ops"),
        _series("Consumer lag (messages) by topic",
                [("sum by (topic) (topic_partition:faust_consumer_lag:messages)", "{{topic}}")],
                (12, 5, 12, 8)),
        _series("Processing latency (event time to applied)",
                [("histogram_quantile(0.5, sum by (le) "
                  "(rate(demand_event_lag_seconds_bucket[5m])))", "p50"),
                 ("demand_event_lag_seconds:p99_5m", "p99")], (0, 13, 12, 8), unit="s"),
        _series("Dead letters per second by reason",
                [("sum by (reason) (rate(demand_dead_letters_total[5m]))", "{{reason}}")],
                (12, 13, 12, 8), unit="ops"),
        _series("Alert notifications per second",
                [("sum by (outcome) (rate(demand_alert_notifications_total[5m]))",
                  "{{outcome}}")], (0, 21, 16, 6), unit="ops"),
        _stat("Alert rules evaluated (behind the clock)",
              [("time() - max(demand_alerts_evaluated_until_timestamp_seconds)", "behind")],
              (16, 21, 8, 6), unit="s",
              thresholds=_steps((None, GREEN), (60, AMBER), (120, RED))),
    ]
    return _dashboard("demandflow-pipeline", "demandflow pipeline health", panels,
                      [_datasource_variable()], "30s")


def dashboards(config: DemandConfig) -> dict[str, dict[str, Any]]:
    """File name -> dashboard, as committed under deploy/grafana/dashboards/."""
    return {"control-room-wall.json": control_room(config),
            "pipeline-health.json": pipeline_health()}


def render(dashboard: dict[str, Any]) -> bytes:
    return orjson.dumps(dashboard, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def write(config: DemandConfig, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, dashboard in dashboards(config).items():
        path = out / name
        path.write_bytes(render(dashboard))
        written.append(path)
    return written


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL) for every panel target."""
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            yield panel["title"], target["expr"]
