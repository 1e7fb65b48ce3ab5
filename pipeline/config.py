"""The domain configuration: grades and their targets, areas, terminal band, windows.

Forces grade differently (1-5, P1-P4, I/S), so none of this lives in code. The
file is TOML, validated with pydantic; any mistake raises :class:`ConfigError`
naming the file and the line at fault, so a worker never starts half-configured.
"""

from __future__ import annotations

import re
import tomllib
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline.errors import ConfigError

CODE_PATTERN = r"^[A-Za-z0-9_-]{1,16}$"
M = TypeVar("M", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Force(_Strict):
    name: str = Field(min_length=1)
    # The force's local time: "the same hour last week" is the same hour on its clocks.
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as "
                             "'Europe/London')") from None
        return value

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Grade(_Strict):
    code: str = Field(pattern=CODE_PATTERN)
    name: str = Field(min_length=1)
    attend_within_seconds: int | None = Field(default=None, gt=0)
    attend_within_seconds_rural: int | None = Field(default=None, gt=0)
    clock_starts_at: Literal["call", "dispatch"] = "call"


class Area(_Strict):
    code: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    name: str = Field(min_length=1)
    rural: bool = False


class Terminals(_Strict):
    band_low: int = Field(default=20, ge=0)
    band_high: int = Field(default=50, gt=0)

    @model_validator(mode="after")
    def _band_ordered(self) -> Terminals:
        if self.band_low >= self.band_high:
            raise ValueError("band_low must be below band_high")
        return self


class Windows(_Strict):
    sizes_seconds: list[int] = Field(default=[60, 900, 3600], min_length=1)
    grace_seconds: int = Field(default=300, ge=0)


RuleKind = Literal["attendance_overdue", "review_overdue_vulnerable", "backlog_above",
                   "terminal_overloaded", "repeat_caller", "appointment_missed", "surge",
                   "oldest_open"]
# Kinds whose threshold has no sensible default: the file must say.
_NEEDS_THRESHOLD = frozenset({"backlog_above", "repeat_caller", "surge", "oldest_open"})


class Rule(_Strict):
    """A risk rule (docs/alerts.md): what to watch, how bad, where, and what to do."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
    kind: RuleKind
    severity: Literal["critical", "warning", "info"]
    runbook: str = Field(min_length=1, max_length=300)
    areas: list[str] = Field(default_factory=list)  # empty: every area
    grades: list[str] = Field(default_factory=list)  # empty: every grade
    threshold: float | None = Field(default=None, ge=0)
    # repeat_caller: the look-back; surge: the least last-week demand worth comparing with.
    within_seconds: int = Field(default=86400, gt=0)
    min_baseline: int = Field(default=5, ge=1)

    @model_validator(mode="after")
    def _threshold_given(self) -> Rule:
        if self.kind in _NEEDS_THRESHOLD and self.threshold is None:
            raise ValueError(f"a {self.kind} rule needs a threshold")
        return self


class Alerting(_Strict):
    # An alert resolves only after its condition has stayed clear this long, so a
    # condition flickering at its threshold is one episode, not a storm.
    cool_down_seconds: int = Field(default=120, ge=0)
    # Live, alerts are evaluated this far behind the wall clock, so an event that takes
    # up to this long to arrive is still applied in event-time order (docs/alerts.md).
    settle_seconds: float = Field(default=2.0, ge=0, le=300)


class DemandConfig(_Strict):
    force: Force
    grades: list[Grade] = Field(min_length=1)
    areas: list[Area] = Field(min_length=1)
    terminals: Terminals = Terminals()
    windows: Windows = Windows()
    alerting: Alerting = Alerting()
    rules: list[Rule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _codes_unique(self) -> DemandConfig:
        for kind, codes in (("grade", [g.code for g in self.grades]),
                            ("area", [a.code for a in self.areas])):
            seen: set[str] = set()
            for code in codes:
                if code in seen:
                    raise ValueError(f"{kind} code {code!r} appears twice")
                seen.add(code)
        grades, areas = {g.code for g in self.grades}, {a.code for a in self.areas}
        names: set[str] = set()
        for rule in self.rules:
            if rule.name in names:
                raise ValueError(f"rule name {rule.name!r} appears twice")
            names.add(rule.name)
            for kind, codes, known in (("grade", rule.grades, grades),
                                       ("area", rule.areas, areas)):
                unknown = sorted(set(codes) - known)
                if unknown:
                    raise ValueError(f"rule {rule.name!r}: unknown {kind} {unknown[0]!r}")
        return self

    @cached_property
    def grade_codes(self) -> frozenset[str]:
        return frozenset(g.code for g in self.grades)

    @cached_property
    def area_codes(self) -> frozenset[str]:
        return frozenset(a.code for a in self.areas)

    def grade(self, code: str) -> Grade:
        for g in self.grades:
            if g.code == code:
                return g
        raise KeyError(code)


def default_config_text() -> str:
    """The shipped default configuration (UK-style grading)."""
    return resources.files("pipeline").joinpath("defaults/demand.toml").read_text("utf-8")


def load_config(path: str | Path | None = None) -> DemandConfig:
    """Load and validate the configuration file (the shipped default if ``path`` is None)."""
    if path is None:
        return parse_config(default_config_text(), "<default demand.toml>")
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read configuration: {exc.strerror}") from exc
    return parse_config(text, str(p))


def parse_config(text: str, origin: str) -> DemandConfig:
    """Parse and validate configuration text; errors name ``origin`` and the line."""
    return parse_toml_model(text, origin, DemandConfig)


def parse_toml_model(text: str, origin: str, model: type[M]) -> M:
    """TOML text validated as ``model``; any mistake is a ConfigError naming the line."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: not valid TOML: {exc}") from exc
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        where = ".".join(str(p) for p in loc) or "(top level)"
        line = locate_line(text, loc) or locate_value(text, err["msg"])
        if line is not None:
            raise ConfigError(f"{origin}, line {line}: {where}: {err['msg']}") from exc
        # Nothing in the file to point at: say what is missing and where it would go.
        missing = f"[{loc[0]}]" if len(loc) == 1 else where
        hint = f" (the file has no {missing}; add it)" if err["type"] == "missing" else ""
        raise ConfigError(f"{origin}: {where}: {err['msg']}{hint}") from exc


def locate_value(text: str, message: str) -> int | None:
    """For a check across tables (no key to point at): the last line assigning the value
    the message quotes (``area code 'north' appears twice``: the second ``= "north"``)."""
    quoted = re.search(r"'([^']+)'", message)
    if quoted is None:
        return None
    value = quoted.group(1)
    lines = [n for n, line in enumerate(text.splitlines(), start=1)
             if re.search(r"=\s*[\"']" + re.escape(value) + r"[\"']", line)]
    return lines[-1] if lines else None


def locate_line(text: str, loc: tuple[object, ...]) -> int | None:
    """Best-effort line number of the TOML key a validation error points at.

    Walks table headers (``[x]`` and ``[[x]]`` with their array index) and
    ``key = value`` lines; returns the key's line, else its table's line.
    """
    if not loc:
        return None
    table = str(loc[0])
    index = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
    rest = loc[2:] if index is not None else loc[1:]
    key = str(rest[0]) if rest else None
    seen = -1
    table_line: int | None = None
    in_table = False
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("["):
            name = stripped.strip("[] ")
            in_table = False
            if name == table:
                seen += 1
                if index is None or seen == index:
                    in_table, table_line = True, number
            continue
        if in_table and key and stripped.split("=", 1)[0].strip() == key:
            return number
        if table_line is None and not stripped.startswith("#") and \
                stripped.split("=", 1)[0].strip() == table:
            return number
    return table_line
