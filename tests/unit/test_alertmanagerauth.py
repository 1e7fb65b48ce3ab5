"""The worker authenticates to Alertmanager as configured, from files, and says clearly
which setting is wrong."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from pipeline.alertmanagerauth import client_options
from pipeline.errors import ConfigError
from pipeline.settings import Settings


def test_a_bearer_token_is_read_from_its_file_and_sent(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("tok-123\n")
    options = client_options(Settings(alertmanager_bearer_token_file=token))
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(200)

    with httpx.Client(transport=httpx.MockTransport(handler), **options) as client:
        client.post("http://am/api/v2/alerts", content=b"[]")
    assert seen == ["Bearer tok-123"]


def test_basic_auth_needs_its_password_file_and_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DEMANDFLOW_ALERTMANAGER_PASSWORD_FILE: required"):
        client_options(Settings(alertmanager_username="demandflow"))
    with pytest.raises(ConfigError, match="DEMANDFLOW_ALERTMANAGER_PASSWORD_FILE: cannot read"):
        client_options(Settings(alertmanager_username="demandflow",
                                alertmanager_password_file=tmp_path / "missing"))


def test_one_way_to_authenticate_and_a_readable_ca(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t")
    with pytest.raises(ConfigError, match="choose one"):
        client_options(Settings(alertmanager_bearer_token_file=token,
                                alertmanager_username="u"))
    with pytest.raises(ConfigError, match="DEMANDFLOW_ALERTMANAGER_CA_FILE"):
        client_options(Settings(alertmanager_ca_file=tmp_path / "none.pem"))
    assert client_options(Settings()) == {}
