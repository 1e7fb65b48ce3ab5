"""Bounded logging: the same complaint at most once per interval, with a count of the rest.

While the broker is unreachable the Kafka clients log each failed attempt
(seen: ~50 ERROR lines a second, 7,634 in 2.5 minutes): the one line an operator
needs drowns. This filter, on the root handlers, lets the first record of each
(logger, message template) through and then one per ``interval_s``, saying how
many it held back. Records of the pipeline's own loggers pass untouched.
"""

from __future__ import annotations

import logging
import re
import time

OWN = ("pipeline", "agents")
_DIGITS = re.compile(r"\d+")


class RateLimit(logging.Filter):
    """Pass a repeating third-party WARNING/ERROR at most once per ``interval_s``."""

    def __init__(self, interval_s: float = 30.0) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._last: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], int] = {}
        self._now = time.monotonic

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or record.name.startswith(OWN):
            return True
        key = (record.name, _DIGITS.sub("#", str(record.msg)))  # f-strings carry numbers
        now = self._now()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held:
            record.msg = f"{record.msg} [and {held} more like it since]"
        return True


def install(logger: logging.Logger, interval_s: float = 30.0) -> None:
    """Rate-limit repeating third-party warnings on every handler of ``logger``."""
    limiter = RateLimit(interval_s)
    for handler in logger.handlers:
        handler.addFilter(limiter)
