"""The benchmark's deterministic workload and the work every contender does on it.

``generate`` builds a national-scale stream from the simulator's planner under
a fixed seed: lifecycles of ``incidents`` incidents spread over ``span_s`` of
event time, in event-time order, keyed by incident id, with 1% malformed
records (the simulator's own malformed kinds) and 1% duplicates (an earlier
record sent again a little later). Events after the end of the span are left
out, so the incidents still open then are the backlog at the end. Records carry
no Kafka timestamp, so the raw topic's retention (a week of wall time) never
deletes an old event time.

``Work`` is the same work the baseline and the Quix Streams peer do, with the
pipeline's own pure functions, so the comparison measures the framework
around them: validate against the contract, drop duplicates by event id,
keep open incidents by grade x area and incoming incidents in 15-minute
windows by grade. ``Figures`` is what every contender reports and what the
cross-check compares.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from pipeline.config import DemandConfig, load_config
from pipeline.domain.backlog import State, apply_once, open_view
from pipeline.domain.events import decode_event
from pipeline.errors import InvalidEvent
from pipeline.simulator import MALFORMED, SimStats, finish_document, load_profile, plan_incident

WINDOW_S = 900
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z: an event time far from the wall clock
MAX_EVENT_BYTES = 64 * 1024
REMEMBER = 256
Record = tuple[bytes, bytes]


def generate(incidents: int, seed: int = 7, span_s: float = 6 * 86400.0,
             malformed: float = 0.01, duplicates: float = 0.01) -> list[Record]:
    """Deterministic (key, value) records, in event-time order, with bad and repeated ones."""
    config, profile = load_config(), load_profile()
    rng, stats = random.Random(seed), SimStats()
    timed: list[tuple[float, int, Record]] = []
    gap = span_s / max(incidents, 1)
    cut = START + span_s  # later events are dropped: incidents still open at the cut stay open
    for i in range(incidents):
        incident_id = f"B{i:08d}"
        call = START + i * gap + rng.uniform(0, gap)
        for delay, doc in plan_incident(rng, incident_id, config, stats, profile):
            if call + delay > cut:
                continue
            n = len(timed)
            value = orjson.dumps(finish_document(doc, incident_id, f"b{n:09x}", call + delay,
                                                 call, 1.0))
            timed.append((call + delay, n, (incident_id.encode(), value)))
    timed.sort(key=lambda t: (t[0], t[1]))
    out: list[Record] = []
    for _, _, record in timed:
        out.append(record)
        if rng.random() < malformed:
            bad = MALFORMED[rng.randrange(len(MALFORMED))](orjson.loads(record[1]))
            out.append((record[0], bad))
        if rng.random() < duplicates and len(out) > 1:
            # A resend of a recent record, as producers retrying do.
            out.append(out[max(0, len(out) - 1 - rng.randrange(1000))])
    return out


@dataclass
class Figures:
    """What each contender ends with: the cross-check compares these exactly."""

    records: int = 0
    rejected: int = 0
    duplicates: int = 0
    backlog: Counter[str] = field(default_factory=Counter)   # "grade|area" -> open
    windows: Counter[str] = field(default_factory=Counter)   # "window start|grade" -> calls

    def as_json(self) -> dict[str, Any]:
        return {"records": self.records, "rejected": self.rejected,
                "duplicates": self.duplicates,
                "backlog": {k: v for k, v in sorted(self.backlog.items()) if v},
                "windows": {k: v for k, v in sorted(self.windows.items()) if v}}


def window_key(at: float, grade: str) -> str:
    return f"{int(at // WINDOW_S) * WINDOW_S}|{grade}"


def account(figures: Figures, before: State | None, after: State) -> None:
    """Move the open count from the incident's old cell to its new one; count a new call."""
    old = open_view(before) if before else None
    new = open_view(after)
    if old is not None:
        figures.backlog[f"{old.grade}|{old.area}"] -= 1
    if new is not None:
        figures.backlog[f"{new.grade}|{new.area}"] += 1
    created = after.get("created")
    if created is not None and (before is None or "created" not in before):
        figures.windows[window_key(created["at"], created["grade"])] += 1


class Work:
    """Validate, de-duplicate, fold, account: one record at a time, state in a mapping."""

    def __init__(self, config: DemandConfig | None = None) -> None:
        self.config = config or load_config()
        self.figures = Figures()

    def decode(self, raw: bytes) -> Any:
        """The valid event, or None (counted as rejected)."""
        self.figures.records += 1
        try:
            return decode_event(raw, self.config, MAX_EVENT_BYTES)
        except InvalidEvent:
            self.figures.rejected += 1
            return None

    def result(self, seconds: float) -> dict[str, Any]:
        """What a contender process prints: its time, peak RSS and figures."""
        return {"seconds": seconds, "records": self.figures.records,
                "peak_rss_kib": memory_kib("self"), "figures": self.figures.as_json()}

    def fold(self, before: State | None, ev: Any) -> State | None:
        """The incident's new state, or None for a duplicate."""
        after, duplicate = apply_once(before, ev, REMEMBER)
        if duplicate:
            self.figures.duplicates += 1
            return None
        account(self.figures, before, after)
        return after


def disagreements(named: dict[str, dict[str, Any]]) -> list[str]:
    """Every way the contenders' figures differ (empty: they agree exactly)."""
    out: list[str] = []
    items = list(named.items())
    ref_name, ref = items[0]
    for name, fig in items[1:]:
        for part in ("backlog", "windows"):
            a, b = ref[part], fig[part]
            diff = sorted(k for k in set(a) | set(b) if a.get(k, 0) != b.get(k, 0))
            if diff:
                out.append(f"{name} vs {ref_name}: {part} differs in {len(diff)} cells, e.g. "
                           + ", ".join(f"{k}: {b.get(k, 0)} != {a.get(k, 0)}"
                                       for k in diff[:3]))
    return out




def memory_kib(pid: int | str, field: str = "VmHWM") -> int:
    """A process's memory figure from /proc (VmHWM: peak resident set; VmRSS: now).

    Not ru_maxrss: Linux carries that across exec, so a child started from a big
    parent reports the parent's peak.
    """
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")
