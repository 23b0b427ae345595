"""Idempotency-Key: the middleware, the stored records, and the one definition of a valid key."""
