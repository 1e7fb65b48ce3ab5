"""One root for every error demandflow raises on purpose.

Callers catch :class:`DemandflowError` (or a subclass) and never a bare
``Exception``; third-party errors are wrapped with ``raise ... from``.
"""

from __future__ import annotations


class DemandflowError(Exception):
    """Root of demandflow's own errors."""


class ConfigError(DemandflowError):
    """The domain configuration file or the settings are invalid."""


class InvalidEvent(DemandflowError):
    """An incoming record breaks the event contract.

    ``reason`` is a short machine-readable code (for the dead-letter record and
    the ``outcome`` metrics), ``detail`` a human sentence that names the field
    at fault but never copies its value (it may be personal data).
    """

    def __init__(self, reason: str, detail: str, event_type: str = "unknown") -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.event_type = event_type


class KafkaSetupError(DemandflowError):
    """Topics could not be created or the cluster could not be reached."""
