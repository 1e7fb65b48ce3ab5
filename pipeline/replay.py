"""``demandflow replay``: real command-and-control exports through the pipeline.

Reads incident-per-row CSV files (optionally gzipped), turns each row into
lifecycle events with a :class:`~pipeline.domain.mapping.Mapping`, and produces
them to the raw topic in event-time order, as fast as possible or at k× real
speed. Every row is accounted for in the summary: replayed, filtered out by
the mapping, or skipped with a reason; repairs are counted by reason too.
Event ids are derived from the incident and stage, so replaying a file twice
changes nothing (the second copy is dropped as duplicates).
"""

from __future__ import annotations

import csv
import gzip
import io
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from pipeline.config import DemandConfig, parse_toml_model
from pipeline.domain.backlog import RANK
from pipeline.domain.events import parse_time
from pipeline.domain.mapping import Mapping, row_events
from pipeline.errors import ConfigError, DemandflowError

MAPPINGS = Path(__file__).resolve().parents[1] / "deploy" / "mappings"


def load_mapping(path: str | Path) -> Mapping:
    """A mapping file, validated; a mistake names the file and line. Names a shipped one too."""
    p = Path(path)
    if not p.exists() and (MAPPINGS / f"{path}.toml").exists():
        p = MAPPINGS / f"{path}.toml"
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read mapping: {exc.strerror}") from exc
    return parse_toml_model(text, str(p), Mapping)


def read_rows(path: Path, mapping: Mapping | None = None) -> Iterator[dict[str, str]]:
    """Rows of a CSV export (``.gz`` decompressed), by column name.

    With a mapping, the header is checked first: a mapping naming columns the
    file lacks would otherwise skip every row as ``missing_id`` and produce
    nothing, successfully.
    """
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115
    with raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
        reader = csv.DictReader(text)
        if mapping is not None:
            header = set(reader.fieldnames or [])
            named = [c for c in mapping.columns.model_dump().values() if c is not None]
            named += list(mapping.include)
            absent = sorted({c for c in named if c not in header})
            if absent:
                raise DemandflowError(
                    f"{path}: the mapping {mapping.name!r} names columns this file does not "
                    f"have: {', '.join(absent)} (is it the right --mapping?)")
        yield from reader


@dataclass
class ReplaySummary:
    files: list[str] = field(default_factory=list)
    rows: int = 0
    incidents: int = 0
    filtered: int = 0
    events: int = 0
    produced: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    repaired: Counter[str] = field(default_factory=Counter)
    first_event: str | None = None
    last_event: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"files": self.files, "rows_read": self.rows, "incidents": self.incidents,
                "rows_filtered": self.filtered, "events": self.events,
                "events_produced": self.produced,
                "rows_skipped": dict(sorted(self.skipped.items())),
                "rows_repaired": dict(sorted(self.repaired.items())),
                "first_event_at": self.first_event, "last_event_at": self.last_event}


def plan(files: Iterable[Path], mapping: Mapping, config: DemandConfig,
         now: datetime | None = None) -> tuple[list[dict[str, Any]], ReplaySummary]:
    """Every event of every row, in event-time order, and the accounting of the rows."""
    now = now or datetime.now(UTC)
    summary = ReplaySummary()
    seen: set[str] = set()
    events: list[dict[str, Any]] = []
    # Incident numbers are given in call order: the latest call of a lower-numbered
    # incident is evidence for a call in the repeated hour when clocks go back.
    top_id: tuple[int, str] | None = None
    top_call: datetime | None = None
    for path in files:
        summary.files.append(str(path))
        for row in read_rows(path, mapping):
            summary.rows += 1
            number = _order((row.get(mapping.columns.id) or "").strip())
            hint = top_call if top_id is not None and number > top_id else None
            result = row_events(row, mapping, config.grade_codes, config.area_codes, now,
                                call_not_before=hint)
            if result.call is not None and (top_id is None or number > top_id):
                top_id = number
                top_call = result.call if top_call is None else max(top_call, result.call)
            if result.filtered:
                summary.filtered += 1
                continue
            if result.skipped:
                summary.skipped[result.skipped] += 1
                continue
            assert result.incident_id is not None
            if result.incident_id in seen:
                summary.skipped["duplicate_id"] += 1
                continue
            seen.add(result.incident_id)
            summary.incidents += 1
            summary.repaired.update(result.repaired)
            events.extend(result.events)
    # Same-instant events go in lifecycle order, the order the backlog's fold gives them.
    events.sort(key=lambda e: (e["occurred_at"], RANK[e["event_type"]], e["event_id"]))
    summary.events = len(events)
    if events:
        summary.first_event, summary.last_event = events[0]["occurred_at"], \
            events[-1]["occurred_at"]
    return events, summary


def _order(incident_id: str) -> tuple[int, str]:
    """Incident numbers compared as numbers (``25-9999`` before ``25-10000``)."""
    return len(incident_id), incident_id


def window(events: list[dict[str, Any]], since: float | None,
           until: float | None) -> list[dict[str, Any]]:
    """Events with ``since < occurred_at <= until`` (either bound optional)."""
    return [e for e in events
            if (since is None or parse_time(e["occurred_at"]) > since)
            and (until is None or parse_time(e["occurred_at"]) <= until)]


def produce(events: list[dict[str, Any]], send: Callable[[bytes, bytes], None],
            speed: float | None, progress: Callable[[int], None] | None = None,
            clock: Callable[[], float] = time.monotonic,
            sleep: Callable[[float], None] = time.sleep) -> int:
    """Send events in order; with ``speed`` k, keep k× the gaps between event times."""
    start_wall = clock()
    start_event = parse_time(events[0]["occurred_at"]) if events else 0.0
    for n, e in enumerate(events, start=1):
        if speed:
            due = start_wall + (parse_time(e["occurred_at"]) - start_event) / speed
            delay = due - clock()
            if delay > 0:
                sleep(delay)
        send(e["incident_id"].encode(), orjson.dumps(e))
        if progress is not None and (n % 500 == 0 or n == len(events)):
            progress(n)
    return len(events)


def run_replay(files: list[Path], mapping_path: str, speed: float | None,
               since: str | None, until: str | None, report: Path | None,
               show_progress: bool = True) -> ReplaySummary:
    """The CLI's replay: plan, produce to the raw topic with kafka-python, report."""
    from kafka import KafkaProducer
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from pipeline.config import load_config
    from pipeline.kafkasecurity import kafka_python
    from pipeline.settings import get_settings
    from pipeline.topics import RAW, ensure_topics, topic_name

    settings = get_settings()
    config = load_config(settings.config_path)
    mapping = load_mapping(mapping_path)
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise DemandflowError(f"no such file: {', '.join(missing)}")
    events, summary = plan(files, mapping, config)
    try:
        chosen = window(events, parse_time(since) if since else None,
                        parse_time(until) if until else None)
    except ValueError as exc:
        raise DemandflowError("--since/--until must be RFC 3339 instants") from exc
    ensure_topics(settings)
    producer = KafkaProducer(**kafka_python(settings), linger_ms=20, acks="all")
    topic = topic_name(settings, RAW)
    console = Console(stderr=True)
    with Progress(TextColumn("[bold]replay[/]"), BarColumn(), MofNCompleteColumn(),
                  console=console, disable=not show_progress) as bar:
        task = bar.add_task("events", total=len(chosen))
        summary.produced = produce(chosen, lambda k, v: producer.send(topic, key=k, value=v),
                                   speed, lambda n: bar.update(task, completed=n))
    producer.flush()
    producer.close()
    document = summary.as_dict()
    if report is not None:
        report.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    return summary


def observed(files: Iterable[Path], mapping: Mapping, config: DemandConfig) -> list[Any]:
    """The replayed incidents as a profile learner sees them (call, grade, channel, clocks)."""
    from pipeline.domain.profile import Observed

    events, _ = plan(files, mapping, config)
    by_id: dict[str, dict[str, Any]] = {}
    for e in events:
        i = by_id.setdefault(e["incident_id"], {})
        at = parse_time(e["occurred_at"])
        if e["event_type"] == "created":
            i.update(call=at, grade=e["data"]["grade"], channel=e["data"]["channel"])
        elif e["event_type"] in ("dispatched", "arrived"):
            i.setdefault(e["event_type"], at)
    return [Observed(i["call"], i["grade"], i["channel"],
                     i["dispatched"] - i["call"] if "dispatched" in i else None,
                     i["arrived"] - i["call"] if "arrived" in i else None)
            for i in by_id.values() if "call" in i]
