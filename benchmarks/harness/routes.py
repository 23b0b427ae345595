"""The service's endpoints the load benchmarks drive, as paths to format and as the route
templates the service's /metrics labels its latency histogram with (the same strings)."""

# The assignment under test; the ticket's external id goes in the path.
ASSIGN_PATH = "/v1/tickets/{ticket_id}/assign"
# A cheap authenticated read of a seeded team (auth, the gate, the rate limiter, the
# idempotency and metrics middlewares, routing, one primary-key SELECT), measured beside it.
BASELINE_PATH = "/v1/teams/{team_id}"
HEALTH_PATH = "/healthz"
