"""Every demandflow metric, declared once, on one registry (docs/metrics.md).

Names are a public contract: prefix ``demand_``, base units, labels only from
bounded sets (grades and areas from the configuration, event types and reasons
from the contract). Gauges of state are computed from the tables when
Prometheus scrapes, never updated per event: the hot path only counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pipeline.config import DemandConfig
from pipeline.domain.backlog import BacklogSummary, State, summarise
from pipeline.domain.events import EVENT_TYPES, REASONS

# `*_created` series double the exposition and no wall query needs them.
disable_created_metrics()

OUTCOMES = ("accepted", "rejected", "duplicate")
CHANNELS = ("999", "101", "online", "officer")


class Metrics:
    """The counters the agents increment; gauges come from :class:`BacklogCollector`."""

    def __init__(self, registry: CollectorRegistry, config: DemandConfig) -> None:
        self.registry = registry
        self.events = Counter(
            "demand_events", "Incident events seen at ingest, by type and outcome.",
            ["event_type", "outcome"], registry=registry)
        self.dead_letters = Counter(
            "demand_dead_letters", "Records sent to the dead-letter topic, by reason.",
            ["reason"], registry=registry)
        self.incidents_received = Counter(
            "demand_incidents_received",
            "New incidents (first 'created' event), by grade and channel.",
            ["grade", "channel"], registry=registry)
        self.agent_errors = Counter(
            "demand_agent_errors", "Unexpected errors caught per event by an agent's guard.",
            ["agent"], registry=registry)
        # Known label combinations exist from the start, so a dashboard shows 0, not "no data".
        for et in (*EVENT_TYPES, "unknown"):
            for outcome in OUTCOMES:
                if et != "unknown" or outcome == "rejected":
                    self.events.labels(et, outcome)
        for reason in REASONS:
            self.dead_letters.labels(reason)
        for g in config.grades:
            for ch in CHANNELS:
                self.incidents_received.labels(g.code, ch)
        for agent in ("ingest", "backlog"):
            self.agent_errors.labels(agent)


class BacklogCollector(Collector):
    """Backlog gauges computed from this worker's incident table on each scrape.

    With several workers each reports the partitions it owns; ``sum`` in
    PromQL gives the force-wide figure.
    """

    def __init__(self, config: DemandConfig, states: Callable[[], Iterable[State]],
                 clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._states = states
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        summary: BacklogSummary = summarise(self._states())
        now = self._clock()
        open_g = GaugeMetricFamily("demand_backlog_open", "Open incidents by grade and area.",
                                   labels=["grade", "area"])
        for g in self._config.grades:
            for a in self._config.areas:
                count = summary.open_by_grade_area.get((g.code, a.code), 0)
                open_g.add_metric([g.code, a.code], count)
        yield open_g
        oldest = GaugeMetricFamily(
            "demand_backlog_oldest_age_seconds",
            "Age (now minus call time) of the oldest open incident, by grade; 0 when none is open.",
            labels=["grade"], unit="")
        for g in self._config.grades:
            created = summary.oldest_created_by_grade.get(g.code)
            oldest.add_metric([g.code], max(0.0, now - created) if created is not None else 0.0)
        yield oldest
