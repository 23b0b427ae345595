"""Background work claimed from the database, so several service processes never run a job twice.

api.db.jobs    the ``jobs`` row and its statuses
api.jobs.queue     enqueue, claim (FOR UPDATE SKIP LOCKED / BEGIN IMMEDIATE), lease, finish
api.jobs.worker    the worker loop and handler context
api.worker   ``switchboard worker``
"""
