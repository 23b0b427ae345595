"""Restore the working-minutes rule the flow relaxes: backlog + new effort <= working minutes.

The flow only counts tickets. Where an agent's assigned effort overflows their working time,
drop the tickets that buy the least per minute (``queue cost - pair cost`` over effort), then
give each dropped ticket, most valuable first, to the cheapest qualified agent that still has a
slot (of the ticket's channel too, where the agent caps it) and the minutes, or to the team
queue when that is cheaper. Rare on realistic queues (an agent's slots are usually the binding
limit), so plain Python over the few offenders is enough.

A dropped ticket whose qualified agents are all full is seated by an *ejection*
(:func:`seat_by_ejection`) when that pays: one of a qualified agent's tickets moves to another
agent with room, making room for it. The flow wanted every dropped ticket seated; without this,
a dense queue (most agents qualified for most tickets, working minutes binding) kept more
tickets in the queue than least-loaded does (19 against 6 at 2.6 M pairs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solver.batch.data import BatchData, BoolArray, IntArray


def ticket_pair_ptr(data: BatchData) -> IntArray:
    """``ptr[t]:ptr[t+1]`` are ticket ``t``'s rows in the (ticket-sorted) pair arrays."""
    return np.searchsorted(data.pair_ticket, np.arange(data.n_tickets + 1, dtype=np.int64))


def repair_minutes(data: BatchData, agent_of: IntArray) -> tuple[IntArray, int]:
    """A copy of ``agent_of`` that respects every agent's working minutes; and how many moved."""
    agent_of = agent_of.copy()
    assigned = agent_of >= 0
    work = data.backlog + np.bincount(
        agent_of[assigned], weights=data.effort[assigned], minlength=data.n_agents
    ).astype(np.int64)
    over = np.flatnonzero(work > data.total)
    if len(over) == 0:
        return agent_of, 0
    ptr = ticket_pair_ptr(data)
    cost = data.pair_cost

    def pair_cost(t: int, a: int) -> int:
        rows = np.arange(ptr[t], ptr[t + 1])
        return int(cost[rows[data.pair_agent[rows] == a][0]])

    dropped: list[int] = []
    for a in over.tolist():
        mine = np.flatnonzero(agent_of == a).tolist()
        value = {t: (int(data.queue_cost[t]) - pair_cost(t, a)) / int(data.effort[t]) for t in mine}
        for t in sorted(mine, key=lambda t: (value[t], t)):
            if work[a] <= data.total[a]:
                break
            agent_of[t] = -1
            work[a] -= data.effort[t]
            dropped.append(t)
    count = np.bincount(agent_of[agent_of >= 0], minlength=data.n_agents)
    for t in sorted(dropped, key=lambda t: (-int(data.queue_cost[t]), t)):
        rows = np.arange(ptr[t], ptr[t + 1])
        ag = data.pair_agent[rows]
        fits = (count[ag] < data.slots[ag]) & (work[ag] + data.effort[t] <= data.total[ag])
        c = int(data.chan_of[t])
        if c >= 0:
            held = np.bincount(
                agent_of[(agent_of >= 0) & (data.chan_of == c)], minlength=data.n_agents
            )
            fits &= held[ag] < data.chan_slots[c, ag]
        if not fits.any():
            continue
        o = data.open_tickets[ag] + count[ag]
        marginal = cost[rows] + data.weights.load * (2 * o + 1)
        marginal = np.where(fits, marginal, np.iinfo(np.int64).max)
        best = int(np.argmin(marginal))
        if marginal[best] < data.queue_cost[t]:
            a = int(ag[best])
            agent_of[t] = a
            count[a] += 1
            work[a] += data.effort[t]
    left = [t for t in dropped if agent_of[t] < 0]
    if left:
        seat_by_ejection(data, agent_of, np.asarray(left, dtype=np.int64), ptr)
    return agent_of, len(dropped)


_NONE = np.iinfo(np.int64).max // 4


def _room(data: BatchData, agent_of: IntArray) -> tuple[IntArray, IntArray, IntArray | None]:
    """Free slots and free working minutes per agent, and free slots per (capped channel,
    agent) (None when no agent caps a channel), under ``agent_of``."""
    seated = agent_of >= 0
    count = np.bincount(agent_of[seated], minlength=data.n_agents)
    slots_left = np.where(data.eligible, data.slots, 0) - count
    work = data.backlog + np.bincount(
        agent_of[seated], weights=data.effort[seated], minlength=data.n_agents
    ).astype(np.int64)
    minutes_left = data.total - work
    if not data.channels:
        return slots_left, minutes_left, None
    chan_left = data.chan_slots.copy()
    capped = seated & (data.chan_of >= 0)
    np.subtract.at(chan_left, (data.chan_of[capped], agent_of[capped]), 1)
    return slots_left, minutes_left, chan_left


@dataclass(frozen=True)
class Ejections:
    """For a fixed assignment, what :func:`best_ejection` needs: room per agent, each seated
    ticket's cheapest move to another agent with room (never away from its owner) and the
    tickets that may move grouped by holder."""

    count: IntArray
    slots_left: IntArray
    minutes_left: IntArray
    chan_left: IntArray | None
    alt_agent: IntArray  # -1: no other agent has room
    move_cost: IntArray  # what moving the ticket there adds (pair cost and load marginal)
    by_agent: IntArray  # the tickets an ejection may move, by holder
    agent_ptr: IntArray


def pair_rows(ptr: IntArray, tickets: IntArray) -> IntArray:
    """The pair rows of ``tickets`` (ticket order kept), from :func:`ticket_pair_ptr`."""
    lens = ptr[tickets + 1] - ptr[tickets]
    total = int(lens.sum())
    starts = np.repeat(ptr[tickets] - np.cumsum(lens) + lens, lens)
    return starts + np.arange(total, dtype=np.int64)


def ejections(
    data: BatchData, agent_of: IntArray, ptr: IntArray, queued: IntArray | None = None
) -> Ejections:
    """Price each seated ticket's cheapest alternative once (one numpy pass over its pairs):
    every seated ticket's, or with ``queued`` only those held by an agent qualified for one
    of them (the only ones an ejection for ``queued`` can move)."""
    load_w = data.weights.load

    def cost(rows: IntArray) -> IntArray:  # pair costs of some rows (not all 1-3 M of them)
        return data.pair_static[rows] + data.pair_late_lb[rows]

    slots_left, minutes_left, chan_left = _room(data, agent_of)
    count = np.bincount(agent_of[agent_of >= 0], minlength=data.n_agents)
    if queued is None:
        rows = np.arange(len(data.pair_ticket), dtype=np.int64)
        held = np.flatnonzero(agent_of >= 0)
    else:
        near = np.zeros(data.n_agents, dtype=bool)
        near[data.pair_agent[pair_rows(ptr, queued)]] = True
        held = np.flatnonzero((agent_of >= 0) & near[np.maximum(agent_of, 0)])
        rows = pair_rows(ptr, held)
    # Only rows whose agent has a free slot can be a ticket's alternative.
    rows = rows[(slots_left > 0)[data.pair_agent[rows]]]
    pt, pa = data.pair_ticket[rows], data.pair_agent[rows]
    holder = agent_of[pt]
    ok = (holder >= 0) & (pa != holder) & (data.owner[pt] != holder)
    ok &= minutes_left[pa] >= data.effort[pt]
    if chan_left is not None:
        c = data.chan_of[pt]
        ok &= (c < 0) | (chan_left[np.maximum(c, 0), pa] > 0)
    rows = rows[ok]
    alt_agent = np.full(data.n_tickets, -1, dtype=np.int64)
    alt_delta = np.full(data.n_tickets, _NONE, dtype=np.int64)
    if len(rows):
        t_r, a_r = data.pair_ticket[rows], data.pair_agent[rows]
        add = cost(rows) + load_w * (2 * (data.open_tickets[a_r] + count[a_r]) + 1)
        # Rows stay sorted by ticket then agent: a segmented minimum and its first hit give
        # each ticket's cheapest row, the lower agent on ties, without a sort.
        seg = np.flatnonzero(np.concatenate(([True], t_r[1:] != t_r[:-1])))
        seg_len = np.diff(np.append(seg, len(t_r)))
        hit = np.flatnonzero(add == np.repeat(np.minimum.reduceat(add, seg), seg_len))
        first = hit[np.concatenate(([True], t_r[hit][1:] != t_r[hit][:-1]))]
        alt_agent[t_r[first]] = a_r[first]
        alt_delta[t_r[first]] = add[first]
    # What each ticket with an alternative costs where it is (pair cost and its load
    # marginal): only those, since a search over all 1-3 M pair keys per seated ticket is what
    # costs when the guard asks for one queued ticket's ejections.
    here = np.zeros(data.n_tickets, dtype=np.int64)
    seated = np.flatnonzero(alt_agent >= 0)
    if len(seated):
        key = seated * data.n_agents + agent_of[seated]
        idx = np.searchsorted(data.pair_key, key)
        open_h = data.open_tickets[agent_of[seated]] + count[agent_of[seated]]
        here[seated] = cost(idx) + load_w * (2 * open_h - 1)
    move_cost = np.where(alt_agent >= 0, alt_delta - here, _NONE)
    # The tickets an ejection may move, grouped by holder (agents no queued ticket can use
    # hold none here).
    by_agent = held[np.argsort(agent_of[held], kind="stable")]
    agent_ptr = np.searchsorted(agent_of[by_agent], np.arange(data.n_agents + 1))
    return Ejections(
        count, slots_left, minutes_left, chan_left, alt_agent, move_cost, by_agent, agent_ptr
    )


def best_ejection(
    data: BatchData,
    agent_of: IntArray,
    q: int,
    ptr: IntArray,
    ej: Ejections,
    touched: BoolArray,
    floor: int | None = 0,
) -> tuple[int, int, int, int] | None:
    """The most valuable way to seat queued ``q`` by ejecting one ticket: ``(gain, a, u, c)``
    — ``q`` to ``a``, ``a``'s ticket ``u`` to ``c`` — with a gain over leaving ``q`` queued
    (pair costs and load marginals) above ``floor`` (None: any gain, the seat is what
    counts), or None. Agents in ``touched`` changed since ``ej`` was priced and are left
    alone."""
    pa = data.pair_agent
    qr = np.arange(ptr[q], ptr[q + 1])
    qr = qr[data.eligible[pa[qr]] & ~touched[pa[qr]]]
    a_q = pa[qr]
    lens = ej.agent_ptr[a_q + 1] - ej.agent_ptr[a_q]
    total = int(lens.sum())
    if total == 0:
        return None
    # Every (agent a qualified for q, ticket u that a holds) at once, as flat arrays.
    starts = np.repeat(ej.agent_ptr[a_q] - np.cumsum(lens) + lens, lens)
    held = ej.by_agent[starts + np.arange(total)]
    row = np.repeat(qr, lens)
    a = pa[row]
    alt = ej.alt_agent[held]
    fits = (alt >= 0) & (ej.minutes_left[a] + data.effort[held] >= data.effort[q])
    fits &= ~touched[np.maximum(alt, 0)]
    if ej.chan_left is not None and data.chan_of[q] >= 0:
        cq = int(data.chan_of[q])
        freed = (data.chan_of[held] == cq).astype(np.int64)
        fits &= ej.chan_left[cq, a] + freed > 0
    if not fits.any():
        return None
    held, row, a = held[fits], row[fits], a[fits]
    seat = data.pair_static[row] + data.pair_late_lb[row]
    seat = seat + data.weights.load * (2 * (data.open_tickets[a] + ej.count[a]) - 1)
    gain = data.queue_cost[q] - seat - ej.move_cost[held]
    i = int(np.argmax(gain))
    if floor is not None and gain[i] <= floor:
        return None
    return int(gain[i]), int(a[i]), int(held[i]), int(ej.alt_agent[held[i]])


# An ejection of several tickets looks at this many of a queued ticket's agents (those with the
# most minutes to free): a Python loop, bounded so a large queue stays fast.
_MULTI_AGENTS = 64


def best_multi_ejection(
    data: BatchData,
    agent_of: IntArray,
    q: int,
    ptr: IntArray,
    ej: Ejections,
    touched: BoolArray,
    floor: int | None = 0,
) -> tuple[int, int, list[tuple[int, int]]] | None:
    """When one ticket is not enough: ``(gain, a, [(u, c), ...])`` — ``q`` to ``a``, several of
    ``a``'s tickets each to its own agent with room (distinct agents, none touched) — freeing
    the minutes ``q`` needs, cheapest moves per minute first, when its gain over leaving ``q``
    queued is above ``floor`` (None: any gain); or None. Never a ticket away from its owner
    (:func:`ejections` has none)."""
    pa = data.pair_agent
    qr = np.arange(ptr[q], ptr[q + 1])
    qr = qr[data.eligible[pa[qr]] & ~touched[pa[qr]]]
    if len(qr) == 0:
        return None
    need_all = data.effort[q] - ej.minutes_left[pa[qr]]
    order = np.argsort(need_all, kind="stable")[:_MULTI_AGENTS]
    cq = int(data.chan_of[q]) if ej.chan_left is not None else -1
    best: tuple[int, int, list[tuple[int, int]]] | None = None
    for r in qr[order].tolist():
        a = int(pa[r])
        need = int(data.effort[q] - ej.minutes_left[a])
        held = ej.by_agent[ej.agent_ptr[a] : ej.agent_ptr[a + 1]]
        held = held[ej.alt_agent[held] >= 0]
        if len(held) < 2 or int(data.effort[held].sum()) < need:
            continue
        by_value = held[np.argsort(ej.move_cost[held] / data.effort[held], kind="stable")]
        chosen: list[tuple[int, int]] = []
        used: set[int] = set()
        freed = 0
        chan_freed = 0
        # At least one ticket leaves, and as many as a needs for a free slot.
        must_leave = max(1, 1 - int(ej.slots_left[a]))
        for u in by_value.tolist():
            c = int(ej.alt_agent[u])
            if c in used or touched[c]:
                continue
            chosen.append((u, c))
            used.add(c)
            freed += int(data.effort[u])
            chan_freed += int(cq >= 0 and int(data.chan_of[u]) == cq)
            if freed >= need and len(chosen) >= must_leave:
                break
        if freed < need or len(chosen) < must_leave:
            continue
        if cq >= 0 and ej.chan_left is not None and ej.chan_left[cq, a] + chan_freed <= 0:
            continue
        seat = int(data.pair_static[r] + data.pair_late_lb[r])
        seat += data.weights.load * (2 * int(data.open_tickets[a] + ej.count[a] - len(chosen)) + 1)
        moves = sum(int(ej.move_cost[u]) for u, _ in chosen)
        # Each move's price counts a's load saved as if it left alone; k leaving together save
        # load_w * k (k - 1) less.
        k = len(chosen)
        gain = int(data.queue_cost[q]) - seat - moves - data.weights.load * k * (k - 1)
        if (floor is None or gain > floor) and (best is None or gain > best[0]):
            best = (gain, a, chosen)
    return best


def seat_by_ejection(
    data: BatchData, agent_of: IntArray, queued: IntArray, ptr: IntArray, rounds: int = 4
) -> int:
    """Seat ``queued`` tickets (in place in ``agent_of``) by moving tickets out of the way.

    For a queued ticket ``q`` and an agent ``a`` qualified for it, eject one ticket ``u`` that
    ``a`` holds (never one ``a`` owns: that would be churn) to the agent ``c`` with room that
    takes it cheapest, when ``a`` then has the slot, minutes and channel room for ``q`` and the
    whole exchange is cheaper than leaving ``q`` queued (pair costs and load marginals); when
    one ticket frees too few minutes, several (:func:`best_multi_ejection`). Each
    round prices every seated ticket's cheapest alternative once (:func:`ejections`), then
    seats the queued tickets most valuable first; an agent changed in a round is left alone
    for the rest of it. Returns how many tickets were seated.
    """
    if len(queued) == 0 or data.n_agents == 0:
        return 0
    seated_total = 0
    for _ in range(rounds):
        ej = ejections(data, agent_of, ptr, queued)
        touched = np.zeros(data.n_agents, dtype=bool)
        seated_now = 0
        for q in sorted(queued.tolist(), key=lambda t: (-int(data.queue_cost[t]), t)):
            if agent_of[q] >= 0:
                continue
            best = best_ejection(data, agent_of, q, ptr, ej, touched)
            if best is not None:
                _, a, u, c = best
                agent_of[u] = c
                agent_of[q] = a
                touched[a] = touched[c] = True
                seated_now += 1
                continue
            multi = best_multi_ejection(data, agent_of, q, ptr, ej, touched)
            if multi is not None:
                _, a, chosen = multi
                for u, c in chosen:
                    agent_of[u] = c
                    touched[c] = True
                agent_of[q] = a
                touched[a] = True
                seated_now += 1
        seated_total += seated_now
        queued = queued[agent_of[queued] < 0]
        if seated_now == 0 or len(queued) == 0:
            break
    return seated_total
