"""Export rows to lifecycle events, per shipped mapping, with every quirk of real exports."""

from __future__ import annotations

import csv
import gzip
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from pipeline.config import load_config
from pipeline.domain.events import decode_event, parse_time
from pipeline.domain.mapping import row_events
from pipeline.errors import ConfigError
from pipeline.replay import load_mapping, plan, window

CONFIG = load_config()
DECC = load_mapping("decc-cad")
NOLA = load_mapping("nola-cfs")
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def decc(**over: str) -> dict[str, str]:
    row = {"Master_Incident_Number": "25-000001", "Agency": "POLICE", "Problem": "ALARM",
           "Priority_Number": "2", "Call_Reception": "E-911", "Dispatcher": "DSP-004",
           "Incident_Start_Time": "2025-08-24 00:07:06.000",
           "Incident_Dispatch_Time": "2025-08-24 00:09:46.810",
           "Incident_Arrival_Time": "2025-08-24 00:23:51.860",
           "Incident_First_Close_Time": "2025-08-24 00:35:47.190", "Call_Reopened": "0",
           "First_Reopen_Time": "NULL", "Final_Closed_Time": "2025-08-24 00:35:47.260",
           "Time_To_Dispatch": "-9999"}
    row.update(over)
    return row


def run(row, mapping=DECC):
    return row_events(row, mapping, CONFIG.grade_codes, CONFIG.area_codes, NOW)


def kinds(result) -> list[tuple[str, str]]:
    return [(e["event_type"], e["occurred_at"]) for e in result.events]


def test_a_clean_decc_row_becomes_a_valid_lifecycle_in_utc() -> None:
    r = run(decc())
    assert kinds(r) == [
        ("created", "2025-08-24T04:07:06.000Z"),  # EDT is UTC-4
        ("assigned", "2025-08-24T04:09:46.810Z"),
        ("dispatched", "2025-08-24T04:09:46.810Z"),
        ("arrived", "2025-08-24T04:23:51.860Z"),
        ("closed", "2025-08-24T04:35:47.190Z"),
    ]
    created = r.events[0]["data"]
    assert (created["grade"], created["channel"], created["area"]) == ("2", "999", "central")
    assert r.events[1]["data"] == {"terminal": "DSP-004"}
    for e in r.events:  # every event passes the contract
        decode_event(orjson.dumps(e), CONFIG, 65536)
    assert r.repaired == [] and r.skipped is None


def test_null_stages_are_absent_and_automatic_dispatch_is_no_terminal() -> None:
    r = run(decc(Incident_Arrival_Time="NULL", Dispatcher="Automatic Dispatch"))
    assert [k for k, _ in kinds(r)] == ["created", "dispatched", "closed"]


def test_stage_before_call_is_dropped_and_reported_or_the_row_skipped() -> None:
    row = decc(Incident_Arrival_Time="2025-08-24 00:05:00.000")
    r = run(row)
    assert "arrived" not in [k for k, _ in kinds(r)] and r.repaired == ["stage_before_call"]
    strict = DECC.model_copy(update={"repair": DECC.repair.model_copy(
        update={"before_call": "skip_row"})})
    assert run(row, strict).skipped == "stage_before_call"


def test_close_before_arrival_moves_the_close_to_the_arrival() -> None:
    r = run(decc(Incident_First_Close_Time="2025-08-24 00:20:00.000"))
    assert ("closed", "2025-08-24T04:23:51.860Z") in kinds(r)
    assert r.repaired == ["close_before_stage"]


def test_arrival_before_dispatch_is_kept_as_stamped_and_reported() -> None:
    r = run(decc(Incident_Arrival_Time="2025-08-24 00:08:00.000"))
    assert ("arrived", "2025-08-24T04:08:00.000Z") in kinds(r)
    assert r.repaired == ["stage_out_of_order"]


def ends(r) -> str:
    """How the row's incident ends once its events are folded in order (as the fold ranks
    equal instants: a reopen outranks a close)."""
    rank = {"closed": 8, "reopened": 9}
    last = max(((at, rank.get(k, 0), k) for k, at in kinds(r)), default=None)
    return "closed" if last is not None and last[2] == "closed" else "open"


def test_reopened_incident_closes_twice_and_a_reopen_before_close_is_dropped() -> None:
    r = run(decc(Call_Reopened="1", First_Reopen_Time="2025-08-24 01:00:00.000",
                 Final_Closed_Time="2025-08-24 02:00:00.000"))
    assert [k for k, _ in kinds(r)][-3:] == ["closed", "reopened", "closed"]
    assert r.repaired == [] and ends(r) == "closed"
    early = run(decc(Call_Reopened="1", First_Reopen_Time="2025-08-24 00:30:00.000"))
    assert "reopened" not in [k for k, _ in kinds(early)]
    assert early.repaired == ["reopen_before_close"] and ends(early) == "closed"


def test_the_export_s_last_recorded_state_wins_whatever_order_the_stamps_come_in() -> None:
    # The final close stamped just after the first, the reopen days later: closed.
    late = run(decc(Call_Reopened="1", First_Reopen_Time="2025-08-27 09:00:00.000"))
    assert late.repaired == ["reopen_after_final_close"] and ends(late) == "closed"
    # A reopen at the very instant of the final close: closed, not left to the ranks.
    tie = run(decc(Call_Reopened="1", First_Reopen_Time="2025-08-24 00:35:47.260"))
    assert tie.repaired == ["reopen_after_final_close"] and ends(tie) == "closed"
    # A reopen and no final close: the mapping decides (this export: the close stands).
    row = decc(Call_Reopened="1", First_Reopen_Time="2025-08-24 01:00:00.000",
               Final_Closed_Time="NULL")
    stays = run(row)
    assert stays.repaired == ["reopen_without_close"] and ends(stays) == "closed"
    reopens = DECC.model_copy(update={"repair": DECC.repair.model_copy(
        update={"reopen_without_close": "reopen"})})
    kept = run(row, reopens)
    assert kept.repaired == ["reopen_without_close"] and ends(kept) == "open"
    assert [k for k, _ in kinds(kept)][-2:] == ["closed", "reopened"]
    # No close stamp at all: open.
    never = run(decc(Incident_First_Close_Time="NULL", Final_Closed_Time="NULL"))
    assert ends(never) == "open" and never.repaired == []
    # Only the final close: closed there.
    final_only = run(decc(Incident_First_Close_Time="NULL"))
    assert final_only.repaired == ["first_close_missing"] and ends(final_only) == "closed"


def test_a_closed_incident_reopened_then_attended_is_a_lifecycle_not_a_clock_to_repair() -> None:
    # Closed unattended, reopened, attended, closed again (seen in the shared weeks).
    r = run(decc(Incident_Arrival_Time="2025-08-24 02:10:00.000", Call_Reopened="1",
                 First_Reopen_Time="2025-08-24 01:00:00.000",
                 Final_Closed_Time="2025-08-24 03:00:00.000"))
    assert r.repaired == []
    assert [k for k, _ in sorted(kinds(r), key=lambda kv: kv[1])][-4:] == \
        ["closed", "reopened", "arrived", "closed"]
    assert ("closed", "2025-08-24T04:35:47.190Z") in kinds(r), "the first close as stamped"
    assert ends(r) == "closed"
    # The close that ends it before the arrival: that close is moved, the first is not.
    moved = run(decc(Incident_Arrival_Time="2025-08-24 04:00:00.000", Call_Reopened="1",
                     First_Reopen_Time="2025-08-24 01:00:00.000",
                     Final_Closed_Time="2025-08-24 03:00:00.000"))
    assert moved.repaired == ["close_before_stage"]
    assert ("closed", "2025-08-24T08:00:00.000Z") in kinds(moved)
    assert ("closed", "2025-08-24T04:35:47.190Z") in kinds(moved) and ends(moved) == "closed"


@pytest.mark.parametrize(("over", "reason"), [
    ({"Master_Incident_Number": ""}, "missing_id"),
    ({"Incident_Start_Time": "NULL"}, "missing_call_time"),
    ({"Incident_Start_Time": "24/08/2025"}, "bad_timestamp"),
    ({"Incident_Arrival_Time": "2027-01-01 00:00:00.000"}, "future_time"),
])
def test_impossible_rows_are_skipped_with_a_reason(over, reason) -> None:
    assert run(decc(**over)).skipped == reason


def test_administrative_priorities_map_by_pattern_and_other_agencies_are_filtered() -> None:
    assert run(decc(Priority_Number="8")).events[0]["data"]["grade"] == "5"
    assert run(decc(Agency="FIRE")).filtered


def test_clocks_going_back_read_the_repeated_hour_as_daylight_time() -> None:
    # 2 Nov 2025 01:30 happens twice in New York; the first (EDT, UTC-4) is taken.
    r = run(decc(Incident_Start_Time="2025-11-02 01:30:00.000",
                 Incident_Dispatch_Time="2025-11-02 03:00:00.000",
                 Incident_Arrival_Time="NULL", Incident_First_Close_Time="2025-11-02 04:00:00.000"))
    assert kinds(r)[0] == ("created", "2025-11-02T05:30:00.000Z")
    assert ("dispatched", "2025-11-02T08:00:00.000Z") in kinds(r)  # EST, UTC-5


def _write_csv(path: Path, rows: list[dict[str, str]], gz: bool = False) -> Path:
    opener = gzip.open if gz else open
    with opener(path, "wt", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_files_by_column_name_gzip_duplicates_and_event_order(tmp_path: Path) -> None:
    early = decc(Master_Incident_Number="25-000002", Incident_Start_Time="2025-08-24 00:01:00.000")
    a = _write_csv(tmp_path / "a.csv", [decc(), early])
    # A later export with extra columns in other places, gzipped, repeating an incident.
    later = [{"Elapsed_X": "1", **decc(Master_Incident_Number="25-000003"), "Elapsed_Y": "2"},
             {"Elapsed_X": "1", **decc(), "Elapsed_Y": "2"}]
    b = _write_csv(tmp_path / "b.csv.gz", later, gz=True)
    events, summary = plan([a, b], DECC, CONFIG, NOW)
    assert (summary.rows, summary.incidents, dict(summary.skipped)) == \
        (4, 3, {"duplicate_id": 1})
    assert [e["occurred_at"] for e in events] == sorted(e["occurred_at"] for e in events)
    assert events[0]["incident_id"] == "25-000002"
    first = parse_time(events[0]["occurred_at"])
    assert window(events, None, first) == events[:1]  # up to and including the instant
    assert window(events, first, None) == events[1:]  # strictly after it
    assert len({e["event_id"] for e in events}) == len(events)


def nola(**over: str) -> dict[str, str]:
    row = {"NOPD_Item": "A0000123", "Type": "21", "TypeText": "COMPLAINT OTHER",
           "Priority": "1A", "InitialType": "21", "InitialTypeText": "COMPLAINT OTHER",
           "InitialPriority": "2C", "MapX": "3681000", "MapY": "528000",
           "TimeCreate": "01/15/2025 11:58:03 PM", "TimeDispatch": "01/16/2025 12:05:10 AM",
           "TimeArrive": "", "TimeClosed": "01/16/2025 01:10:00 AM", "Disposition": "RTF",
           "DispositionText": "REPORT TO FOLLOW", "SelfInitiated": "N", "Beat": "3D01",
           "BLOCK_ADDRESS": "001XX Example St", "Zip": "70112", "PoliceDistrict": "3",
           "Location": "POINT (-90.07 29.95)"}
    row.update(over)
    return row


def test_new_orleans_rows_regrade_from_initial_to_final_priority(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "nola.csv", [nola(), nola(NOPD_Item="A0000124",
                                                           SelfInitiated="Y", Priority="2A",
                                                           InitialPriority="2A",
                                                           PoliceDistrict="9")])
    events, summary = plan([path], NOLA, CONFIG, NOW)
    assert dict(summary.skipped) == {"unknown_area": 1}
    first = [(e["event_type"], e["occurred_at"]) for e in events]
    assert first == [("created", "2025-01-16T05:58:03.000Z"),  # CST, UTC-6
                     ("graded", "2025-01-16T05:58:03.000Z"),
                     ("dispatched", "2025-01-16T06:05:10.000Z"),
                     ("closed", "2025-01-16T07:10:00.000Z")]
    assert events[0]["data"]["grade"] == "1" and events[1]["data"]["grade"] == "2"
    assert events[0]["data"]["area"] == "north"
    for e in events:
        decode_event(orjson.dumps(e), CONFIG, 65536)


def test_a_bad_mapping_names_its_line(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[2] / "deploy/mappings/decc-cad.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('timezone = "America/New_York"', 'timezone = "Mars/Olympus"'))
    line = next(i for i, t in enumerate(bad.read_text().splitlines(), 1) if "Mars" in t)
    with pytest.raises(ConfigError, match=rf"bad.toml, line {line}: timezone: .*Mars"):
        load_mapping(bad)


def test_replay_at_k_times_real_speed_keeps_the_gaps_divided_by_k() -> None:
    from pipeline.replay import produce

    row = decc()  # call 00:07:06, dispatched +160.81 s, arrived +1005.86 s, closed +1721.19 s
    events = run(row).events
    now = [100.0]
    sent: list[tuple[float, str]] = []

    def sleep(seconds: float) -> None:
        now[0] += seconds

    n = produce(events, lambda k, v: sent.append((now[0], orjson.loads(v)["event_type"])),
                speed=60, clock=lambda: now[0], sleep=sleep)
    assert n == len(events) == len(sent)
    offsets = [round(t - 100.0, 6) for t, _ in sent]
    gaps = [round((parse_time(e["occurred_at"]) - parse_time(events[0]["occurred_at"])) / 60, 6)
            for e in events]
    assert offsets == gaps
    assert offsets[-1] == pytest.approx(1721.19 / 60)
    # As fast as possible: no sleeping at all.
    now[0] = 0.0
    produce(events, lambda k, v: None, speed=None, clock=lambda: now[0], sleep=sleep)
    assert now[0] == 0.0


# 2 Nov 2025, America/New_York: 01:00-01:59 happens twice (EDT, UTC-4; then EST, UTC-5).
def dst_row(call: str, dispatch: str = "NULL", arrive: str = "NULL", close: str = "03:00:00",
            number: str = "25-090001") -> dict[str, str]:
    def t(hms: str) -> str:
        return "NULL" if hms == "NULL" else f"2025-11-02 {hms}.000"
    return decc(Master_Incident_Number=number, Incident_Start_Time=t(call),
                Incident_Dispatch_Time=t(dispatch), Incident_Arrival_Time=t(arrive),
                Incident_First_Close_Time=t(close), Final_Closed_Time=t(close))


def test_a_stage_in_the_repeated_hour_is_read_as_the_occurrence_the_call_allows() -> None:
    # Called at 01:38 (first occurrence, EDT), dispatched at "01:06": only the second
    # occurrence (EST) is after the call.
    r = run(dst_row("01:38:00", dispatch="01:06:00"))
    assert ("created", "2025-11-02T05:38:00.000Z") in kinds(r)
    assert ("dispatched", "2025-11-02T06:06:00.000Z") in kinds(r)
    assert "stage_before_call" not in r.repaired
    assert "ambiguous_time_resolved" in r.repaired


def test_an_ambiguous_time_with_no_evidence_is_the_first_occurrence_and_says_so() -> None:
    r = run(dst_row("00:50:00", dispatch="01:10:00"))
    assert ("dispatched", "2025-11-02T05:10:00.000Z") in kinds(r)
    assert r.repaired == ["ambiguous_time_assumed"]
    plain = run(dst_row("03:10:00", close="03:30:00"))  # outside the repeated hour
    assert plain.repaired == []


def test_a_call_in_the_repeated_hour_follows_the_incident_numbers(tmp_path: Path) -> None:
    """Incident 25-090002 was called at "01:10", after 25-090001 at 01:50 EDT: so 01:10 EST.
    The hourly split then puts it in the second 01:00 hour, not the first."""
    path = tmp_path / "week45.csv"
    rows = [dst_row("01:50:00", number="25-090001"), dst_row("01:10:00", number="25-090002")]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    docs, summary = plan([path], DECC, CONFIG, NOW)
    calls = {d["incident_id"]: d["occurred_at"] for d in docs if d["event_type"] == "created"}
    assert calls == {"25-090001": "2025-11-02T05:50:00.000Z",
                     "25-090002": "2025-11-02T06:10:00.000Z"}
    assert summary.repaired["ambiguous_time_resolved"] == 1  # the second, by its number
    assert summary.repaired["ambiguous_time_assumed"] == 1  # the first: nothing before it
