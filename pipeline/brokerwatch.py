"""Whether this worker can reach Kafka, for /healthz and one log line per change.

Faust keeps running while the broker is away and its clients retry by
themselves; the worker was still saying ``ok`` meanwhile. A probe every few
seconds opens a TCP connection to each bootstrap server: none answering means
the worker is not ready (``/healthz`` 503, with the reason and since when), and
the log says so once when it starts and once when it ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class BrokerWatch:
    servers: list[tuple[str, int]]
    timeout_s: float = 2.0
    reachable: bool = True
    reason: str = ""
    since: float = 0.0
    _down_at: float = 0.0

    @classmethod
    def for_bootstrap(cls, bootstrap: str) -> BrokerWatch:
        servers = []
        for item in bootstrap.split(","):
            host, _, port = item.strip().rpartition(":")
            servers.append((host or "127.0.0.1", int(port)))
        return cls(servers, since=time.time())

    async def probe(self) -> bool:
        """Try each bootstrap server; record and log a change of reachability."""
        problems = []
        for host, port in self.servers:
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                   self.timeout_s)
                writer.close()
                self._set(True, "")
                return True
            except (OSError, TimeoutError) as exc:
                problems.append(f"{host}:{port}: {type(exc).__name__}")
        self._set(False, "Kafka unreachable (" + "; ".join(problems) + ")")
        return False

    def _set(self, reachable: bool, reason: str) -> None:
        if reachable != self.reachable:
            self.since = time.time()
            if reachable:
                log.info("Kafka reachable again after %.0f s", self.since - self._down_at)
            else:
                self._down_at = self.since
                log.error("%s; the worker retries by itself and is not ready meanwhile", reason)
        self.reachable, self.reason = reachable, reason
