"""An independent recomputation of the demand figures from a whole event log.

Written for the tests from the contract's meaning, sharing no code with the
pipeline: plain dicts and sorting, no incremental fold.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

ORDER = ["created", "graded", "risk_assessed", "assigned", "scheduled", "transferred",
         "dispatched", "arrived", "closed", "reopened"]
STATUS = {"created": "awaiting_dispatch", "dispatched": "dispatched", "arrived": "on_scene",
          "scheduled": "scheduled", "transferred": "with_team", "closed": "closed",
          "reopened": "awaiting_dispatch"}
START = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def generate(n: int, seed: int = 7) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """n incident lifecycles over ~8 days; returns (events in send order, unique events)."""
    rng = random.Random(seed)
    span = 8 * 86400
    calls = sorted(rng.uniform(0, span) for _ in range(n))
    events: list[tuple[float, dict[str, Any]]] = []
    counter = 0

    def ev(iid: str, etype: str, t: float, data: dict[str, Any]) -> None:
        nonlocal counter
        counter += 1
        events.append((t, {"event_id": f"o-{seed}-{counter}", "incident_id": iid,
                           "event_type": etype, "occurred_at": iso(START + timedelta(seconds=t)),
                           "schema_version": 1, "source": "oracle", "data": data}))

    for i, t0 in enumerate(calls):
        t0 = round(t0, 3)
        iid = f"O{seed}-{i:05d}"
        grade = rng.choice("12345")
        area = rng.choice(["north", "south", "east", "west", "central"])
        channel = rng.choice(["999", "101", "online", "officer"])
        ev(iid, "created", t0, {"grade": grade, "category": "ASB", "channel": channel,
                                "area": area, "vulnerable": rng.random() < 0.2,
                                "caller_ref": f"caller{rng.randrange(10**6):06d}"})
        t = t0 + rng.uniform(10, 120)
        ev(iid, "assigned", t, {"terminal": f"T{rng.randrange(1, 9):02d}"})
        if rng.random() < 0.4:
            ev(iid, "risk_assessed", t + 5, {
                "thrive": {k: "medium" for k in ("threat", "harm", "risk", "investigation",
                                                 "vulnerability", "engagement")},
                "next_review_due": iso(START + timedelta(seconds=t + rng.uniform(600, 86400))),
                "trigger": "initial"})
        if rng.random() < 0.15:
            ev(iid, "graded", t + 20, {"grade": rng.choice("12345")})
        fate = rng.random()
        if fate < 0.6:
            td = t + rng.uniform(60, 3000)
            ev(iid, "dispatched", td, {})
            ta = td + rng.uniform(60, 1800)
            ev(iid, "arrived", ta, {})
            if rng.random() < 0.8:
                tc = ta + rng.uniform(600, 7200)
                ev(iid, "closed", tc, {"disposition": "resolved"})
                if rng.random() < 0.1:
                    ev(iid, "reopened", tc + 3600, {})
                    if rng.random() < 0.5:
                        ev(iid, "closed", tc + 7200, {"disposition": "resolved"})
        elif fate < 0.75:
            ev(iid, "transferred", t + 60, {"team": "resolution"})
        elif fate < 0.85:
            ev(iid, "closed", t + 300, {"disposition": "advice"})
    # Send roughly in time order, shuffled within a minute (inside the 300 s grace),
    # with 3% of events sent twice.
    events.sort(key=lambda e: e[0] + rng.uniform(0, 60))
    unique = [doc for _, doc in events]
    sent = list(unique)
    for doc in rng.sample(unique, len(unique) * 3 // 100):  # a resend, some time after
        sent.insert(rng.randrange(sent.index(doc) + 1, len(sent) + 1), doc)
    return sent, unique


def ts(doc: dict[str, Any]) -> float:
    return datetime.fromisoformat(doc["occurred_at"]).timestamp()


def incidents(unique: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each incident's final picture, from all its events sorted by time."""
    by_id: dict[str, list[dict[str, Any]]] = {}
    for doc in unique:
        by_id.setdefault(doc["incident_id"], []).append(doc)
    out = {}
    for iid, docs in by_id.items():
        docs.sort(key=lambda d: (ts(d), ORDER.index(d["event_type"]), d["event_id"]))
        created = next(d for d in docs if d["event_type"] == "created")
        grading = [d for d in docs if "grade" in d["data"]]
        lifecycle = [d for d in docs if d["event_type"] in STATUS]
        assigned = [d for d in docs if d["event_type"] == "assigned"]
        risk = [d for d in docs if d["event_type"] == "risk_assessed"]
        dispatched = [ts(d) for d in docs if d["event_type"] == "dispatched"]
        arrived = [ts(d) for d in docs if d["event_type"] == "arrived"]
        out[iid] = {
            "call": ts(created), "area": created["data"]["area"],
            "channel": created["data"]["channel"], "initial_grade": created["data"]["grade"],
            "grade": grading[-1]["data"]["grade"], "status": STATUS[lifecycle[-1]["event_type"]],
            "terminal": assigned[-1]["data"]["terminal"] if assigned else None,
            "vulnerable": created["data"]["vulnerable"],
            "review_due": datetime.fromisoformat(risk[-1]["data"]["next_review_due"]).timestamp()
            if risk else None,
            "dispatched": min(dispatched) if dispatched else None,
            "arrived": min(arrived) if arrived else None,
            "status_at": ts(lifecycle[-1]), "last": max(ts(d) for d in docs),
        }
    return out


def backlog(incs: dict[str, dict[str, Any]], now: float) -> dict[str, Any]:
    opened = [i for i in incs.values() if i["status"] != "closed"]

    def count(key) -> dict[str, int]:
        out: dict[str, int] = {}
        for i in opened:
            k = key(i)
            if k is not None:
                out[k] = out.get(k, 0) + 1
        return out

    def bucket(i) -> str:
        age = now - i["call"]
        return ("lt_1h" if age < 3600 else "1h_6h" if age < 6 * 3600 else "6h_24h"
                if age < 86400 else "1d_3d" if age < 3 * 86400 else "gt_3d")

    return {"open_total": len(opened), "by_grade": count(lambda i: i["grade"]),
            "by_area": count(lambda i: i["area"]), "by_status": count(lambda i: i["status"]),
            "by_age_bucket": count(bucket),
            "vulnerable": sum(1 for i in opened if i["vulnerable"]),
            "review_overdue": sum(1 for i in opened if i["review_due"] is not None
                                  and i["review_due"] < now),
            "terminals": count(lambda i: i["terminal"])}


def demand(incs: dict[str, dict[str, Any]], start: float, end: float) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for i in incs.values():
        if start <= i["call"] < end:
            row = out.setdefault(i["initial_grade"], {})
            row[i["channel"]] = row.get(i["channel"], 0) + 1
    return out


# The shipped configuration's attendance targets, written out again here on purpose.
TARGETS = {"1": 900, "2": 3600, "3": 172800}
RURAL_TARGETS = {"1": 1200}
RURAL_AREAS = {"east", "west"}


def partition(incident_id: str, partitions: int = 4) -> int:
    """Kafka's default partitioner (murmur2), as every producer uses."""
    from kafka.partitioner.default import murmur2

    return (murmur2(incident_id.encode()) & 0x7FFFFFFF) % partitions


def breaches(incs: dict[str, dict[str, Any]], grace: float = 300) -> dict[tuple[str, str], int]:
    """Attendance breaches by (grade, area) once the whole log is in, judged in event time.

    Nobody there by the target: a breach if attended late, if closed unattended after the
    target, or if still waiting when the stream's time (its partition's latest call, less
    the grace, or the incident's own latest event, less the grace) is past the target.
    """
    latest: dict[int, float] = {}
    for iid, i in incs.items():
        p = partition(iid)
        latest[p] = max(latest.get(p, i["call"]), i["call"])
    out: dict[tuple[str, str], int] = {}
    for iid, i in incs.items():
        target = TARGETS.get(i["grade"])
        if i["area"] in RURAL_AREAS:
            target = RURAL_TARGETS.get(i["grade"], target)
        if target is None:
            continue
        deadline = i["call"] + target
        if i["arrived"] is not None:
            breached = i["arrived"] > deadline
        elif i["status"] == "closed":
            breached = i["status_at"] > deadline
        else:
            breached = max(latest[partition(iid)], i["last"]) - grace > deadline
        if breached:
            out[(i["grade"], i["area"])] = out.get((i["grade"], i["area"]), 0) + 1
    return out
