"""The domain configuration: the shipped default is valid; mistakes name their line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import default_config_text, load_config, parse_config
from pipeline.errors import ConfigError


def test_shipped_default_is_uk_style() -> None:
    config = load_config()
    assert [g.code for g in config.grades] == ["1", "2", "3", "4", "5"]
    assert config.grade("1").attend_within_seconds == 15 * 60
    assert config.grade("1").attend_within_seconds_rural == 20 * 60
    assert config.grade("2").attend_within_seconds == 60 * 60
    assert config.grade("4").attend_within_seconds is None
    assert (config.terminals.band_low, config.terminals.band_high) == (20, 50)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(("old", "new", "field"), [
    ('attend_within_seconds = 3600', 'attend_within_seconds = -5',
     "grades.1.attend_within_seconds"),
    ('clock_starts_at = "call"\n\n[[grades]]\ncode = "2"',
     'clock_starts_at = "arrival"\n\n[[grades]]\ncode = "2"', "grades.0.clock_starts_at"),
    ('band_high = 50', 'band_high = 10', "terminals"),
    ('code = "south"', 'code = "north"', "(top level)"),
])
def test_bad_values_fail_with_the_line_at_fault(old: str, new: str, field: str) -> None:
    text = default_config_text().replace(old, new, 1)
    assert text != default_config_text()
    with pytest.raises(ConfigError) as err:
        parse_config(text, "force.toml")
    message = str(err.value)
    assert message.startswith("force.toml, line ")
    assert field in message
    if field.startswith("grades.1"):
        assert f"line {_line_of(text, new)}:" in message
    if field == "(top level)":  # a check across tables: the line of the repeated value
        last = max(i for i, line in enumerate(text.splitlines(), 1) if new in line)
        assert f"line {last}:" in message


def test_unknown_keys_are_refused() -> None:
    text = default_config_text().replace('[terminals]', '[terminals]\nband_mid = 30')
    with pytest.raises(ConfigError, match="band_mid"):
        parse_config(text, "force.toml")


def test_broken_toml_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "force.toml"
    path.write_text('[force]\nname = "x"\n[[grades]\n')
    with pytest.raises(ConfigError, match="line 3"):
        load_config(path)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.toml")


def test_a_missing_table_is_named_without_a_line_it_does_not_have() -> None:
    text = default_config_text()
    start = text.index("[force]")
    end = text.index("\n[", start + 1)
    with pytest.raises(ConfigError) as info:
        parse_config(text[:start] + text[end:], "force.toml")
    message = str(info.value)
    assert "line ?" not in message
    assert message.startswith("force.toml: force: ") and "the file has no [force]" in message
