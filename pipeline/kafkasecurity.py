"""How every Kafka client of demandflow connects: TLS, SASL, mutual TLS, from settings.

A force's cluster requires TLS and authentication (issue 15). The settings
(``DEMANDFLOW_KAFKA_*``, README) are turned here into what each client takes —
Faust's ``broker_credentials`` for the worker, kafka-python's keyword arguments
for ``replay``, ``simulate`` and ``topics`` — so every client connects the same
way. The password is read from a file, never from the environment or a command
line (both show up in process listings), and never logged.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import faust

from pipeline.errors import ConfigError
from pipeline.settings import Settings


def read_secret(path: Any, setting: str) -> str:
    """A secret's file's content, stripped; a clear one-line error naming the setting."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read {path}: "
                          f"{exc.strerror or type(exc).__name__}") from None
    if not text:
        raise ConfigError(f"{setting}: {path} is empty")
    return text


def password(settings: Settings) -> str | None:
    """The SASL password, from its file (None for a protocol without SASL)."""
    if not settings.kafka_security_protocol.startswith("SASL"):
        return None
    if not settings.kafka_username:
        raise ConfigError("DEMANDFLOW_KAFKA_USERNAME: required with "
                          f"DEMANDFLOW_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol}")
    if settings.kafka_password_file is None:
        raise ConfigError("DEMANDFLOW_KAFKA_PASSWORD_FILE: required with "
                          f"DEMANDFLOW_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol}")
    return read_secret(settings.kafka_password_file, "DEMANDFLOW_KAFKA_PASSWORD_FILE")


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context (CA bundle; client certificate and key for mutual TLS), if TLS."""
    if not settings.kafka_security_protocol.endswith("SSL"):
        return None
    for setting, path in (("DEMANDFLOW_KAFKA_CA_FILE", settings.kafka_ca_file),
                          ("DEMANDFLOW_KAFKA_CERT_FILE", settings.kafka_cert_file),
                          ("DEMANDFLOW_KAFKA_KEY_FILE", settings.kafka_key_file)):
        if path is not None:
            read_secret(path, setting)  # a clear line now rather than an SSL error later
    context = ssl.create_default_context(
        cafile=str(settings.kafka_ca_file) if settings.kafka_ca_file else None)
    if settings.kafka_cert_file or settings.kafka_key_file:
        if not (settings.kafka_cert_file and settings.kafka_key_file):
            raise ConfigError("DEMANDFLOW_KAFKA_CERT_FILE and DEMANDFLOW_KAFKA_KEY_FILE: "
                              "mutual TLS needs both")
        context.load_cert_chain(str(settings.kafka_cert_file), str(settings.kafka_key_file))
    return context


def faust_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    """What the worker's Faust app connects with (``broker_credentials``)."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = ssl_context(settings)
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    return faust.SASLCredentials(username=settings.kafka_username, password=password(settings),
                                 ssl_context=context, mechanism=settings.kafka_sasl_mechanism)


def kafka_python(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for kafka-python's clients (admin, producer, consumer)."""
    out: dict[str, Any] = {"bootstrap_servers": settings.bootstrap_servers.split(","),
                           "security_protocol": settings.kafka_security_protocol}
    if settings.kafka_security_protocol.endswith("SSL"):
        out["ssl_context"] = ssl_context(settings)
    if settings.kafka_security_protocol.startswith("SASL"):
        out.update(sasl_mechanism=settings.kafka_sasl_mechanism,
                   sasl_plain_username=settings.kafka_username,
                   sasl_plain_password=password(settings))
    return out


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def diagnosed(settings: Settings) -> Iterator[_Collect]:
    """Collect what kafka-python says while connecting, for :func:`why_unreachable`."""
    handler = _Collect()
    logger = logging.getLogger("kafka")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def why_unreachable(settings: Settings, messages: list[str]) -> str:
    """One line naming the setting to check, from what the client said while failing."""
    text = " ".join(messages)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return ("the broker's certificate is not trusted: check DEMANDFLOW_KAFKA_CA_FILE "
                f"({settings.kafka_ca_file or 'unset: the system CAs'})")
    if any(alert in text.upper() for alert in ("ALERT_BAD_CERTIFICATE",
                                                "CERTIFICATE_REQUIRED",
                                                "ALERT_UNKNOWN_CA")):
        return ("the broker refused this client's certificate (mutual TLS): check "
                "DEMANDFLOW_KAFKA_CERT_FILE and DEMANDFLOW_KAFKA_KEY_FILE "
                f"({settings.kafka_cert_file or 'unset: no client certificate sent'})")
    if "Authentication failed" in text or "SaslAuthenticationFailed" in text or \
            "authentication failed" in text.lower():
        return (f"authentication as {settings.kafka_username!r} failed: check "
                "DEMANDFLOW_KAFKA_USERNAME, DEMANDFLOW_KAFKA_PASSWORD_FILE and "
                "DEMANDFLOW_KAFKA_SASL_MECHANISM")
    if settings.kafka_security_protocol != "PLAINTEXT":
        return (f"no connection with DEMANDFLOW_KAFKA_SECURITY_PROTOCOL="
                f"{settings.kafka_security_protocol}: check it matches the broker's listener")
    return "check DEMANDFLOW_BOOTSTRAP_SERVERS"
