"""Running the HTTP service under uvicorn, in one process or several: ``switchboard serve`` (and
the HTTP benchmark) call :func:`run`.

    sock = bind("0.0.0.0", 8000)        # fails here, before anything else, if the port is taken
    run(settings, sock=sock, workers=4)  # blocks until SIGINT/SIGTERM

The listening socket is always bound here, never by uvicorn. uvicorn's own ``--workers N``
binds it without ``IPPROTO_TCP``; accepted connections inherit ``proto == 0``, asyncio then
skips ``TCP_NODELAY`` on them, and every response on a kept-alive connection after the first
waits for the client's delayed ACK (Kludex/uvicorn#3149; on asyncio's loop, figures:
benchmarks/README.md, Figures behind design choices; uvloop sets ``TCP_NODELAY`` by itself, so
the trap hides wherever uvloop is installed). A socket bound as
TCP is handed to uvicorn's supervisor (:class:`uvicorn.supervisors.Multiprocess`), which starts
the workers, restarts one that dies and stops them all on SIGINT/SIGTERM. One worker is served
from the same kind of socket, so a taken port fails before anything is migrated or seeded.

Whatever must be said once the service answers (the demo's keys) is said by ``on_ready``, called
in the parent when ``GET /healthz`` on the socket first answers 200 (:func:`wait_until_serving`):
uvicorn listens only after every startup hook of the app has run, so no hook inside the app can
know that the port accepts connections, and with several workers only the parent speaks once.

Each worker process builds its own app (``create_app(settings)``: its engine, pool, caches and
background threads) from the one :class:`~api.settings.Settings` built by the parent, so every
worker runs with the same configuration. Whatever must happen once — migrating, seeding the
demo tenant — the caller does before :func:`run`, in the parent; workers only serve.

The access log names the method, the path and the status, never the query string: cursors,
filters and whatever a client put there (a token, an e-mail address) do not belong in logs.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import http.client
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

from api.settings import Settings

# uvicorn's exit status for "the server could not start" (uvicorn.config.STARTUP_FAILURE).
STARTUP_FAILURE = 3

log = logging.getLogger("uvicorn.error")  # uvicorn configures it: our lines look like its own


class PathOnly(logging.Filter):
    """Drops the query string from uvicorn's access log lines (``uvicorn.access``).

    uvicorn logs ``(client, method, path?query, http_version, status)`` as the record's
    arguments; its formatter builds the request line from them, so the path is cut here.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            client, method, path, version, status = args
            record.args = (client, method, str(path).split("?", 1)[0], version, status)
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration with :class:`PathOnly` on the access logger. It travels
    in the :class:`uvicorn.Config`, so every (spawned) worker process applies it too."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["path_only"] = {"()": f"{__name__}.PathOnly"}
    config["loggers"]["uvicorn.access"].setdefault("filters", []).append("path_only")
    return config


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (not yet listening); port 0 picks a free one.

    ``IPPROTO_TCP`` is what makes asyncio set ``TCP_NODELAY`` on every accepted connection.
    Raises :class:`OSError` when the address cannot be bound (in use, not local, ...).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def base_url(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket (the real port when 0 was asked for)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if sock.family == socket.AF_INET6 else f"http://{host}:{port}"


def probe_address(sock: socket.socket) -> tuple[str, int]:
    """Where a client on this machine reaches a bound socket: its address, or loopback when it
    is bound to every address (``0.0.0.0``, ``::``)."""
    host, port = sock.getsockname()[:2]
    if host == "0.0.0.0":
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return str(host), int(port)


def wait_until_serving(
    host: str, port: int, stop: threading.Event, *, interval: float = 0.05
) -> bool:
    """Block until ``GET /healthz`` on ``host:port`` answers 200 (True), or ``stop`` is set
    first (False). Connection refused, reset or timed out: the server is not serving yet."""
    while not stop.is_set():
        conn = http.client.HTTPConnection(host, port, timeout=2)
        try:
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                return True
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()
        stop.wait(interval)
    return False


def _announcer(
    sock: socket.socket, on_ready: Callable[[], None], stop: threading.Event
) -> threading.Thread:
    host, port = probe_address(sock)

    def announce() -> None:
        if wait_until_serving(host, port, stop):
            on_ready()

    return threading.Thread(target=announce, name="switchboard-ready", daemon=True)


def run(
    settings: Settings,
    *,
    sock: socket.socket | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    log_level: str = "info",
    access_log: bool = True,
    loop: str = "auto",
    on_ready: Callable[[], None] | None = None,
) -> int:
    """Serve the API on ``sock`` (else on a socket bound to ``host:port``) with ``workers``
    processes until SIGINT/SIGTERM; closes the socket. ``on_ready`` is called once, from a
    thread of this process, as soon as the service answers on the socket (never, when it does
    not start). Returns the exit status: 0, or :data:`STARTUP_FAILURE` when the app could not
    start (bad database, ...)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from api.main import create_app

    if workers < 1:
        raise ValueError("workers must be at least 1")
    if sock is None:
        sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    config = uvicorn.Config(
        # A picklable factory: with several workers each (spawned) process calls it itself.
        functools.partial(create_app, settings),
        factory=True,
        host=bound_host,
        port=bound_port,
        workers=workers,
        log_level=log_level,
        access_log=access_log,
        log_config=log_config(),
        proxy_headers=True,
        loop=loop,
    )
    log.info(
        "Switchboard running on %s with %d worker process%s (Press CTRL+C to quit)",
        base_url(sock),
        workers,
        "" if workers == 1 else "es",
    )
    stop = threading.Event()
    announcer = _announcer(sock, on_ready, stop) if on_ready is not None else None
    if announcer is not None:
        announcer.start()
    try:
        if workers == 1:
            server = uvicorn.Server(config)
            # uvicorn re-raises the SIGINT it shut down for: that is a normal stop.
            with contextlib.suppress(KeyboardInterrupt):
                server.run(sockets=[sock])
            return 0 if server.started else STARTUP_FAILURE
        supervisor = Multiprocess(config, sockets=[sock])
        supervisor.run()
        # The supervisor stops when a worker fails before serving (it would fail again).
        failed = any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes)
        return STARTUP_FAILURE if failed else 0
    finally:
        stop.set()
        if announcer is not None:
            announcer.join(timeout=5)
        sock.close()
