"""Start a worker: make sure the topics exist, attach agents and views, run Faust."""

from __future__ import annotations

from pipeline.settings import get_settings
from pipeline.topics import ensure_topics


def run_worker(loglevel: str | None = None) -> None:
    """Run the worker in this process until SIGTERM / Ctrl-C."""
    settings = get_settings()
    ensure_topics(settings)
    # Imported here: building the app reads settings and the config file.
    from faust import Worker

    import agents.alerts  # noqa: F401
    import agents.backlog  # noqa: F401  (attaches the agent and table)
    import agents.clock  # noqa: F401
    import agents.ingest  # noqa: F401
    import agents.snapshots  # noqa: F401
    import pipeline.views  # noqa: F401
    from pipeline.app import app

    Worker(app, loglevel=loglevel or settings.log_level).execute_from_commandline()
