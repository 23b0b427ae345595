"""API keys and tenants: who may call, with which scopes."""
