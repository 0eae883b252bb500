"""Connections to endpoints: the response side of an exchange, and the per-endpoint pool.

One ``UpstreamConnection`` carries one exchange at a time (no pipelining toward endpoints, as
nginx). Each response byte goes through llhttp, which validates the head and the framing; the
head is rewritten as a proxy must (``_messages``) and the body streams to the client as it
arrives: passed through unchanged when it has a length or is chunked toward an HTTP/1.1
client, re-chunked or de-chunked otherwise. Where a message ends is computed here (length
count or ``ChunkedScanner``) and must agree with llhttp, so nothing after a response can leak
into the client connection. Idle connections wait in a LIFO pool per endpoint (the most
recently used one is the least likely to have been closed by the backend).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final, Protocol

from httptools import HttpParserError, HttpParserUpgrade, HttpResponseParser

from kexpose.proxy.dataplane._chunked import ChunkedError, ChunkedScanner
from kexpose.proxy.dataplane._messages import (
    RequestHead,
    ResponseHead,
    chunk,
    modify_fields,
    parse_response_head,
    remember_head,
)
from kexpose.proxy.filters import HeaderModifier
from kexpose.proxy.routes import Endpoint

if TYPE_CHECKING:
    from kexpose.proxy.settings import DataPlaneSettings

__all__ = [
    "Pool",
    "Requester",
    "ResponseSink",
    "Upstream",
    "UpstreamConnection",
    "UpstreamTransport",
    "Writer",
]


class Writer(Protocol):
    def write(self, data: bytes) -> None: ...


class ResponseSink(Protocol):
    """What an upstream connection needs of the client a response goes to: an HTTP/1.1
    connection, or one HTTP/2 stream (which re-frames the HTTP/1.1 bytes it is written)."""

    @property
    def transport(self) -> Writer | None:
        """Where the fast paths write response bytes straight to (an HTTP/1.1 connection's
        socket; a stream is its own), saving ``write``'s call on the hottest path."""

    upstream_reads: int
    """Reads from the endpoint so far (the upstream read deadline moves when it changes)."""

    @property
    def closing(self) -> bool: ...

    def write(self, data: bytes) -> None:
        """The response as an HTTP/1.1 client would receive it, in order, in any slices."""

    def pause_reading_for_upstream(self) -> None: ...
    def resume_reading_for_upstream(self) -> None: ...
    def touch_tunnel(self) -> None: ...
    def start_tunnel(self, conn: UpstreamConnection) -> asyncio.Transport: ...


class UpstreamTransport(Protocol):
    """Where an exchange writes its request, and what a slow client pauses: a socket, or one
    stream of an HTTP/2 connection to the endpoint (``_upstream_h2c``)."""

    def write(self, data: bytes) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def is_closing(self) -> bool: ...


class Upstream(Protocol):
    """What an exchange needs of the way to its endpoint: an HTTP/1.1 connection of its own
    (``UpstreamConnection``) or a stream of a shared h2c connection."""

    exchange: Requester | None
    requests: int
    """Requests this connection has carried (a first request is never replayed)."""

    @property
    def transport(self) -> UpstreamTransport | None: ...

    def attach(self, ex: Requester) -> None: ...
    def write(self, data: bytes) -> None:
        """More of the request, as HTTP/1.1 bytes (the head first, then the framed body)."""

    def abort(self) -> None: ...
    def release(self) -> None:
        """Not needed after all (its exchange ended while connecting): keep it or close it."""


class Requester(Protocol):
    """What an upstream connection needs of the exchange it carries (``_exchange.Exchange``).
    A Protocol so that this module, below the exchange, never imports it."""

    @property
    def client(self) -> ResponseSink: ...

    req: RequestHead
    upstream: Upstream | None
    status: int
    keep_alive: bool
    request_done: bool
    response_started: bool
    response_bytes: int
    retries_left: int
    response_modifiers: tuple[HeaderModifier, ...]

    def retry_for(self, status: int) -> bool: ...
    def retry(self) -> None: ...
    def response_complete(self) -> None: ...
    def upstream_lost(self, conn: Upstream, why: str) -> None: ...
    def upstream_failed(self, conn: Upstream, why: str) -> None: ...


_LAST_CHUNK: Final = b"0\r\n\r\n"

# Where the response is (``UpstreamConnection._state``).
_IDLE: Final = 0
_HEAD: Final = 1  # waiting for (the rest of) a response head
_LENGTH: Final = 2  # in a body of known length
_CHUNKED: Final = 3  # in a chunked body
_UNTIL_CLOSE: Final = 4  # in a body that ends when the endpoint closes (RFC 9112 §6.3 rule 8)
_TUNNEL: Final = 5  # switched protocols: bytes pass through


class BadResponse(Exception):  # noqa: N818 - internal signal, never escapes this module
    pass


class UpstreamConnection(asyncio.Protocol):
    __slots__ = (
        "_buf",
        "_complete",
        "_decode",
        "_following",
        "_left",
        "_rechunk",
        "_scanner",
        "_state",
        "closed",
        "endpoint",
        "exchange",
        "idle_since",
        "keep_alive",
        "parser",
        "pool",
        "requests",
        "transport",
        "tunnel",
    )

    def __init__(self, pool: Pool, endpoint: Endpoint) -> None:
        self.pool = pool
        self.endpoint = endpoint
        self.transport: asyncio.Transport | None = None
        self.parser = HttpResponseParser(self)
        self.exchange: Requester | None = None
        self.tunnel: asyncio.Transport | None = None
        self.requests = 0
        self.idle_since = 0.0
        self.closed = False
        self.keep_alive = True
        self._state = _IDLE
        self._buf = b""
        self._left = 0
        self._complete = False
        self._following = False
        self._rechunk = False
        self._decode = False
        self._scanner: ChunkedScanner | None = None

    # --- transport callbacks ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        ex = self.exchange
        state = self._state
        if state == _TUNNEL:
            assert self.tunnel is not None
            self.tunnel.write(data)
            if ex is not None:
                ex.client.touch_tunnel()
            return
        if ex is None or state == _IDLE:
            self.close()  # bytes nobody asked for: the backend is confused; never reuse it
            return
        client = ex.client
        client.upstream_reads += 1
        if state == _LENGTH:
            # The fast path: more of a body with a known length.
            left = self._left
            n = len(data)
            if n <= left:
                self._left = left - n
                ex.response_bytes += n
                client.transport.write(data)  # type: ignore[union-attr]
                if self._following:
                    self.parser.feed_data(data)
                if n == left:
                    self._finish(ex)
                return
        elif state == _HEAD and not self._buf:
            # The common case without the general loop: a head seen before, final and not
            # chunked, with all of its body in this read.
            cut = data.find(b"\r\n\r\n") + 4
            if cut > 3:
                head = data[:cut]
                parsed = self.pool.heads.get(head)
                if parsed is not None and parsed[0] >= 200 and parsed[0] != 101 and not parsed[4]:
                    self._following = False
                    if ex.retries_left and ex.retry_for(parsed[0]):
                        self._drop_for_retry(ex)
                        return
                    out = self._head(ex, head, parsed)
                    rest = data[cut:]
                    if self._state == _LENGTH and len(rest) == self._left:
                        ex.response_bytes += len(rest)
                        client.transport.write(out + rest)  # type: ignore[union-attr]
                        self._finish(ex)
                        return
                    client.transport.write(out)  # type: ignore[union-attr]
                    if self._state == _IDLE:
                        if rest:
                            self.keep_alive = False  # bytes after a bodiless response
                        self._finish(ex)
                        return
                    data = rest
        try:
            self._consume(ex, data)
        except (HttpParserError, ChunkedError, BadResponse, ValueError) as exc:
            self._broken(ex, f"bad response from {self.endpoint[0]}:{self.endpoint[1]}: {exc}")

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
        if self._state == _UNTIL_CLOSE:
            # The end of a close-delimited body (RFC 9112 §6.3, rule 8).
            self.keep_alive = False
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

    def attach(self, ex: Requester) -> None:
        self.exchange = ex
        self.requests += 1
        self.keep_alive = True
        self._state = _HEAD

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def release(self) -> None:
        self.pool.give(self)

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    # --- httptools callbacks ------------------------------------------------------------------

    def on_message_complete(self) -> None:
        self._complete = True

    # --- response parsing ---------------------------------------------------------------------

    def _consume(self, ex: Requester, data: bytes) -> None:
        client = ex.client
        out = b""  # the rewritten head, written together with the first body bytes
        while data:
            state = self._state
            if state == _HEAD:
                if self._buf:
                    data, self._buf = self._buf + data, b""
                end = data.find(b"\r\n\r\n")
                limit = self.pool.settings.limits.max_response_head_bytes
                if end < 0 or end > limit:
                    if len(data) > limit:
                        raise BadResponse("response head too large")
                    self._buf = data
                    break
                cut = end + 4
                head, data = data[:cut], data[cut:]
                heads = self.pool.heads
                parsed = heads.get(head)
                if parsed is None:
                    # First sight of this head: llhttp validates it and follows the message.
                    self._complete = False
                    self._following = True
                    try:
                        self.parser.feed_data(head)
                    except HttpParserUpgrade:
                        self._upgraded(ex, out, head, data)
                        return
                    parsed = parse_response_head(head, upgrade=False)
                    if parsed[0] == 101:
                        self._upgraded(ex, out, head, data)
                        return
                    # An endpoint answers many requests with the same head (it changes with
                    # Date once a second, or with the length).
                    remember_head(heads, head, parsed)
                else:
                    # The same bytes llhttp accepted before: validating them again would say
                    # the same. llhttp sits this message out unless its framing needs it.
                    self._following = False
                    if parsed[0] == 101:
                        self._upgraded(ex, out, head, data)
                        return
                if parsed[0] >= 200 and ex.retries_left and ex.retry_for(parsed[0]):
                    self._drop_for_retry(ex)
                    return
                out += self._head(ex, head, parsed)
                if self._state == _IDLE:
                    client.write(out)
                    if data:
                        self.keep_alive = False  # bytes after a bodiless response
                    self._finish(ex)
                    return
            elif state == _LENGTH:
                left = self._left
                piece = data if len(data) <= left else data[:left]
                data = data[len(piece) :]
                self._left = left - len(piece)
                ex.response_bytes += len(piece)
                client.write(out + piece if out else piece)
                out = b""
                if self._following:
                    self.parser.feed_data(piece)
                if not self._left:
                    if data:
                        self.keep_alive = False  # bytes after the body: never reuse
                    self._finish(ex)
                    return
            elif state == _CHUNKED:
                scanner = self._scanner
                assert scanner is not None
                decoded: list[bytes] | None = [] if self._decode else None
                n = scanner.scan(data, decoded)
                piece, data = (data, b"") if n == len(data) else (data[:n], data[n:])
                self.parser.feed_data(piece)
                if decoded is not None:
                    piece = b"".join(decoded)
                ex.response_bytes += len(piece)
                client.write(out + piece if out else piece)
                out = b""
                if scanner.done:
                    if not self._complete:
                        raise BadResponse("chunked framing: llhttp and the scanner disagree")
                    if data:
                        self.keep_alive = False
                    self._finish(ex)
                    return
            else:  # _UNTIL_CLOSE
                ex.response_bytes += len(data)
                client.write(out + (chunk(data) if self._rechunk else data))
                return
        if out:
            client.write(out)

    def _head(self, ex: Requester, head: bytes, parsed: ResponseHead) -> bytes:
        """A complete, validated response head: pick the framing, return the client's head."""
        client = ex.client
        status, line, fields, length, chunked, self.keep_alive = parsed
        if status < 200:
            # 1xx (not 101): forwarded to HTTP/1.1 clients (RFC 9110 §15.2); the final response
            # follows on the same connection. llhttp has already completed this message.
            return b"" if ex.req.http10 else line + fields + b"\r\n\r\n"
        ex.response_started = True
        ex.status = status
        extra = b""
        if ex.req.method == b"HEAD" or status in (204, 304):
            state = _IDLE  # no body, whatever the headers say (RFC 9110 §6.4.1)
            if self._following and not self._complete:
                self.parser = HttpResponseParser(self)  # llhttp cannot know it was a HEAD
        elif chunked:
            state = _CHUNKED
            if not self._following:  # llhttp checks chunked framing with us: show it the head
                self._complete = False
                self._following = True
                self.parser.feed_data(head)
            self._scanner = ChunkedScanner()
            self._decode = ex.req.http10  # an HTTP/1.0 client gets the data, close-delimited
            if self._decode:
                ex.keep_alive = False
            else:
                extra = b"\r\ntransfer-encoding: chunked"
        elif length is not None:
            state = _LENGTH if length else _IDLE
            self._left = length
        else:
            state = _UNTIL_CLOSE
            self.keep_alive = False
            self._rechunk = not ex.req.http10
            if self._rechunk:
                extra = b"\r\ntransfer-encoding: chunked"
            else:
                ex.keep_alive = False
        if ex.response_modifiers:
            fields = modify_fields(fields, ex.response_modifiers)
        if not ex.keep_alive or client.closing:
            extra += b"\r\nconnection: close"
        elif ex.req.http10:
            extra += b"\r\nconnection: keep-alive"
        self._state = state
        return line + fields + extra + b"\r\n\r\n"

    # --- endings ------------------------------------------------------------------------------

    def _finish(self, ex: Requester) -> None:
        self.exchange = None
        self._state = _IDLE
        self._rechunk = False
        if (
            self.keep_alive
            and ex.request_done
            and not self.closed
            and self.requests < self.pool.max_requests
        ):
            self.pool.give(self)
        else:
            self.close()
        ex.response_complete()

    def _drop_for_retry(self, ex: Requester) -> None:
        """A response the route retries: nothing of it reaches the client, and this connection
        (with the rest of that response unread) is never reused."""
        self.exchange = None
        self.abort()
        ex.upstream = None
        ex.retry()

    def _broken(self, ex: Requester, why: str) -> None:
        self.abort()
        self.exchange = None
        ex.upstream_failed(self, why)

    def _upgraded(self, ex: Requester, before: bytes, head: bytes, tail: bytes) -> None:
        if ex.req.upgrade is None:
            self._broken(ex, "101 Switching Protocols to a request that did not ask to upgrade")
            return
        _, line, fields, _, _, _ = parse_response_head(head, upgrade=True)
        ex.status = 101
        ex.response_started = True
        ex.client.write(before + line + fields + b"\r\nconnection: upgrade\r\n\r\n" + tail)
        self._state = _TUNNEL
        self.tunnel = ex.client.start_tunnel(self)


class Pool:
    """Idle upstream connections per endpoint, and connecting new ones."""

    __slots__ = ("_idle", "heads", "loop", "max_idle", "max_requests", "settings")

    def __init__(self, loop: asyncio.AbstractEventLoop, settings: DataPlaneSettings) -> None:
        self.loop = loop
        self.settings = settings
        self.max_requests = settings.limits.upstream_keepalive_requests
        self.max_idle = settings.limits.upstream_keepalive
        self.heads: dict[bytes, ResponseHead] = {}
        """Response head bytes -> parse_response_head(head): a pure function, memoised."""
        self._idle: dict[Endpoint, list[UpstreamConnection]] = {}

    def take(self, endpoint: Endpoint) -> UpstreamConnection | None:
        idle = self._idle.get(endpoint)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    def give(self, conn: UpstreamConnection) -> None:
        idle = self._idle.get(conn.endpoint)
        if idle is None:
            idle = self._idle[conn.endpoint] = []
        if conn.closed or len(idle) >= self.max_idle:
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
