"""The measurements, over real HTTP with one keep-alive session per server.

Only the HTTP exchange is timed (``time.perf_counter`` around the request, the
response body fully read): envelopes are generated and serialised before the
clock starts, and responses are parsed and checked after it stops.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass, field

import orjson
import requests

import stixgen
from servers import TAXII, Server

ENVELOPE_SIZE = 1000
WINDOW = 10  # envelopes: ingest "at a fill level" is the rate over the last WINDOW before it


class BudgetExceeded(Exception):
    """A step took longer than the time budget given to it."""


@dataclass
class Filler:
    """Posts envelopes to one server, and remembers every object id it stored."""

    server: Server
    session: requests.Session
    seed: int
    request_timeout: float
    ids: list[str] = field(default_factory=list)
    next_envelope: int = 0

    @property
    def stored(self) -> int:
        return len(self.ids)

    def fill_to(self, level: int, *, budget: float | None) -> dict:
        """Post envelopes until ``level`` objects are stored; return the timings.

        Stops early, with ``stopped`` set, once the step has taken ``budget`` seconds.
        """
        seconds: list[float] = []
        started = time.perf_counter()
        stopped = None
        while self.stored < level:
            objects = stixgen.envelope_objects(self.seed, self.next_envelope, ENVELOPE_SIZE)
            body = stixgen.envelope_bytes(objects)
            seconds.append(self._post(body, objects))
            self.next_envelope += 1
            self.ids.extend(obj["id"] for obj in objects)
            if budget is not None and time.perf_counter() - started > budget and self.stored < level:
                stopped = f"fill step stopped after {time.perf_counter() - started:.0f} s (budget {budget:.0f} s)"
                break
        window = seconds[-WINDOW:]
        return {
            "stored": self.stored,
            "envelopes": len(seconds),
            "envelope_seconds": seconds,
            "step_objects_per_s": _rate(len(seconds) * ENVELOPE_SIZE, sum(seconds)),
            "objects_per_s": _rate(len(window) * ENVELOPE_SIZE, sum(window)),
            "window_envelopes": len(window),
            "wall_seconds": time.perf_counter() - started,
            "stopped": stopped,
        }

    def _post(self, body: bytes, objects: list[dict]) -> float:
        headers = {"Content-Type": TAXII}
        start = time.perf_counter()
        response = self.session.post(self.server.objects_url, data=body, headers=headers,
                                     timeout=self.request_timeout)
        elapsed = time.perf_counter() - start
        if response.status_code != 202:
            raise RuntimeError(f"{self.server.name}: POST answered {response.status_code}: "
                               f"{response.text[:500]}")
        status = orjson.loads(response.content)
        if status.get("success_count") != len(objects) or status.get("failure_count"):
            raise RuntimeError(f"{self.server.name}: not every object was stored: "
                               f"{orjson.dumps({k: v for k, v in status.items() if k != 'successes'})[:800]!r}")
        return elapsed


def get_objects(server: Server, session: requests.Session, ids: list[str], *, samples: int,
                budget: float | None, seed: int, request_timeout: float) -> dict:
    """Time GET of single objects by id, for ``samples`` random stored ids (or until budget)."""
    rng = random.Random(f"get:{seed}:{len(ids)}")
    chosen = [ids[rng.randrange(len(ids))] for _ in range(samples + 2)]
    for object_id in chosen[:2]:  # warm-up, not counted
        _get_one(server, session, object_id, request_timeout)
    latencies: list[float] = []
    started = time.perf_counter()
    for object_id in chosen[2:]:
        latencies.append(_get_one(server, session, object_id, request_timeout))
        if budget is not None and len(latencies) >= 5 and time.perf_counter() - started > budget:
            break
    ordered = sorted(latencies)
    return {
        "samples": len(latencies),
        "median_ms": statistics.median(ordered) * 1000,
        "p95_ms": ordered[max(0, -(-95 * len(ordered) // 100) - 1)] * 1000,  # nearest rank
        "max_ms": ordered[-1] * 1000,
        "latencies_ms": [round(x * 1000, 3) for x in latencies],
        "truncated_by_budget": len(latencies) < samples,
    }


def _get_one(server: Server, session: requests.Session, object_id: str, timeout: float) -> float:
    start = time.perf_counter()
    response = session.get(server.object_url(object_id), timeout=timeout)
    elapsed = time.perf_counter() - start
    if response.status_code != 200 or object_id.encode() not in response.content:
        raise RuntimeError(f"{server.name}: GET {object_id} answered {response.status_code}: "
                           f"{response.text[:300]}")
    return elapsed


def page_all(server: Server, session: requests.Session, *, expected: int, limit: int,
             request_timeout: float, budget: float | None, url: str | None = None) -> dict:
    """Page through the whole collection with ``limit`` and ``next``; time every request.

    ``url`` pages another listing of the collection, such as its manifest, instead of
    its objects.
    """
    seconds: list[float] = []
    count, cursor = 0, None
    started = time.perf_counter()
    stopped = None
    while True:
        params = {"limit": str(limit)}
        if cursor:
            params["next"] = cursor
        start = time.perf_counter()
        try:
            response = session.get(url or server.objects_url, params=params,
                                   timeout=request_timeout)
        except requests.Timeout:
            stopped = f"a page request timed out after {request_timeout:.0f} s"
            break
        seconds.append(time.perf_counter() - start)
        if response.status_code != 200:
            raise RuntimeError(f"{server.name}: listing answered {response.status_code}: "
                               f"{response.text[:300]}")
        page = orjson.loads(response.content)
        count += len(page.get("objects", ()))
        cursor = page.get("next")
        if not page.get("more"):
            break
        if not cursor:
            raise RuntimeError(f"{server.name}: more=true without next")
        if budget is not None and time.perf_counter() - started > budget:
            stopped = f"paging stopped after {time.perf_counter() - started:.0f} s (budget)"
            break
    complete = stopped is None
    if complete and count != expected:
        raise RuntimeError(f"{server.name}: paging returned {count} objects, {expected} stored")
    return {
        "objects": count,
        "pages": len(seconds),
        "seconds": sum(seconds),
        "objects_per_s": _rate(count, sum(seconds)) if complete else None,
        "first_page_ms": seconds[0] * 1000 if seconds else None,
        "page_ms_median": statistics.median(seconds) * 1000 if seconds else None,
        "complete": complete,
        "stopped": stopped,
    }


def _rate(objects: int, seconds: float) -> float | None:
    return objects / seconds if seconds > 0 else None
