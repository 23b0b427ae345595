"""The ``switchboard`` command.

Sub-commands import their modules lazily, so ``switchboard --help`` stays fast and a command
only pays for what it uses.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _demo(args: argparse.Namespace) -> int:
    from api.demo import run_demo

    return run_demo(
        seed=args.seed,
        agents=args.agents,
        tickets=args.tickets,
        time_limit=args.time_limit,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switchboard",
        description="Scheduling and routing optimization for support teams.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo",
        help="generate a support organisation; compare the optimizer with the baselines",
    )
    demo.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    demo.add_argument("--agents", type=int, default=60, help="number of agents (default 60)")
    demo.add_argument(
        "--tickets", type=int, default=400, help="open tickets in the queue (default 400)"
    )
    demo.add_argument(
        "--time-limit",
        type=float,
        default=10.0,
        help="optimizer time limit in seconds (default 10)",
    )
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
