"""Alert lifecycle: firing once per episode, resolving after a cool-down. Pure.

:func:`step` compares the conditions that hold now with the alerts already
active and says what changed. An alert fires the first time its condition
holds; while it keeps holding nothing new is said (its incident ids may be
refreshed silently); once the condition has stayed clear for ``cool_down``
seconds the alert resolves. A condition that flickers at its threshold is one
episode, not a storm of notifications.

Active alerts are plain JSON-able dicts so they live in a Faust table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from pipeline.domain.events import format_time
from pipeline.domain.rules import Condition

Active = dict[str, Any]


def step(active: Mapping[str, Active], holding: Mapping[str, Condition], now: float,
         cool_down: float) -> tuple[dict[str, Active | None], list[Active]]:
    """Return (changes to the active set, notifications), both in fingerprint order.

    ``changes`` maps fingerprint to its new active record, or None to remove it.
    Each notification is the alert record as published (``status`` firing or resolved).
    """
    changes: dict[str, Active | None] = {}
    notes: list[Active] = []
    for fp in sorted(holding):
        c = holding[fp]
        current = active.get(fp)
        if current is None:
            record = {**asdict(c), "incident_ids": list(c.incident_ids), "status": "firing",
                      "starts_at": now, "clear_since": None}
            changes[fp] = record
            notes.append(record)
        elif current.get("clear_since") is not None or \
                current["incident_ids"] != list(c.incident_ids) or current["summary"] != c.summary:
            changes[fp] = {**current, "clear_since": None, "incident_ids": list(c.incident_ids),
                           "summary": c.summary}
    for fp in sorted(set(active) - set(holding)):
        current = active[fp]
        clear_since = current.get("clear_since")
        if clear_since is None:
            changes[fp] = {**current, "clear_since": now}
            if cool_down <= 0:
                changes[fp] = None
                notes.append({**current, "status": "resolved", "ends_at": now})
        elif now - clear_since >= cool_down:
            changes[fp] = None
            notes.append({**current, "status": "resolved", "ends_at": clear_since})
    return changes, notes


def alert_record(note: Active) -> dict[str, Any]:
    """The record published on the alerts topic (schemas/alert.v1.schema.json)."""
    return {
        "schema_version": 1,
        "fingerprint": note["fingerprint"],
        "status": note["status"],
        "rule": note["rule"],
        "severity": note["severity"],
        "area": note["area"],
        "subject": note["subject"],
        "summary": note["summary"],
        "runbook": note["runbook"],
        "incident_ids": list(note["incident_ids"]),
        "starts_at": format_time(note["starts_at"]),
        "ends_at": format_time(note["ends_at"]) if note.get("ends_at") is not None else None,
    }


def alertmanager_payload(record: Mapping[str, Any], now: float, valid_for: float,
                         generator_url: str) -> dict[str, Any]:
    """One alert in Alertmanager's v2 API shape (POST /api/v2/alerts).

    Labels say where to route (``area``), how bad (``severity``) and which
    alert (``alertname`` = rule, ``fingerprint``); everything else is an
    annotation. A firing alert is valid for ``valid_for`` seconds and is
    re-sent before then; a resolved one carries its end time.
    """
    ends = record["ends_at"] if record["status"] == "resolved" else format_time(now + valid_for)
    return {
        "labels": {"alertname": record["rule"], "severity": record["severity"],
                   "area": record["area"], "fingerprint": record["fingerprint"],
                   "source": "demandflow"},
        "annotations": {"summary": record["summary"], "runbook": record["runbook"],
                        "incident_ids": ",".join(record["incident_ids"]),
                        "subject": record["subject"]},
        "startsAt": record["starts_at"],
        "endsAt": ends,
        "generatorURL": generator_url,
    }
