"""``switchboard demo``: a generated support organisation, its queue, and every policy on it.

It shows a support manager, in half a minute, what the optimizer does that today's routing
rules do not: the same queue assigned by round-robin, least-loaded, first-qualified and the
optimizer, compared on SLA breaches, lateness, unassigned tickets, churn and load spread, with
a few of the optimizer's decisions explained, and every ticket it took from the agent who held it
(from whom, to whom, and which ticket's SLA the move saves). The organisation comes from
:mod:`scenarios.generate` (seeded, so a run can be repeated); every plan is checked with the
solver's own validator before it is shown.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from scenarios.generate import generate
from solver.availability import bank_for
from solver.plan import Assignment, Plan
from solver.policies import BASELINES, POLICIES, PolicyParams
from solver.problem import AgentStatus, Priority, Problem, SkillKind, Ticket
from solver.validation import Evaluation, check_plan, evaluate

PRIORITY_NAMES = {p: p.name.lower() for p in Priority}


@dataclass(frozen=True, slots=True)
class _Outcome:
    name: str
    plan: Plan
    evaluation: Evaluation
    seconds: float
    violations: int


def run_demo(
    seed: int = 7,
    agents: int = 60,
    tickets: int = 400,
    time_limit: float = 10.0,
    *,
    max_moves: int | None = None,
    console: Console | None = None,
) -> int:
    """Generate, assign with every policy, print the comparison; 0 when every plan is valid.

    ``max_moves`` (None: no budget) caps how many owned tickets whose owner could keep them the
    optimizer may hand to someone else (:class:`~solver.policies.PolicyParams`)."""
    console = console or Console(width=max(Console().width, 110))
    problem = generate(
        "demo",
        seed=seed,
        n_agents=agents,
        n_tickets=tickets,
        n_teams=max(1, min(5, agents // 3)),
    )
    _describe(console, problem)
    outcomes = _run_policies(console, problem, seed, time_limit, max_moves)
    console.print(_comparison(outcomes))
    _verdict(console, outcomes)
    optimizer = next(o for o in outcomes if o.name == "optimizer")
    _examples(console, problem, optimizer.plan)
    _moves(console, problem, optimizer.plan, max_moves)
    invalid = [o for o in outcomes if o.violations]
    for o in invalid:
        console.print(f"[red]{o.name}: {o.violations} hard-rule violation(s)[/]")
    return 1 if invalid else 0


def _dst_note(problem: Problem) -> str:
    """Which of the agents' time zones change their UTC offset inside the horizon."""
    end = problem.horizon_end
    if end is None:  # no horizon: no window to change offset in
        return ""
    changing = sorted(
        {
            a.timezone
            for a in problem.agents
            if problem.now.astimezone(ZoneInfo(a.timezone)).utcoffset()
            != end.astimezone(ZoneInfo(a.timezone)).utcoffset()
        }
    )
    if not changing:
        return ""
    return f" (clocks change in {', '.join(z.split('/')[-1].replace('_', ' ') for z in changing)})"


def _describe(console: Console, problem: Problem) -> None:
    bank = bank_for(problem)
    kinds = {s.id: s.kind for s in problem.skills}
    languages = [s.id.removeprefix("lang:") for s in problem.skills if s.kind is SkillKind.LANGUAGE]
    working = sum(
        1
        for i, a in enumerate(problem.agents)
        if a.status is AgentStatus.AVAILABLE and bank.total[i] > 0
    )
    console.rule("[bold]Switchboard demo")
    console.print(
        f"It is [bold]{problem.now:%A %d %B %Y, %H:%M} UTC[/]; the plan covers the next "
        f"{problem.horizon_minutes // 60} hours{_dst_note(problem)}.\n"
        f"[bold]{len(problem.agents)} agents[/] in {len(problem.teams)} teams, {working} of them "
        f"available with working time in the horizon; languages {', '.join(languages)}; "
        f"tiers 1–{sum(k is SkillKind.TIER for k in kinds.values())}."
    )
    teams = Table(title="The organisation", title_justify="left")
    for col in ("team", "agents", "topic skills", "time zones", "open tickets in queue"):
        teams.add_column(
            col, justify="right" if col in ("agents", "open tickets in queue") else "left"
        )
    per_team_agents = Counter(a.team for a in problem.agents)
    per_team_tickets = Counter(t.team for t in problem.tickets)
    for team in problem.teams:
        members = [a for a in problem.agents if a.team == team.id]
        topics = sorted(
            {s for s in (k for a in members for k in a.skills) if kinds.get(s) is SkillKind.SKILL}
            & {s.id for s in problem.skills if s.id.startswith(team.id + "/")}
        )
        zones = Counter(a.timezone.split("/")[-1].replace("_", " ") for a in members)
        teams.add_row(
            team.id,
            str(per_team_agents[team.id]),
            ", ".join(s.split("/", 1)[1] for s in topics[:5]) + (" …" if len(topics) > 5 else ""),
            ", ".join(z for z, _ in zones.most_common(3)),
            str(per_team_tickets[team.id]),
        )
    console.print(teams)
    by_prio = Counter(t.priority for t in problem.tickets)
    past_due = sum(
        1
        for t in problem.tickets
        if (t.first_response_due is not None and t.first_response_due <= problem.now)
        or (t.resolution_due is not None and t.resolution_due <= problem.now)
    )
    owned = sum(t.owner_agent is not None for t in problem.tickets)
    effort = sum(t.effort_minutes for t in problem.tickets)
    console.print(
        f"The queue: [bold]{len(problem.tickets)} open tickets[/] ("
        + ", ".join(f"{by_prio[p]} {PRIORITY_NAMES[p]}" for p in sorted(Priority, reverse=True))
        + f"), {effort / 60:,.0f} hours of work; {past_due} already past a deadline, "
        f"{owned} already held by an agent.\n"
    )


def _run_policies(
    console: Console, problem: Problem, seed: int, time_limit: float, max_moves: int | None
) -> list[_Outcome]:
    names = [*BASELINES, "optimizer"]
    params = PolicyParams(time_limit_s=time_limit, seed=seed, max_moves=max_moves)
    outcomes: list[_Outcome] = []
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("assigning the queue", total=len(names))
        for name in names:
            progress.update(task, description=f"assigning the queue: {name}")
            started = time.perf_counter()
            plan = POLICIES[name](problem, params)
            seconds = time.perf_counter() - started
            outcomes.append(
                _Outcome(
                    name, plan, evaluate(problem, plan), seconds, len(check_plan(problem, plan))
                )
            )
            progress.advance(task)
    return outcomes


def _comparison(outcomes: list[_Outcome]) -> Table:
    table = Table(
        title="Same queue, four ways to assign it (lower is better)", title_justify="left"
    )
    columns: tuple[tuple[str, Callable[[Evaluation], float], str], ...] = (
        ("SLA breaches", lambda e: e.breaches, "{:,}"),
        ("weighted lateness (h)", lambda e: e.weighted_lateness_minutes / 60, "{:,.0f}"),
        ("unassigned", lambda e: e.unassigned, "{:,}"),
        ("churn", lambda e: e.churn, "{:,}"),
        ("load spread", lambda e: e.load_spread, "{:,}"),
        ("objective", lambda e: e.objective, "{:,.0f}"),
    )
    table.add_column("policy", no_wrap=True)
    for col, _, _ in columns:
        table.add_column(col, justify="right")
    table.add_column("time taken", justify="right")
    best = {col: min(get(o.evaluation) for o in outcomes) for col, get, _ in columns}
    for o in outcomes:
        cells = []
        for col, get, fmt in columns:
            value = get(o.evaluation)
            text = fmt.format(value)
            cells.append(f"[bold green]{text}[/]" if value == best[col] else text)
        name = f"[bold]{o.name}[/]" if o.name == "optimizer" else o.name
        table.add_row(name, *cells, f"{o.seconds:.2f} s")
    return table


def _verdict(console: Console, outcomes: list[_Outcome]) -> None:
    opt = next(o.evaluation for o in outcomes if o.name == "optimizer")
    best_base = min(
        (o for o in outcomes if o.name != "optimizer"), key=lambda o: o.evaluation.objective
    )
    base = best_base.evaluation

    def fewer(new: float, old: float, what: str, word: str = "fewer") -> str:
        if old > 0 and new < old:
            return f"{(old - new) / old:.0%} {word} {what} ({new:,.0f} vs {old:,.0f})"
        return f"{what}: {new:,.0f} vs {old:,.0f}"

    late_opt = opt.weighted_lateness_minutes / 60
    late_base = base.weighted_lateness_minutes / 60
    console.print(
        f"Against the best baseline ([bold]{best_base.name}[/]), the optimizer has "
        f"{fewer(opt.breaches, base.breaches, 'SLA breaches')}, "
        f"{fewer(late_opt, late_base, 'weighted lateness hours', 'less')} "
        f"and {opt.unassigned} unassigned tickets against {base.unassigned}.\n"
        "Weighted lateness counts each minute past a deadline times the ticket's priority weight "
        "(urgent 8, high 4, normal 2, low 1); load spread is the most minus the fewest open "
        "tickets among working agents.\n"
    )


def _examples(console: Console, problem: Problem, plan: Plan) -> None:
    """A few decisions worth reading: urgent work, a kept owner, a scarce skill, a queued one."""
    by_ticket = plan.by_ticket()
    holders = Counter(s for a in problem.agents for s in a.skills)
    picks: list[Ticket] = []

    def pick(pred: Callable[[Ticket], bool]) -> None:
        for t in problem.tickets:
            if t not in picks and pred(t):
                picks.append(t)
                return

    pick(lambda t: t.priority == Priority.URGENT and t.id in by_ticket)
    pick(lambda t: t.owner_agent is not None and t.id in by_ticket)
    pick(lambda t: t.id in by_ticket and any(holders[s] <= 2 for s in t.required_skills))
    pick(lambda t: t.priority == Priority.HIGH and t.id in by_ticket)
    table = Table(
        title="Some of the optimizer's decisions, with its reasons",
        title_justify="left",
        show_lines=True,
    )
    table.add_column("ticket", max_width=34)
    table.add_column("agent", max_width=26)
    table.add_column("why", ratio=1)
    for t in picks:
        a: Assignment = by_ticket[t.id]
        agent = problem.agent(a.agent_id)
        local = a.start.astimezone(ZoneInfo(agent.timezone)) if a.start else None
        when = f"\nstarts {local:%a %H:%M} {agent.timezone}" if local else ""
        need = ", ".join(f"{s}≥{lvl}" for s, lvl in t.required_skills.items())
        table.add_row(
            f"{t.id} [dim]({PRIORITY_NAMES[t.priority]}, {t.effort_minutes} min)[/]\n{need}",
            f"{agent.id}{when}",
            "\n".join(f"[bold]{r.rule}[/]: {r.detail}" for r in a.reasons),
        )
    for q in plan.queued[:1]:
        t = problem.ticket(q.ticket_id)
        need = ", ".join(f"{s}≥{lvl}" for s, lvl in t.required_skills.items())
        table.add_row(
            f"{t.id} [dim]({PRIORITY_NAMES[t.priority]})[/]\n{need}",
            f"team queue: {q.team_id}",
            "\n".join(f"[bold]{r.rule}[/]: {r.detail}" for r in q.reasons),
        )
    console.print(table)


# The most moves the demo lists one by one; the rest are counted.
_MAX_MOVES_SHOWN = 40


def _moves(console: Console, problem: Problem, plan: Plan, max_moves: int | None) -> None:
    """Every owned ticket the optimizer gave to someone else (or the queue), and why; with a
    move budget, the optimizer's own count of the moves it kept against it."""
    by_ticket = plan.by_ticket()
    queued = {q.ticket_id: q for q in plan.queued}
    rows: list[tuple[str, str, str, str]] = []
    for t in problem.tickets:
        if t.owner_agent is None:
            continue
        a = by_ticket.get(t.id)
        if a is not None and a.agent_id == t.owner_agent:
            continue
        reasons = a.reasons if a is not None else queued[t.id].reasons
        why = next((r.detail for r in reasons if r.rule == "churn"), "")
        to = a.agent_id if a is not None else f"team queue: {queued[t.id].team_id}"
        label = f"{t.id} [dim]({PRIORITY_NAMES[t.priority]})[/]"
        rows.append((label, t.owner_agent, to, why))
    owned = sum(t.owner_agent is not None for t in problem.tickets)
    budget = "" if max_moves is None else f"; a budget of {max_moves} move(s)"
    # The guard's own count: moves kept against the budget, and those the owner forced.
    guard_note = next((n for n in plan.stats.notes if n.startswith("churn guard:")), None)
    if not rows:
        console.print(
            f"The optimizer kept all {owned} owned tickets with their owners"
            + (f" (a budget of {max_moves} move(s))." if max_moves is not None else ".")
        )
        return
    table = Table(
        title=(
            f"Owned tickets the optimizer moved: {len(rows)} of {owned} "
            f"(each move must save an SLA, or its owner cannot hold the ticket{budget})"
        ),
        title_justify="left",
    )
    table.add_column("ticket", max_width=30)
    table.add_column("from", max_width=18)
    table.add_column("to", max_width=22)
    table.add_column("why", ratio=1)
    for row in rows[:_MAX_MOVES_SHOWN]:
        table.add_row(*row)
    if len(rows) > _MAX_MOVES_SHOWN:
        table.add_row(f"… and {len(rows) - _MAX_MOVES_SHOWN} more", "", "", "")
    console.print(table)
    if max_moves is not None and guard_note is not None:
        console.print(f"[dim]{guard_note}[/]")
