"""A real OpenAI-compatible HTTP server on 127.0.0.1 that misbehaves on cue.

It speaks the chat-completions shape over a real socket, answers each request from a `Script`
(500, 429 with Retry-After, slow replies, truncated bodies, malformed content, ...), and counts how
many requests it holds at once, so tests can check the judge's concurrency bound.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.graph.replies import Behaviour, Script


class FaultServer:
    """A threaded HTTP server speaking `POST /v1/chat/completions`; use as a context manager."""

    def __init__(self, *behaviours: Behaviour, default: Behaviour | None = None) -> None:
        self.script = Script(*behaviours, default=default)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._in_flight = 0
        self.max_in_flight = 0
        """The most requests the server held at the same time."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits up to one interval, and every test stops a server.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name="fault-server", daemon=True
        )

    @property
    def url(self) -> str:
        """The API root to configure a client with."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request body received, in order."""
        return self.script.requests

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()  # wakes handlers still sleeping in a slow reply
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.0: one request per connection, so a truncated body ends at the close.
            protocol_version = "HTTP/1.0"

            def do_POST(self) -> None:
                server._enter()
                try:
                    body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                    reply = server.script.next_reply(body, dict(self.headers.items()))
                    if reply.delay_s and server._stop.wait(reply.delay_s):
                        return
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply.body)))
                    for name, value in reply.headers:
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(
                        reply.body if reply.truncate_at is None else reply.body[: reply.truncate_at]
                    )
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up first (a timeout test): nothing left to answer
                finally:
                    server._leave()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        return Handler


def closed_port_url() -> str:
    """An API root on 127.0.0.1 where nothing listens, so connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
