"""Who may read the views: the bearer token, loopback without one, and clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.auth import bearer_ok, check_exposure, needs_token, read_token
from pipeline.errors import ConfigError

TOKEN = "s3cret-token-0123456789"  # noqa: S105 - a test fixture


def test_the_token_is_read_from_its_file_and_a_bad_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    assert read_token(path) == TOKEN
    assert read_token(None) is None
    with pytest.raises(ConfigError, match="DEMANDFLOW_VIEW_TOKEN_FILE: cannot read"):
        read_token(tmp_path / "missing")
    (tmp_path / "short").write_text("abc")
    with pytest.raises(ConfigError, match="at least 16") as err:
        read_token(tmp_path / "short")
    assert "abc" not in str(err.value)


def test_only_the_exact_bearer_token_opens_a_guarded_view() -> None:
    assert bearer_ok(f"Bearer {TOKEN}", TOKEN)
    for header in (None, "", TOKEN, f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer "):
        assert not bearer_ok(header, TOKEN), header
    assert needs_token("/backlog", False) and needs_token("/incidents/oldest", False)
    assert needs_token("/demand", False) and needs_token("/internal/partitions", False)
    assert not needs_token("/healthz", True) and not needs_token("/livez", True)
    assert not needs_token("/metrics", False) and needs_token("/metrics", True)


def test_views_beyond_loopback_need_a_token_or_a_deliberate_setting() -> None:
    anywhere = "0.0.0.0"  # noqa: S104 - the exposure being judged
    assert "only" in check_exposure("127.0.0.1", None, False)
    assert "bearer token" in check_exposure(anywhere, TOKEN, False)
    with pytest.raises(ConfigError, match="^DEMANDFLOW_WEB_HOST: 0.0.0.0 would serve"):
        check_exposure(anywhere, None, False)
    assert "WITHOUT authentication" in check_exposure(anywhere, None, True)
