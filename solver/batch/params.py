"""The batch optimizer's knobs, as one frozen value that travels into the plan's stats."""

from __future__ import annotations

from dataclasses import dataclass, field

from solver.objective import ObjectiveWeights


@dataclass(frozen=True, slots=True)
class BatchParams:
    """How hard and how long to optimize a queue.

    ``time_limit_s`` bounds the whole call (model building included); ``seed`` drives every
    random choice (neighbourhood picks, CP-SAT's seed), so equal params give equal plans as long
    as a run stops on ``max_neighbourhoods`` or on running out of improving neighbourhoods rather
    than on the wall clock. ``workers`` is CP-SAT's ``num_workers`` per neighbourhood.

    ``use_sequencing=False`` stops after the assignment and the list-scheduling seed (policy
    ``optimizer-seed``): the benchmark's reference for what the CP-SAT neighbourhoods add.

    Neighbourhoods: ``neighbourhood_agents`` agents sharing qualified work, at most
    ``neighbourhood_tickets`` free tickets (an agent's earlier tickets stay fixed when there are
    more), up to ``queued_candidates`` tickets from the team queue offered to them, each solved
    for at most ``neighbourhood_time_s`` wall seconds and ``neighbourhood_dtime`` of CP-SAT's
    deterministic time. ``max_neighbourhoods`` (0 = unlimited) caps how many are tried.

    Before and between neighbourhoods an exact local search (reorder, relocate, swap, queue
    exchange) takes the cheap gains: each late ticket is tried on its ``move_candidates``
    cheapest qualified agents, and its first run may use ``local_search_share`` of the time.

    ``max_pairs`` (0 = never): above this many qualified pairs (a dense skill matrix) the flow
    is solved on a sparse core and proven optimal for all pairs by reduced costs
    (:mod:`solver.batch.reduce`): the same optimum and bound as the whole network. Off by
    default: at 1,000 x 10,000 with 2.6 M pairs OR-Tools solves the whole network faster
    (2.2-2.9 s) than the core's 6-12 cold re-solves (2.7-4 s; figures: benchmarks/README.md,
    Exact at density). No pair is ever pruned: pruning made the flow a heuristic.

    Churn guard (:mod:`solver.batch.moves`): an owned ticket its owner could keep changes hands
    only when the move saves at least ``move_saving`` of SLA cost (breach penalties, weighted
    lateness and unassigned penalties, in objective units; its own or other tickets'). None
    means 1.25 times the penalty of leaving one lowest-priority ticket unassigned (2,500 with
    the default weights): a move must be worth more than keeping the least ticket out of the
    queue. With ``keep_seated`` one such seat (2,000) let churn reach 1.03-1.10x least-loaded's
    on the tight M and L benchmarks; 2,500 holds it at 0.86-0.89x while keeping 93 % of the
    lateness gain (figures: benchmarks/README.md). ``max_moves`` (None = no budget) caps how
    many moves the plan keeps — the most valuable ones, by SLA cost saved. Tickets whose owner
    cannot hold them (away, unqualified, full) move regardless and are not counted.

    ``keep_seated`` (default): the local search and CP-SAT never give up a seat — a queued
    ticket may come in or take a seated one's place, but no seated ticket goes back to the
    queue to shave others' lateness — and the churn guard sends a ticket to the queue to undo
    a move only when no other agent has room for it. The objective charges a queued ticket a
    flat penalty and no lateness, so without this the search "saves" lateness by queueing work
    that is just as late in the queue: on a dense queue (1,000 agents x 10,000 tickets, 2.6 M
    pairs) the plan left 48 tickets queued where least-loaded leaves 6. False restores the
    pure objective.
    """

    weights: ObjectiveWeights = field(default_factory=ObjectiveWeights)
    time_limit_s: float = 10.0
    seed: int = 0
    workers: int = 2
    use_sequencing: bool = True
    neighbourhood_agents: int = 3
    neighbourhood_tickets: int = 24
    queued_candidates: int = 8
    neighbourhood_time_s: float = 1.0
    neighbourhood_dtime: float = 0.3
    max_neighbourhoods: int = 0
    move_candidates: int = 12
    local_search_share: float = 0.8
    max_pairs: int = 0
    max_moves: int | None = None
    move_saving: int | None = None
    keep_seated: bool = True

    def __post_init__(self) -> None:
        if self.time_limit_s <= 0:
            raise ValueError("time_limit_s must be positive")
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if self.neighbourhood_agents < 1:
            raise ValueError("neighbourhood_agents must be at least 1")
        if self.neighbourhood_tickets < 2:
            raise ValueError("neighbourhood_tickets must be at least 2")
        if self.max_neighbourhoods < 0:
            raise ValueError("max_neighbourhoods must be >= 0 (0 = unlimited)")
        if self.max_moves is not None and self.max_moves < 0:
            raise ValueError("max_moves must be >= 0 (None = no budget)")
        if self.move_saving is not None and self.move_saving < 1:
            raise ValueError("move_saving must be at least 1 (a move must save something)")

    def min_move_saving(self) -> int:
        """The SLA cost a move must save: ``move_saving``, or 1.25 times one lowest-priority
        ticket's unassigned penalty."""
        if self.move_saving is not None:
            return self.move_saving
        least = self.weights.unassigned * min(int(v) for v in self.weights.priority.values())
        return least + least // 4

    def as_dict(self) -> dict[str, object]:
        return {
            "weights": self.weights.as_dict(),
            "time_limit_s": self.time_limit_s,
            "seed": self.seed,
            "workers": self.workers,
            "use_sequencing": self.use_sequencing,
            "neighbourhood_agents": self.neighbourhood_agents,
            "neighbourhood_tickets": self.neighbourhood_tickets,
            "queued_candidates": self.queued_candidates,
            "neighbourhood_time_s": self.neighbourhood_time_s,
            "neighbourhood_dtime": self.neighbourhood_dtime,
            "max_neighbourhoods": self.max_neighbourhoods,
            "move_candidates": self.move_candidates,
            "local_search_share": self.local_search_share,
            "max_pairs": self.max_pairs,
            "max_moves": self.max_moves,
            "keep_seated": self.keep_seated,
            "move_saving": self.move_saving,
        }
