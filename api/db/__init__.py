"""Persistence: every row (``models``, ``jobs``, ``webhooks``), engines, the per-tenant write lock
and Alembic migrations."""
