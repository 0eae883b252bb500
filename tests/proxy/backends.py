"""Local stand-ins for pods: an echo HTTP server on a 127.0.0.x address, and a small client.

The echo server answers every request with JSON describing what it received (method, target,
headers, body size and digest), so tests can assert on exactly what the proxy forwarded. A
request header ``x-echo`` selects misbehaviour: ``chunked`` (chunked response), ``stream:N``
(N bytes of body, chunked), ``close`` (close-delimited body, HTTP/1.0 style), ``hang``
(accept and never answer), ``die`` (send half a body, then reset), ``ws`` (accept an upgrade
and echo raw bytes), ``status:NNN``, ``sleep:S``, ``drop-reused`` (reset a connection when a
second request arrives on it). ``Expect: 100-continue`` gets a 100 first.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import ssl
from dataclasses import dataclass, field
from typing import Any, Self

import httptools


class _EchoProtocol(asyncio.Protocol):
    def __init__(self, server: EchoBackend) -> None:
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.tunnel = False
        self.served = 0
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.headers: list[tuple[str, str]] = []
        self.body = hashlib.sha256()
        self.size = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections += 1
        self.server.open.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.open.discard(self)

    def data_received(self, data: bytes) -> None:
        if self.tunnel:
            assert self.transport is not None
            self.transport.write(data)
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self.tunnel = True
            rest = data[exc.args[0] :]
            if rest and self.transport is not None:
                self.transport.write(rest)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_headers_complete(self) -> None:
        headers = dict(self.headers)
        if headers.get("expect", "").lower() == "100-continue" and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if headers.get("x-echo") == "drop-reused" and self.served and self.transport is not None:
            # A keep-alive connection the backend closed just as the proxy reused it.
            self.transport.abort()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_body(self, body: bytes) -> None:
        self.body.update(body)
        self.size += len(body)

    def on_message_complete(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.served += 1
        self.server.requests += 1
        mode = dict(self.headers).get("x-echo", "")
        info = {
            "backend": self.server.name,
            "method": self.parser.get_method().decode(),
            "target": self.url.decode("latin-1"),
            "headers": self.headers,
            "size": self.size,
            "sha256": self.body.hexdigest(),
        }
        self._reset()
        delay = float(mode[6:]) if mode.startswith("sleep:") else 0.0
        if delay:
            asyncio.get_running_loop().call_later(delay, self._answer, mode, info)
        else:
            self._answer(mode, info)

    def _answer(self, mode: str, info: dict[str, Any]) -> None:
        t = self.transport
        if t is None or t.is_closing():
            return
        body = json.dumps(info).encode()
        head_only = info["method"] == "HEAD"
        if mode == "hang":
            return
        if mode == "ws":
            t.write(
                b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n"
                b"connection: Upgrade\r\n\r\n"
            )
            return
        if mode == "die":
            t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n" + b"x" * 1000)
            t.abort()
            return
        if mode == "chunked":
            t.write(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: "
                b"application/json\r\n\r\n"
            )
            for i in range(0, len(body), 7):
                piece = body[i : i + 7]
                t.write(b"%x\r\n%b\r\n" % (len(piece), piece))
            t.write(b"0\r\n\r\n")
            return
        if mode.startswith("stream:"):
            n = int(mode[7:])
            t.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            block = b"y" * 65536
            while n > 0:
                piece = block[: min(n, len(block))]
                t.write(b"%x\r\n%b\r\n" % (len(piece), piece))
                n -= len(piece)
            t.write(b"0\r\n\r\n")
            return
        if mode == "close":
            t.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n" + body)
            t.close()
            return
        status = int(mode[7:]) if mode.startswith("status:") else 200
        if status in (204, 304):  # no content, whatever the method (RFC 9110 §15.3.5, §15.4.5)
            head_only = True
        t.write(
            b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\n%b"
            b"connection: keep-alive, x-hop\r\nx-hop: secret\r\nkeep-alive: timeout=5\r\n\r\n%b"
            % (
                status,
                b"" if status == 204 else b"content-length: %d\r\n" % len(body),
                b"" if head_only else body,
            )
        )


@dataclass
class EchoBackend:
    name: str
    host: str = "127.0.0.2"
    port: int = 0
    requests: int = 0
    connections: int = 0
    open: set[_EchoProtocol] = field(default_factory=set)
    _server: asyncio.Server | None = None

    async def start(self) -> EchoBackend:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _EchoProtocol(self), self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for proto in list(self.open):
                if proto.transport is not None:
                    proto.transport.abort()
            await self._server.wait_closed()
            self._server = None


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    closed: bool = False

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def json(self) -> Any:
        return json.loads(self.body)


class _ResponseReader:
    def __init__(self, head_request: bool) -> None:
        self.head_request = head_request
        self.parser = httptools.HttpResponseParser(self)
        self.headers: list[tuple[str, str]] = []
        self.body = bytearray()
        self.done = False
        self.headers_done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.headers_done = True
        if self.parser.get_status_code() == 101:
            self.done = True

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.done = True


class Client:
    """One client connection speaking raw HTTP/1.1, for exact control over the bytes sent."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.leftover = b""

    @classmethod
    async def connect(
        cls, addr: tuple[str, int], *, tls: ssl.SSLContext | None = None, sni: str | None = None
    ) -> Client:
        r, w = await asyncio.open_connection(
            addr[0], addr[1], ssl=tls, server_hostname=sni if tls else None
        )
        return cls(r, w)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def request(
        self,
        method: str = "GET",
        target: str = "/",
        *,
        host: str | None = "app.example.com",
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> Response:
        lines = [f"{method} {target} HTTP/1.1"]
        if host is not None:
            lines.append(f"Host: {host}")
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")
        self.send(raw)
        return await self.response(head_request=method == "HEAD")

    async def response(self, *, head_request: bool = False, timeout: float = 5.0) -> Response:
        reader = _ResponseReader(head_request)
        data = self.leftover
        self.leftover = b""
        closed = False
        async with asyncio.timeout(timeout):
            while True:
                if data:
                    try:
                        reader.parser.feed_data(data)
                    except httptools.HttpParserUpgrade as exc:
                        self.leftover = data[exc.args[0] :]
                        break
                if reader.done or (head_request and reader.headers_done):
                    break
                data = await self.reader.read(65536)
                if not data:
                    closed = True
                    break
        status = reader.parser.get_status_code() if reader.headers_done else 0
        return Response(status, reader.headers, bytes(reader.body), closed)

    async def closed_by_peer(self, timeout: float = 5.0) -> bool:
        async with asyncio.timeout(timeout):
            try:
                return await self.reader.read(65536) == b""
            except ConnectionResetError:
                return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()


class ScriptedBackend:
    """An endpoint on 127.0.0.2 whose answers a test scripts in ``serve`` (one call per
    connection), for bytes the echo backend would never send."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.port = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def start(self) -> Self:
        self.server = await asyncio.start_server(self.serve, "127.0.0.2", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
