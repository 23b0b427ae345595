"""Assignment: one ticket now (the real-time index), escalation, reroute, and the queue re-
optimized as a job.
"""
