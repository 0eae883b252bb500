"""echo-basic's h2c server (port 3001, `H2C_PORT`) for the stand-in pods: HTTP/2 with prior
knowledge, each stream answered by the same `echoHandler` as port 3000 (conformance@v1.6.3
`echo-basic/echo-basic.go`, `runH2CServer`: a request that is not HTTP/2 gets 400 "Expected h2c
request", which here cannot happen: only the HTTP/2 preface is understood). The h2 library does
the framing, as in the proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import ConnectionTerminated, DataReceived, RequestReceived
from h2.exceptions import H2Error

from .echo_basic import EchoContext, Incoming, echo

__all__ = ["DEFAULT_H2C_PORT", "H2cEchoServer"]

#: echo-basic's h2c port unless `H2C_PORT` says otherwise.
DEFAULT_H2C_PORT = 3001


class _Connection(asyncio.Protocol):
    def __init__(self, server: H2cEchoServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.h2 = H2Connection(H2Configuration(client_side=False, header_encoding=None))
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)
        self.h2.initiate_connection()
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        for task in self.tasks:
            task.cancel()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except H2Error:
            self.flush()
            if self.transport is not None:
                self.transport.close()
            return
        for event in events:
            if isinstance(event, RequestReceived) and event.stream_id is not None:
                task = asyncio.get_running_loop().create_task(
                    self.answer(event.stream_id, list(event.headers or ()))
                )
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            elif isinstance(event, DataReceived) and event.flow_controlled_length:
                # Request bodies are dropped (echoHandler never reads them), windows reopened.
                with contextlib.suppress(H2Error):
                    self.h2.acknowledge_received_data(
                        event.flow_controlled_length, event.stream_id or 0
                    )
            elif isinstance(event, ConnectionTerminated) and self.transport is not None:
                self.transport.close()
        self.flush()

    async def answer(self, stream_id: int, headers: list[tuple[bytes, bytes]]) -> None:
        fields = dict(headers)
        regular = tuple(
            (n.decode("latin-1"), v.decode("utf-8", "replace"))
            for n, v in headers
            if not n.startswith(b":")
        )
        authority = fields.get(b":authority")
        if authority is not None:  # net/http sets Request.Host from :authority
            regular = (("Host", authority.decode("latin-1")), *regular)
        request = Incoming(
            method=fields.get(b":method", b"GET").decode("latin-1"),
            target=fields.get(b":path", b"/").decode("latin-1"),
            http_version="2.0",
            headers=regular,
        )
        reply = echo(request, self.server.context, http_port=str(self.server.http_port))
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        out = [(b":status", b"%d" % reply.status)]
        out += [(n.lower().encode(), v.encode()) for n, v in reply.headers]
        out.append((b"content-length", b"%d" % len(reply.body)))
        with contextlib.suppress(H2Error):
            head_only = request.method == "HEAD" or not reply.body
            self.h2.send_headers(stream_id, out, end_stream=head_only)
            if not head_only:
                self.h2.send_data(stream_id, reply.body, end_stream=True)
        self.flush()

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


@dataclass
class H2cEchoServer:
    """The h2c echo for one pod, on `ip:port`; runs on the caller's event loop."""

    ip: str
    port: int
    context: EchoContext
    http_port: int
    """echo-basic's HTTP_PORT, which the echo reports as `httpPort` on either server."""
    connections: set[_Connection] = field(default_factory=set)
    _server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), self.ip, self.port, reuse_address=True
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()
