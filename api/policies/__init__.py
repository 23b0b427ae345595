"""/v1/policies: how the service behaves for one tenant (team scope, breach risk, calls, SLA).

One document per tenant, read with GET, replaced with PUT and changed with PATCH (JSON Merge
Patch, RFC 7396). A tenant that never wrote one has the defaults, which are what helpdesks
expect. The document is part of the organisation: changing it bumps the organisation's version
(:mod:`api.org_version`), so every cache built from the organisation is rebuilt.

The SLA policy (``sla``: targets per priority on a business schedule) lives here too: one
policy for the whole tenant, applied to every ticket; :mod:`api.tickets.sla` keeps each
ticket's computed deadlines current.
"""
