"""The HTTP edge every use case shares: auth dependencies, the gate, rate limits, metrics, the
solve pool and the OpenAPI links.
"""
