"""Risk rules, one by one, at their boundaries; and the alert lifecycle."""

from __future__ import annotations

from functools import reduce

import orjson
import pytest

from pipeline.config import load_config
from pipeline.domain import windows as w
from pipeline.domain.alerting import alert_record, alertmanager_payload, step
from pipeline.domain.backlog import apply_event
from pipeline.domain.events import decode_event, parse_time
from pipeline.domain.rules import evaluate, fingerprint
from tests.factories import THRIVE, created, event, ts

CONFIG = load_config()
T0 = parse_time(ts(0))
MIN = 60.0


def fold(*docs):
    return reduce(lambda s, d: apply_event(s, decode_event(orjson.dumps(d), CONFIG, 65536)),
                  docs, None)


def fired(states, now, buckets=None) -> dict[str, set[str]]:
    """Rule name -> subjects that hold."""
    out: dict[str, set[str]] = {}
    for c in evaluate(CONFIG, states, now, buckets).values():
        out.setdefault(c.rule, set()).add(c.subject)
    return out


def test_grade1_attendance_exactly_at_target_is_quiet_one_second_past_is_critical() -> None:
    s = fold(created("G1", grade="1", area="north"))  # urban: 15 min
    assert "Grade1AttendanceOverdue" not in fired([s], T0 + 15 * MIN)
    conds = evaluate(CONFIG, [s], T0 + 15 * MIN + 1)
    [c] = [c for c in conds.values() if c.rule == "Grade1AttendanceOverdue"]
    assert (c.severity, c.area, c.incident_ids) == ("critical", "north", ("G1",))
    assert c.runbook.startswith("Grade 1 past its attendance target")
    arrived = fold(created("G1", grade="1"), event("G1", "arrived", 20, {}))
    assert "Grade1AttendanceOverdue" not in fired([arrived], T0 + 60 * MIN)


def test_grade2_goes_to_the_warning_rule_not_the_critical_one() -> None:
    s = fold(created("G2", grade="2"))
    got = fired([s], T0 + 60 * MIN + 1)
    assert got.get("AttendanceOverdue") == {"G2"} and "Grade1AttendanceOverdue" not in got


def test_vulnerable_review_overdue_at_the_boundary() -> None:
    s = fold(created("V", grade="3", vulnerable=True),
             event("V", "risk_assessed", 2, {"thrive": THRIVE, "next_review_due": ts(30),
                                             "trigger": "initial"}))
    assert "VulnerableReviewOverdue" not in fired([s], T0 + 30 * MIN)
    assert fired([s], T0 + 30 * MIN + 1)["VulnerableReviewOverdue"] == {"V"}
    not_vulnerable = fold(created("N", grade="3"),
                          event("N", "risk_assessed", 2, {"thrive": THRIVE, "trigger": "initial",
                                                          "next_review_due": ts(30)}))
    assert "VulnerableReviewOverdue" not in fired([not_vulnerable], T0 + 99 * MIN)


def test_backlog_above_threshold_per_grade_and_area() -> None:
    states = [fold(created(f"B{i}", grade="2", area="south")) for i in range(40)]
    assert "Grade2BacklogHigh" not in fired(states, T0 + MIN)  # 40 is not above 40
    states.append(fold(created("B40", grade="2", area="south")))
    assert fired(states, T0 + MIN)["Grade2BacklogHigh"] == {"2/south"}


def test_terminal_above_band_high() -> None:
    def on(i: int, terminal: str = "T09"):
        return fold(created(f"T{i}", grade="4"), event(f"T{i}", "assigned", 1,
                                                        {"terminal": terminal}))
    states = [on(i) for i in range(50)]
    assert "TerminalOverloaded" not in fired(states, T0 + MIN)
    conds = evaluate(CONFIG, [*states, on(50)], T0 + MIN)
    [c] = [c for c in conds.values() if c.rule == "TerminalOverloaded"]
    assert c.subject == "T09" and c.area == "force" and len(c.incident_ids) == 20


def test_repeat_caller_within_24h_with_one_still_open_and_no_caller_ref_in_alert() -> None:
    def call(i: int, minutes: float, closed: bool = False):
        docs = [created(f"R{i}", minutes=minutes, grade="3")]
        if closed:
            docs.append(event(f"R{i}", "closed", minutes + 5, {"disposition": "advice"}))
        return fold(*docs)

    two = [call(1, 0), call(2, 60)]
    assert "RepeatCaller" not in fired(two, T0 + 120 * MIN)
    three = [*two, call(3, 120)]
    conds = [c for c in evaluate(CONFIG, three, T0 + 121 * MIN).values()
             if c.rule == "RepeatCaller"]
    assert len(conds) == 1 and "caller0001" not in orjson.dumps(conds[0]).decode()
    assert set(conds[0].incident_ids) == {"R1", "R2", "R3"}
    # The first call drops out of the 24 h look-back: two left, quiet.
    assert "RepeatCaller" not in fired(three, T0 + 24 * 60 * MIN + 1)
    # All closed: nothing left to act on.
    assert "RepeatCaller" not in fired([call(i, i, closed=True) for i in range(3)],
                                       T0 + 30 * MIN)


def test_appointment_slot_passed_with_nobody_there() -> None:
    s = fold(created("A", grade="3"), event("A", "scheduled", 5, {"slot_start": ts(600),
                                                                  "slot_end": ts(660)}))
    assert "AppointmentMissed" not in fired([s], T0 + 660 * MIN)
    assert fired([s], T0 + 660 * MIN + 1)["AppointmentMissed"] == {"A"}


def test_surge_compares_the_last_hour_with_the_same_hour_last_week() -> None:
    now = T0 + 3599
    buckets = [(w.minute_of(T0 - w.WEEK), {"2|999": 10}), (w.minute_of(T0), {"2|999": 14})]
    assert "DemandSurge" not in fired([], now, lambda: buckets)  # 1.4x
    buckets[1] = (w.minute_of(T0), {"2|999": 15})
    assert fired([], now, lambda: buckets)["DemandSurge"] == {"grade-2"}  # 1.5x
    small = [(w.minute_of(T0 - w.WEEK), {"1|999": 2}), (w.minute_of(T0), {"1|999": 9})]
    assert "DemandSurge" not in fired([], now, lambda: small)  # baseline under min_baseline


def test_oldest_open_older_than_threshold() -> None:
    s = fold(created("O", grade="4", area="west"))
    assert "OldestOpenTooOld" not in fired([s], T0 + 259200)
    assert fired([s], T0 + 259201)["OldestOpenTooOld"] == {"4/west"}


def test_fingerprint_is_stable_and_distinct() -> None:
    assert fingerprint("R", "x") == fingerprint("R", "x") != fingerprint("R", "y")


def _one(subject: str = "G1"):
    s = fold(created(subject, grade="1"))
    return evaluate(CONFIG, [s], T0 + 16 * MIN)


def test_lifecycle_fires_once_per_episode_and_resolves_after_cool_down() -> None:
    holding = _one()
    changes, notes = step({}, holding, now=1000, cool_down=120)
    assert [n["status"] for n in notes] == ["firing"]
    active = {k: v for k, v in changes.items() if v}
    # Still holding: nothing said.
    changes, notes = step(active, holding, now=1005, cool_down=120)
    assert notes == [] and changes == {}
    # Clears, flickers back within the cool-down: same episode, nothing said.
    changes, notes = step(active, {}, now=1010, cool_down=120)
    assert notes == []
    active.update({k: v for k, v in changes.items() if v})
    changes, notes = step(active, holding, now=1050, cool_down=120)
    assert notes == []
    active.update({k: v for k, v in changes.items() if v})
    # Clears for good: resolved once the cool-down has passed, ending when it cleared.
    changes, notes = step(active, {}, now=1100, cool_down=120)
    assert notes == []
    active.update({k: v for k, v in changes.items() if v})
    changes, notes = step(active, {}, now=1219, cool_down=120)
    assert notes == []
    changes, notes = step(active, {}, now=1220, cool_down=120)
    assert [(n["status"], n["ends_at"]) for n in notes] == [("resolved", 1100)]
    assert list(changes.values()) == [None]


def test_zero_cool_down_resolves_at_once_and_records_are_alertmanager_ready() -> None:
    holding = _one()
    changes, notes = step({}, holding, now=1000, cool_down=0)
    record = alert_record(notes[0])
    assert record["status"] == "firing" and record["ends_at"] is None
    payload = alertmanager_payload(record, now=2000, valid_for=120, generator_url="http://w")
    assert payload["labels"] == {"alertname": "Grade1AttendanceOverdue", "severity": "critical",
                                 "area": "north", "fingerprint": record["fingerprint"],
                                 "source": "demandflow"}
    assert parse_time(payload["endsAt"]) == 2120
    active = {k: v for k, v in changes.items() if v}
    changes, notes = step(active, {}, now=1005, cool_down=0)
    resolved = alert_record(notes[0])
    assert resolved["status"] == "resolved" and parse_time(resolved["ends_at"]) == 1005
    assert alertmanager_payload(resolved, 3000, 120, "http://w")["endsAt"] == resolved["ends_at"]


@pytest.mark.parametrize(("patch", "message"), [
    ('kind = "surge"\n', "needs a threshold"),
    ('grades = ["9"]\n', "unknown grade '9'"),
])
def test_bad_rules_fail_at_start_up(patch: str, message: str) -> None:
    from pipeline.config import default_config_text, parse_config
    from pipeline.errors import ConfigError

    text = default_config_text() + '\n[[rules]]\nname = "Extra"\nseverity = "info"\n' \
        'runbook = "x"\n' + (patch if "kind" in patch else 'kind = "oldest_open"\n'
                             'threshold = 1\n' + patch)
    with pytest.raises(ConfigError, match=message):
        parse_config(text, "force.toml")


def test_published_records_follow_the_alert_schema() -> None:
    from jsonschema import Draft202012Validator

    import schemas

    validator = Draft202012Validator(schemas.load(schemas.ALERT_V1))
    changes, notes = step({}, _one(), now=1000, cool_down=0)
    active = {k: v for k, v in changes.items() if v}
    _, resolved = step(active, {}, now=1005, cool_down=0)
    for note in [*notes, *resolved]:
        validator.validate(alert_record(note))
