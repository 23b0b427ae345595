"""Calendar sync in the service: agents' calendar connections, the sync jobs that mirror their
busy time, failing closed when a mirror cannot be trusted, and write-back of bound calls.

api.calendar_sync.connectors   a connection's connector (credentials decrypted only here)
api.calendar_sync.jobs         the sync job's name and its queueing (one waiting per connection)
api.calendar_sync.sync         the sync job: fetch outside any transaction, merge under the
                               tenant lock, fail closed loudly, the poll chain and its restart
api.calendar_sync.health       which agents' calendars cannot be trusted now, and why
api.calendar_sync.metrics      connections, lag, runs, errors and requests on /metrics
api.calendar_sync.writeback    bound calls written into the agent's calendar (outbox + job)
api.calendar_sync.channels     push channels: watch, renew before expiry, release
"""
