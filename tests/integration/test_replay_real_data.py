"""Seven weeks of a real centre's CAD exports through the real broker and worker.

The figures the pipeline shows — backlog at a chosen instant and at the end,
incidents received per grade, channel and hour, and the response-time
distributions per grade — must equal a recomputation from the CSV files done
here with the standard library, sharing no code with the pipeline. The
recomputation re-states the shipped mapping's rules (docs/replay.md) itself.
"""

from __future__ import annotations

import csv
import os
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest

from pipeline.domain.events import parse_time
from tests.integration.support import REPO, Namespace, Worker, wait_true

pytestmark = pytest.mark.integration

def _shared_data() -> Path:
    """The shared data: DEMANDFLOW_SHARED_DATA, ../shared/data beside the checkout, or /work."""
    candidates = [Path(os.environ["DEMANDFLOW_SHARED_DATA"])] \
        if os.environ.get("DEMANDFLOW_SHARED_DATA") else []
    candidates += [REPO.parent / "shared" / "data", Path("/work/shared/data")]
    return next((c for c in candidates if (c / "decc-cad").is_dir()), candidates[0])


DATA = _shared_data() / "decc-cad"
FILES = sorted(DATA.glob("week*.csv"))
NEW_YORK = ZoneInfo("America/New_York")
MIDWAY = datetime(2025, 9, 21, 16, 0, tzinfo=UTC).timestamp()
CHANNELS = {"E-911": "999", "911 Center": "999", "Phone": "101", "Cell Phone": "101",
            "TDD": "101", "Text": "online", "OFFICER": "officer", "Radio": "officer",
            "Flag Down": "officer"}
NO_TERMINAL = {"Automatic Dispatch", "C2C", "NULL", ""}
BUCKETS = (60, 300, 600, 900, 1200, 1800, 2700, 3600, 7200, 14400, 43200, 86400, 172800,
           259200)


def local(text: str) -> float | None:
    text = text.strip()
    if text in ("", "NULL"):
        return None
    fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in text else "%Y-%m-%d %H:%M:%S"
    return datetime.strptime(text, fmt).replace(tzinfo=NEW_YORK).timestamp()


def recompute(reopen_stays_open: bool = False) -> dict[str, dict[str, Any]]:
    """Police incidents from the CSVs, with the documented repairs applied (a reopen with
    no final close ends open if ``reopen_stays_open``: the mapping key that says so)."""
    out: dict[str, dict[str, Any]] = {}
    for path in FILES:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            for row in csv.DictReader(fh):
                iid = row["Master_Incident_Number"].strip()
                if row["Agency"].strip() != "POLICE" or not iid or iid in out:
                    continue
                call = local(row["Incident_Start_Time"])
                disp = local(row["Incident_Dispatch_Time"])
                arr = local(row["Incident_Arrival_Time"])
                disp = disp if disp is not None and disp >= call else None
                arr = arr if arr is not None and arr >= call else None
                # The export's last recorded state wins: a reopen counts only between the
                # first and the final close; the close that ends it is never before a stage.
                latest = max(call, disp or call, arr or call)
                close = local(row["Incident_First_Close_Time"])
                reopen = local(row["First_Reopen_Time"])
                final = local(row["Final_Closed_Time"])
                if close is not None and reopen is not None and final is not None \
                        and close <= reopen < final:
                    final = max(final, latest)
                elif close is not None and reopen is not None and close <= reopen \
                        and final is None and reopen_stays_open:
                    pass  # closed, then reopened for good
                else:  # any close stamp closes it, at the first there is
                    close = close if close is not None else final
                    reopen = final = None
                    close = max(close, latest) if close is not None else None
                priority = row["Priority_Number"].strip()
                terminal = row["Dispatcher"].strip()
                out[iid] = {
                    "call": call, "dispatched": disp, "arrived": arr,
                    "grade": priority if priority in {"1", "2", "3", "4"} else "5",
                    "channel": CHANNELS.get(row["Call_Reception"].strip(), "101"),
                    "terminal": None if terminal in NO_TERMINAL else terminal,
                    "assigned_at": disp if disp is not None else call,
                    # The lifecycle as (time, order at equal times, status after it).
                    "lifecycle": [(t, rank, status) for t, rank, status in (
                        (call, 0, "awaiting_dispatch"), (disp, 6, "dispatched"),
                        (arr, 7, "on_scene"), (close, 8, "closed"),
                        (reopen, 9, "awaiting_dispatch"), (final, 8, "closed"))
                        if t is not None],
                }
    return out


def close_stamps() -> dict[str, tuple[float | None, float | None, float | None]]:
    """Police incident id -> (first close, reopen, final close) as the CSVs stamp them."""
    out: dict[str, tuple[float | None, float | None, float | None]] = {}
    for path in FILES:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            for row in csv.DictReader(fh):
                iid = row["Master_Incident_Number"].strip()
                if row["Agency"].strip() == "POLICE" and iid and iid not in out:
                    out[iid] = (local(row["Incident_First_Close_Time"]),
                                local(row["First_Reopen_Time"]),
                                local(row["Final_Closed_Time"]))
    return out


def backlog_at(incs: dict[str, dict[str, Any]], at: float) -> dict[str, Any]:
    def count(values) -> dict[str, int]:
        out: dict[str, int] = {}
        for v in values:
            if v is not None:
                out[v] = out.get(v, 0) + 1
        return out

    open_now = []
    for i in incs.values():
        steps = sorted(s for s in i["lifecycle"] if s[0] <= at)
        if steps and steps[-1][2] != "closed":
            open_now.append((i, steps[-1][2]))

    def age(i) -> str:
        a = at - i["call"]
        return ("lt_1h" if a < 3600 else "1h_6h" if a < 21600 else "6h_24h" if a < 86400
                else "1d_3d" if a < 259200 else "gt_3d")

    return {"open_total": len(open_now), "by_grade": count(i["grade"] for i, _ in open_now),
            "by_status": count(s for _, s in open_now),
            "by_area": {"central": len(open_now)} if open_now else {},
            "by_age_bucket": count(age(i) for i, _ in open_now),
            "terminals": count(i["terminal"] for i, _ in open_now if i["assigned_at"] <= at)}


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def replay(ns: Namespace, workdir: Path, *window: str) -> dict[str, Any]:
    report = workdir / "report.json"
    subprocess.run([sys.executable, "-m", "pipeline", "replay", *map(str, FILES), "--mapping",
                    "decc-cad", "--quiet", "--report", str(report), *window], env=ns.env(),
                   cwd=workdir, check=True, timeout=600, stdout=subprocess.DEVNULL)
    return orjson.loads(report.read_bytes())


def backlog_equal(worker: Worker, expected: dict[str, Any], at: float) -> Any:
    got = httpx.get(f"{worker.url}/backlog", params={"at": iso(at)}, timeout=30).json()
    picked = {k: got[k] for k in ("open_total", "by_grade", "by_status", "by_area",
                                  "by_age_bucket")}
    picked["terminals"] = got["terminals"]["open_logs"]
    return picked == expected or {"expected": expected, "got": picked}


def test_replayed_real_exports_equal_a_recomputation_from_the_csvs(ns: Namespace,
                                                                    workdir: Path) -> None:
    assert len(FILES) == 7, f"the shared data is missing: {DATA}"
    incs = recompute()
    # Closed incidents kept a week, not the default two days: three incidents of these
    # weeks are reopened 2.2-4.6 days after they closed and then dispatched. With two days
    # they are forgotten first and come back without their call (docs/topics.md#forgetting-
    # closed-incidents), so their dispatch is not timed: the recomputation would have to
    # model each partition's forget horizon. tests/unit/test_forgetting.py covers that.
    worker = Worker(ns, workdir, DEMANDFLOW_CLOCK="event",
                    DEMANDFLOW_CLOSED_RETENTION_S=str(7 * 86400)).start()
    try:
        first = replay(ns, workdir, "--until", iso(MIDWAY))
        assert first["incidents"] == len(incs)  # every police row is accounted for
        expected = backlog_at(incs, MIDWAY)
        wait_true("backlog at the midway instant", lambda: backlog_equal(worker, expected,
                                                                          MIDWAY), timeout=240)

        rest = replay(ns, workdir, "--since", iso(MIDWAY))
        produced = first["events_produced"] + rest["events_produced"]
        assert produced == first["events"]
        wait_true("every replayed event applied", lambda: worker.metric_sum(
            "demand_events_total", outcome="accepted") == produced or worker.metric_sum(
            "demand_events_total", outcome="accepted"), timeout=300)
        end = max(s[0] for i in incs.values() for s in i["lifecycle"])
        assert backlog_equal(worker, backlog_at(incs, end), end) is True

        # The export's last recorded state wins: open at the end is exactly the incidents
        # with no close stamp at all, read straight from the CSVs; and every row whose
        # reopen the export does not follow with a close is reported under its reason.
        stamps = close_stamps()
        oldest = httpx.get(f"{worker.url}/incidents/oldest", params={"limit": 1000},
                           timeout=30).json()
        assert {r["incident_id"] for r in oldest["incidents"]} == \
            {iid for iid, (c, _, f) in stamps.items() if c is None and f is None}
        repaired = first["rows_repaired"]
        assert repaired.get("reopen_without_close", 0) == sum(
            1 for c, r, f in stamps.values() if c is not None and r is not None and r >= c
            and f is None)
        assert repaired.get("reopen_after_final_close", 0) == sum(
            1 for c, r, f in stamps.values() if c is not None and r is not None and r >= c
            and f is not None and f <= r)
        assert "reopen_before_close" not in repaired  # closed, reopened, attended: kept

        # Incidents received per grade, channel and hour, for the week the windows keep.
        last_call = max(i["call"] for i in incs.values())
        hour = last_call // 3600 * 3600
        for h in range(int(hour) - 7 * 86400 + 3600, int(hour) + 3600, 3600):
            got = httpx.get(f"{worker.url}/demand", params={"window": "1h", "at": iso(h)},
                            timeout=30).json()["current"]
            want: dict[str, dict[str, int]] = {}
            for i in incs.values():
                if h <= i["call"] < h + 3600:
                    row = want.setdefault(i["grade"], {})
                    row[i["channel"]] = row.get(i["channel"], 0) + 1
            assert got == want, iso(h)
        # Older than the history kept (a week, an hour and the largest window): said, not
        # answered with zeros.
        gone = httpx.get(f"{worker.url}/demand", params={"window": "1h", "at": iso(MIDWAY)},
                         timeout=30)
        assert gone.status_code == 410, gone.text
        kept_from = parse_time(gone.json()["retained_from"])
        assert last_call - 9 * 86400 < kept_from < last_call - 8 * 86400
        half = httpx.get(f"{worker.url}/demand", params={"window": "1h",
                                                         "at": iso(kept_from + 86400)},
                         timeout=30).json()
        assert half["complete"] is False and parse_time(half["retained_from"]) == kept_from
        for grade in "12345":
            assert worker.metric_sum("demand_incidents_received_total", grade=grade) == \
                sum(1 for i in incs.values() if i["grade"] == grade)

        # Response times per grade: count, sum and every histogram bucket equal.
        metrics = worker.metrics()
        figures = {}
        for stage, start, stop in (("call_to_dispatch", "call", "dispatched"),
                                   ("call_to_arrival", "call", "arrived")):
            for grade in "12345":
                values = sorted(i[stop] - i[start] for i in incs.values()
                                if i["grade"] == grade and i[stop] is not None)
                labels = {"grade": grade, "stage": stage}
                assert worker.metric_sum("demand_response_seconds_count", **labels) == \
                    len(values)
                assert worker.metric_sum("demand_response_seconds_sum", **labels) == \
                    pytest.approx(sum(values), rel=1e-9)
                for le in BUCKETS:
                    got = metrics[("demand_response_seconds_bucket",
                                   tuple(sorted({**labels, "le": f"{float(le)}"}.items())))]
                    assert got == sum(1 for v in values if v <= le), (stage, grade, le)
                if values:
                    figures[(stage, grade)] = (len(values), statistics.median(values),
                                               statistics.quantiles(values, n=10)[-1]
                                               if len(values) > 1 else values[0])
        print("\nreal-data response times (count, median s, p90 s):")
        for (stage, grade), (n, median, p90) in sorted(figures.items()):
            print(f"  {stage:17} grade {grade}: {n:5d}  {median:8.1f}  {p90:8.1f}")
    finally:
        worker.stop()
