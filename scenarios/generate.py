"""A seeded generator of realistic support organisations and their open queues.

One call, :func:`generate`, builds a :class:`solver.problem.Problem`: teams whose agents share a
skill pool, languages and tiers as skills, follow-the-sun shifts built in each agent's local
time (so a DST change in the horizon moves shifts in UTC, as it does in real life), meetings,
capacities, a queue of tickets with priorities, SLA deadlines, efforts, owners and previous
agents. Same spec and seed, identical problem: all randomness comes from one
``numpy.random.default_rng(seed)`` and nothing iterates over a set of strings (whose order
changes with ``PYTHONHASHSEED``).

It lives in ``scenarios/`` (which may import only ``solver/``) because the service's demo and the
planner's simulator need it too; ``benchmarks.instances`` re-exports it with the named sizes.

*Tight* instances put total capacity about equal to demand — both in ticket slots
(``capacity - open_tickets``) and in working minutes — which is where greedy rules collapse
(they spend the few holders of a scarce skill on work anybody could do) and an optimizer earns
its keep. Non-tight instances guarantee every ticket can be covered by at least one available
agent with working time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from solver.availability import working_windows
from solver.problem import (
    Agent,
    AgentStatus,
    Interval,
    Priority,
    Problem,
    Skill,
    SkillKind,
    Team,
    Ticket,
)

# A Thursday morning three days before Europe's spring DST change (Sunday 29 March 2026, 01:00
# UTC): the default 72-hour horizon holds two weekdays and the weekend rota, whose Sunday shifts in
# Europe start an hour earlier in UTC than Saturday's.
DEFAULT_NOW = datetime(2026, 3, 26, 8, 0, tzinfo=UTC)

TEAM_NAMES = (
    "billing", "networking", "accounts", "platform", "security", "integrations", "mobile",
    "data", "hardware", "onboarding", "compliance", "enterprise", "payments", "identity",
    "storage", "analytics", "devices", "messaging", "search", "reporting",
)  # fmt: skip

# The first topics of a team are its everyday work; later ones are rarer (Zipf rank order).
TEAM_TOPICS: dict[str, tuple[str, ...]] = {
    "billing": ("invoices", "refunds", "subscriptions", "payment-methods", "tax", "chargebacks",
                "dunning", "revenue-recognition"),
    "networking": ("connectivity", "vpn", "dns", "firewall", "load-balancers", "ipv6", "bgp",
                   "latency"),
    "accounts": ("login", "password-reset", "mfa", "profile", "sso", "saml", "scim",
                 "account-deletion"),
    "platform": ("api", "webhooks", "rate-limits", "sdk", "outages", "deployments", "kubernetes",
                 "database"),
    "security": ("phishing", "access-review", "audit-logs", "encryption", "vulnerabilities",
                 "forensics"),
    "integrations": ("salesforce", "slack", "jira", "zapier", "sap", "custom-connectors"),
}  # fmt: skip

# Language -> share of ticket demand; a zone's native language is spoken natively there.
LANGUAGE_DEMAND = {"en": 0.50, "de": 0.13, "es": 0.11, "fr": 0.08, "ja": 0.08, "pt": 0.05,
                   "it": 0.03, "nl": 0.02}  # fmt: skip
LANGUAGE_ORDER = ("en", "de", "fr", "es", "ja", "pt", "it", "nl")
ZONES: dict[str, tuple[str, float]] = {  # zone -> (native language, share of agents)
    "America/New_York": ("en", 0.24),
    "Europe/Berlin": ("de", 0.16),
    "Asia/Tokyo": ("ja", 0.10),
    "Europe/London": ("en", 0.10),
    "America/Los_Angeles": ("en", 0.09),
    "Europe/Paris": ("fr", 0.08),
    "Europe/Madrid": ("es", 0.07),
    "America/Sao_Paulo": ("pt", 0.06),
    "Europe/Rome": ("it", 0.04),
    "Europe/Amsterdam": ("nl", 0.03),
    "Australia/Sydney": ("en", 0.03),
}

# SLA targets per priority (minutes): first response, resolution.
SLA_TARGETS: dict[Priority, tuple[int, int]] = {
    Priority.LOW: (24 * 60, 5 * 24 * 60),
    Priority.NORMAL: (8 * 60, 2 * 24 * 60),
    Priority.HIGH: (2 * 60, 12 * 60),
    Priority.URGENT: (30, 4 * 60),
}
# Share of tickets per priority that already had their first response (their FR due is None).
RESPONDED_SHARE = {Priority.LOW: 0.40, Priority.NORMAL: 0.35, Priority.HIGH: 0.25,
                   Priority.URGENT: 0.10}  # fmt: skip

TIER_MIX = (0.50, 0.35, 0.15)  # agents of tier 1, 2, 3
TICKET_TIER_MIX = (0.60, 0.30, 0.10)
SHIFT_STARTS = (7, 8, 8, 9, 9, 9, 10, 11, 14)  # local hour; repeats weight the usual ones
WEEKDAYS = (0, 1, 2, 3, 4)
WEEKEND_PATTERN = (3, 4, 5, 6, 0)  # Thursday to Monday: who covers the weekend


@dataclass(frozen=True, slots=True)
class InstanceSpec:
    """Everything that shapes a generated organisation and queue.

    ``n_skills`` is the whole catalogue: languages, tiers and topic skills; the topic skills are
    split between the teams. Skill popularity is Zipf-like in each team's pool, steeper among
    agents (``supply_zipf``) than among tickets (``demand_zipf``), so the tail skills are
    scarce: few holders, proportionally more demand.
    """

    name: str = "custom"
    n_agents: int = 50
    n_tickets: int = 500
    n_skills: int = 30
    n_teams: int = 4
    n_languages: int = 5
    n_tiers: int = 3
    supply_zipf: float = 1.3
    demand_zipf: float = 0.8
    topics_per_agent: float = 3.0  # mean topic skills per agent, from the team's pool
    cross_team_skill_share: float = 0.15  # agents holding one topic of another team
    horizon_hours: int = 72
    shift_hours: int = 8
    weekend_share: float = 0.15
    meetings_per_shift: float = 0.8
    away_share: float = 0.03
    offline_share: float = 0.02
    tight: bool = False
    tight_load: float = 1.0  # tight: demand / supply, in slots and in working minutes
    loose_slot_ratio: float = 1.6  # non-tight: free ticket slots / tickets
    loose_max_load: float = 0.7  # non-tight: demand minutes / working minutes, at most
    backlog_minutes: tuple[int, int] = (0, 90)  # work left on tickets already on the desk
    effort_median: tuple[int, int, int] = (20, 40, 75)  # minutes, by ticket tier
    effort_sigma: float = 0.6
    priority_mix: tuple[float, float, float, float] = (0.25, 0.45, 0.22, 0.08)  # low..urgent
    language_share: float = 0.9  # tickets that require a language
    tier_share: float = 0.85  # tickets that require a tier
    second_topic_share: float = 0.2  # tickets that need a second topic skill
    owned_share: float = 0.12  # tickets already held by an agent (moving them is churn)
    previous_share: float = 0.2  # tickets whose requester had an agent before (continuity)

    def __post_init__(self) -> None:
        if self.n_agents < 1 or self.n_tickets < 0:
            raise ValueError("n_agents must be >= 1 and n_tickets >= 0")
        if not 1 <= self.n_languages <= len(LANGUAGE_ORDER):
            raise ValueError(f"n_languages must be in 1..{len(LANGUAGE_ORDER)}")
        if not 1 <= self.n_teams <= self.n_agents:
            raise ValueError("n_teams must be in 1..n_agents")
        if self.n_skills < self.n_languages + self.n_tiers + self.n_teams:
            raise ValueError(
                "n_skills must leave at least one topic skill per team "
                f"(>= {self.n_languages + self.n_tiers + self.n_teams})"
            )


SIZES: dict[str, InstanceSpec] = {
    "S": InstanceSpec("S", n_agents=50, n_tickets=500, n_skills=30, n_teams=4, n_languages=5),
    "M": InstanceSpec("M", n_agents=200, n_tickets=2_000, n_skills=100, n_teams=8, n_languages=6),
    "L": InstanceSpec(
        "L", n_agents=1_000, n_tickets=10_000, n_skills=300, n_teams=20, n_languages=8
    ),
    "demo": InstanceSpec("demo", n_agents=60, n_tickets=400, n_skills=36, n_teams=5, n_languages=5),
}


def spec_for(size: str = "S", *, tight: bool = False, **overrides: object) -> InstanceSpec:
    """The named size's spec with ``tight`` and any field overridden."""
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")
    names = {f.name for f in fields(InstanceSpec)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"unknown InstanceSpec field(s): {', '.join(unknown)}")
    return replace(SIZES[size], tight=tight, **overrides)  # type: ignore[arg-type]


def generate(
    size: str = "S",
    *,
    seed: int = 0,
    tight: bool = False,
    now: datetime = DEFAULT_NOW,
    **overrides: object,
) -> Problem:
    """A seeded organisation and queue of the named size (``S``, ``M``, ``L``, ``demo``).

    ``overrides`` replace fields of the size's :class:`InstanceSpec` (``n_agents=80``).
    """
    return generate_problem(spec_for(size, tight=tight, **overrides), seed=seed, now=now)


def generate_problem(spec: InstanceSpec, *, seed: int = 0, now: datetime = DEFAULT_NOW) -> Problem:
    """The organisation and queue described by ``spec``, drawn from ``seed``."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return _Builder(spec, np.random.default_rng(seed), now.astimezone(UTC)).build()


def _zipf(n: int, s: float) -> NDArray[np.float64]:
    w = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** s
    return w / float(w.sum())


def _largest_remainder(total: int, weights: NDArray[np.float64]) -> NDArray[np.int64]:
    """Integers proportional to ``weights`` that sum exactly to ``total``."""
    weight_sum = float(weights.sum())
    if total <= 0 or weight_sum <= 0:
        return np.zeros(len(weights), dtype=np.int64)
    raw = total * weights / weight_sum
    out = np.floor(raw).astype(np.int64)
    short = total - int(out.sum())
    if short > 0:
        # Stable order on ties keeps the result a function of the weights alone.
        out[np.argsort(-(raw - out), kind="stable")[:short]] += 1
    return out


class _Builder:
    """Draws the organisation step by step; the order of draws is part of the seed contract."""

    def __init__(self, spec: InstanceSpec, rng: np.random.Generator, now: datetime) -> None:
        self.spec = spec
        self.rng = rng
        self.now = now
        self.horizon_end = now + timedelta(hours=spec.horizon_hours)
        self.horizon = int(spec.horizon_hours * 60)

    # -- catalogue ---------------------------------------------------------------------------
    def _catalogue(self) -> None:
        s = self.spec
        self.team_ids = [
            TEAM_NAMES[i % len(TEAM_NAMES)]
            + ("" if i < len(TEAM_NAMES) else f"-{i // len(TEAM_NAMES) + 1}")
            for i in range(s.n_teams)
        ]
        self.languages = list(LANGUAGE_ORDER[: s.n_languages])
        skills: list[Skill] = [
            Skill(f"lang:{lang}", f"Language: {lang}", SkillKind.LANGUAGE)
            for lang in self.languages
        ]
        skills += [Skill(f"tier:{k}", f"Tier {k}", SkillKind.TIER) for k in range(1, s.n_tiers + 1)]
        n_topics = s.n_skills - len(skills)
        per_team = _largest_remainder(n_topics, np.ones(s.n_teams))
        self.pools: list[list[int]] = []  # team -> skill indices, in popularity rank order
        for t, team in enumerate(self.team_ids):
            base = team.split("-")[0]
            vocab = TEAM_TOPICS.get(base, ())
            pool: list[int] = []
            for k in range(int(per_team[t])):
                topic = vocab[k] if k < len(vocab) else f"topic-{k + 1}"
                pool.append(len(skills))
                skills.append(Skill(f"{team}/{topic}", f"{team}: {topic}"))
            self.pools.append(pool)
        self.skills = skills
        self.skill_index = {sk.id: i for i, sk in enumerate(skills)}
        self.lang_idx = [self.skill_index[f"lang:{lang}"] for lang in self.languages]
        self.tier_idx = [self.skill_index[f"tier:{k}"] for k in range(1, s.n_tiers + 1)]
        self.supply_p = [_zipf(len(p), s.supply_zipf) for p in self.pools]
        self.demand_p = [_zipf(len(p), s.demand_zipf) for p in self.pools]

    # -- agents ------------------------------------------------------------------------------
    def _agents(self) -> None:
        s, rng = self.spec, self.rng
        n = s.n_agents
        team_w = rng.dirichlet(np.full(s.n_teams, 6.0))
        team_of = np.concatenate(
            [np.arange(s.n_teams), rng.choice(s.n_teams, size=n - s.n_teams, p=team_w)]
        )
        team_of.sort(kind="stable")  # ids read team by team
        zone_names = list(ZONES)
        zone_p = np.array([ZONES[z][1] for z in zone_names])
        zone_p = zone_p / zone_p.sum()
        zone_of = rng.choice(len(zone_names), size=n, p=zone_p)
        tier_p = np.array(TIER_MIX[: s.n_tiers]) / sum(TIER_MIX[: s.n_tiers])
        tier_of = rng.choice(s.n_tiers, size=n, p=tier_p) + 1
        status_u = rng.random(n)
        levels = np.zeros((n, len(self.skills)), dtype=np.int8)
        self.agent_ids: list[str] = []
        counters = [0] * s.n_teams
        self.agent_shifts: list[tuple[Interval, ...]] = []
        self.agent_busy: list[tuple[Interval, ...]] = []
        self.agent_zone: list[str] = []
        self.agent_status: list[AgentStatus] = []
        for a in range(n):
            t = int(team_of[a])
            counters[t] += 1
            self.agent_ids.append(f"{self.team_ids[t]}-{counters[t]:03d}")
            zone = zone_names[int(zone_of[a])]
            self.agent_zone.append(zone)
            tier = int(tier_of[a])
            # Languages: a native one (when in the catalogue), English for most, sometimes a third.
            native = ZONES[zone][0]
            if native in self.languages:
                levels[a, self.skill_index[f"lang:{native}"]] = 5
            if native != "en" and rng.random() < 0.8:
                levels[a, self.skill_index["lang:en"]] = int(rng.integers(3, 5))
            if rng.random() < 0.2 and len(self.languages) > 1:
                extra = self.languages[int(rng.integers(0, len(self.languages)))]
                col = self.skill_index[f"lang:{extra}"]
                levels[a, col] = max(int(levels[a, col]), int(rng.integers(3, 5)))
            if not levels[a, self.lang_idx].any():
                levels[a, self.skill_index["lang:en"]] = 4
            for k in range(tier):
                levels[a, self.tier_idx[k]] = 1
            pool = self.pools[t]
            k_topics = int(min(len(pool), max(1, rng.poisson(s.topics_per_agent - 1) + 1)))
            chosen = rng.choice(len(pool), size=k_topics, replace=False, p=self.supply_p[t])
            for c in chosen:
                levels[a, pool[int(c)]] = int(np.clip(tier + 1 + rng.integers(-1, 2), 1, 5))
            if s.n_teams > 1 and rng.random() < s.cross_team_skill_share:
                other = int((t + 1 + rng.integers(0, s.n_teams - 1)) % s.n_teams)
                opool = self.pools[other]
                c = int(rng.choice(len(opool), p=self.supply_p[other]))
                levels[a, opool[c]] = max(int(levels[a, opool[c]]), int(rng.integers(1, 4)))
            shifts, busy = self._calendar(zone)
            self.agent_shifts.append(shifts)
            self.agent_busy.append(busy)
            u = float(status_u[a])
            if u < s.offline_share:
                self.agent_status.append(AgentStatus.OFFLINE)
            elif u < s.offline_share + s.away_share:
                self.agent_status.append(AgentStatus.AWAY)
            else:
                self.agent_status.append(AgentStatus.AVAILABLE)
        self.team_of = team_of
        self.tier_of = tier_of
        self.levels = levels
        self.work = np.array(
            [
                sum(e - b for b, e in working_windows(sh, bz, self.now, self.horizon))
                if st is AgentStatus.AVAILABLE
                else 0
                for sh, bz, st in zip(
                    self.agent_shifts, self.agent_busy, self.agent_status, strict=True
                )
            ],
            dtype=np.int64,
        )
        self.can_work = self.work > 0

    def _calendar(self, zone: str) -> tuple[tuple[Interval, ...], tuple[Interval, ...]]:
        """8-hour shifts on the agent's workdays, in local wall-clock time, plus meetings."""
        s, rng = self.spec, self.rng
        tz = ZoneInfo(zone)
        start_h = int(SHIFT_STARTS[int(rng.integers(0, len(SHIFT_STARTS)))])
        days = WEEKEND_PATTERN if rng.random() < s.weekend_share else WEEKDAYS
        first = (self.now.astimezone(tz) - timedelta(days=1)).date()
        last = self.horizon_end.astimezone(tz).date()
        shifts: list[Interval] = []
        busy: list[Interval] = []
        d = first
        while d <= last:
            if d.weekday() in days:
                shift = self._local_span(tz, d, start_h * 60, s.shift_hours * 60)
                if shift.end > self.now and shift.start < self.horizon_end:
                    shifts.append(shift)
                    for _ in range(int(rng.poisson(s.meetings_per_shift))):
                        # Meetings start on the half hour, inside the shift, 30 or 60 minutes long.
                        slot = int(rng.integers(1, 2 * s.shift_hours - 2))
                        length = 30 if rng.random() < 0.6 else 60
                        busy.append(self._local_span(tz, d, start_h * 60 + 30 * slot, length))
            d += timedelta(days=1)
        return tuple(shifts), tuple(busy)

    @staticmethod
    def _local_span(tz: ZoneInfo, day: date, start_min: int, length_min: int) -> Interval:
        # Wall-clock arithmetic in the local zone, then UTC: a shift on a DST day keeps its
        # local start and end (and is an hour shorter or longer), as in a real rota.
        base = datetime(day.year, day.month, day.day, tzinfo=tz)
        start = base + timedelta(minutes=start_min)
        end = base + timedelta(minutes=start_min + length_min)
        return Interval(start.astimezone(UTC), end.astimezone(UTC))

    # -- tickets -----------------------------------------------------------------------------
    def _tickets(self) -> None:
        s, rng = self.spec, self.rng
        n = s.n_tickets
        # Demand per team follows its working capacity, so every team is about equally loaded.
        team_work = np.bincount(self.team_of, weights=self.work.astype(float), minlength=s.n_teams)
        team_p = team_work + 1.0
        team_p = team_p / team_p.sum()
        t_team = rng.choice(s.n_teams, size=n, p=team_p)
        prio = rng.choice(4, size=n, p=np.array(s.priority_mix) / sum(s.priority_mix)) + 1
        tier_p = np.array(TICKET_TIER_MIX[: s.n_tiers]) / sum(TICKET_TIER_MIX[: s.n_tiers])
        t_tier = rng.choice(s.n_tiers, size=n, p=tier_p) + 1
        has_lang = rng.random(n) < s.language_share
        has_tier = rng.random(n) < s.tier_share
        has_second = rng.random(n) < s.second_topic_share
        u_age = rng.random(n)
        u_resp = rng.random(n)
        effort_z = rng.standard_normal(n)
        # Ticket languages follow demand, restricted to the languages the team can speak.
        lang_demand = np.array([LANGUAGE_DEMAND[lang] for lang in self.languages])
        team_lang_p = []
        for t in range(s.n_teams):
            members = self.team_of == t
            spoken = (self.levels[np.ix_(members, self.lang_idx)] >= 3).any(axis=0)
            p = lang_demand * spoken
            team_lang_p.append(p / p.sum() if p.sum() > 0 else lang_demand / lang_demand.sum())
        # ge[s, l]: available agents with working time who hold skill s at level >= l.
        ge = (self.levels[:, :, None] >= np.arange(6)[None, None, :]) & self.can_work[:, None, None]
        ge = np.ascontiguousarray(ge.transpose(1, 2, 0))
        self.requirements: list[dict[int, int]] = []
        self.effort = np.zeros(n, dtype=np.int64)
        self.created = np.zeros(n, dtype=np.int64)  # minutes relative to now (<= 0)
        self.fr_due: list[int | None] = []
        self.res_due: list[int] = []
        self.ticket_team = t_team
        self.prio = prio
        any_worker = bool(self.can_work.any())
        for i in range(n):
            t = int(t_team[i])
            pool = self.pools[t]
            tier = int(t_tier[i])
            req: dict[int, int] = {}
            topic = pool[int(rng.choice(len(pool), p=self.demand_p[t]))]
            base = tier if has_tier[i] else int(rng.integers(1, 3))
            req[topic] = int(np.clip(base + rng.integers(0, 2), 1, 4))
            if has_second[i] and len(pool) > 1:
                other = pool[int(rng.choice(len(pool), p=self.demand_p[t]))]
                if other != topic:
                    req[other] = int(rng.integers(1, 3))
            if has_lang[i]:
                li = int(rng.choice(len(self.languages), p=team_lang_p[t]))
                req[self.lang_idx[li]] = 3
            if has_tier[i]:
                req[self.tier_idx[tier - 1]] = 1
            if len(req) > 3:  # at most three requirements: drop the second topic
                req.pop(
                    next(
                        k
                        for k in req
                        if k != topic and k not in self.lang_idx and k not in self.tier_idx
                    )
                )
            if any_worker and not self._coverable(ge, req):
                req = self._repair(req, topic, t)
            self.requirements.append(req)
            median = s.effort_median[min(tier, len(s.effort_median)) - 1]
            self.effort[i] = int(
                np.clip(round(median * math.exp(s.effort_sigma * effort_z[i])), 5, 480)
            )
            fr_target, res_target = SLA_TARGETS[Priority(int(prio[i]))]
            responded = u_resp[i] < RESPONDED_SHARE[Priority(int(prio[i]))]
            # Ages spread so that some deadlines are already close and a few just passed.
            age = int(u_age[i] * (0.9 * res_target if responded else 1.15 * fr_target))
            self.created[i] = -age
            self.fr_due.append(None if responded else fr_target - age)
            self.res_due.append(res_target - age)

    @staticmethod
    def _coverable(ge: np.ndarray, req: dict[int, int]) -> bool:
        mask = None
        for sk, lvl in req.items():
            col = ge[sk, lvl]
            mask = col if mask is None else mask & col
        return bool(mask is not None and mask.any())

    def _repair(self, req: dict[int, int], topic: int, team: int) -> dict[int, int]:
        """Bend a ticket no available agent can take toward one who nearly can.

        A holder of the topic skill (preferably in the team) is picked, and the language, tier
        and levels are relaxed to what that agent has — a ticket whose requester switched to
        English, or that a tier-2 agent can handle after all.
        """
        rng = self.rng
        holders = np.flatnonzero(self.can_work & (self.levels[:, topic] > 0))
        in_team = holders[self.team_of[holders] == team]
        pick_from = in_team if len(in_team) else holders
        if not len(pick_from):
            team_workers = np.flatnonzero(self.can_work & (self.team_of == team))
            pick_from = team_workers if len(team_workers) else np.flatnonzero(self.can_work)
        # The nearest agent: the one meeting most of the requirements already.
        met = np.zeros(len(pick_from), dtype=np.int64)
        for sk, lvl in req.items():
            met += self.levels[pick_from, sk] >= lvl
        best = pick_from[met == met.max()]
        a = int(best[int(rng.integers(0, len(best)))])
        out: dict[int, int] = {}
        for sk, lvl in req.items():
            have = int(self.levels[a, sk])
            if sk in self.lang_idx and have < lvl:
                spoken = [c for c in self.lang_idx if self.levels[a, c] >= 3]
                if spoken:
                    out[spoken[0]] = 3
                continue
            if sk in self.tier_idx and have < lvl:
                held = [c for c in self.tier_idx if self.levels[a, c] > 0]
                out[held[-1]] = 1
                continue
            if have == 0 and sk == topic:
                # Nobody available holds this topic: this agent is the one learning it.
                self.levels[a, sk] = lvl
                have = lvl
            if have == 0:
                continue  # a secondary topic the agent lacks: the ticket does not need it
            out[sk] = min(lvl, have)
        return out

    # -- load and tightness ------------------------------------------------------------------
    def _load(self) -> None:
        s, rng = self.spec, self.rng
        n = s.n_agents
        lo, hi = s.backlog_minutes
        # Never more backlog than working time: an agent buried in old work is not a useful case.
        self.backlog = np.minimum(rng.integers(lo, hi + 1, size=n), self.work // 2)
        idle = ~self.can_work
        self.backlog[idle] = rng.integers(lo, hi + 1, size=int(idle.sum()))
        # Most open tickets wait on the customer; only some of them still need work (the backlog).
        self.open = np.minimum(rng.poisson(2.0, size=n) + self.backlog // 30, 30).astype(np.int64)
        supply = int(self.work.sum())
        backlog = int(self.backlog[self.can_work].sum())
        demand = int(self.effort.sum())
        if s.tight:
            target = s.tight_load * supply - backlog
        else:
            target = min(demand, s.loose_max_load * supply - backlog)
        if demand > 0 and target > 0 and (s.tight or target < demand):
            # Scaling every effort keeps the lognormal shape while setting the total.
            factor = target / demand
            self.effort = np.maximum(1, np.round(self.effort * factor)).astype(np.int64)
        ratio = s.tight_load if s.tight else s.loose_slot_ratio
        slots = round(ratio * s.n_tickets)
        weight = self.work * rng.lognormal(0.0, 0.3, size=n)
        free = _largest_remainder(slots, weight)
        idle_free = rng.integers(3, 12, size=n)
        free = np.where(self.can_work, free, idle_free)
        self.capacity = np.maximum(self.open + free, 1).astype(np.int64)

    # -- ownership ---------------------------------------------------------------------------
    def _ownership(self) -> None:
        s, rng = self.spec, self.rng
        n = s.n_tickets
        u_own = rng.random(n)
        u_prev = rng.random(n)
        u_gone = rng.random(n)
        self.owner: list[str | None] = [None] * n
        self.previous: list[str | None] = [None] * n
        for i in range(n):
            if u_own[i] < s.owned_share or u_prev[i] < s.previous_share:
                req = self.requirements[i]
                mask = np.ones(s.n_agents, dtype=bool)
                for sk, lvl in req.items():
                    mask &= self.levels[:, sk] >= lvl
                cands = np.flatnonzero(mask)
                if u_own[i] < s.owned_share and len(cands):
                    self.owner[i] = self.agent_ids[int(cands[int(rng.integers(0, len(cands)))])]
                if u_prev[i] < s.previous_share:
                    if u_gone[i] < 0.1 or not len(cands):
                        # The requester's previous agent has left: continuity cannot be kept.
                        self.previous[i] = f"former-{int(rng.integers(1, 1000)):03d}"
                    else:
                        pick = int(cands[int(rng.integers(0, len(cands)))])
                        self.previous[i] = self.agent_ids[pick]

    # -- assembly ----------------------------------------------------------------------------
    def build(self) -> Problem:
        self._catalogue()
        self._agents()
        self._tickets()
        self._load()
        self._ownership()
        skill_ids = [sk.id for sk in self.skills]
        agents = []
        for a in range(self.spec.n_agents):
            row = self.levels[a]
            nz = np.flatnonzero(row)
            agents.append(
                Agent(
                    id=self.agent_ids[a],
                    team=self.team_ids[int(self.team_of[a])],
                    skills={skill_ids[int(k)]: int(row[k]) for k in nz},
                    capacity=int(self.capacity[a]),
                    shifts=self.agent_shifts[a],
                    busy=self.agent_busy[a],
                    open_tickets=int(self.open[a]),
                    backlog_minutes=int(self.backlog[a]),
                    recent_assignments=int(self.rng.poisson(4)),
                    timezone=self.agent_zone[a],
                    status=self.agent_status[a],
                )
            )
        minute = timedelta(minutes=1)
        tickets = []
        for i in range(self.spec.n_tickets):
            created = self.now + int(self.created[i]) * minute
            fr = self.fr_due[i]
            tickets.append(
                Ticket(
                    id=f"T{i + 1:05d}",
                    team=self.team_ids[int(self.ticket_team[i])],
                    created_at=created,
                    required_skills={
                        skill_ids[k]: lvl for k, lvl in sorted(self.requirements[i].items())
                    },
                    priority=Priority(int(self.prio[i])),
                    first_response_due=None if fr is None else self.now + fr * minute,
                    resolution_due=self.now + self.res_due[i] * minute,
                    effort_minutes=int(self.effort[i]),
                    owner_agent=self.owner[i],
                    previous_agent=self.previous[i],
                    requester=f"cust-{int(self.rng.integers(1, 10 * self.spec.n_tickets + 2)):06d}",
                )
            )
        return Problem(
            now=self.now,
            agents=tuple(agents),
            tickets=tuple(tickets),
            skills=tuple(self.skills),
            teams=tuple(Team(t, t.replace("-", " ").title()) for t in self.team_ids),
            horizon_end=self.horizon_end,
        )
