"""The health port: ``/healthz`` (liveness), ``/readyz`` (readiness), ``/metrics`` (Prometheus).

A small Protocol of its own rather than a web framework: three fixed answers, one request per
connection (kubelet probes and Prometheus open a connection per request anyway). Kept apart
from the data ports so a probe never competes with, or is routed like, user traffic.

- ``/healthz``: 200 while the event loop runs (a wedged loop cannot answer, which is the point).
- ``/readyz``: 200 only once the first complete object set is loaded, and 503 again while
  shutting down, so the Service stops sending traffic before we stop accepting it. With
  ``--workers`` also 503 while no worker serves (each worker's death is survived while
  another one serves; see ``workers``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httptools
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["HealthServer"]


class _HealthProtocol(asyncio.Protocol):
    def __init__(self, server: HealthServer) -> None:
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._send(400, b"bad request\n")

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_message_complete(self) -> None:
        path = self.url.split(b"?", 1)[0]
        method = self.parser.get_method()
        if method not in (b"GET", b"HEAD"):
            self._send(405, b"method not allowed\n")
        elif path == b"/healthz":
            self._send(200, b"ok\n")
        elif path == b"/readyz":
            ready = self.server.ready()
            self._send(200 if ready else 503, b"ready\n" if ready else b"not ready\n")
        elif path == b"/metrics":
            body = generate_latest(self.server.registry)
            self._send(200, body, CONTENT_TYPE_LATEST.encode())
        else:
            self._send(404, b"not found\n")

    def _send(self, status: int, body: bytes, ctype: bytes = b"text/plain; charset=utf-8") -> None:
        if self.transport is None or self.transport.is_closing():
            return
        head = (
            b"HTTP/1.1 %d %b\r\ncontent-type: %b\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
            % (status, b"OK" if status == 200 else b"Error", ctype, len(body))
        )
        self.transport.write(head + (b"" if self.parser.get_method() == b"HEAD" else body))
        self.transport.close()


class HealthServer:
    def __init__(self, *, ready: Callable[[], bool], registry: CollectorRegistry) -> None:
        self.ready = ready
        self.registry = registry
        self._server: asyncio.Server | None = None

    async def listen(self, *, bind: str, port: int) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _HealthProtocol(self), bind, port)
        addr = self._server.sockets[0].getsockname()
        return addr[0], addr[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
