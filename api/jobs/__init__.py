"""Background work claimed from the database, so several service processes never run a job twice.

api.db.jobs         the ``jobs`` row and its statuses
api.jobs.queue      enqueue, claim (FOR UPDATE SKIP LOCKED / BEGIN IMMEDIATE), lease, finish
api.jobs.worker     the worker loop and handler context
api.jobs.runtime    the worker thread of a service process, and the queue-depth gauge
api.jobs.routes     /v1/jobs: a job's status and result
api.worker          ``switchboard worker``: a process of its own
Which handler runs which kind of job is said in :mod:`api.wiring`.
"""
