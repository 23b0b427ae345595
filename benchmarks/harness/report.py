"""The report of the assignment benchmark: its tables, their legends, the target line and the
machine note printed beside every figure (the load generator shares the server's cores, and a
development machine is shared with whatever else runs)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from rich.table import Table

from benchmarks.harness.load import (
    TARGET_BACKEND,
    TARGET_CONCURRENCY,
    TARGET_P99_MS,
    TARGET_RATE,
    RunResult,
)
from benchmarks.harness.routes import BASELINE_PATH


def results_table(results: Sequence[RunResult]) -> Table:
    table = Table(title="POST /v1/tickets/{id}/assign under load (200 agents)")
    columns = (
        "backend",
        "workers",
        "clients",
        "load",
        "answered",
        "queued",
        "errors",
        "assign/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "server p50/p99",
        "server CPU ms",
        "PG CPU ms",
        "client CPU ms",
        "others' cores",
        "CPU ceiling /s",
        "target",
    )
    for name in columns:
        table.add_column(name, justify="left" if name in ("backend", "target") else "right")
    for r in results:
        is_target_row = r.backend == TARGET_BACKEND and r.concurrency == TARGET_CONCURRENCY
        verdict = ("[green]met[/]" if r.meets_target else "[red]missed[/]") if is_target_row else ""
        table.add_row(
            r.backend,
            str(r.workers),
            str(r.concurrency),
            r.load,
            str(r.ok),
            str(r.queued),
            str(r.errors),
            f"{r.throughput:.0f}",
            f"{r.percentile(50):.1f}",
            f"{r.percentile(99):.1f}",
            f"{r.percentile(100):.1f}",
            (
                f"{r.server_percentile(50):.1f}/{r.server_percentile(99):.1f}"
                if r.cpu is not None and r.cpu.server_latency
                else "-"
            ),
            f"{r.cpu_ms_per_request('server'):.2f}",
            f"{r.cpu_ms_per_request('database'):.2f}" if r.backend == "postgresql" else "-",
            f"{r.cpu_ms_per_request('client'):.2f}",
            f"{r.cpu_ms_per_request('others'):.2f}",
            f"{r.cpu_ceiling():.0f}",
            verdict,
        )
    return table


def baseline_table(results: Sequence[RunResult]) -> Table:
    """The bare GET measured beside each closed-loop run, and the assignment as ratios to it."""
    table = Table(
        title=f"GET {BASELINE_PATH} beside it (same server, clients and duration), and the "
        "assignment as ratios to it"
    )
    columns = (
        "backend",
        "workers",
        "clients",
        "errors",
        "GET/s",
        "p50 ms",
        "p99 ms",
        "server p50/p99",
        "server CPU ms",
        "PG CPU ms",
        "others' cores",
        "assign CPU x GET",
        "assign/s / GET/s",
    )
    for name in columns:
        table.add_column(name, justify="left" if name == "backend" else "right")
    for r in results:
        if (g := r.baseline) is None:
            continue
        table.add_row(
            g.backend,
            str(g.workers),
            str(g.concurrency),
            str(g.errors),
            f"{g.throughput:.0f}",
            f"{g.percentile(50):.1f}",
            f"{g.percentile(99):.1f}",
            (
                f"{g.server_percentile(50):.1f}/{g.server_percentile(99):.1f}"
                if g.cpu is not None and g.cpu.server_latency
                else "-"
            ),
            f"{g.cpu_ms_per_request('server'):.2f}",
            f"{g.cpu_ms_per_request('database'):.2f}" if g.backend == "postgresql" else "-",
            f"{g.cpu_ms_per_request('others'):.2f}",
            f"{r.cpu_ratio():.2f}",
            f"{r.throughput_ratio():.2f}",
        )
    return table


BASELINE_LEGEND = (
    "The GET runs right after the assignment run of its row, closed loop. assign CPU x GET: "
    "server CPU per assignment / server CPU per GET; assign/s / GET/s: throughputs. The GET "
    "pays the same HTTP layer (auth, gate, rate limiter, idempotency, metrics, routing) and one "
    "primary-key read, but its route is a plain def run on the thread pool (a hand-off the "
    "async assignment route does not pay): see python -m benchmarks.http_profile."
)


def target_line(results: Sequence[RunResult]) -> str:
    rows = [
        r for r in results if r.backend == TARGET_BACKEND and r.concurrency == TARGET_CONCURRENCY
    ]
    goal = (
        f">= {TARGET_RATE:.0f} assignments/s with p99 <= {TARGET_P99_MS:.0f} ms at "
        f"{TARGET_CONCURRENCY} clients on PostgreSQL"
    )
    if not rows:
        return f"Target {goal}: not measured in this run."
    parts = []
    for closed in (True, False):
        mine = [r for r in rows if (r.offered_rate is None) is closed]
        if not mine:
            continue
        best = max(mine, key=lambda r: (r.meets_target, r.throughput))
        mode = "closed loop" if closed else f"open loop at {best.offered_rate:.0f}/s"
        parts.append(
            f"{mode} {'MET' if best.meets_target else 'MISSED'} (best: {best.workers} "
            f"worker(s), {best.throughput:.0f}/s, p99 {best.percentile(99):.1f} ms)"
        )
    return f"Target {goal}: " + "; ".join(parts)


def machine_note() -> str:
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; "
        "the load generator runs on the same cores as the server."
    )


LEGEND = (
    "p50/p99: as the clients saw them; server p50/p99: the app's own /metrics histogram (one "
    "worker only), the gap is queueing in uvicorn and the generator. CPU ms: per answered "
    "request, of the server processes, PostgreSQL backends (an undercount when the pool opens "
    "and closes overflow connections) and the load generator. others' cores: what the rest of "
    "the machine used meanwhile. CPU ceiling: 2 cores / (server + database + generator CPU per "
    "assignment), the rate an otherwise idle 2-core machine could sustain at this cost."
)


@dataclass
class Comparison:
    """One configuration measured against two source trees in one sitting: ``rounds[i]`` holds
    tree A's and tree B's run of round ``i``, taken back to back (A B, B A, A B, ...) so that a
    change in the machine's load reaches both."""

    backend: str
    workers: int
    concurrency: int
    offered_rate: float | None
    rounds: list[tuple[RunResult, RunResult]]

    @property
    def a(self) -> RunResult:
        return RunResult.combined([a for a, _ in self.rounds])

    @property
    def b(self) -> RunResult:
        return RunResult.combined([b for _, b in self.rounds])

    def ratio(self, figure: str) -> float:
        """B's figure over A's: ``"cpu"`` (server CPU ms per assignment), ``"throughput"``
        (assignments/s) or ``"p99"`` (ms, as the clients saw it); NaN when A's is not > 0."""
        a, b = self.a, self.b
        values = {
            "cpu": (a.cpu_ms_per_request("server"), b.cpu_ms_per_request("server")),
            "throughput": (a.throughput, b.throughput),
            "p99": (a.percentile(99), b.percentile(99)),
        }
        base, other = values[figure]
        return other / base if base > 0 else float("nan")

    def cpu_ratio_per_round(self) -> list[float]:
        """The server CPU ratio B/A of each round alone: its spread is the noise of the figure."""
        out = []
        for a, b in self.rounds:
            base = a.cpu_ms_per_request("server")
            out.append(b.cpu_ms_per_request("server") / base if base > 0 else float("nan"))
        return out


def comparison_table(comparisons: Sequence[Comparison], labels: tuple[str, str]) -> Table:
    """Each configuration's figures per tree (its rounds pooled), then B/A."""
    table = Table(
        title=f"POST /v1/tickets/{{id}}/assign, A = {labels[0]} against B = {labels[1]}, "
        "alternating in one sitting"
    )
    columns = (
        "backend",
        "workers",
        "clients",
        "load",
        "tree",
        "rounds",
        "answered",
        "errors",
        "assign/s",
        "p50 ms",
        "p99 ms",
        "server CPU ms",
        "PG CPU ms",
        "others' cores",
    )
    for name in columns:
        table.add_column(name, justify="left" if name in ("backend", "tree") else "right")
    for c in comparisons:
        for tree, r in (("A", c.a), ("B", c.b)):
            table.add_row(
                r.backend,
                str(r.workers),
                str(r.concurrency),
                r.load,
                tree,
                str(len(c.rounds)),
                str(r.ok),
                str(r.errors),
                f"{r.throughput:.0f}",
                f"{r.percentile(50):.1f}",
                f"{r.percentile(99):.1f}",
                f"{r.cpu_ms_per_request('server'):.2f}",
                f"{r.cpu_ms_per_request('database'):.2f}" if r.backend == "postgresql" else "-",
                f"{r.cpu_ms_per_request('others'):.2f}",
            )
        table.add_row(
            c.backend,
            str(c.workers),
            str(c.concurrency),
            c.a.load,
            "B/A",
            "",
            "",
            "",
            f"{c.ratio('throughput'):.2f}",
            "",
            f"{c.ratio('p99'):.2f}",
            f"{c.ratio('cpu'):.2f}",
            "",
            "",
            end_section=True,
        )
    return table


def comparison_lines(comparisons: Sequence[Comparison]) -> list[str]:
    """One line per configuration: the ratios the issue's target is read from, and the
    per-round CPU ratios that show how far to trust them."""
    return [
        f"{c.backend} workers={c.workers} clients={c.concurrency} {c.a.load}: server CPU per "
        f"assignment B/A {c.ratio('cpu'):.2f} (rounds: "
        + ", ".join(f"{x:.2f}" for x in c.cpu_ratio_per_round())
        + f"), assign/s B/A {c.ratio('throughput'):.2f}, p99 B/A {c.ratio('p99'):.2f}"
        for c in comparisons
    ]


COMPARISON_LEGEND = (
    "Both servers run side by side on the same database (seeded by this checkout), with the "
    "same interpreter and dependencies; the load alternates between them, one run at a time, "
    "each run preceded by resetting the ticket pool. Figures per tree pool its rounds. server "
    "CPU ms: per answered assignment, of that tree's server processes. B/A below 1 is B "
    "cheaper (CPU), slower (assign/s) or faster (p99)."
)
