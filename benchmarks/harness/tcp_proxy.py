"""A TCP proxy for fault tests: put it between the service and PostgreSQL, then break the network.

    with TcpProxy("127.0.0.1", 5432) as proxy:
        url = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/db"
        proxy.refuse()     # new connections are closed at once, open ones are cut (a restart)
        proxy.blackhole()  # connections are accepted and nothing is forwarded (a partition)
        proxy.forward()    # back to normal; held connections resume where they stopped

A black hole is what a partition looks like through a proxy (and through many load balancers):
the client's kernel still gets its TCP acknowledgements, so only a timeout in the client can
notice it. Threads, not asyncio: the tests around it are synchronous.
"""

from __future__ import annotations

import contextlib
import enum
import selectors
import socket
import struct
import threading
from types import TracebackType

_CHUNK = 65536
_TICK = 0.05  # how often an idle pump looks at the mode and the stop flag


class Mode(enum.Enum):
    FORWARD = "forward"
    REFUSE = "refuse"
    BLACKHOLE = "blackhole"


class TcpProxy:
    """Listens on 127.0.0.1 (a free port) and relays to ``host:port`` according to its mode."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(_TICK)
        self.port: int = self._listener.getsockname()[1]
        self.mode = Mode.FORWARD
        self.accepted = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._generation = 0  # bumped by refuse(): pumps of an older generation hang up

    # --- control -------------------------------------------------------------------------------

    def forward(self) -> None:
        self.mode = Mode.FORWARD

    def refuse(self) -> None:
        """Close new connections at once and cut the open ones (the server went away)."""
        with self._lock:
            self._generation += 1
            self.mode = Mode.REFUSE

    def blackhole(self) -> None:
        """Accept new connections and forward nothing, in either direction, on any of them."""
        self.mode = Mode.BLACKHOLE

    def start(self) -> TcpProxy:
        self._spawn(self._accept_loop, "tcp-proxy-accept")
        return self

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- the relay -----------------------------------------------------------------------------

    def _spawn(self, target: object, name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            if self.mode is Mode.REFUSE:
                _reset(client)
                continue
            self._track(client)
            self._spawn(self._pump, "tcp-proxy-pump", client, self._generation)

    def _pump(self, client: socket.socket, generation: int) -> None:
        upstream: socket.socket | None = None
        try:
            # A black-holed connection is held unanswered; it is connected upstream only if
            # the proxy forwards again while the client is still there.
            while upstream is None:
                if self._stop.is_set() or self._generation != generation:
                    return
                if self.mode is Mode.FORWARD:
                    upstream = socket.create_connection(self.target, timeout=5)
                    self._track(upstream)
                else:
                    self._stop.wait(_TICK)
            self._relay(client, upstream, generation)
        except OSError:
            pass
        finally:
            _reset(client)
            if upstream is not None:
                upstream.close()
            with self._lock:
                self._sockets.discard(client)
                if upstream is not None:
                    self._sockets.discard(upstream)

    def _relay(self, client: socket.socket, upstream: socket.socket, generation: int) -> None:
        peer = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as sel:
            sel.register(client, selectors.EVENT_READ)
            sel.register(upstream, selectors.EVENT_READ)
            while not self._stop.is_set() and self._generation == generation:
                if self.mode is not Mode.FORWARD:
                    # Read nothing: bytes wait in the kernel buffers, as on a dead link.
                    self._stop.wait(_TICK)
                    continue
                for key, _ in sel.select(_TICK):
                    src: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = src.recv(_CHUNK)
                    if not data:
                        return
                    peer[src].sendall(data)


def _reset(sock: socket.socket) -> None:
    """Close with an RST rather than a FIN: the peer learns at once that the link is gone."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
