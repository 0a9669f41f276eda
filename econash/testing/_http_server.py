"""Scaffolding shared by the loopback API servers (``FaultServer``, ``MessagesServer``).

A ``ThreadingHTTPServer`` on a free 127.0.0.1 port, served from a background thread; a handler
base that tracks its connection (so ``stop()`` can unblock keep-alive readers) and can drop it with
a TCP RST; and ``LoopbackServer``, which owns both and holds what every fault-injecting server
needs: the fault queue, the persistent fault, request recording and delays that ``stop()`` cuts
short. Standard library only.
"""

from __future__ import annotations

import http.server
import socket
import struct
import threading
import time
from typing import Any, Callable, Generic, Iterable, TypeVar

F = TypeVar("F")  # the server's fault type
S = TypeVar("S", bound="LoopbackServer[Any]")


class LoopbackHTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # a burst of concurrent connections must not overflow the backlog

    owner: LoopbackServer[Any]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up (timeouts, resets) are expected here; don't print tracebacks.
        pass


class LoopbackHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out without waiting for delayed ACKs
    server: LoopbackHTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.owner._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass

    def _extra_headers(self) -> dict[str, str]:
        """Headers every response of this server carries (after Content-Type and Content-Length)."""
        return {}

    def _send(self, status: int, payload: bytes, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in [*self._extra_headers().items(), *(headers or {}).items()]:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()

    def _reset(self) -> None:
        """Drop the connection with a TCP RST: linger 0, then close the socket for real."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.rfile.close()  # the socket closes only once its file objects let go of it
        finally:
            self.connection.close()


class LoopbackServer(Generic[F]):
    """Lifecycle, fault queue and request records of a loopback server; a subclass sets ``handler``
    (a ``LoopbackHandler``) and ``parse_fault`` (a fault, a kind name or None to a fault or None)."""

    handler: type[LoopbackHandler]
    parse_fault: Callable[[Any], F | None]

    def __init__(self, *, latency_s: float, faults: Iterable[F | str | None]) -> None:
        if latency_s < 0:
            raise ValueError("latency_s must be >= 0")
        self.latency_s = latency_s
        #: parsed JSON bodies of the requests received, in arrival order
        self.requests: list[Any] = []
        #: headers of every recorded request (names lower-cased), parallel to ``requests``
        self.request_headers: list[dict[str, str]] = []
        #: exceptions raised by the responder (each was answered with a 500)
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._queue: list[F | None] = []
        self._persistent: F | None = None
        self._stopping = threading.Event()
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._httpd: LoopbackHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.add_faults(*faults)

    # ------------------------------------------------------------ lifecycle

    def start(self: S) -> S:
        """Bind a free port on 127.0.0.1 and serve from a background thread. Idempotent."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = LoopbackHTTPServer(("127.0.0.1", 0), self.handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"{type(self).__name__}:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, drop open connections, and join every thread. Idempotent."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()  # wakes handlers waiting out a latency or a "timeout" fault
        httpd.shutdown()
        with self._lock:
            open_connections = list(self._connections.items())
        for conn, _ in open_connections:  # unblock handlers waiting for the next keep-alive request
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for _, handler in open_connections:
            handler.join(max(0.0, deadline - time.monotonic()))
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
        httpd.server_close()
        self._httpd = self._thread = None

    def __enter__(self: S) -> S:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError(f"the {type(self).__name__} is not running; call start() or use it in a with block")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------ faults and records

    def add_faults(self, *faults: F | str | None) -> None:
        """Queue faults for the next requests, one each, in order (None: a normal answer)."""
        parsed = [self.parse_fault(f) for f in faults]
        with self._lock:
            self._queue.extend(parsed)

    def set_persistent_fault(self, fault: F | str | None) -> None:
        """Apply ``fault`` to every request until called again with None."""
        parsed = self.parse_fault(fault)
        with self._lock:
            self._persistent = parsed

    @property
    def request_count(self) -> int:
        """How many requests were recorded (faulted ones included)."""
        with self._lock:
            return len(self.requests)

    def reset(self) -> None:
        """Forget recorded requests and errors, and drop every fault."""
        with self._lock:
            self.requests.clear()
            self.request_headers.clear()
            self.errors.clear()
            self._queue.clear()
            self._persistent = None

    # ------------------------------------------------------------ used by the handler

    def _record(self, body: Any, headers: dict[str, str]) -> F | None:
        """Record a request and pick its fault."""
        with self._lock:
            self.requests.append(body)
            self.request_headers.append(headers)
            if self._persistent is not None:
                return self._persistent
            return self._queue.pop(0) if self._queue else None

    def _delay(self, seconds: float) -> bool:
        """Wait ``seconds`` unless the server stops first; True if it is stopping."""
        if seconds > 0:
            return self._stopping.wait(seconds)
        return self._stopping.is_set()

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections[conn] = threading.current_thread()
            else:
                self._connections.pop(conn, None)
