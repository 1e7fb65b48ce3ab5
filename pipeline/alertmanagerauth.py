"""How the worker authenticates to Alertmanager, and whom it trusts there, from settings.

A force's Alertmanager sits behind basic auth or a bearer token (its
``--web.config.file``, or a proxy) and often TLS with the force's own CA
(issue 15). Secrets are read from files, as for Kafka (pipeline.kafkasecurity):
never from the environment or the command line, never logged. A file that
cannot be read stops the worker at start with one line naming the setting,
rather than failing every delivery later.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from pipeline.errors import ConfigError
from pipeline.kafkasecurity import read_secret
from pipeline.settings import Settings


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for the ``httpx.AsyncClient`` that posts to Alertmanager."""
    out: dict[str, Any] = {}
    token_file = settings.alertmanager_bearer_token_file
    user = settings.alertmanager_username
    if token_file is not None and user is not None:
        raise ConfigError("DEMANDFLOW_ALERTMANAGER_BEARER_TOKEN_FILE and "
                          "DEMANDFLOW_ALERTMANAGER_USERNAME: choose one way to authenticate")
    if token_file is not None:
        token = read_secret(token_file, "DEMANDFLOW_ALERTMANAGER_BEARER_TOKEN_FILE")
        out["headers"] = {"authorization": f"Bearer {token}"}
    elif user is not None:
        if settings.alertmanager_password_file is None:
            raise ConfigError("DEMANDFLOW_ALERTMANAGER_PASSWORD_FILE: required with "
                              "DEMANDFLOW_ALERTMANAGER_USERNAME")
        out["auth"] = httpx.BasicAuth(user, read_secret(
            settings.alertmanager_password_file, "DEMANDFLOW_ALERTMANAGER_PASSWORD_FILE"))
    if settings.alertmanager_ca_file is not None:
        read_secret(settings.alertmanager_ca_file, "DEMANDFLOW_ALERTMANAGER_CA_FILE")
        out["verify"] = ssl.create_default_context(cafile=str(settings.alertmanager_ca_file))
    return out
