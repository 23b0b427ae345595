"""CPU accounting of a run: on a shared 2-core machine wall-clock figures move with everyone
else's load, CPU seconds per request much less, so both are reported. It reads the CPU time of
the server's process tree, the database's backends, this process (the load generator) and the
whole machine from Linux /proc, and the server's own latency histogram from its /metrics."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.harness.routes import ASSIGN_PATH

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def proc_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds used) of a process, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _CLK_TCK


def process_tree(root: int) -> set[int]:
    """``root`` and all its descendants (the launcher, uvicorn's supervisor, its workers)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := proc_stat(int(entry.name))) is not None:
            parents[int(entry.name)] = stat[0]
    found = {root}
    grew = True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in found} - found
        found |= more
        grew = bool(more)
    return found


def cpu_of(pids: set[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        if (stat := proc_stat(pid)) is not None:
            out[pid] = stat[1]
    return out


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all processes, all cores) since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / _CLK_TCK


def scrape_latency_buckets(
    base: str, route: str = ASSIGN_PATH, method: str = "POST"
) -> dict[float, float]:
    """Cumulative counts of the server's own latency histogram for ``method`` ``route``
    (``switchboard_http_request_duration_seconds``): upper bound in seconds -> requests."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(base + "/metrics", timeout=10.0).text
    out: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "switchboard_http_request_duration_seconds":
            continue
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name.endswith("_bucket")
                and labels.get("method") == method
                and labels.get("route") == route
            ):
                out[float(labels["le"])] = out.get(float(labels["le"]), 0.0) + sample.value
    return out


def bucket_percentile(buckets: dict[float, float], q: float) -> float:
    """The ``q``-th percentile (ms) of a cumulative histogram, interpolated within buckets."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0.0
    if total <= 0:
        return float("nan")
    target = q / 100.0 * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= target:
            if bound == float("inf"):
                return lower * 1000.0  # beyond the last finite bucket: a lower bound
            share = (target - below) / (count - below) if count > below else 1.0
            return (lower + (bound - lower) * share) * 1000.0
        lower, below = bound, count
    return lower * 1000.0


@dataclass(frozen=True)
class Measures:
    """What one measured run cost, by whom (CPU seconds), and the server's own view of its
    latency (a histogram delta from ``/metrics``; one worker's view when there are several)."""

    server: float
    database: float  # PostgreSQL backends serving the benchmark database (0 for SQLite)
    client: float  # this process: the load generator
    machine: float  # everything on the machine, other engineers' work included
    server_latency: dict[float, float] | None = None

    def plus(self, other: Measures) -> Measures:
        """Both windows' costs summed, as one window would have measured them (a latency
        histogram only when both windows have one: cumulative counts add bucket by bucket)."""
        latency = None
        if self.server_latency is not None and other.server_latency is not None:
            latency = {
                le: self.server_latency.get(le, 0.0) + other.server_latency.get(le, 0.0)
                for le in self.server_latency.keys() | other.server_latency.keys()
            }
        return Measures(
            server=self.server + other.server,
            database=self.database + other.database,
            client=self.client + other.client,
            machine=self.machine + other.machine,
            server_latency=latency,
        )


class Probe:
    """Samples the CPU time of the server's process tree, the database's backends and this
    process, and optionally the server's latency histogram, at the start and end of a run."""

    def __init__(
        self,
        server_pid: int,
        db_pids: Callable[[], set[int]] | None = None,
        metrics_base: str | None = None,
        route: tuple[str, str] = ("POST", ASSIGN_PATH),
    ) -> None:
        self.server_pid = server_pid
        self.db_pids = db_pids
        self.metrics_base = metrics_base
        self.method, self.route = route
        self._start: tuple[dict[int, float], dict[int, float], float, float] | None = None
        self._buckets: dict[float, float] = {}

    def _sample(self) -> tuple[dict[int, float], dict[int, float], float, float]:
        db = cpu_of(self.db_pids()) if self.db_pids else {}
        return (
            cpu_of(process_tree(self.server_pid)),
            db,
            time.process_time(),
            machine_busy_seconds(),
        )

    def start(self) -> None:
        if self.metrics_base:
            self._buckets = scrape_latency_buckets(self.metrics_base, self.route, self.method)
        self._start = self._sample()

    def stop(self) -> Measures:
        assert self._start is not None, "start() first"
        server0, db0, client0, machine0 = self._start
        server1, db1, client1, machine1 = self._sample()
        latency = None
        if self.metrics_base:
            after = scrape_latency_buckets(self.metrics_base, self.route, self.method)
            latency = {le: n - self._buckets.get(le, 0.0) for le, n in after.items()}
        # A backend that appeared during the run counts from zero; one that left is lost
        # (pool overflow connections come and go: a small undercount).
        return Measures(
            server=sum(t - server0.get(pid, 0.0) for pid, t in server1.items()),
            database=sum(t - db0.get(pid, 0.0) for pid, t in db1.items()),
            client=client1 - client0,
            machine=machine1 - machine0,
            server_latency=latency,
        )
