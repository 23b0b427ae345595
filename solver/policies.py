"""The baselines: how helpdesks route tickets today, under the optimizer's interface.

Every policy is ``policy(problem, params) -> Plan``, so benchmarks and the planner's simulator
can swap them freely; :data:`POLICIES` lists them by name, the optimizer included.

The three baselines share one greedy loop, differing only in whom they pick:

- take the tickets in priority-then-age order (most urgent first, oldest first within a
  priority) — the view every helpdesk sorts its queue by;
- a ticket that already has an owner stays with them while the owner can still take it
  (helpdesk routing only touches unowned work; ``keep_owner=False`` turns that off);
- otherwise give it to an agent who is available, has working time in the horizon, a free slot
  (``capacity - open_tickets``), enough working minutes left for its effort, and every required
  skill at level: the *next in rotation* (round-robin), the one with the *lowest load ratio*
  (least-loaded) or the *first in the list* (first-qualified);
- nobody fits: the ticket stays with its team's queue, with the reason why.

Each agent then works their new tickets in the order they received them, which is again
priority-then-age; :func:`solver.schedule.finalize_plan` turns that into start and end times.
Qualification is one boolean column test per required skill on an agents × skills level matrix,
cached per distinct requirement set, so the L instance (1,000 × 10,000) takes well under a
second.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from solver.availability import bank_for
from solver.objective import MAX_WEIGHT, ObjectiveWeights
from solver.plan import Plan, Reason, SolveStatus
from solver.problem import MAX_COUNT, AgentStatus, Problem, Ticket, _check_int
from solver.schedule import finalize_plan

BoolArray = npt.NDArray[np.bool_]
_UNCAPPED = np.iinfo(np.int64).max // 4  # free channel slots of an agent who does not cap it
# The largest ``move_saving``: one ticket's greatest unassigned penalty (the unassigned weight
# times a priority weight, each at most MAX_WEIGHT). To hold every move back, ``max_moves=0``
# says so directly.
MAX_MOVE_SAVING = MAX_WEIGHT * MAX_WEIGHT


@dataclass(frozen=True, slots=True)
class PolicyParams:
    """Knobs shared by every policy; the optimizer maps them onto its own ``BatchParams``.

    ``weights`` only changes how the plan is *scored* for a baseline (baselines do not
    optimize); ``time_limit_s`` and ``seed`` matter to the optimizer alone.

    The churn guard's knobs (the optimizer's; see :mod:`solver.batch.moves`): ``max_moves``
    (None = no budget, 0..1,000,000) caps how many owned tickets their owner could keep change
    hands — the most valuable moves are kept, and tickets whose owner cannot hold them (away,
    unqualified, full) move regardless and are not counted; ``move_saving`` (None = one
    lowest-priority ticket's unassigned penalty, 2,000 with the default weights; at least 1) is
    the SLA cost, in objective units, a move must save to be kept. The baselines never move a
    ticket its owner can hold while ``keep_owner`` is on, so they need neither. A bad value is a
    :class:`~solver.errors.ProblemError` naming the field.
    """

    weights: ObjectiveWeights = field(default_factory=ObjectiveWeights)
    keep_owner: bool = True
    time_limit_s: float = 10.0
    seed: int = 0
    max_moves: int | None = None
    move_saving: int | None = None

    def __post_init__(self) -> None:
        if self.max_moves is not None:
            _check_int(self.max_moves, "max_moves", minimum=0, maximum=MAX_COUNT)
        if self.move_saving is not None:
            _check_int(self.move_saving, "move_saving", minimum=1, maximum=MAX_MOVE_SAVING)


Policy = Callable[[Problem, "PolicyParams | None"], Plan]


def _order(tickets: tuple[Ticket, ...]) -> list[int]:
    """Ticket indices, most urgent first, oldest first within a priority; id breaks ties."""
    return sorted(
        range(len(tickets)),
        key=lambda i: (-int(tickets[i].priority), tickets[i].created_at, tickets[i].id),
    )


class _Desk:
    """The state the greedy loop walks: who can still take what."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        bank = bank_for(problem)
        agents = problem.agents
        skill_col = {s: k for k, s in enumerate(problem.skill_ids)}
        self.skill_col = skill_col
        n = len(agents)
        self.levels = np.zeros((n, len(skill_col)), dtype=np.int8)
        for a, agent in enumerate(agents):
            for s, lvl in agent.skills.items():
                self.levels[a, skill_col[s]] = lvl
        self.available = np.fromiter(
            (a.status is AgentStatus.AVAILABLE for a in agents), dtype=bool, count=n
        )
        self.total = bank.total.astype(np.int64)
        self.has_time = self.available & (self.total > 0)
        self.capacity = np.fromiter((a.capacity for a in agents), dtype=np.int64, count=n)
        self.open = np.fromiter((a.open_tickets for a in agents), dtype=np.int64, count=n)
        self.slots = np.maximum(self.capacity - self.open, 0)
        self.minutes = self.total - np.fromiter(
            (a.backlog_minutes for a in agents), dtype=np.int64, count=n
        )
        self.new = np.zeros(n, dtype=np.int64)
        # Free slots per channel some agent caps; a huge number where an agent does not cap it.
        self.channel_slots: dict[str, npt.NDArray[np.int64]] = {}
        for a, agent in enumerate(agents):
            for c, cap in agent.channel_capacity.items():
                row = self.channel_slots.setdefault(c, np.full(n, _UNCAPPED, dtype=np.int64))
                row[a] = max(0, cap - agent.channel_open.get(c, 0))
        self._qualified: dict[tuple[tuple[int, int], ...], BoolArray] = {}
        self.everyone = np.ones(n, dtype=bool)

    def qualified(self, ticket: Ticket) -> BoolArray:
        """Agents holding every required skill at level (status and load aside)."""
        key = tuple(
            sorted((self.skill_col.get(s, -1), lvl) for s, lvl in ticket.required_skills.items())
        )
        mask = self._qualified.get(key)
        if mask is None:
            mask = self.everyone.copy()
            for col, lvl in key:
                if col < 0:  # a skill nobody in this problem holds
                    mask[:] = False
                    break
                mask &= self.levels[:, col] >= lvl
            self._qualified[key] = mask
        return mask

    def fits(self, qualified: BoolArray, effort: int, channel: str | None = None) -> BoolArray:
        out: BoolArray = qualified & self.has_time & (self.slots > 0) & (self.minutes >= effort)
        room = None if channel is None else self.channel_slots.get(channel)
        if room is not None:
            out &= room > 0
        return out

    def take(self, agent: int, effort: int, channel: str | None = None) -> None:
        self.slots[agent] -= 1
        self.minutes[agent] -= effort
        self.new[agent] += 1
        room = None if channel is None else self.channel_slots.get(channel)
        if room is not None:
            room[agent] -= 1

    def why_not(
        self, qualified: BoolArray, effort: int, channel: str | None = None
    ) -> tuple[Reason, ...]:
        """Why no agent fits: the first filter that empties the candidate set, named by rule."""
        n_q = int(qualified.sum())
        if n_q == 0:
            return (Reason("qualified", "no agent has every required skill at level"),)
        working = qualified & self.has_time
        if not working.any():
            return (
                Reason(
                    "available",
                    f"{n_q} qualified agent(s), none available with working time in the horizon",
                    float(n_q),
                ),
            )
        free = working & (self.slots > 0)
        if not free.any():
            return (
                Reason(
                    "capacity",
                    f"{int(working.sum())} qualified agent(s) at work, all at capacity",
                    float(working.sum()),
                ),
            )
        room = None if channel is None else self.channel_slots.get(channel)
        if room is not None and not (free & (room > 0)).any():
            return (
                Reason(
                    "channel_capacity",
                    f"{int(free.sum())} qualified agent(s) with capacity, all at their "
                    f"{channel} capacity",
                    float(free.sum()),
                ),
            )
        if room is not None:
            free &= room > 0
        most = int(self.minutes[free].max())
        return (
            Reason(
                "working_time",
                f"needs {effort} min; the most working time a qualified agent has left is {most}",
                float(most),
            ),
        )


def _route(
    problem: Problem,
    params: PolicyParams | None,
    *,
    name: str,
    choose: Callable[[_Desk, npt.NDArray[np.int64]], int],
    rule: str,
    explain: Callable[[_Desk, int], str],
) -> Plan:
    params = params or PolicyParams()
    started = time.perf_counter()
    desk = _Desk(problem)
    tickets = problem.tickets
    sequences: dict[str, list[str]] = {}
    reasons: dict[str, list[Reason]] = {}
    queued: dict[str, tuple[Reason, ...]] = {}
    index = problem.agent_index
    for i in _order(tickets):
        ticket = tickets[i]
        effort = ticket.effort_minutes
        qualified = desk.qualified(ticket)
        owner = index.get(ticket.owner_agent) if ticket.owner_agent is not None else None
        channel = ticket.channel
        if params.keep_owner and owner is not None and desk.fits(qualified, effort, channel)[owner]:
            chosen = owner
            why = Reason("churn", "kept with its current owner, who can still take it")
        else:
            candidates = np.flatnonzero(desk.fits(qualified, effort, channel))
            if len(candidates) == 0:
                queued[ticket.id] = desk.why_not(qualified, effort, channel)
                continue
            chosen = choose(desk, candidates)
            why = Reason(rule, explain(desk, chosen), float(len(candidates)))
        desk.take(chosen, effort, channel)
        agent_id = problem.agents[chosen].id
        sequences.setdefault(agent_id, []).append(ticket.id)
        reasons[ticket.id] = [why]
    wall = time.perf_counter() - started
    return finalize_plan(
        problem,
        sequences,
        queued,
        policy=name,
        wall_seconds=wall,
        status=SolveStatus.FEASIBLE,
        reasons=reasons,
        weights=params.weights,
        params={"keep_owner": params.keep_owner},
    )


def round_robin(problem: Problem, params: PolicyParams | None = None) -> Plan:
    """Each ticket to the next agent in rotation (agent list order) who can take it."""
    pointer = [0]

    def choose(desk: _Desk, candidates: npt.NDArray[np.int64]) -> int:
        k = int(np.searchsorted(candidates, pointer[0]))
        chosen = int(candidates[k if k < len(candidates) else 0])
        pointer[0] = chosen + 1
        return chosen

    return _route(
        problem,
        params,
        name="round-robin",
        choose=choose,
        rule="policy",
        explain=lambda desk, a: "next qualified agent in the rotation",
    )


def least_loaded(problem: Problem, params: PolicyParams | None = None) -> Plan:
    """Each ticket to the qualified agent with the lowest load ratio (open + new) / capacity."""

    def choose(desk: _Desk, candidates: npt.NDArray[np.int64]) -> int:
        load = (desk.open[candidates] + desk.new[candidates]) / desk.capacity[candidates]
        return int(candidates[int(np.argmin(load))])  # argmin keeps the first on ties

    def explain(desk: _Desk, a: int) -> str:
        load = f"{int(desk.open[a] + desk.new[a])}/{int(desk.capacity[a])}"
        return f"lowest load among qualified agents ({load} open)"

    return _route(
        problem, params, name="least-loaded", choose=choose, rule="load_balance", explain=explain
    )


def first_qualified(problem: Problem, params: PolicyParams | None = None) -> Plan:
    """Each ticket to the first agent in the list who can take it."""
    return _route(
        problem,
        params,
        name="first-qualified",
        choose=lambda desk, candidates: int(candidates[0]),
        rule="policy",
        explain=lambda desk, a: "first qualified agent in the list",
    )


def optimizer(problem: Problem, params: object = None) -> Plan:
    """The batch optimizer under the policies' interface.

    Accepts the optimizer's own ``BatchParams`` as is, or maps :class:`PolicyParams` (weights,
    time limit, seed, the churn guard's ``max_moves`` and ``move_saving``) onto it. Imported
    lazily: the baselines do not pay for OR-Tools.
    """
    from solver.batch import optimize
    from solver.batch.params import BatchParams

    if isinstance(params, PolicyParams):
        params = BatchParams(
            weights=params.weights,
            time_limit_s=params.time_limit_s,
            seed=params.seed,
            max_moves=params.max_moves,
            move_saving=params.move_saving,
        )
    return optimize(problem, params)  # type: ignore[arg-type]


POLICIES: dict[str, Policy] = {
    "round-robin": round_robin,
    "least-loaded": least_loaded,
    "first-qualified": first_qualified,
    "optimizer": optimizer,
}
BASELINES: tuple[str, ...] = ("round-robin", "least-loaded", "first-qualified")
