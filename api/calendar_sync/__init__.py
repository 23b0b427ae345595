"""Calendar sync in the service: agents' calendar connections, the sync jobs that mirror their
busy time, failing closed when a mirror cannot be trusted, and write-back of bound calls.

api.calendar_sync.connectors   a connection's connector (credentials decrypted only here)
api.calendar_sync.writeback    bound calls written into the agent's calendar (outbox + job)
api.calendar_sync.channels     push channels: watch, renew before expiry, release
"""
