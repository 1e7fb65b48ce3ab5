"""The ``demandflow`` command: worker, simulate, replay, topics, demo, dashboards."""

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
@click.option("--surge", default=1.0, show_default=True,
              help="Scenario: demand x this (e.g. 1.5, the summer peak) ...")
@click.option("--surge-hours", default=6.0, show_default=True, help="... for these simulated hours")
@click.option("--surge-after-hours", default=0.0, show_default=True,
              help="... starting this many simulated hours in.")
@click.option("--capacity", default=1.0, show_default=True,
              help="Scenario: dispatcher capacity (0.5 = a shortage: dispatch twice as slow).")
@click.option("--profile", "profile_path", default=None, type=click.Path(dir_okay=False),
              help="Demand profile (JSON from learn-profile); default: the shipped one.")
def simulate(rate: float, max_incidents: int | None, duration: float | None, seed: int | None,
             speed: float, duplicates: float, malformed: float, quiet: bool, surge: float,
             surge_hours: float, surge_after_hours: float, capacity: float,
             profile_path: str | None) -> None:
    """Produce a plausible stream of incident lifecycles to the raw topic."""
    from pipeline.simulator import SimulatorOptions, load_profile, run_simulator

    if max_incidents is None and duration is None:
        raise click.UsageError("give --incidents N or --duration SECONDS (it stops by itself)")
    if not 0 < capacity <= 1 or surge <= 0:
        raise click.UsageError("--capacity must be in (0, 1] and --surge above 0")
    opts = SimulatorOptions(rate=rate, max_incidents=max_incidents, duration=duration, seed=seed,
                            speed=speed, duplicates=duplicates, malformed=malformed,
                            progress=not quiet, surge=surge, surge_hours=surge_hours,
                            surge_after_hours=surge_after_hours, capacity=capacity,
                            profile=_guard(lambda: load_profile(profile_path)))
    _guard(lambda: run_simulator(opts))


@main.command()
@click.option("--rate", default=3.0, show_default=True, help="Simulated new incidents per second.")
@click.option("--duration", default=24 * 3600.0, show_default=True, help="Simulator run time.")
@click.option("--run-for", type=float, default=None, help="Stop by itself after this many seconds.")
@click.option("--source", type=click.Choice(["simulator", "replay"]), default="simulator",
              show_default=True, help="Where the demand comes from.")
@click.option("--replay-file", "replay_files", multiple=True,
              help="With --source replay: an export to replay (repeat for several).")
@click.option("--mapping", default="decc-cad", show_default=True,
              help="With --source replay: the mapping file or shipped name.")
@click.option("--speed", default=600.0, show_default=True,
              help="With --source replay: k x real speed.")
def demo(rate: float, duration: float, run_for: float | None, source: str,
         replay_files: tuple[str, ...], mapping: str, speed: float) -> None:
    """Run a worker and the simulator (or a replay), with a live summary, until Ctrl-C."""
    from pipeline.demo import run_demo

    if source == "replay" and not replay_files:
        raise click.UsageError("--source replay needs at least one --replay-file")
    files = list(replay_files) if source == "replay" else None
    sys.exit(_guard(lambda: run_demo(rate=rate, duration=duration, run_for=run_for,
                                     replay_files=files, mapping=mapping, speed=speed)))


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--mapping", required=True,
              help="Mapping file, or the name of a shipped one (decc-cad, nola-cfs).")
@click.option("--speed", type=float, default=None,
              help="k x real speed (keep the gaps between event times / k); default: as fast "
                   "as possible.")
@click.option("--since", default=None, help="Only events after this RFC 3339 instant.")
@click.option("--until", default=None, help="Only events up to this RFC 3339 instant.")
@click.option("--report", type=click.Path(dir_okay=False), default="replay-report.json",
              show_default=True, help="Where to write the summary (JSON).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def replay(files: tuple[str, ...], mapping: str, speed: float | None, since: str | None,
           until: str | None, report: str, quiet: bool) -> None:
    """Replay command-and-control exports (CSV, .csv.gz) as lifecycle events."""
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from pipeline.replay import run_replay

    summary = _guard(lambda: run_replay([Path(f) for f in files], mapping, speed, since, until,
                                        Path(report), show_progress=not quiet))
    table = Table(title="replay summary", show_header=False)
    for key, value in summary.as_dict().items():
        if key != "files":
            table.add_row(key, str(value))
    Console().print(table)
    click.echo(f"report written to {report}")


@main.command("learn-profile")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True))
@click.option("--mapping", required=True, help="Mapping file, or a shipped one's name.")
@click.option("--out", type=click.Path(dir_okay=False), default="pipeline/defaults/profile.json",
              show_default=True)
def learn_profile(files: tuple[str, ...], mapping: str, out: str) -> None:
    """Learn a demand profile (week shape, mixes, stage times) from real exports."""
    from pathlib import Path

    import orjson

    from pipeline.config import load_config
    from pipeline.domain.profile import learn
    from pipeline.replay import load_mapping, observed
    from pipeline.settings import get_settings

    m = _guard(lambda: load_mapping(mapping))
    config = _guard(lambda: load_config(get_settings().config_path))
    incidents = observed([Path(f) for f in files], m, config)
    profile = learn(incidents, m.timezone, source=f"{m.name}: {len(incidents)} incidents")
    Path(out).write_bytes(orjson.dumps(profile.model_dump(), option=orjson.OPT_INDENT_2) + b"\n")
    click.echo(f"wrote {out}: {len(incidents)} incidents over {profile.weeks} weeks, "
               f"{profile.incidents_per_hour}/h")


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
