"""Start a worker: make sure the topics exist, attach agents and views, run Faust."""

from __future__ import annotations

import logging
import os
import threading

from faust import Worker

from pipeline import lograte
from pipeline.settings import get_settings
from pipeline.topics import ensure_topics

log = logging.getLogger(__name__)
# A worker asked to stop exits within this many seconds, whatever Faust is waiting for.
STOP_DEADLINE_S = 8.0
EXIT_STOP_DEADLINE = 75


class DeadlineWorker(Worker):
    """Faust's worker, with a deadline on stopping.

    Faust stops cleanly when the broker is there. When it is not, stopping can
    wait for ever: the consumer thread keeps retrying the unreachable broker and
    the interpreter then waits for that thread at exit (seen: no exit 30 s after
    SIGTERM). Nothing is lost by cutting that short: offsets are committed only
    for state already durable (docs/state.md), so a restart reads the rest
    again. On the first SIGTERM or Ctrl-C a watchdog thread starts; if the
    process is still there ``STOP_DEADLINE_S`` later, it exits.
    """

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        lograte.install(logger)

    def _on_sigterm(self) -> None:
        _arm_deadline("SIGTERM")
        super()._on_sigterm()

    def _on_sigint(self) -> None:
        _arm_deadline("SIGINT")
        super()._on_sigint()


_armed = threading.Event()


def _arm_deadline(why: str) -> None:
    if _armed.is_set():
        return
    _armed.set()

    def expire() -> None:
        log.warning("%s: still stopping after %.0f s (broker unreachable?); exiting now",
                    why, STOP_DEADLINE_S)
        logging.shutdown()
        os._exit(EXIT_STOP_DEADLINE)

    timer = threading.Timer(STOP_DEADLINE_S, expire)
    timer.daemon = True
    timer.start()


def run_worker(loglevel: str | None = None) -> None:
    """Run the worker in this process until SIGTERM / Ctrl-C."""
    settings = get_settings()
    ensure_topics(settings)
    # A fresh clone has no .run/: the table store's folder is made here, not assumed.
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Imported here: building the app reads settings and the config file.
    import agents.alerts  # noqa: F401
    import agents.backlog  # noqa: F401  (attaches the agent and table)
    import agents.clock  # noqa: F401
    import agents.ingest  # noqa: F401
    import agents.snapshots  # noqa: F401
    import pipeline.views  # noqa: F401
    from pipeline.app import app

    DeadlineWorker(app, loglevel=loglevel or settings.log_level).execute_from_commandline()
