"""/v1/policies: how the service behaves for one tenant (team scope, breach risk, calls).

One document per tenant, read with GET, replaced with PUT and changed with PATCH (JSON Merge
Patch, RFC 7396). A tenant that never wrote one has the defaults, which are what helpdesks
expect. The document is part of the organisation: changing it bumps the organisation's version
(:mod:`api.org_version`), so every cache built from the organisation is rebuilt.
"""
