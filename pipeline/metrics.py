"""Every demandflow metric, declared once, on one registry (docs/metrics.md).

Names are a public contract: prefix ``demand_``, base units, labels only from
bounded sets (grades and areas from the configuration, event types and reasons
from the contract). Gauges of state are computed from the tables when
Prometheus scrapes, never updated per event: the hot path only counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pipeline.config import DemandConfig
from pipeline.domain.backlog import AGE_BUCKETS, OPEN_STATUSES, BacklogSummary, State, summarise
from pipeline.domain.clocks import STAGES
from pipeline.domain.events import EVENT_TYPES, REASONS
from pipeline.domain.windows import DAY, demand, window_name

# `*_created` series double the exposition and no wall query needs them.
disable_created_metrics()

OUTCOMES = ("accepted", "rejected", "duplicate", "late")
# Response-time buckets (seconds): 1 min to 3 days, dense around the 15 and 60 min targets.
RESPONSE_BUCKETS = (60, 300, 600, 900, 1200, 1800, 2700, 3600, 7200, 14400, 43200, 86400,
                    172800, 259200)
CHANNELS = ("999", "101", "online", "officer")
# Event lag buckets (seconds): 50 ms to a day.
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 86400)


class Metrics:
    """The counters the agents increment; gauges come from :class:`BacklogCollector`."""

    def __init__(self, registry: CollectorRegistry, config: DemandConfig) -> None:
        self.registry = registry
        self.events = Counter(
            "demand_events", "Incident events by type and outcome: rejected at ingest; "
            "accepted, duplicate (same event_id again) or late (older than the forget "
            "horizon, not applied) in the backlog agent; created events also count as "
            "late when they arrive beyond the window grace (applied, not windowed).",
            ["event_type", "outcome"], registry=registry)
        self.dead_letters = Counter(
            "demand_dead_letters", "Records sent to the dead-letter topic, by reason.",
            ["reason"], registry=registry)
        self.incidents_received = Counter(
            "demand_incidents_received",
            "New incidents (first 'created' event), by grade and channel.",
            ["grade", "channel"], registry=registry)
        self.response_seconds = Histogram(
            "demand_response_seconds",
            "Response times per incident (first dispatch / first arrival), by current grade.",
            ["grade", "stage"], unit="seconds", buckets=RESPONSE_BUCKETS, registry=registry)
        self.sla_breaches = Counter(
            "demand_sla_breaches", "Incidents attended later than their grade's target, or not "
            "attended when the target passed; each counted once.",
            ["grade", "area"], registry=registry)
        self.event_lag = Histogram(
            "demand_event_lag_seconds",
            "Event time to processed: wall clock when the fold applied an event minus "
            "its occurred_at (large during replays and catch-up).", unit="seconds",
            buckets=LAG_BUCKETS, registry=registry)
        self.notifications = Counter(
            "demand_alert_notifications",
            "Alert deliveries to Alertmanager: delivered, or failed (each failed attempt; "
            "it is retried with back-off until delivered).", ["outcome"], registry=registry)
        for outcome in ("delivered", "failed"):
            self.notifications.labels(outcome)
        self.writes_refused = Counter(
            "demand_state_writes_refused", "Table writes refused because this worker no "
            "longer owns the partition (a rebalance moved it; its new owner re-reads the "
            "events).", registry=registry)
        self.alert_events_late = Counter(
            "demand_alert_events_late", "Events that reached the alert timeline after its "
            "frontier had passed their time and changed an incident (a redelivered event is "
            "not counted): applied at the frontier, so alerts about them are "
            "stamped later than their own instant (a source or replay faster than the frontier "
            "allows: docs/alerts.md#limits).", registry=registry)
        self.offsets_passed_over = Counter(
            "demand_offsets_passed_over", "Offsets of an input topic the consumer passed "
            "over without handing them to the agent, which then read them from the log itself "
            "(pipeline.passedover; a Faust recovery race, docs/state.md). Also counts "
            "transactional control records and records expired before they were read.",
            ["topic"], registry=registry)
        self.agent_errors = Counter(
            "demand_agent_errors", "Unexpected errors caught per event by an agent's guard.",
            ["agent"], registry=registry)
        # Known label combinations exist from the start, so a dashboard shows 0, not "no data".
        # The per-event counter's children are kept: ``labels()`` validates and locks on every
        # call, which showed in the worker's profile (~8 % of its time) at full speed.
        self._event_counters: dict[tuple[str, str], Any] = {}
        for et in (*EVENT_TYPES, "unknown"):
            for outcome in OUTCOMES:
                if et != "unknown" or outcome == "rejected":
                    self._event_counters[(et, outcome)] = self.events.labels(et, outcome)
        for reason in REASONS:
            self.dead_letters.labels(reason)
        for g in config.grades:
            for ch in CHANNELS:
                self.incidents_received.labels(g.code, ch)
        for agent in ("ingest", "backlog", "clock", "alerts", "producer"):
            self.agent_errors.labels(agent)
        for g in config.grades:
            for stage in STAGES:
                self.response_seconds.labels(g.code, stage)
            for a in config.areas:
                self.sla_breaches.labels(g.code, a.code)


    def count_event(self, event_type: str, outcome: str) -> None:
        """``demand_events_total{event_type, outcome}`` += 1, without a label lookup."""
        child = self._event_counters.get((event_type, outcome))
        if child is None:
            child = self._event_counters[(event_type, outcome)] = self.events.labels(
                event_type, outcome)
        child.inc()


class BacklogCollector(Collector):
    """Backlog, terminal and window gauges computed from this worker's tables on each scrape.

    With several workers each reports the partitions it owns; ``sum`` in
    PromQL gives the force-wide figure.
    """

    def __init__(self, config: DemandConfig, states: Callable[[], Iterable[State]],
                 buckets: Callable[[], list[tuple[int, Mapping[str, int]]]],
                 clock: Callable[[], float] = time.time,
                 partitions_ready: Callable[[], int] | None = None) -> None:
        self._config = config
        self._states = states
        self._buckets = buckets
        self._clock = clock
        self._partitions_ready = partitions_ready

    def collect(self) -> Iterator[Metric]:
        c = self._config
        summary: BacklogSummary = summarise(self._states(), self._clock())
        grades = [g.code for g in c.grades]
        areas = [a.code for a in c.areas]
        fam = GaugeMetricFamily("demand_backlog_open", "Open incidents by grade, area and status.",
                                labels=["grade", "area", "status"])
        for g in grades:
            for a in areas:
                for st in OPEN_STATUSES:
                    fam.add_metric([g, a, st], summary.by_grade_area_status.get((g, a, st), 0))
        yield fam
        fam = GaugeMetricFamily(
            "demand_backlog_oldest_age_seconds",
            "Age (now minus call time) of the oldest open incident, by grade; 0 when none.",
            labels=["grade"])
        for g in grades:
            created = summary.oldest_created_by_grade.get(g)
            fam.add_metric([g], max(0.0, summary.as_of - created) if created is not None else 0.0)
        yield fam
        fam = GaugeMetricFamily("demand_backlog_age", "Open incidents by age bucket.",
                                labels=["age"])
        for name, _ in AGE_BUCKETS:
            fam.add_metric([name], summary.by_age_bucket.get(name, 0))
        yield fam
        for name, help_text, data in (
            ("demand_backlog_vulnerable", "Open incidents flagged vulnerable.",
             summary.vulnerable_by_grade_area),
            ("demand_backlog_review_overdue",
             "Open incidents whose THRIVE next review is overdue.",
             summary.review_overdue_by_grade_area),
        ):
            fam = GaugeMetricFamily(name, help_text, labels=["grade", "area"])
            for g in grades:
                for a in areas:
                    fam.add_metric([g, a], data.get((g, a), 0))
            yield fam
        fam = GaugeMetricFamily("demand_terminal_open_logs",
                                "Open incident logs held by each dispatcher terminal.",
                                labels=["terminal"])
        for terminal, n in sorted(summary.terminals.items()):
            fam.add_metric([terminal], n)
        yield fam
        yield GaugeMetricFamily("demand_terminal_band_low", "Target band: fewest open logs.",
                                value=c.terminals.band_low)
        yield GaugeMetricFamily("demand_terminal_band_high", "Target band: most open logs.",
                                value=c.terminals.band_high)
        yield from self._windows(grades, summary.as_of)
        if self._partitions_ready is not None:
            yield GaugeMetricFamily(
                "demand_partitions_ready",
                "Partitions this worker owns and has restored: the share of the force its "
                "gauges cover (summed over workers: the topic's partition count when whole).",
                value=self._partitions_ready())

    def _windows(self, grades: list[str], now: float) -> Iterator[Metric]:
        fam = GaugeMetricFamily(
            "demand_window_incidents",
            "Incidents received in the current event-time window (and the same window a week "
            "earlier), by grade and channel.", labels=["window", "period", "grade", "channel"])
        buckets = self._buckets()
        for size in [*self._config.windows.sizes_seconds, DAY]:
            result = demand(buckets, size, now, self._config.force.zone())
            for period in ("current", "last_week"):
                counts = result[period]
                assert isinstance(counts, dict)
                for g in grades:
                    for ch in CHANNELS:
                        fam.add_metric([window_name(size), period, g, ch], counts.get((g, ch), 0))
        yield fam


class AlertsCollector(Collector):
    """``demand_alerts_firing{rule,severity}`` from the active-alerts table on each scrape,
    and how far (event time) the rules have been evaluated, on the worker that evaluates."""

    def __init__(self, config: DemandConfig, active: Callable[[], Iterable[Mapping[str, object]]],
                 evaluated_until: Callable[[], float | None] = lambda: None) -> None:
        self._config = config
        self._active = active
        self._evaluated_until = evaluated_until

    def collect(self) -> Iterator[Metric]:
        counts = {(r.name, r.severity): 0 for r in self._config.rules}
        for alert in self._active():
            key = (str(alert["rule"]), str(alert["severity"]))
            if key in counts:
                counts[key] += 1
        fam = GaugeMetricFamily(
            "demand_alerts_firing",
            "Alerts firing (from their firing to their resolved notification), by rule "
            "and severity.", labels=["rule", "severity"])
        for (rule, severity), n in sorted(counts.items()):
            fam.add_metric([rule, severity], n)
        yield fam
        until = self._evaluated_until()
        if until is not None:
            yield GaugeMetricFamily(
                "demand_alerts_evaluated_until_timestamp_seconds",
                "The instant (event time, Unix seconds) up to which the alert rules have been "
                "evaluated: live, a few seconds behind the clock; if it stops, no alert can fire.",
                value=until)
