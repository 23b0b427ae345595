"""The queue as flat numpy arrays: who may take what, and what each pairing costs.

Everything the optimizer's layers share is computed here once, vectorized:

- per agent: eligibility (available, working time left, a free slot), free slots
  (``capacity - open_tickets``), working minutes in the horizon, backlog;
- per channel an agent caps (``Agent.channel_capacity``): the agent's free slots of that channel
  (``chan_slots``, :data:`UNCAPPED` where the agent has no cap), and per ticket its capped
  channel's row (``chan_of``, -1 when nobody caps its channel);
- per ticket: effort, priority weight, deadlines as minutes since ``now`` (floored, as
  :func:`solver.validation.evaluate` does), owner and previous agent as agent rows;
- the qualified pairs ``(pair_ticket[p], pair_agent[p])`` from the agents' skill levels
  (a sparse join on each ticket's rarest skill, :func:`qualified_pairs`), with each
  pair's exact cost parts except lateness, and a lateness *lower bound*: the ticket's breaches
  and lateness if the agent started it first, right after their backlog. Any schedule starts it
  no earlier, so pair costs never overstate the true objective — which makes the min-cost flow
  over them a lower bound on every valid plan's objective.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from solver.availability import CalendarBank, Clock, bank_for
from solver.objective import ObjectiveWeights
from solver.problem import AgentStatus, Problem, TeamScope
from solver.timegrid import MINUTE

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

NO_DEADLINE = np.iinfo(np.int64).max // 4  # far beyond any finish minute; never late
UNCAPPED = np.iinfo(np.int64).max // 4  # channel slots of an agent who does not cap the channel
_CANDIDATES = 4_000_000  # candidate pairs per qualification chunk (bounds peak memory)


@dataclass(frozen=True)
class BatchData:
    problem: Problem
    weights: ObjectiveWeights
    bank: CalendarBank
    # agents
    eligible: BoolArray
    slots: IntArray  # free ticket slots: max(0, capacity - open_tickets)
    open_tickets: IntArray
    total: IntArray  # working minutes in the horizon
    backlog: IntArray
    free_start: IntArray  # wall minute at which new work can start (after the backlog)
    # tickets
    effort: IntArray
    pw: IntArray  # priority weight
    fr_due: IntArray  # NO_DEADLINE when none
    res_due: IntArray
    owner: IntArray  # agent row, -1 none, -2 someone not in this problem
    previous: IntArray
    # qualified pairs, sorted by ticket then agent
    pair_ticket: IntArray
    pair_agent: IntArray
    pair_key: IntArray  # ticket * n_agents + agent, sorted: finds a pair by searchsorted
    pair_static: IntArray  # waste + churn + discontinuity of giving the ticket to the agent
    pair_late_lb: IntArray  # breach + lateness lower bound (ticket first on the agent)
    pair_waste: IntArray  # skill levels above need, unweighted
    queue_cost: IntArray  # per ticket: leaving it with the team queue
    skill_qualified: IntArray  # per ticket: agents with the skills, eligible or not
    # channels some agent caps: per channel row x agent, free slots of it (UNCAPPED: no cap)
    channels: tuple[str, ...] = ()
    chan_slots: IntArray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))
    # per ticket: its channel's row, or -1
    chan_of: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def clock(self) -> Clock:
        return self.bank.clock

    @property
    def n_agents(self) -> int:
        return len(self.slots)

    @property
    def n_tickets(self) -> int:
        return len(self.effort)

    @property
    def pair_cost(self) -> IntArray:
        return self.pair_static + self.pair_late_lb

    def channel_fits(self, agent: int, tickets: list[int] | IntArray, add: int) -> bool:
        """Whether ``agent`` holding the new ``tickets`` plus ticket ``add`` stays within the
        cap of ``add``'s channel (always, when the channel is not capped for them)."""
        if not self.channels:
            return True
        c = int(self.chan_of[add])
        if c < 0:
            return True
        cap = int(self.chan_slots[c, agent])
        if cap >= UNCAPPED:
            return True
        held = int(np.count_nonzero(self.chan_of[np.asarray(tickets, dtype=np.int64)] == c))
        return held + 1 <= cap

    def channel_ok(self, agent: int, tickets: list[int] | IntArray) -> bool:
        """Whether the new ``tickets`` of ``agent`` keep every capped channel within its cap."""
        if not self.channels or len(tickets) == 0:
            return True
        counts = np.bincount(
            self.chan_of[np.asarray(tickets, dtype=np.int64)] + 1, minlength=len(self.channels) + 1
        )[1:]
        return bool((counts <= self.chan_slots[:, agent]).all())

    def load_cost(self, agent: int, new: int) -> int:
        o = int(self.open_tickets[agent])
        return self.weights.load * ((o + new) ** 2 - o * o)

    def late_cost(self, tickets: IntArray, start: IntArray, end: IntArray) -> IntArray:
        """Exact breach + lateness cost of ``tickets`` started/ended at these wall minutes."""
        w = self.weights
        fl = np.maximum(0, start - self.fr_due[tickets])
        rl = np.maximum(0, end - self.res_due[tickets])
        per = w.breach * ((fl > 0).astype(np.int64) + (rl > 0)) + w.lateness_per_minute * (fl + rl)
        return np.asarray(self.pw[tickets] * per, dtype=np.int64)


def _agent_rows(ids: list[str | None], index: dict[str, int]) -> IntArray:
    return np.fromiter(
        (-1 if x is None else index.get(x, -2) for x in ids), dtype=np.int64, count=len(ids)
    )


def _deadlines(values: list[datetime | None], problem: Problem) -> IntArray:
    now = problem.now
    # to_minute(d, now), inlined: one call per ticket is a third of this at 100,000 tickets.
    return np.fromiter(
        (NO_DEADLINE if d is None else (d - now) // MINUTE for d in values),
        dtype=np.int64,
        count=len(values),
    )


def team_rows(problem: Problem) -> tuple[IntArray, IntArray]:
    """Each agent's and each ticket's team as a row number shared by both."""
    row: dict[str, int] = {}
    a_team = np.fromiter(
        (row.setdefault(a.team, len(row)) for a in problem.agents),
        dtype=np.int64,
        count=len(problem.agents),
    )
    t_team = np.fromiter(
        (row.setdefault(t.team, len(row)) for t in problem.tickets),
        dtype=np.int64,
        count=len(problem.tickets),
    )
    return a_team, t_team


def _pair_scope(
    problem: Problem, pair_ticket: IntArray, pair_agent: IntArray
) -> tuple[IntArray, BoolArray] | None:
    """Per pair, its ticket's team scope (0 none, 1 team_only, 2 borrow) and whether the agent
    is of the ticket's team; None when no team has a scope."""
    scopes = problem.team_scope
    if not scopes:
        return None
    code = {TeamScope.TEAM_ONLY: 1, TeamScope.BORROW: 2}
    scope = np.fromiter(
        (code.get(scopes[t.team], 0) if t.team in scopes else 0 for t in problem.tickets),
        dtype=np.int64,
        count=len(problem.tickets),
    )
    a_team, t_team = team_rows(problem)
    return scope[pair_ticket], a_team[pair_agent] == t_team[pair_ticket]


def scope_pairs(problem: Problem, pair_ticket: IntArray, pair_agent: IntArray) -> BoolArray | None:
    """Which qualified pairs the tickets' team scopes allow (None: all of them): a
    ``team_only`` ticket pairs with its own team's agents only. A ``borrow`` ticket pairs with
    everyone, and each pair with another team's agent costs ``ObjectiveWeights.borrow``
    (:func:`borrowed_pairs`), so its own team's agents come first while they have room."""
    found = _pair_scope(problem, pair_ticket, pair_agent)
    if found is None:
        return None
    scope, same = found
    keep: BoolArray = (scope != 1) | same
    return None if keep.all() else keep


def borrowed_pairs(problem: Problem, pair_ticket: IntArray, pair_agent: IntArray) -> IntArray:
    """1 for a pair that borrows (a ``borrow`` ticket, another team's agent), else 0."""
    found = _pair_scope(problem, pair_ticket, pair_agent)
    if found is None:
        return np.zeros(len(pair_ticket), dtype=np.int64)
    scope, same = found
    out: IntArray = ((scope == 2) & ~same).astype(np.int64)
    return out


def qualified_pairs(
    levels: npt.NDArray[np.int8], req_skill: IntArray, req_level: npt.NDArray[np.int8]
) -> tuple[IntArray, IntArray]:
    """Every (ticket, agent) whose skill levels meet all the ticket's requirements, sorted by
    ticket then agent.

    ``levels`` is agent x skill with a last (dummy) column at level 0; ``req_skill`` and
    ``req_level`` are ticket x requirement, short lists padded with the dummy at level 0. A
    sparse join, never a ticket x agent matrix: each ticket's candidates are the holders of its
    rarest required skill (listed once, by agent), which are then checked against all of its
    requirements. A requirement at level 0 or below (the padding) is met by every agent; a
    ticket with no other requirement has every agent as a candidate.
    """
    n_a, n_cols = levels.shape
    dummy = n_cols - 1
    n_t, k_max = req_skill.shape
    # Holders of each real skill (level >= 1), skill by skill and by agent within a skill; the
    # dummy's segment after them lists every agent.
    hold_agent, hold_skill = np.nonzero(levels[:, :dummy] > 0)
    order = np.lexsort((hold_agent, hold_skill))
    seg_agent = np.concatenate((hold_agent[order], np.arange(n_a))).astype(np.int64)
    seg_len = np.append(np.bincount(hold_skill, minlength=dummy), n_a).astype(np.int64)
    seg_start = np.concatenate(([0], np.cumsum(seg_len)[:-1])).astype(np.int64)
    # Each ticket's most selective requirement (ties: the first listed).
    eff = np.where(req_level >= 1, req_skill, dummy)
    best = np.argmin(seg_len[eff], axis=1)
    chosen = eff[np.arange(n_t), best] if n_t else np.zeros(0, dtype=np.int64)
    length = seg_len[chosen]
    ends = np.cumsum(length)
    pt_parts: list[IntArray] = []
    pa_parts: list[IntArray] = []
    lo = 0
    while lo < n_t:
        before = int(ends[lo - 1]) if lo else 0
        # Tickets up to _CANDIDATES candidates (at least one ticket) per chunk.
        hi = max(lo + 1, int(np.searchsorted(ends, before + _CANDIDATES, side="right")))
        hi = min(hi, n_t)
        ln = length[lo:hi]
        total = int(ends[hi - 1]) - before
        cand_t = np.repeat(np.arange(lo, hi, dtype=np.int64), ln)
        first = ends[lo:hi] - ln - before  # each ticket's first candidate, chunk-local
        pos = np.arange(total, dtype=np.int64) + np.repeat(seg_start[chosen[lo:hi]] - first, ln)
        cand_a = seg_agent[pos]
        ok = np.ones(total, dtype=bool)
        for k in range(k_max):
            ok &= levels[cand_a, req_skill[cand_t, k]] >= req_level[cand_t, k]
        pt_parts.append(cand_t[ok])
        pa_parts.append(cand_a[ok])
        lo = hi
    if not pt_parts:
        z = np.zeros(0, dtype=np.int64)
        return z, z.copy()
    return np.concatenate(pt_parts), np.concatenate(pa_parts)


def build(problem: Problem, weights: ObjectiveWeights) -> BatchData:
    """The arrays for ``problem``; see the module docstring.

    Every qualified pair is kept, however dense the skill matrix: pruning candidates made the
    flow a heuristic (issue 14: more tickets unassigned than the true maximum). A dense queue is
    made fast in the flow instead, by a core proven optimal with reduced costs
    (:mod:`solver.batch.reduce`).
    """
    bank = bank_for(problem)
    agents, tickets = problem.agents, problem.tickets
    n_a, n_t = len(agents), len(tickets)
    skill_col = {s: i for i, s in enumerate(problem.skill_ids)}
    n_s = len(skill_col)
    dummy = n_s  # a column every agent "has" at level 0, padding short requirement lists

    levels = np.zeros((n_a, n_s + 1), dtype=np.int8)
    for a, agent in enumerate(agents):
        for s, lvl in agent.skills.items():
            levels[a, skill_col[s]] = lvl
    # Requirements as ticket x k arrays, padded with the dummy: filled from flat lists in one
    # scatter (a Python loop of numpy item writes costs ~0.5 s at 100,000 tickets).
    n_req = np.fromiter((len(t.required_skills) for t in tickets), dtype=np.int64, count=n_t)
    k_max = max(1, int(n_req.max(initial=0)))
    req_skill = np.full((n_t, k_max), dummy, dtype=np.int64)
    req_level = np.zeros((n_t, k_max), dtype=np.int8)
    flat_skill = [skill_col[s] for t in tickets for s in t.required_skills]
    flat_level = [lvl for t in tickets for lvl in t.required_skills.values()]
    req_row = np.repeat(np.arange(n_t, dtype=np.int64), n_req)
    req_k = np.arange(len(req_row), dtype=np.int64) - np.repeat(np.cumsum(n_req) - n_req, n_req)
    req_skill[req_row, req_k] = flat_skill
    req_level[req_row, req_k] = flat_level

    open_t = np.fromiter((a.open_tickets for a in agents), dtype=np.int64, count=n_a)
    cap = np.fromiter((a.capacity for a in agents), dtype=np.int64, count=n_a)
    backlog = np.fromiter((a.backlog_minutes for a in agents), dtype=np.int64, count=n_a)
    available = np.fromiter(
        (a.status is AgentStatus.AVAILABLE for a in agents), dtype=bool, count=n_a
    )
    total = bank.total.astype(np.int64)
    slots = np.maximum(0, cap - open_t)
    eligible = available & (slots > 0) & (backlog < total)
    channels = tuple(sorted({c for a in agents for c in a.channel_capacity}))
    channel_row = {c: i for i, c in enumerate(channels)}
    chan_slots = np.full((len(channels), n_a), UNCAPPED, dtype=np.int64)
    for a, agent in enumerate(agents):
        for ch, ch_cap in agent.channel_capacity.items():
            chan_slots[channel_row[ch], a] = max(0, ch_cap - agent.channel_open.get(ch, 0))
    chan_of = np.fromiter(
        (channel_row.get(t.channel, -1) for t in tickets), dtype=np.int64, count=n_t
    )
    rows = np.arange(n_a, dtype=np.int64)
    free_start = bank.start_minute(rows, backlog) if n_a else np.zeros(0, dtype=np.int64)

    effort = np.fromiter((t.effort_minutes for t in tickets), dtype=np.int64, count=n_t)
    weight_of = {p: weights.priority_weight(p) for p in {t.priority for t in tickets}}
    pw = np.fromiter((weight_of[t.priority] for t in tickets), dtype=np.int64, count=n_t)
    fr_due = _deadlines([t.first_response_due for t in tickets], problem)
    res_due = _deadlines([t.resolution_due for t in tickets], problem)
    index = dict(problem.agent_index)
    owner = _agent_rows([t.owner_agent for t in tickets], index)
    previous = _agent_rows([t.previous_agent for t in tickets], index)

    # Qualified pairs: a sparse join (:func:`qualified_pairs`), then the agent's room and the
    # ticket's channel, checked per pair.
    cand_ticket, cand_agent = qualified_pairs(levels, req_skill, req_level)
    skill_qualified = np.bincount(cand_ticket, minlength=n_t).astype(np.int64)
    room = np.where(eligible, total - backlog, -1)
    ok = effort[cand_ticket] <= room[cand_agent]
    if channels:
        # A pair whose channel the agent caps with no free slot of it can never be used.
        ch_rows = chan_of[cand_ticket]
        none_free = chan_slots[np.maximum(ch_rows, 0), cand_agent] <= 0
        ok &= ~(none_free & (ch_rows >= 0))
    pair_ticket, pair_agent = cand_ticket[ok], cand_agent[ok]
    del cand_ticket, cand_agent, ok
    keep_scope = scope_pairs(problem, pair_ticket, pair_agent)
    if keep_scope is not None:
        pair_ticket, pair_agent = pair_ticket[keep_scope], pair_agent[keep_scope]

    waste = np.zeros(len(pair_ticket), dtype=np.int64)
    for k in range(k_max):
        sk = req_skill[pair_ticket, k]
        waste += np.maximum(
            0, levels[pair_agent, sk].astype(np.int64) - req_level[pair_ticket, k]
        ) * (sk != dummy)
    has_owner = owner[pair_ticket] != -1
    churn = has_owner & (owner[pair_ticket] != pair_agent)
    has_prev = previous[pair_ticket] != -1
    disc = has_prev & (previous[pair_ticket] != pair_agent)
    pair_static = (
        weights.expertise_waste * waste
        + weights.churn * churn.astype(np.int64)
        + weights.discontinuity * disc.astype(np.int64)
        + weights.borrow * borrowed_pairs(problem, pair_ticket, pair_agent)
    )
    start_lb = free_start[pair_agent]
    end_lb = bank.finish_minute(pair_agent, backlog[pair_agent] + effort[pair_ticket])
    fl = np.maximum(0, start_lb - fr_due[pair_ticket])
    rl = np.maximum(0, end_lb - res_due[pair_ticket])
    late_lb = pw[pair_ticket] * (
        weights.breach * ((fl > 0).astype(np.int64) + (rl > 0))
        + weights.lateness_per_minute * (fl + rl)
    )
    queue_cost = weights.unassigned * pw + weights.churn * (owner != -1).astype(np.int64)
    return BatchData(
        problem=problem,
        weights=weights,
        bank=bank,
        eligible=eligible,
        slots=slots,
        open_tickets=open_t,
        total=total,
        backlog=backlog,
        free_start=free_start,
        effort=effort,
        pw=pw,
        fr_due=fr_due,
        res_due=res_due,
        owner=owner,
        previous=previous,
        pair_ticket=pair_ticket,
        pair_agent=pair_agent,
        pair_key=pair_ticket * max(1, n_a) + pair_agent,
        pair_static=pair_static,
        pair_late_lb=late_lb,
        pair_waste=waste,
        queue_cost=queue_cost,
        skill_qualified=skill_qualified,
        channels=channels,
        chan_slots=chan_slots,
        chan_of=chan_of,
    )
