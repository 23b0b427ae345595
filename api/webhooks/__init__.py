"""Webhooks: per-tenant subscriptions, the outbox fan-out, signed delivery with retries, and the
delivery log. Events enter through :func:`api.events.emit`; nothing is sent inside a
request — the deliverer (:mod:`api.webhooks.delivery`) claims due deliveries from the database.
"""
