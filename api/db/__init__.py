"""Persistence: SQLAlchemy rows, engines, the per-tenant write lock and Alembic migrations."""
