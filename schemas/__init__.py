"""Versioned event contracts (JSON Schema, draft 2020-12), shipped as package data.

Downstream consumers can use the ``*.schema.json`` files directly; Python code
loads them through :func:`load` so the files stay the single source of truth.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

INCIDENT_EVENT_V1 = "incident-event.v1.schema.json"
DEAD_LETTER_V1 = "dead-letter.v1.schema.json"
INCIDENT_STATE_V1 = "incident-state.v1.schema.json"
BACKLOG_SNAPSHOT_V1 = "backlog-snapshot.v1.schema.json"
ALERT_V1 = "alert.v1.schema.json"


@cache
def load(name: str) -> dict[str, Any]:
    """Return the parsed schema file ``name`` from this package."""
    text = resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
