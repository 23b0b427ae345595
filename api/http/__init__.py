"""The HTTP edge every use case's routes share: auth dependencies (``deps``), the gate (key and
body size before any body is read), rate limits, request metrics and the OpenAPI links.
Nothing below the edge (services, schemas, rows) imports it.
"""
