"""The shipped deployment files are valid and agree with the shipped configuration."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from pipeline.config import load_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing: apt-get install prometheus-alertmanager " \
                 "(make test installs it when run as root)"
    return path


def test_amtool_accepts_the_shipped_alertmanager_config() -> None:
    result = subprocess.run([tool("amtool"), "check-config",
                             str(DEPLOY / "alertmanager" / "alertmanager.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_configured_area_reaches_its_own_duty_inspector() -> None:
    am = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    routed = {}
    for route in am["route"]["routes"]:
        [matcher] = route["matchers"]
        label, _, value = matcher.partition("=")
        assert label == "area"
        routed[value.strip('"')] = route["receiver"]
    areas = {a.code for a in load_config().areas}
    assert set(routed) == areas
    assert len(set(routed.values())) == len(areas), "one receiver per area"
    assert am["route"]["receiver"] not in routed.values(), "force-wide alerts go elsewhere"
    severities = {r.severity for r in load_config().rules}
    assert "critical" in severities and severities <= {"critical", "warning", "info"}
