"""Connections to endpoints: the response side of an exchange, and the per-endpoint pool.

One ``UpstreamConnection`` carries one exchange at a time (no pipelining toward endpoints, as
nginx). It parses the response with httptools (llhttp), rewrites the head as a proxy must
(RFC 9110 §7.6.1: hop-by-hop headers out, our own framing in) and streams the body to the
client as it arrives, re-chunking when the client can take chunks and the length is unknown.
Idle connections wait in a LIFO pool per endpoint (the most recently used is the least likely
to have been closed by the backend).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final

from httptools import (
    HttpParserCallbackError,
    HttpParserError,
    HttpParserUpgrade,
    HttpResponseParser,
)

from kexpose.proxy._messages import (
    H_CONNECTION,
    H_LENGTH,
    H_TRANSFER,
    H_UPGRADE,
    RESPONSE_HEADERS,
    STATUS_LINES,
    chunk,
    connection_tokens,
    status_line,
)
from kexpose.proxy.routes import Endpoint

if TYPE_CHECKING:
    from kexpose.proxy._exchange import Exchange
    from kexpose.proxy.settings import DataPlaneSettings

__all__ = ["Pool", "UpstreamConnection"]

_LAST_CHUNK: Final = b"0\r\n\r\n"
_CONNECTION_OPTIONS: Final = frozenset((b"close", b"keep-alive", b"upgrade"))


class _BodilessResponse(Exception):  # noqa: N818 - control flow, never escapes this module
    """Raised from ``on_headers_complete`` to stop llhttp waiting for the body of a HEAD
    response (RFC 9110 §9.3.2: same headers as GET, no content), which it cannot know about."""


class UpstreamConnection(asyncio.Protocol):
    __slots__ = (
        "_head",
        "_head_size",
        "_headers",
        "_interim",
        "_length",
        "_rechunk",
        "_until_close",
        "closed",
        "done",
        "endpoint",
        "exchange",
        "idle_since",
        "keep_alive",
        "parser",
        "pool",
        "requests",
        "status",
        "transport",
        "tunnel",
    )

    def __init__(self, pool: Pool, endpoint: Endpoint) -> None:
        self.pool = pool
        self.endpoint = endpoint
        self.transport: asyncio.Transport | None = None
        self.parser = HttpResponseParser(self)
        self.exchange: Exchange | None = None
        self.tunnel: asyncio.Transport | None = None
        self.requests = 0
        self.idle_since = 0.0
        self.closed = False
        self.done = False
        self.keep_alive = True
        self.status = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._head: bytes | None = None
        self._head_size = 0
        self._interim = False
        self._rechunk = False
        self._until_close = False
        self._length = False

    # --- transport callbacks ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        ex = self.exchange
        if self.tunnel is not None:
            self.tunnel.write(data)
            if ex is not None:
                ex.client.touch_tunnel()
            return
        if ex is None:
            # Bytes on an idle connection: the backend is confused; never reuse it.
            self.close()
            return
        ex.client.upstream_activity()
        try:
            self.parser.feed_data(data)
        except HttpParserUpgrade as exc:
            self._upgraded(ex, data[exc.args[0] :])
            return
        except HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _BodilessResponse):
                self.parser = HttpResponseParser(self)
                self.done = True
            else:
                self._broken(ex, f"bad response: {exc.__context__ or exc}")
                return
        except HttpParserError as exc:
            self._broken(ex, f"bad response: {exc}")
            return
        if self._head is not None:  # the head arrived without (the start of) a body
            ex.client.write(self._head)
            self._head = None
        if self.done:
            self._finish(ex)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        ex = self.exchange
        if self.tunnel is not None:
            self.tunnel.close()
            self.tunnel = None
            return
        if ex is None:
            self.pool.forget(self)
            return
        if self._until_close and not self.done and ex.response_started:
            # A close-delimited body ends here (RFC 9112 §6.3, rule 8).
            self.keep_alive = False
            if self._head is not None:
                ex.client.write(self._head)
                self._head = None
            if self._rechunk:
                ex.client.write(_LAST_CHUNK)
            self._finish(ex)
            return
        ex.upstream_lost(self, "connection closed by the endpoint" if exc is None else str(exc))

    def pause_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.client.pause_reading_for_upstream()

    def resume_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.client.resume_reading_for_upstream()

    # --- request side -------------------------------------------------------------------------

    def attach(self, ex: Exchange) -> None:
        self.exchange = ex
        self.requests += 1
        self.done = False
        self.keep_alive = True
        self._interim = False

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    # --- httptools callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.done or self.exchange is None:
            raise HttpParserError("response after the response")
        self._headers = []
        self._head_size = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        self._head_size += len(name) + len(value) + 4
        if self._head_size > self.pool.settings.limits.max_response_head_bytes:
            raise HttpParserError("response head too large")

    def on_headers_complete(self) -> None:
        ex = self.exchange
        assert ex is not None
        status = self.parser.get_status_code()
        line = STATUS_LINES.get(status)
        parts = [line if line is not None else status_line(status)]
        length = transfer = False
        extra: frozenset[bytes] = frozenset()
        get = RESPONSE_HEADERS.get
        for name, value in self._headers:
            kind = get(name.lower())
            if kind is None:
                parts.append(b"%b: %b\r\n" % (name, value))
            elif kind == H_LENGTH:
                length = True
                parts.append(b"%b: %b\r\n" % (name, value))
            elif kind == H_CONNECTION:
                extra = connection_tokens(value) - _CONNECTION_OPTIONS
            elif kind == H_TRANSFER:
                transfer = True
            elif kind == H_UPGRADE and status == 101:
                parts.append(b"%b: %b\r\n" % (name, value))
        if extra:
            parts = [parts[0]] + [p for p in parts[1:] if p.split(b":", 1)[0].lower() not in extra]
        if status < 200 and status != 101:
            # 1xx: forwarded to HTTP/1.1 clients (RFC 9110 §15.2), then the real response follows.
            self._interim = True
            if not ex.http10:
                parts.append(b"\r\n")
                ex.client.write(b"".join(parts))
            return
        ex.response_started = True
        ex.status = status
        self.status = status
        self.keep_alive = self.parser.should_keep_alive()
        bodiless = ex.head_request or status in (204, 304)
        self._rechunk = self._until_close = False
        self._length = length
        client = ex.client
        if status == 101:
            parts.append(b"connection: upgrade\r\n")
        elif not bodiless and not length:
            self._until_close = not transfer
            if ex.http10:
                ex.keep_alive = False  # HTTP/1.0 knows no chunks: close-delimited (RFC 9112 §6.3)
            else:
                self._rechunk = True
                parts.append(b"transfer-encoding: chunked\r\n")
        if status != 101:
            if not ex.keep_alive or client.closing:
                parts.append(b"connection: close\r\n")
            elif ex.http10:
                parts.append(b"connection: keep-alive\r\n")
        parts.append(b"\r\n")
        self._head = b"".join(parts)
        if ex.head_request and status != 101:
            raise _BodilessResponse

    def on_body(self, data: bytes) -> None:
        ex = self.exchange
        assert ex is not None
        ex.response_bytes += len(data)
        if self._rechunk:
            data = chunk(data)
        if self._head is not None:
            data = self._head + data
            self._head = None
        ex.client.write(data)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        if self.status == 101:
            return  # the tunnel starts in data_received (HttpParserUpgrade)
        ex = self.exchange
        assert ex is not None
        tail = _LAST_CHUNK if self._rechunk else b""
        if self._head is not None:
            ex.client.write(self._head + tail)
            self._head = None
        elif tail:
            ex.client.write(tail)
        self.done = True

    # --- endings ------------------------------------------------------------------------------

    def _finish(self, ex: Exchange) -> None:
        self.exchange = None
        reusable = (
            self.keep_alive
            and ex.request_done
            and not self.closed
            and self.requests < self.pool.settings.limits.upstream_keepalive_requests
        )
        if reusable:
            self.pool.give(self)
        else:
            self.close()
        ex.response_complete()

    def _broken(self, ex: Exchange, why: str) -> None:
        self.abort()
        ex.upstream_failed(self, why)

    def _upgraded(self, ex: Exchange, tail: bytes) -> None:
        if self.status != 101 or not ex.upgrade:
            self._broken(ex, "101 Switching Protocols to a request that did not ask to upgrade")
            return
        head, self._head = self._head or b"", None
        ex.client.write(head + tail if tail else head)
        self.tunnel = ex.client.start_tunnel(self)


class Pool:
    """Idle upstream connections per endpoint, and connecting new ones."""

    __slots__ = ("_idle", "loop", "settings")

    def __init__(self, loop: asyncio.AbstractEventLoop, settings: DataPlaneSettings) -> None:
        self.loop = loop
        self.settings = settings
        self._idle: dict[Endpoint, list[UpstreamConnection]] = {}

    def take(self, endpoint: Endpoint) -> UpstreamConnection | None:
        idle = self._idle.get(endpoint)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    def give(self, conn: UpstreamConnection) -> None:
        idle = self._idle.setdefault(conn.endpoint, [])
        if conn.closed or len(idle) >= self.settings.limits.upstream_keepalive:
            conn.close()
            return
        conn.idle_since = self.loop.time()
        idle.append(conn)

    def forget(self, conn: UpstreamConnection) -> None:
        idle = self._idle.get(conn.endpoint)
        if idle and conn in idle:
            idle.remove(conn)

    async def connect(self, endpoint: Endpoint) -> UpstreamConnection:
        async with asyncio.timeout(self.settings.timeouts.upstream_connect):
            _, conn = await self.loop.create_connection(
                lambda: UpstreamConnection(self, endpoint), endpoint[0], endpoint[1]
            )
        return conn

    def sweep(self, now: float) -> None:
        """Close connections idle for longer than ``Timeouts.upstream_idle`` (oldest first)."""
        limit = now - self.settings.timeouts.upstream_idle
        for endpoint, idle in list(self._idle.items()):
            while idle and idle[0].idle_since < limit:
                idle.pop(0).close()
            if not idle:
                del self._idle[endpoint]

    def idle_count(self) -> int:
        return sum(len(v) for v in self._idle.values())

    def close_all(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
