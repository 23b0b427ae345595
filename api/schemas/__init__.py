"""Pydantic request/response schemas: the API's own shapes, separate from rows and solver types."""
