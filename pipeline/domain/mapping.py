"""Turning one row of a command-and-control export into lifecycle events. Pure.

A force's export is one row per incident with a timestamp per stage. A
:class:`Mapping` (TOML, validated; docs/replay.md) names the columns, the
timestamp format and zone, null markers and sentinels, and how priorities,
channels and areas map to the configured ones. :func:`row_events` applies it
to one row and says what it found wrong and what it did about it, so a replay
reports every quirk instead of hiding it.

Rules for impossible clocks (documented in docs/replay.md, configurable):
- a stage stamped before the call: dropped (``before_call = "drop_stage"``) or
  the row skipped (``"skip_row"``);
- a close stamped before a stage: the close moved to the latest stage
  (``close_before_stage = "move_close"``) or the row skipped;
- the close and reopen stamps end the incident in the state the export last
  records (:func:`closes`): closed if it has any close stamp, unless a reopen
  follows every close and the mapping says such a reopen stays open; a reopen
  between two closes is a lifecycle kept as stamped, not a clock to repair;
- any time in the future: the row skipped.
Stages out of order among themselves (arrival before dispatch) are kept as
stamped and reported: each response clock is measured from the call.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping as MappingT
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipeline.domain.events import format_time

SKIPPED = "skipped"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Columns(_Strict):
    """Export column names (by name, never by position)."""

    id: str
    call: str
    dispatched: str | None = None
    arrived: str | None = None
    closed: str
    reopened: str | None = None
    final_closed: str | None = None
    priority: str
    initial_priority: str | None = None
    channel: str | None = None
    terminal: str | None = None
    area: str | None = None
    category: str | None = None


class Repair(_Strict):
    before_call: Literal["drop_stage", "skip_row"] = "drop_stage"
    close_before_stage: Literal["move_close", "skip_row"] = "move_close"
    # A reopen stamped after the last close: the export records a close and nothing after
    # the reopen. "stay_closed": the close stands, the reopen is dropped (an export that
    # re-stamps the reopen on administrative edits); "reopen": the incident ends open.
    reopen_without_close: Literal["stay_closed", "reopen"] = "stay_closed"


class Mapping(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    description: str = ""
    timezone: str
    timestamp_formats: list[str] = Field(min_length=1)
    null_markers: list[str] = Field(default_factory=lambda: ["", "NULL"])
    sentinels: list[str] = Field(default_factory=list)
    columns: Columns
    # Export value (fnmatch pattern, first match wins) -> configured code.
    grades: dict[str, str] = Field(min_length=1)
    channels: dict[str, str] = Field(default_factory=dict)
    areas: dict[str, str] = Field(default_factory=dict)
    area: str | None = None  # one configured area for the whole file
    default_channel: str = "101"
    terminal_ignore: list[str] = Field(default_factory=list)
    # Only rows whose column holds one of these values are replayed (others: "filtered").
    include: dict[str, list[str]] = Field(default_factory=dict)
    repair: Repair = Repair()

    @field_validator("timezone")
    @classmethod
    def _zone_exists(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass
class RowResult:
    """What one row became: events, or why it was skipped; and what was repaired."""

    incident_id: str | None
    events: list[dict[str, Any]] = field(default_factory=list)
    skipped: str | None = None  # reason the row was not replayed
    filtered: bool = False
    repaired: list[str] = field(default_factory=list)  # reasons reported, row still replayed
    call: datetime | None = None  # the call instant (as resolved), for the next row's hint


def lookup(table: MappingT[str, str], value: str) -> str | None:
    """The mapped code for ``value``: exact key first, then the first matching pattern."""
    if value in table:
        return table[value]
    for pattern, code in table.items():
        if fnmatch.fnmatchcase(value, pattern):
            return code
    return None


def local_candidates(text: str, m: Mapping) -> tuple[datetime, ...] | None:
    """The UTC instants an export timestamp can mean: one, or two for a local time in
    the hour repeated when clocks go back (first occurrence first). None: absent."""
    first = parse_local(text, m)
    if first is None:
        return None
    naive = first.astimezone(m.zone()).replace(tzinfo=None)
    second = naive.replace(tzinfo=m.zone(), fold=1).astimezone(UTC)
    return (first,) if second == first else (first, second)


def resolve(candidates: tuple[datetime, ...] | None, not_before: datetime | None,
            reasons: list[str]) -> datetime | None:
    """Pick the instant an ambiguous local time means from the row's own evidence.

    ``not_before`` is what it cannot precede (a stage: the call; a call: the call of
    an incident with a lower number). The earliest candidate not before it wins: if
    only one qualifies, the evidence decided (``ambiguous_time_resolved``); if both
    do, the first occurrence is an assumption (``ambiguous_time_assumed``), as it is
    if none does (the later is then taken, and the usual repairs judge it).
    """
    if candidates is None or len(candidates) == 1:
        return None if candidates is None else candidates[0]
    fitting = [c for c in candidates if not_before is None or c >= not_before]
    if len(fitting) == 1:
        reasons.append("ambiguous_time_resolved")
        return fitting[0]
    reasons.append("ambiguous_time_assumed")
    return fitting[0] if fitting else candidates[-1]


def parse_local(text: str, m: Mapping) -> datetime | None:
    """An export timestamp (local time of ``m.timezone``) as an aware UTC datetime.

    None for a null marker. An ambiguous local time (the repeated hour when
    clocks go back) is read as its first occurrence, daylight time (fold=0): see
    :func:`local_candidates` and :func:`resolve` for reading it from evidence;
    a time in the skipped hour (clocks go forward) is read with the offset in
    force before the change. ValueError if it matches no format.
    """
    value = text.strip()
    if value in m.null_markers or value in m.sentinels:
        return None
    for fmt in m.timestamp_formats:
        try:
            naive = datetime.strptime(value, fmt)  # noqa: DTZ007 (zone attached next)
        except ValueError:
            continue
        return naive.replace(tzinfo=m.zone()).astimezone(UTC)
    raise ValueError(f"{value!r} matches no timestamp format")


def row_events(row: MappingT[str, str], m: Mapping, grades: frozenset[str],
               areas: frozenset[str], now: datetime,
               call_not_before: datetime | None = None) -> RowResult:
    """The lifecycle events of one export row (see the module docstring for the rules).

    ``call_not_before``: the call time of an incident with a lower number, if known,
    which an ambiguous call time of this row cannot precede.
    """
    c = m.columns
    iid = (row.get(c.id) or "").strip()
    result = RowResult(incident_id=iid or None)
    for column, allowed in m.include.items():
        if (row.get(column) or "").strip() not in allowed:
            result.filtered = True
            return result
    if not iid or iid in m.null_markers:
        return _skip(result, "missing_id")

    def get(column: str | None) -> str:
        return "" if column is None else (row.get(column) or "").strip()

    stamps: dict[str, tuple[datetime, ...] | None] = {}
    for stage, column in (("call", c.call), ("dispatched", c.dispatched),
                          ("arrived", c.arrived), ("closed", c.closed),
                          ("reopened", c.reopened), ("final_closed", c.final_closed)):
        try:
            stamps[stage] = local_candidates(get(column), m) if column else None
        except ValueError:
            return _skip(result, "bad_timestamp")
    # The hour repeated when clocks go back: decided by the evidence, and reported.
    ambiguous: list[str] = []
    times: dict[str, datetime | None] = {"call": resolve(stamps["call"], call_not_before,
                                                           ambiguous)}
    for stage in ("dispatched", "arrived", "closed", "reopened", "final_closed"):
        times[stage] = resolve(stamps[stage], times["call"], ambiguous)
    result.repaired.extend(sorted(set(ambiguous)))
    result.call = times["call"]
    call = times["call"]
    if call is None:
        return _skip(result, "missing_call_time")
    if any(t is not None and t > now for t in times.values()):
        return _skip(result, "future_time")

    grade = lookup(m.grades, get(c.priority))
    initial = lookup(m.grades, get(c.initial_priority)) if c.initial_priority else grade
    if grade is None or initial is None or grade not in grades or initial not in grades:
        return _skip(result, "unknown_priority")
    area = m.area if m.area is not None else lookup(m.areas, get(c.area))
    if area is None or area not in areas:
        return _skip(result, "unknown_area")
    channel = lookup(m.channels, get(c.channel)) if c.channel else None
    channel = channel or m.default_channel

    stages = {s: times[s] for s in ("dispatched", "arrived")}
    for stage, t in list(stages.items()):
        if t is not None and t < call:
            if m.repair.before_call == "skip_row":
                return _skip(result, "stage_before_call")
            result.repaired.append("stage_before_call")
            stages[stage] = None
    dispatched, arrived = stages["dispatched"], stages["arrived"]
    if dispatched is not None and arrived is not None and arrived < dispatched:
        result.repaired.append("stage_out_of_order")

    latest = max([call, *(t for t in stages.values() if t is not None)])
    plan = closes(times["closed"], times["reopened"], times["final_closed"],
                  m.repair.reopen_without_close)
    result.repaired.extend(plan.reasons)
    closed, reopened, final = plan.closed, plan.reopened, plan.final
    last = final if final is not None else closed if reopened is None else None
    if last is not None and last < latest:  # the close that ends it precedes a stage
        if m.repair.close_before_stage == "skip_row":
            return _skip(result, "close_before_stage")
        result.repaired.append("close_before_stage")
        if final is not None:
            final = latest
        else:
            closed = latest

    terminal = get(c.terminal) if c.terminal else ""
    if terminal in m.terminal_ignore or terminal in m.null_markers:
        terminal = ""
    category = (get(c.category) or "unknown")[:64]

    def ev(kind: str, etype: str, at: datetime, data: dict[str, Any]) -> None:
        result.events.append({
            "event_id": f"{m.name}:{iid}:{kind}", "incident_id": iid, "event_type": etype,
            "occurred_at": format_time(at.timestamp()), "schema_version": 1,
            "source": f"replay-{m.name}", "data": data})

    ev("created", "created", call, {"grade": initial, "category": category,
                                    "channel": channel, "area": area, "vulnerable": False})
    if grade != initial:
        ev("graded", "graded", call, {"grade": grade, "reason": "final priority in export"})
    if terminal:
        ev("assigned", "assigned", dispatched or call, {"terminal": terminal[:64]})
    if dispatched is not None:
        ev("dispatched", "dispatched", dispatched, {})
    if arrived is not None:
        ev("arrived", "arrived", arrived, {})
    if closed is not None:
        ev("closed", "closed", closed, {"disposition": "closed in export"})
    if reopened is not None:
        ev("reopened", "reopened", reopened, {})
    if final is not None:
        ev("closed-2", "closed", final, {"disposition": "closed again in export"})
    return result


@dataclass(frozen=True)
class Closes:
    """The close / reopen / second close a row's lifecycle ends with, and why if changed."""

    closed: datetime | None
    reopened: datetime | None
    final: datetime | None
    reasons: tuple[str, ...] = ()


def closes(closed: datetime | None, reopened: datetime | None, final: datetime | None,
           without_close: str = "stay_closed") -> Closes:
    """Order an export's close stamps so the incident ends as the export last records it.

    - first close, later reopen, later final close: kept as stamped (a closed incident
      reopened, perhaps attended, and closed again), ending closed;
    - a reopen at or after the final close (the final close stamped just after the first,
      the reopen days later): ``reopen_after_final_close``, the reopen dropped, ending
      closed at the first close. Same-instant ordering never decides it: at equal
      instants a reopen would outrank the close;
    - a reopen with no final close: ``reopen_without_close``, kept (ending open) or
      dropped (ending closed) as the mapping says;
    - a reopen before the first close: ``reopen_before_close``, dropped with the final close;
    - no first close but a final one: ``first_close_missing``, closed at the final close;
      a reopen without any close is dropped (``reopen_before_close``): still open.
    """
    if closed is None:
        reasons = ("reopen_before_close",) if reopened is not None else ()
        if final is not None:
            return Closes(final, None, None, (*reasons, "first_close_missing"))
        return Closes(None, None, None, reasons)
    if reopened is None:
        return Closes(closed, None, None)  # a final close without a reopen adds nothing
    if reopened < closed:
        return Closes(closed, None, None, ("reopen_before_close",))
    if final is None:
        if without_close == "reopen":
            return Closes(closed, reopened, None, ("reopen_without_close",))
        return Closes(closed, None, None, ("reopen_without_close",))
    if final <= reopened:
        return Closes(closed, None, None, ("reopen_after_final_close",))
    return Closes(closed, reopened, final)


def _skip(result: RowResult, reason: str) -> RowResult:
    result.skipped = reason
    return result
