"""The service: FastAPI app, persistence, jobs and the ``switchboard`` command."""

__version__ = "0.1.0"
