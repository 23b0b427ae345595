"""The simulator's engine: ``python -m benchmarks.scenario_engines``.

It justifies the simulator's event loop (issue 13: "use SimPy, or a heap-based loop if
you measure it faster — say which and why"): the same M/M/c call queue (by default the worked
example, 14 agents, 200 calls an hour, 180 s handling, 300,000 calls, the same seeded draws) runs
on :class:`scenarios.engine.EventLoop` (:func:`scenarios.callcentre.simulate_queue`) and on
SimPy (a ``Resource`` with one process per caller, the way SimPy models a queue), alternating
for ``--rounds`` rounds; it prints each run's wall time, the best of each, the ratio and the
load average beside them, and both runs' service level (they must agree: same callers).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Generator, Sequence
from typing import Any

import numpy as np

from scenarios.callcentre import simulate_queue
from scenarios.rng import streams


def simpy_queue(
    agents: int,
    calls_per_hour: float,
    aht_s: float,
    *,
    calls: int,
    seed: int,
    patience_s: float | None = None,
    target_s: float = 20.0,
) -> float:
    """The queue of :func:`scenarios.callcentre.simulate_queue` on SimPy, with the same draws
    (no warm-up, so every call counts); returns the service level within ``target_s``."""
    import simpy

    rs = streams(seed, 0)
    inter = rs.arrivals.exponential(3600.0 / calls_per_hour, calls).tolist()
    handle = rs.efforts.exponential(aht_s, calls).tolist()
    patience = (
        rs.patience.exponential(patience_s, calls).tolist() if patience_s is not None else None
    )
    env = simpy.Environment()
    desk = simpy.Resource(env, capacity=agents)
    within = [0]

    def caller(i: int) -> Generator[Any, Any, None]:
        arrived = env.now
        with desk.request() as req:
            if patience is None:
                yield req
            else:
                got = yield req | env.timeout(patience[i])
                if req not in got:
                    return  # hung up
            if env.now - arrived <= target_s:
                within[0] += 1
            yield env.timeout(handle[i])

    def source() -> Generator[Any, Any, None]:
        for i in range(calls):
            yield env.timeout(inter[i])
            env.process(caller(i))

    env.process(source())
    env.run()
    return within[0] / calls


def run_engines(args: argparse.Namespace) -> int:
    heap_s: list[float] = []
    simpy_s: list[float] = []
    sl_heap = sl_simpy = float("nan")
    print(
        f"M/M/{args.agents}{'+M' if args.patience else ''}: {args.calls:,} calls, "
        f"{args.calls_per_hour:g} calls/h, AHT {args.aht:g} s"
        + (f", patience {args.patience:g} s" if args.patience else "")
    )
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for r in range(args.rounds):
        t0 = time.perf_counter()
        stats = simulate_queue(
            args.agents,
            args.calls_per_hour,
            args.aht,
            patience_s=args.patience,
            calls=args.calls,
            seed=args.seed,
            warmup=0,
        )
        heap_s.append(time.perf_counter() - t0)
        sl_heap = stats.service_level(20.0)
        t0 = time.perf_counter()
        sl_simpy = simpy_queue(
            args.agents,
            args.calls_per_hour,
            args.aht,
            calls=args.calls,
            seed=args.seed,
            patience_s=args.patience,
        )
        simpy_s.append(time.perf_counter() - t0)
        print(f"round {r + 1}: heap EventLoop {heap_s[-1]:.2f} s   SimPy {simpy_s[-1]:.2f} s")
    best_heap, best_simpy = min(heap_s), min(simpy_s)
    load = os.getloadavg()
    print(
        f"best: heap EventLoop {best_heap:.2f} s ({args.calls / best_heap:,.0f} calls/s), "
        f"SimPy {best_simpy:.2f} s ({args.calls / best_simpy:,.0f} calls/s); "
        f"SimPy / heap = {best_simpy / best_heap:.2f}x"
    )
    print(f"median ratio: {float(np.median(np.array(simpy_s) / np.array(heap_s))):.2f}x")
    print(f"service level within 20 s: heap {sl_heap:.4f}, SimPy {sl_simpy:.4f}")
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scenario_engines", description=__doc__
    )
    engines = parser.add_argument_group("the heap EventLoop against SimPy")
    engines.add_argument("--calls", type=int, default=300_000, help="calls (default 300,000)")
    engines.add_argument("--agents", type=int, default=14, help="agents (default 14)")
    engines.add_argument(
        "--calls-per-hour", type=float, default=200.0, help="arrival rate (default 200)"
    )
    engines.add_argument("--aht", type=float, default=180.0, help="handling time, s (default 180)")
    engines.add_argument(
        "--patience", type=float, default=None, help="mean patience, s (default: none, M/M/c)"
    )
    engines.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    engines.add_argument("--seed", type=int, default=1, help="seed (default 1)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    return run_engines(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
