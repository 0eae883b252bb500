"""Echo backends that stand where a stack's pods are: one HTTP server per pod IP and port.

kwok runs no containers, so nothing answers on a pod's address. `EchoServers` listens on exactly
the addresses the endpointslice controller published for a Service's ready pods (inside the
session's private network namespace, see `netns.py`), and answers every request with JSON naming
the app, the address that answered, and the request's path, Host and forwarding headers (and
every header it received), so a test can tell which backend kexpose-proxy chose.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["EchoServers"]

# The proxy's access to a backend is one short request; a stuck test client must not hang a
# server thread forever.
HANDLER_TIMEOUT_S = 30.0


def _handler(app: str, address: str) -> type[BaseHTTPRequestHandler]:
    class Echo(BaseHTTPRequestHandler):
        timeout = HANDLER_TIMEOUT_S

        def do_GET(self) -> None:
            body = json.dumps(
                {
                    "app": app,
                    "address": address,
                    "path": self.path,
                    "host": self.headers.get("Host"),
                    "x-forwarded-proto": self.headers.get("X-Forwarded-Proto"),
                    "x-forwarded-host": self.headers.get("X-Forwarded-Host"),
                    "x-forwarded-user": self.headers.get("X-Forwarded-User"),
                    # Every request header as received (names in lower case), for tests that
                    # check what the proxy sends upstream beyond the forwarding headers.
                    "headers": {name.lower(): value for name, value in self.headers.items()},
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Echo


@dataclass
class EchoServers:
    """Servers started by `serve`, all stopped by `close` (also on failure, via `running`)."""

    _servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = field(default_factory=list)

    def serve(self, app: str, ip: str, port: int) -> None:
        server = ThreadingHTTPServer((ip, port), _handler(app, f"{ip}:{port}"))
        server.daemon_threads = True
        thread = threading.Thread(
            target=server.serve_forever, name=f"echo-{app}-{ip}:{port}", daemon=True
        )
        thread.start()
        self._servers.append((server, thread))

    def close(self) -> None:
        while self._servers:
            server, thread = self._servers.pop()
            server.shutdown()
            server.server_close()
            thread.join()

    @contextmanager
    def running(self) -> Iterator[EchoServers]:
        try:
            yield self
        finally:
            self.close()
