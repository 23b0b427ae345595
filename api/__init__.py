"""The service: FastAPI app, persistence, jobs and the ``switchboard`` command."""
