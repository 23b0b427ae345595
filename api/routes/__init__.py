"""HTTP routes, one module per resource. Thin: parse, call a service, commit, serialise.

Adding an endpoint:

1. Schemas in ``api/schemas/<resource>.py``: subclass ``Schema`` (unknown fields refused);
   ids are ``Id``; datetimes taken (body or query) ``TimestampIn`` (ISO 8601 with an offset,
   1970..2200; ``LocalTimestampIn`` keeps the offset), answered as ``Timestamp`` (UTC); body
   numbers and flags ``Int`` / ``Number`` / ``Bool`` (strict: ``true`` is no 1); stored text
   built on ``Text`` / ``NO_NUL`` with its length checked before any trimming; PATCH bodies
   ``Patch`` (``.changes()``); outputs get a ``from_row`` classmethod. Rows never leave
   ``services``.
2. A service in ``api/services/<resource>.py``: keyword-only ``get / get_or_raise / create /
   update / delete / list`` taking ``session`` and ``tenant_id``; every query filters by the
   tenant (``common.get`` looks up by ``(tenant_id, id)``); raise ``api.errors`` domain
   errors (``NotFound`` — also for another tenant's object —, ``Conflict``, ``InvalidInput``
   with one ``FieldError`` per field); flush, never commit.
3. A router here with ``responses=PROBLEM_RESPONSES``; take ``SessionDep``, an auth alias
   (``ReadAuth``, ``HelpdeskAuth``, ``PlannerAuth``, ``AdminAuth``), ``NowDep``, ``PageDep``
   from ``api.deps``; id path parameters as ``PathId``; commit once after the service call
   (``api.db.unit.commit_with_retry`` for upserts that can race). Register it in
   ``api/main.py:_include_routers``.
4. Writes that must not race (bookings, bindings): call ``api.db.locks.lock_tenant(session,
   tenant_id)`` *first* in the unit of work, re-check inside, then commit.
5. POSTs get ``Idempotency-Key`` for free (``api/idempotency.py``); errors become
   problem+json through ``api/errors.py`` — no ``HTTPException`` anywhere.
6. Tests in ``tests/api`` with the ``a``/``b`` tenant fixtures: they run on SQLite and
   PostgreSQL; add the resource to ``test_isolation.py``.
"""
