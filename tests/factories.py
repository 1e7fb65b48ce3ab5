"""Event documents for tests, written by hand from the contract (not from the pipeline)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

_ids = itertools.count(1)
BASE = datetime(2026, 1, 15, 8, 0, tzinfo=UTC)


def ts(minutes: float = 0.0, base: datetime = BASE) -> str:
    return (base + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def event(incident_id: str, event_type: str, minutes: float, data: dict[str, Any],
          event_id: str | None = None) -> dict[str, Any]:
    return {"event_id": event_id or f"ev-{next(_ids)}", "incident_id": incident_id,
            "event_type": event_type, "occurred_at": ts(minutes), "schema_version": 1,
            "source": "test", "data": data}


def created(incident_id: str, minutes: float = 0.0, grade: str = "1", area: str = "north",
            channel: str = "999", vulnerable: bool = False, **kw: Any) -> dict[str, Any]:
    data = {"grade": grade, "category": "ASB", "channel": channel, "area": area,
            "vulnerable": vulnerable, "caller_ref": "caller0001"}
    return event(incident_id, "created", minutes, data, **kw)


THRIVE = {k: "medium" for k in
          ("threat", "harm", "risk", "investigation", "vulnerability", "engagement")}


def examples(incident_id: str = "INC-1") -> dict[str, dict[str, Any]]:
    """One valid event of every type."""
    return {
        "created": created(incident_id),
        "graded": event(incident_id, "graded", 1, {"grade": "2", "reason": "more info"}),
        "risk_assessed": event(incident_id, "risk_assessed", 2, {
            "thrive": {**THRIVE, "prevention": "low"}, "next_review_due": ts(62),
            "trigger": "initial", "vulnerable": True}),
        "assigned": event(incident_id, "assigned", 3, {"terminal": "T07"}),
        "dispatched": event(incident_id, "dispatched", 4, {"resource_ref": "unit-42"}),
        "arrived": event(incident_id, "arrived", 10, {}),
        "scheduled": event(incident_id, "scheduled", 11,
                           {"slot_start": ts(600), "slot_end": ts(840)}),
        "transferred": event(incident_id, "transferred", 12, {"team": "resolution"}),
        "closed": event(incident_id, "closed", 20, {"disposition": "advice given"}),
        "reopened": event(incident_id, "reopened", 30, {"reason": "caller rang back"}),
    }
