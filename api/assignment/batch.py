"""Group commit for ``POST /v1/tickets/{id}/assign``: concurrent requests of one tenant share a
transaction.

Every assignment must hold the tenant's lock while it reads the agents' loads, decides and
writes (see :mod:`api.assignment.service`), so a tenant's assignments run one after another in
any case. Running them one transaction each costs a lock hand-over, ~8 round trips to the
database and a commit per request. Instead, while one batch of a tenant runs (in a worker
thread), the requests that arrive queue up on the event loop, and the next batch takes all of
them (up to :data:`MAX_BATCH`) into one :func:`~api.assignment.service.assign_many` call and one
commit. Nothing waits on a timer: a lone request runs at once as a batch of one; under load the
batches grow by themselves with the arrival rate, and each request waits at most for the batch
in front of it.

Each request still gets its own answer, error included (an unknown ticket is its own 404). A
batch that fails as a whole (a database error) rolls back and is retried one request per
transaction, so one poisonous request cannot fail its neighbours. The same ticket twice in a
queue goes into the next batch, after the first has committed, as it would have sequentially.
A request whose client has gone before its batch starts is dropped unassigned; once its batch
runs, the assignment commits whether or not anyone still listens (as a synchronous request
would).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import anyio.to_thread
from sqlalchemy.orm import Session

from api.assignment.cache import RealtimeCache
from api.assignment.service import AssignRequest, AssignResult, assign_many

log = logging.getLogger(__name__)

# Enough to amortize the per-transaction cost; small enough that the batch in front of a request
# (decided in Python inside the tenant lock, ticket by ticket) stays a few milliseconds
# (figures: benchmarks/README.md, Figures behind design choices).
MAX_BATCH = 64


@dataclass(slots=True)
class _Waiting:
    request: AssignRequest
    future: asyncio.Future[AssignResult]


class AssignBatcher:
    """Per-tenant queues of assignment requests, drained batch by batch (see module doc).

    Lives on one event loop (the app's); the batches run in worker threads."""

    def __init__(
        self,
        session_factory: Callable[[], Session],
        cache: RealtimeCache,
        *,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.session_factory = session_factory
        self.cache = cache
        self.max_batch = max_batch
        self._queues: dict[str, list[_Waiting]] = {}
        self._draining: dict[str, asyncio.Task[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        # How many batches ran and how many requests they held (for tests and curiosity).
        self.batches = 0
        self.requests = 0

    async def assign(self, tenant_id: str, request: AssignRequest) -> AssignResult:
        """Assign ``request``'s ticket in the next batch of ``tenant_id``; raises its error."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # A new loop (an app restarted in the same process, as tests do): whatever was
            # queued on the old one can never be answered there.
            self._queues.clear()
            self._draining.clear()
            self._loop = loop
        future: asyncio.Future[AssignResult] = loop.create_future()
        self._queues.setdefault(tenant_id, []).append(_Waiting(request, future))
        if tenant_id not in self._draining:
            self._draining[tenant_id] = loop.create_task(self._drain(tenant_id))
        return await future

    async def _drain(self, tenant_id: str) -> None:
        batch: list[_Waiting] = []
        try:
            while batch := self._next_batch(tenant_id):
                outcomes = await anyio.to_thread.run_sync(
                    self._run, tenant_id, [w.request for w in batch]
                )
                for waiting, outcome in zip(batch, outcomes, strict=True):
                    if waiting.future.done():
                        continue
                    if isinstance(outcome, BaseException):
                        waiting.future.set_exception(outcome)
                    else:
                        waiting.future.set_result(outcome)
        except BaseException as exc:  # cancelled with the loop, or a bug: nobody may hang
            for waiting in [*batch, *self._queues.pop(tenant_id, [])]:
                if waiting.future.done():
                    continue
                if isinstance(exc, asyncio.CancelledError):
                    waiting.future.cancel()
                else:
                    waiting.future.set_exception(exc)
            raise
        finally:
            self._draining.pop(tenant_id, None)

    def _next_batch(self, tenant_id: str) -> list[_Waiting]:
        """Take up to ``max_batch`` waiting requests, each ticket at most once, in arrival
        order; the rest stay queued."""
        queue = self._queues.pop(tenant_id, [])
        batch: list[_Waiting] = []
        later: list[_Waiting] = []
        tickets: set[str] = set()
        for waiting in queue:
            if waiting.future.done():  # its client went away before anything happened
                continue
            ticket = waiting.request.ticket_id
            if ticket in tickets or len(batch) >= self.max_batch:
                later.append(waiting)
            else:
                tickets.add(ticket)
                batch.append(waiting)
        if later:
            self._queues[tenant_id] = later
        return batch

    def _run(
        self, tenant_id: str, requests: Sequence[AssignRequest]
    ) -> list[AssignResult | BaseException]:
        """One batch in one transaction; on failure, each request in its own (worker thread)."""
        self.batches += 1
        self.requests += len(requests)
        try:
            return list(self._transaction(tenant_id, requests))
        except Exception as exc:
            if len(requests) == 1:
                return [exc]
            log.warning(
                "an assignment batch of %d failed; retrying one by one",
                len(requests),
                exc_info=True,
            )
        out: list[AssignResult | BaseException] = []
        for request in requests:
            try:
                out.extend(self._transaction(tenant_id, [request]))
            except Exception as exc:
                out.append(exc)
        return out

    def _transaction(
        self, tenant_id: str, requests: Sequence[AssignRequest]
    ) -> list[AssignResult | Exception]:
        with self.session_factory() as session:
            outcomes = assign_many(
                session=session, cache=self.cache, tenant_id=tenant_id, requests=requests
            )
            session.commit()
        return outcomes
