"""A mistake gets one clear line, not a traceback or a successful run that did nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.errors import ConfigError, DemandflowError
from pipeline.replay import load_mapping, plan
from pipeline.settings import get_settings


def test_a_mapping_naming_absent_columns_stops_before_reading(tmp_path: Path) -> None:
    export = tmp_path / "week.csv"
    export.write_text("Master_Incident_Number,Incident_Start_Time\n25-1,2025-09-01 10:00:00\n")
    with pytest.raises(DemandflowError) as err:
        plan([export], load_mapping("nola-cfs"), load_config())
    message = str(err.value)
    assert "week.csv" in message and "TimeCreate" in message and "NOPD_Item" in message
    assert "\n" not in message


def test_an_invalid_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMANDFLOW_TOPIC_PARTITIONS", "zero")
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigError) as err:
            get_settings()
    finally:
        get_settings.cache_clear()
    assert str(err.value).startswith("invalid setting: DEMANDFLOW_TOPIC_PARTITIONS: ")
    assert "zero" not in str(err.value)  # values are never echoed
