"""The HTTP servers under the local Entra ID: threaded werkzeug servers that stop in bounded time.

``werkzeug.serving.make_server`` alone cannot promise that ``EntraEmulator.stop()`` (or Ctrl-C
on ``entra-auth emulator``) returns:

* werkzeug wraps the *listening* socket in TLS, so ``accept()`` in the serving loop does the
  handshake. One client that connects and stays silent stalls every other client, and
  ``shutdown()``, which waits for that loop, never returns. Here the listening socket stays
  plain and each connection does its handshake in its own thread, within a deadline.
* ``serve_forever``/``shutdown`` wait for each other without a deadline. Here the loop checks an
  event between short waits for a connection, and ``stop_serving`` waits for it with a deadline.
* Request threads hold keep-alive connections open. The server keeps the connections it has
  open and knows which are answering a request. ``stop_serving`` shuts the idle ones down at
  once (a thread waiting for the next request wakes, sees the end, and finishes), lets a request
  being answered finish (a request held by a fault is released first, by ``stop()``), and cuts
  whatever is still busy at the deadline. Request threads are daemon threads, joined within the
  deadline and never after it.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from ..logs import inert

log = logging.getLogger("entra_auth.emulator")

POLL_SECONDS = 0.5  # how often the serving loop looks whether it should stop
HANDSHAKE_SECONDS = 10.0  # a client that has not finished its TLS handshake by then is dropped
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Any]


class QuietHandler(WSGIRequestHandler):
    """Logs the method and path only: query strings (state, codes) never reach the log."""

    server: EmulatorServer

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = self.path.split("?", 1)[0]
        log.debug("%s %s %s", inert(self.command, 16), inert(path), code)  # the client's text

    def log_error(self, format: str, *args: Any) -> None:
        log.debug("request error: " + format, *args)

    def parse_request(self) -> bool:
        # The request line is in: from here until its answer is sent, a stop lets it finish.
        self.server.request_started()
        return super().parse_request()

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        finally:
            if self.server.request_finished():  # stopping: no next request on this connection
                self.close_connection = True

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The Date header follows the emulator's (shiftable) clock, for clock-skew checks.
        clock = self.server.clock
        return super().date_time_string(clock() if clock and timestamp is None else timestamp)


class EmulatorServer(ThreadedWSGIServer):
    """One listener of the emulator (HTTPS when given ``tls``), served from a thread of its own."""

    daemon_threads = True  # a request thread never keeps the process alive
    block_on_close = False  # server_close() never waits for request threads: stop_serving does

    def __init__(
        self, host: str, port: int, app: WSGIApp, *, tls: ssl.SSLContext | None = None
    ) -> None:
        # No ssl_context for werkzeug: it would wrap the listening socket (see the docstring).
        super().__init__(host, port, app, handler=QuietHandler)
        # werkzeug's handler reads it for the request's scheme (wsgi.url_scheme) and to log TLS
        # errors quietly; this class does the wrapping itself, per connection.
        self.ssl_context = tls
        # Bounds accept(): the serving loop never blocks longer than this on a connection.
        self.socket.settimeout(POLL_SECONDS)
        self.timeout = POLL_SECONDS  # handle_request() waits at most this long for one
        self.clock: Callable[[], float] | None = None  # the Date header's clock
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a request or a connection ended
        self._connections: dict[threading.Thread, socket.socket] = {}
        self._busy: set[threading.Thread] = set()  # threads answering a request right now
        self._serving: threading.Thread | None = None

    # -- life cycle --------------------------------------------------------------------------------
    def serve_in_thread(self, name: str) -> None:
        self._serving = threading.Thread(target=self._serve, daemon=True, name=name)
        self._serving.start()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                self.handle_request()  # returns after one connection, or POLL_SECONDS without one
            except (OSError, ValueError):
                if self._stopping.is_set():  # the listener was closed under a late loop
                    return
                raise

    def begin_stop(self) -> None:
        """Tell the serving loop to stop (it does within POLL_SECONDS); returns at once."""
        self._stopping.set()

    def stop_serving(self, timeout: float) -> None:
        """Stop accepting, close the listener and end every connection, within ``timeout`` s.

        Idle connections end at once; a request being answered may finish until the deadline.
        Request threads still busy after it are left to finish on their own (they are daemon
        threads); it is logged, never waited for.
        """
        deadline = time.monotonic() + timeout
        self.begin_stop()
        if self._serving is not None:
            self._serving.join(max(0.0, deadline - time.monotonic()))
        self.server_close()
        with self._changed:
            while True:
                for thread, connection in self._connections.items():
                    if thread not in self._busy:  # waiting for a next request, or a handshake
                        _end(connection)
                remaining = deadline - time.monotonic()
                if not self._busy or remaining <= 0:
                    break
                self._changed.wait(remaining)
            left = dict(self._connections)
        for connection in left.values():  # still busy at the deadline: cut
            _end(connection)
        for thread in left:
            thread.join(max(0.0, deadline - time.monotonic()))
        busy = [thread.name for thread in left if thread.is_alive()]
        if busy:
            log.debug("left %d request thread(s) still busy after stop: %s", len(busy), busy)

    def request_started(self) -> None:
        with self._lock:
            self._busy.add(threading.current_thread())

    def request_finished(self) -> bool:
        """Mark the calling thread's request answered; True when the server is stopping."""
        with self._changed:
            self._busy.discard(threading.current_thread())
            self._changed.notify_all()
        return self._stopping.is_set()

    # -- one connection ----------------------------------------------------------------------------
    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Serve one connection in its own thread: TLS handshake first (when HTTPS), then HTTP."""
        thread = threading.current_thread()
        connection: socket.socket = request
        try:
            if not self._hold(thread, request):
                return
            request.settimeout(None)  # accepted from a listener with a timeout
            if self.ssl_context is not None:
                secured = self._handshake(thread, request)
                if secured is None:
                    return
                connection = secured
            self.finish_request(connection, client_address)
        except Exception:
            self.handle_error(connection, client_address)
        finally:
            with self._changed:
                held = self._connections.pop(thread, request)
                self._busy.discard(thread)
                self._changed.notify_all()
            self.shutdown_request(held)

    def _handshake(self, thread: threading.Thread, raw: socket.socket) -> ssl.SSLSocket | None:
        """The connection with TLS established; None when the client or a stop ended it first."""
        assert self.ssl_context is not None
        connection = self.ssl_context.wrap_socket(
            raw, server_side=True, do_handshake_on_connect=False
        )
        # Held before the handshake, so that stop_serving can end a client that never sends one.
        if not self._hold(thread, connection):
            return None
        try:
            connection.settimeout(HANDSHAKE_SECONDS)
            connection.do_handshake()
            connection.settimeout(None)
        except OSError as exc:  # what accept() used to swallow: a failed or abandoned handshake
            log.debug("TLS handshake failed: %s", exc)
            return None
        return connection

    def _hold(self, thread: threading.Thread, connection: socket.socket) -> bool:
        """Record ``connection`` as the thread's open one; False (and ended) once stopping."""
        with self._lock:
            self._connections[thread] = connection
            stopping = self._stopping.is_set()
        if stopping:
            _end(connection)
        return not stopping


def _end(connection: socket.socket) -> None:
    """End a connection another thread may be reading: that read returns, the thread finishes.

    ``socket.socket.shutdown`` and not the TLS socket's own, which would also drop the TLS state
    under the reading thread's feet; the fd itself is closed by the thread that owns it.
    """
    with contextlib.suppress(OSError):  # already closed by its thread, or the client went first
        socket.socket.shutdown(connection, socket.SHUT_RDWR)
