"""The service: FastAPI app, persistence, jobs and the ``switchboard`` command.

Organised by use case. Each use-case package holds its ``routes.py`` (the HTTP operations),
``schemas.py`` (the API's shapes) and ``service.py`` (the work, on plain data), so whatever a
capability does lives in one place:

- ``tickets/``      the helpdesk's tickets (the source of truth) and their history
- ``assignment/``   one ticket now, escalation, reroute, the queue re-optimized as a job, and the
  one writer of owner changes
- ``bookings/``     capability-based live calls: slots, bookings, just-in-time binding
- ``solve/``        stateless solving of a posted problem, in a bounded process pool
- ``org/``          skills, teams, agents, capabilities, shifts and busy time (``org/crud.py``
  builds their common operations)
- ``keys/``, ``kpis/``, ``jobs/``, ``webhooks/``, ``ops/`` (probes, metrics), ``idempotency/``
- ``problems/``     the page behind every problem ``type`` URI (what it means, how to fix it)
- ``links/``        single-use call links: the helpdesk issues them, the customer books through
- ``customer/``     the customer's pages under ``/c`` (picker, confirmation, waiting room):
  HTML from ``templates/``, ``static/`` CSS and script, the pages' headers, the room's stream

Below them, shared: ``db/`` (every row, the engine, migrations), ``mapping.py`` (rows and
requests to solver types, solver results to JSON, each once), ``events.py`` (every webhook event
and its payload), ``org_version.py`` (the one "organisation changed" listener and the caches keyed
on it), ``solver_input.py`` (what the solver sees of a tenant), ``auth.py``, ``common/``.
Above them: ``http/`` (auth dependencies, gate, rate limits, metrics, OpenAPI links and
security requirements, the offline ``/docs``), then
``wiring.py`` (job handlers, listeners, caches: the one composition root), ``main.py`` (the app)
and ``worker.py`` (the worker process). The import contracts in ``pyproject.toml`` hold this
shape: routes -> service -> schemas in every use case, nothing below the edge imports it, no
cycles.
"""

__version__ = "0.1.0"
