"""Small HTTP/1.1 GETs the proxy makes on its own: forward-auth subrequests and JWKS fetches.

Not the upstream path (``_upstream``): these answers are read whole (bounded), their callers
wait on a coroutine, and they are few. Connections are kept alive per origin (nginx keeps its
``auth_request`` upstream alive the same way when configured), and a request on a reused
connection that the server had closed is sent once more on a new one (RFC 9112 §9.3.1; a GET
has no body and is safe to repeat). Responses are parsed by llhttp (``httptools``).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from typing import Final

from httptools import HttpParserError, HttpResponseParser

from kexpose.proxy.errors import ProxyError

__all__ = ["Answer", "BadAnswerError", "SubrequestClient", "SubrequestError"]

#: Largest answer body read (an auth service's error page, a JWK Set); more is an error.
MAX_BODY: Final = 1024 * 1024
#: Idle connections kept per origin.
MAX_IDLE: Final = 64

Origin = tuple[str, str, int]


class SubrequestError(ProxyError):
    """The server could not be reached or did not answer."""


class BadAnswerError(SubrequestError):
    """The server answered, but not with a usable HTTP/1.1 response (malformed, too large)."""


@dataclass(slots=True)
class Answer:
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""


class _Reader:
    """httptools callbacks collecting one response."""

    def __init__(self) -> None:
        self.answer = Answer()
        self.size = 0
        self.done = False
        self.keep_alive = False
        self.parser: HttpResponseParser | None = None
        self._body: list[bytes] = []

    def on_headers_complete(self) -> None:
        # llhttp answers should_keep_alive only until the message is complete.
        assert self.parser is not None
        self.answer.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.answer.headers.append((name, value))

    def on_body(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > MAX_BODY:
            raise BadAnswerError(f"answer body over {MAX_BODY} bytes")
        self._body.append(data)

    def on_message_complete(self) -> None:
        self.answer.body = b"".join(self._body)
        self.done = True


_Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class SubrequestClient:
    def __init__(self) -> None:
        self._idle: dict[Origin, list[_Connection]] = {}
        self._tls: ssl.SSLContext | None = None

    async def get(self, origin: Origin, head: bytes) -> Answer:
        """Send ``head`` (a complete GET head) to ``origin`` (scheme, host, port) and read the
        answer. The caller bounds the time (``asyncio.timeout``); on expiry or any error the
        connection is closed, never pooled."""
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if conn[1].is_closing() or conn[0].at_eof():
                conn[1].close()
                continue
            try:
                return await self._exchange(origin, conn, head)
            except (ConnectionError, asyncio.IncompleteReadError, _ClosedError):
                break  # a reused connection the server had closed: once more on a new one
        try:
            return await self._exchange(origin, await self._connect(origin), head)
        except (ConnectionError, asyncio.IncompleteReadError, _ClosedError) as exc:
            raise SubrequestError(f"the server closed the connection: {exc!r}") from exc

    async def _connect(self, origin: Origin) -> _Connection:
        scheme, host, port = origin
        tls: ssl.SSLContext | None = None
        if scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
            tls = self._tls
        try:
            return await asyncio.open_connection(
                host, port, ssl=tls, server_hostname=host if tls else None
            )
        except OSError as exc:
            raise SubrequestError(f"connect {host}:{port}: {exc}") from exc

    async def _exchange(self, origin: Origin, conn: _Connection, head: bytes) -> Answer:
        reader, writer = conn
        keep = False
        try:
            writer.write(head)
            reading = _Reader()
            parser = reading.parser = HttpResponseParser(reading)
            first = True
            while not reading.done:
                data = await reader.read(65536)
                if not data:
                    if first:
                        raise _ClosedError
                    raise SubrequestError("the server closed the connection mid-answer")
                first = False
                try:
                    parser.feed_data(data)
                except HttpParserError as exc:
                    raise BadAnswerError(f"malformed answer: {exc}") from exc
            keep = reading.keep_alive
            return reading.answer
        except OSError as exc:
            if isinstance(exc, ConnectionError):
                raise
            raise SubrequestError(str(exc)) from exc
        finally:
            idle = self._idle.setdefault(origin, [])
            if keep and len(idle) < MAX_IDLE and not writer.is_closing():
                idle.append(conn)
            else:
                writer.close()

    def close(self) -> None:
        for idle in self._idle.values():
            for _, writer in idle:
                writer.close()
        self._idle.clear()


class _ClosedError(ProxyError):
    """A pooled connection was closed before any of the answer arrived."""
