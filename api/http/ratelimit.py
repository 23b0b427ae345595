"""Per-tenant rate limits: a token bucket per tenant, counted in Redis or in process memory.

Every authenticated request takes one token from its tenant's bucket, before its body is read
(:class:`RateLimitMiddleware`, with the principal :mod:`api.http.gate` found), or else right after
authentication (:func:`check`, called by ``api.http.deps.require``). Limiting needs the tenant, so a
bad key is a 401 before it could ever be a 429. The bucket holds ``rate_limit_burst`` tokens
and refills at ``rate_limit_per_second``; an empty bucket answers **429** problem+json with::

    Retry-After: 1                                  when the next token arrives (whole seconds)
    RateLimit-Policy: "tenant";q=4000;w=2           the bucket (q) and seconds to refill it (w)
    RateLimit: "tenant";r=0;t=1                     tokens left (r), seconds to the next one (t)

The two ``RateLimit`` fields are the structured-field form of
draft-ietf-httpapi-ratelimit-headers-10 (unchanged since -08): one named policy, ``q``/``w`` on
the policy and ``r``/``t`` on the live counter. They are sent on 429 answers only: the draft
lets a server omit them, and on a success they would cost a second Redis round trip per request.

A refusal is answered ``rate_limit_reject_delay_seconds`` (0.5 s, jittered) late. Refusing is cheap
(a small fraction of a ticket read's CPU), but a client that loops on 429s over many connections
sends thousands a second, and every one of them passes through the event loop that also serves
the other tenants: their reads wait behind it. Answered late, the same client sends about one
request per connection per delay; the sleeping refusals hold no thread, no database connection
and no CPU (figures: benchmarks/README.md, Noisy neighbour and Figures behind design choices).

One bucket for all of a tenant's requests, of every kind, but a solve takes
``rate_limit_solve_cost`` (10) tokens: its body (a problem of up to 20,000 tickets) is parsed
before the solve pool's concurrency cap (api/solve/pool.py) can refuse it, so a tenant looping
on solves at the plain rate would keep the event loop busy with parsing alone (figures:
benchmarks/README.md, Noisy neighbour). One bucket with weights keeps one setting to explain;
the cap holds the solving itself.

The algorithm is pyrate-limiter's (``TokenBucket``, which it implements as GCRA: one number of
state per tenant, the wait in closed form, and a Lua script that makes the Redis check atomic
across workers and replicas). ``limits``, the other maintained candidate, has moving, fixed and
sliding-window-counter strategies but no token bucket: no burst separate from the rate, and a
retry time that is a window reset rather than the arrival of the next token.

Redis is optional (``SWITCHBOARD_REDIS_URL``); without it every worker process counts for itself,
so N workers admit up to N times the rate. When Redis does not answer (within
``rate_limit_redis_timeout_seconds``) requests are admitted unlimited — availability over
limiting — with one warning per outage, and Redis is not asked again for
:data:`REDIS_RETRY_SECONDS`, so an outage costs the hot path nothing.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pyrate_limiter import (
    Decision,
    Duration,
    InMemoryStateStore,
    Rate,
    StateStore,
    TokenBucket,
)
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth import Principal
from api.errors import PROBLEM_JSON, TooManyRequests, problem_body
from api.settings import Settings

log = logging.getLogger(__name__)

POLICY = "tenant"  # the policy's name in the RateLimit fields
SOLVE_PATH = "/v1/solve"  # costs rate_limit_solve_cost tokens
REDIS_RETRY_SECONDS = 5.0  # after a Redis failure, requests pass unlimited this long
_ALGORITHM = TokenBucket()


_JITTER = random.Random()  # only spreads refusals in time: no result depends on it


async def refuse_late(delay: float, rng: random.Random = _JITTER) -> None:
    """Wait before answering a refusal: a client looping on 429s then sends one request per
    connection per ``delay`` instead of thousands a second, and the event loop stays free for
    the other tenants (see the module doc); a sleeping refusal holds no thread, no database
    connection and no CPU. Jittered (0.5-1.5x): refusals given at one moment must not all come
    back at one moment, a herd that spends the refilled tokens at once and sets the other
    tenants' p99 (figures: benchmarks/README.md, Noisy neighbour)."""
    if delay > 0:
        await asyncio.sleep(delay * (0.5 + rng.random()))


class RateLimiter:
    """The tenants' buckets: in memory, or in Redis when given a client (``redis.asyncio``)."""

    def __init__(
        self,
        *,
        per_second: int,
        burst: int,
        clock: Callable[[], datetime],
        redis: Any = None,
        prefix: str = "",
        reject_delay: float = 0.0,
        solve_cost: int = 1,
        jitter: random.Random | None = None,
    ) -> None:
        self.reject_delay = reject_delay
        self._jitter = jitter or _JITTER
        self.burst = burst
        self.solve_cost = solve_cost
        self.rates = [Rate(per_second, Duration.SECOND, burst=burst)]
        self.clock = clock
        self.redis = redis
        self.prefix = prefix
        self._memory: dict[str, InMemoryStateStore] = {}
        self._redis_stores: dict[str, Any] = {}
        self._redis_down_until = 0.0
        refill = math.ceil(burst / per_second)
        self._policy = f'"{POLICY}";q={burst};w={refill}'

    async def admit(self, tenant_id: str, cost: int = 1) -> None:
        """Take ``cost`` of the tenant's tokens (at most the burst), or raise
        :class:`TooManyRequests`."""
        cost = min(cost, self.burst)
        now_ms = int(self.clock().timestamp() * 1000)
        if self.redis is None:
            decision = self._memory_check(tenant_id, now_ms, cost)
        else:
            found = await self._redis_check(tenant_id, now_ms, cost)
            if found is None:
                return
            decision = found
        if decision.allowed:
            return
        wait = math.ceil((decision.retry_after_ms or 1000) / 1000)
        if self.reject_delay > 0:
            await refuse_late(self.reject_delay, self._jitter)
        raise TooManyRequests(
            f"this tenant is over its rate limit; retry in {max(1, wait)} s",
            retry_after=wait,
            headers={
                "RateLimit-Policy": self._policy,
                "RateLimit": f'"{POLICY}";r=0;t={max(1, wait)}',
            },
        )

    def cost(self, scope: Scope) -> int:
        """Tokens a request takes: ``rate_limit_solve_cost`` for a solve, else 1."""
        if scope["method"] == "POST" and scope["path"] == SOLVE_PATH:
            return self.solve_cost
        return 1

    def _memory_check(self, tenant_id: str, now_ms: int, cost: int) -> Decision:
        """This process's decision for the tenant (no Redis configured)."""
        found = self._memory.get(tenant_id)
        if found is None:
            # setdefault: two threads may miss at once; both end up with the same store.
            found = self._memory.setdefault(tenant_id, InMemoryStateStore())
        store: StateStore = found
        # Called through StateStore's signature (InMemoryStateStore.check is unannotated),
        # which admits an async store's awaitable; the in-memory store decides at once.
        decision = store.check(_ALGORITHM, self.rates, now_ms, cost)
        assert isinstance(decision, Decision)
        return decision

    async def _redis_check(self, tenant_id: str, now_ms: int, cost: int) -> Decision | None:
        """Redis's decision, or None (admit) while Redis does not answer."""
        from pyrate_limiter import RedisStateStore
        from redis.exceptions import RedisError

        if self._redis_down_until and time.monotonic() < self._redis_down_until:
            return None
        store = self._redis_stores.get(tenant_id)
        if store is None:
            store = RedisStateStore(self.redis, self.prefix + tenant_id)
            self._redis_stores[tenant_id] = store
        try:
            decision: Decision = await store.check(_ALGORITHM, self.rates, now_ms, cost)
        except (RedisError, OSError) as exc:
            if not self._redis_down_until:
                # The exception's class only: its text can carry the server's address.
                log.warning(
                    "rate limiting: Redis did not answer (%s); admitting requests unlimited, "
                    "asking again every %.0f s",
                    type(exc).__name__,
                    REDIS_RETRY_SECONDS,
                )
            self._redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
            return None
        if self._redis_down_until:
            log.info("rate limiting: Redis answers again; limiting resumes")
            self._redis_down_until = 0.0
        return decision

    async def aclose(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()


def build(settings: Settings, clock: Callable[[], datetime]) -> RateLimiter | None:
    """The app's limiter (built in the lifespan), or None when limiting is off."""
    if not settings.rate_limiting:
        return None
    redis = None
    if settings.redis_url is not None:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        timeout = settings.rate_limit_redis_timeout_seconds
        redis = Redis.from_url(
            settings.redis_url.get_secret_value(),
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # No retries: a request must not wait out a retry loop to learn Redis is down.
            retry=Retry(NoBackoff(), 0),
        )
    return RateLimiter(
        per_second=settings.rate_limit_per_second,
        burst=settings.rate_limit_burst,
        clock=clock,
        redis=redis,
        prefix=settings.rate_limit_redis_prefix,
        reject_delay=settings.rate_limit_reject_delay_seconds,
        solve_cost=settings.rate_limit_solve_cost,
    )


# scope["state"] key: this request's token was already taken (by RateLimitMiddleware).
_COUNTED = "rate_limit_counted"


async def check(request: Request, principal: Principal) -> None:
    """Take one token of the principal's tenant, unless :class:`RateLimitMiddleware` already
    did for this request (a no-op when limiting is off)."""
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is not None and not request.scope.get("state", {}).get(_COUNTED):
        await limiter.admit(principal.tenant_id, limiter.cost(request.scope))


class RateLimitMiddleware:
    """Takes the token before the app reads the body, when the key is known to this process.

    FastAPI reads and JSON-parses a body before any dependency runs: a tenant looping on
    ``POST /v1/solve`` would cost the server a problem's parsing per request even when
    :func:`check` then refuses it, and that alone keeps another tenant's reads waiting for
    seconds (figures: benchmarks/README.md, Noisy neighbour). Here the principal
    :mod:`api.http.gate` authenticated before the body is read is charged, and an empty bucket
    answers 429 without a byte of the body read. :func:`check` (in the routes' authorization)
    charges what was not counted here.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limiter: RateLimiter | None = getattr(scope["app"].state, "rate_limiter", None)
        # api.http.gate, outside this middleware, has authenticated every request that needs a key
        # (public paths have no tenant to charge).
        principal = scope.get("state", {}).get("principal")
        if limiter is None or principal is None:
            await self.app(scope, receive, send)
            return
        try:
            await limiter.admit(principal.tenant_id, limiter.cost(scope))
        except TooManyRequests as exc:
            body = problem_body(
                status=exc.status,
                title=exc.title,
                slug=exc.slug,
                detail=exc.detail,
                instance=scope["path"],
            )
            response = JSONResponse(
                body, status_code=exc.status, media_type=PROBLEM_JSON, headers=exc.headers()
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})[_COUNTED] = True
        await self.app(scope, receive, send)
