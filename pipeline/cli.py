"""The ``demandflow`` command: worker, simulate, topics, demo, dashboards."""

from __future__ import annotations

import sys

import click

from pipeline.errors import DemandflowError


@click.group()
def main() -> None:
    """demandflow: police control-room demand, live, from incident events on Kafka."""


@main.command()
@click.option("--loglevel", default=None, help="debug, info, warning, error")
def worker(loglevel: str | None) -> None:
    """Run a pipeline worker (agents, tables, /metrics, /healthz, /backlog)."""
    from pipeline.worker import run_worker

    _guard(lambda: run_worker(loglevel))


@main.command()
def topics() -> None:
    """Create the pipeline's topics (idempotent)."""
    from pipeline.settings import get_settings
    from pipeline.topics import ensure_topics

    created = _guard(lambda: ensure_topics(get_settings()))
    click.echo(f"created: {', '.join(created) if created else 'none (all exist)'}")


@main.command()
@click.option("--rate", default=5.0, show_default=True, help="New incidents per second.")
@click.option("--incidents", "max_incidents", type=int, default=None,
              help="Stop after this many incidents (their events still finish).")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
@click.option("--seed", type=int, default=None, help="Seed for a reproducible stream.")
@click.option("--speed", default=60.0, show_default=True,
              help="How much faster than real life lifecycles run (60: 15 min take 15 s).")
@click.option("--duplicates", default=0.01, show_default=True,
              help="Fraction of events sent twice.")
@click.option("--malformed", default=0.005, show_default=True,
              help="Fraction of malformed records.")
@click.option("--quiet", is_flag=True, help="No progress display.")
def simulate(rate: float, max_incidents: int | None, duration: float | None, seed: int | None,
             speed: float, duplicates: float, malformed: float, quiet: bool) -> None:
    """Produce a plausible stream of incident lifecycles to the raw topic."""
    from pipeline.simulator import SimulatorOptions, run_simulator

    if max_incidents is None and duration is None:
        raise click.UsageError("give --incidents N or --duration SECONDS (it stops by itself)")
    opts = SimulatorOptions(rate=rate, max_incidents=max_incidents, duration=duration, seed=seed,
                            speed=speed, duplicates=duplicates, malformed=malformed,
                            progress=not quiet)
    _guard(lambda: run_simulator(opts))


@main.command()
@click.option("--rate", default=3.0, show_default=True, help="Simulated new incidents per second.")
@click.option("--duration", default=24 * 3600.0, show_default=True, help="Simulator run time.")
@click.option("--run-for", type=float, default=None, help="Stop by itself after this many seconds.")
def demo(rate: float, duration: float, run_for: float | None) -> None:
    """Run a worker and the simulator, with a live summary, until Ctrl-C."""
    from pipeline.demo import run_demo

    sys.exit(_guard(lambda: run_demo(rate=rate, duration=duration, run_for=run_for)))


@main.command()
@click.option("--out", type=click.Path(file_okay=False), default="deploy/grafana/dashboards",
              show_default=True, help="Folder for the dashboard JSON files.")
def dashboards(out: str) -> None:
    """Generate the Grafana dashboards (control-room wall, pipeline health) as JSON."""
    from pathlib import Path

    from pipeline.config import load_config
    from pipeline.dashboards import write
    from pipeline.settings import get_settings

    config = _guard(lambda: load_config(get_settings().config_path))
    for path in write(config, Path(out)):
        click.echo(f"wrote {path}")


def _guard(fn):  # type: ignore[no-untyped-def]
    try:
        return fn()
    except DemandflowError as exc:
        click.echo(f"demandflow: {exc}", err=True)
        sys.exit(2)
