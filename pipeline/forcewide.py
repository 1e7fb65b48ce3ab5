"""Force-wide answers from any worker: ask each partition's owner, merge (docs/state.md).

This is Kafka Streams' interactive-query pattern on Faust's own metadata: the
partition assignor tells every worker which worker (by its advertised URL)
owns each partition of the incident table (``app.router.table_metadata``).
A view answers the partitions this worker owns itself and asks the owners of
the others over ``/internal/partitions``; each owner answers per partition,
and only for partitions it owns and has restored. The merge (pure:
pipeline.domain.merge) then covers exactly the partitions that answered, and
the view says which did not (``complete: false``) instead of showing a number
that silently leaves some out — as it does during a rebalance or while a
crashed worker's partitions move.

Why not an aggregate table fed through a repartition topic: the views need the
longest-waiting incidents and minute windows at any instant (``at=``), which a
pre-aggregated table cannot answer without copying every incident again; a
fan-out to at most one request per worker keeps one copy of the state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from agents import windows
from agents.backlog import incidents
from pipeline.app import app, config, ownership, settings, view_token
from pipeline.domain.backlog import oldest_open, summarise
from pipeline.domain.merge import counts_to_json, summary_to_json
from pipeline.domain.windows import WEEK, demand

TIMEOUT_S = 5.0
Answer = dict[int, Any]  # partition -> that partition's answer


@dataclass
class Gathered:
    """Per-partition answers from every owner that answered, and the partitions missing."""

    answers: Answer = field(default_factory=dict)
    missing: list[int] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing

    def parts(self) -> list[Any]:
        return [self.answers[p] for p in sorted(self.answers)]

    def status(self) -> dict[str, Any]:
        """What the views add to say how much of the force they cover."""
        return {"complete": self.complete, "partitions": sorted(self.answers),
                "missing_partitions": self.missing}


def answer_local(view: str, partitions: Iterable[int], q: Mapping[str, str]) -> Answer:
    """This worker's answers for those of ``partitions`` it owns and has restored."""
    ready = ownership.ready()
    out: Answer = {}
    for p in sorted(set(partitions) & ready):
        out[p] = _answer_one(view, p, q)
    return out


def _answer_one(view: str, p: int, q: Mapping[str, str]) -> Any:
    if view == "clock":
        return windows.watermark(p)
    now = float(q["at"])
    if view == "backlog":
        return summary_to_json(summarise(incidents.values_in((p,)), now))
    if view == "oldest":
        rows = oldest_open(incidents.values_in((p,)), int(q["limit"]), q.get("grade") or None,
                           q.get("area") or None)
        return [{"incident_id": r.incident_id, "grade": r.grade, "area": r.area,
                 "status": r.status, "created_at": r.created_at, "vulnerable": r.vulnerable,
                 "terminal": r.terminal} for r in rows]
    if view == "demand":
        size = int(q["size"])
        result = demand(windows.buckets(since=now - WEEK - 3600 - size - 60, partitions=(p,)),
                        size, now, config.force.zone())
        return {"start": result["start"], "end": result["end"],
                "retained_from": windows.retained_from(p),
                "current": counts_to_json(result["current"]),  # type: ignore[arg-type]
                "last_week": counts_to_json(result["last_week"])}  # type: ignore[arg-type]
    raise ValueError(f"unknown view {view!r}")


async def gather(view: str, q: Mapping[str, str]) -> Gathered:
    """Answers for every partition, from this worker and from the owners of the rest."""
    everything = set(range(settings.topic_partitions))
    got = Gathered(answers=answer_local(view, everything, q))
    me = str(app.conf.canonical_url).rstrip("/")
    asks = []
    for url, topics in app.router.table_metadata(incidents.name).items():
        theirs = {p for ps in topics.values() for p in ps} - set(got.answers)
        if theirs and str(url).rstrip("/") != me:
            asks.append((str(url).rstrip("/"), sorted(theirs)))
    if asks:
        # Workers share the view token: another worker's /internal view needs it too.
        headers = {"Authorization": f"Bearer {view_token}"} if view_token else {}
        async with httpx.AsyncClient(timeout=TIMEOUT_S, headers=headers) as client:
            replies = await asyncio.gather(*(_ask(client, url, view, ps, q) for url, ps in asks))
        for reply in replies:
            for p, a in reply.items():
                got.answers.setdefault(p, a)
    got.missing = sorted(everything - set(got.answers))
    return got


async def _ask(client: httpx.AsyncClient, url: str, view: str, partitions: list[int],
               q: Mapping[str, str]) -> Answer:
    params = {**q, "view": view, "partitions": ",".join(map(str, partitions))}
    try:
        response = await client.get(f"{url}/internal/partitions", params=params)
        response.raise_for_status()
        return {int(p): a for p, a in response.json()["answers"].items()}
    except (httpx.HTTPError, ValueError, KeyError):
        return {}  # that owner's partitions are reported missing


async def stream_now() -> float:
    """"Now" for a force-wide view: the wall clock, or in event mode the latest call time
    of any partition, less the grace (what each worker's own clock is, force-wide)."""
    if settings.clock == "wall":
        return windows.display_now()
    marks = [m for m in (await gather("clock", {})).answers.values() if m is not None]
    return max(marks) - config.windows.grace_seconds if marks else windows.display_now()
