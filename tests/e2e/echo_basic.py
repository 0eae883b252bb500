"""A stand-in for the Gateway API conformance suite's `echo-basic` backend, HTTP/1.1 on port 3000.

Why a stand-in: the e2e cluster's pods are simulated by kwok, so nothing runs their images; the
suite's backends (`conformance/base/manifests.yaml`: `registry.k8s.io/gateway-api/echo-basic`) exist
only as Pod objects with an IP. `echo_pods.py` starts one `EchoBasicServer` per Ready echo-basic
Pod on that Pod's IP (on `lo` of the private network namespace, netns.py), with the Pod's name and
namespace where echo-basic reads them from its environment (`POD_NAME`, `NAMESPACE`, from the
Downward API).

How faithful (followed line by line: conformance@v1.6.3 `echo-basic/echo-basic.go`):
- the mux: `/health` → 200 `OK`; `/status/` → the code of `^/status/(\\d\\d\\d)$` matched against
  the raw request target (query included), else 400 (`/status` → 301 to `/status/`, as
  ServeMux redirects a subtree's root); `/retry/` → the retry simulation (per pod,
  by `uuid`: `succeedAfter` failures, each a TCP RST, or `responseCode` when given, after
  `delayRetry`; the lock held across the delay as in Go); everything else → the echo; the
  `preserveSlashes` wrapper (`//` → `/` before routing) and Go's ServeMux redirect (301) of a path
  that `path.Clean` changes; `OPTIONS *` → 200.
- the echo: `?delay=<Go duration>` first (an unparsable one → 500 `{"message": "time: ..."}`),
  then `json.MarshalIndent(RequestAssertions, "", " ")`: `path` (the raw target with its query),
  `host`, `method`, `proto`, `headers` (Go's map: canonical names, values in order, no `Host`, no
  `Transfer-Encoding`, `Cache-Control: no-cache` added for a lone `Pragma: no-cache`), `httpPort`,
  `namespace`, `ingress`, `service`, `pod` (no `tls` on plain HTTP: `omitempty`), with Go's HTML
  escaping of `<>&`; response headers `Content-Type: application/json`,
  `X-Content-Type-Options: nosniff`, `Date`, and every `Name:value` pair of `X-Echo-Set-Header`
  copied with the name's casing as given (repeats joined by `,`, invalid names dropped, as Go's
  header writer does).
- net/http framing: `Content-Length` for a body of at most 2048 bytes (Go's buffer before
  chunking), chunked above; the request body is never read by the handler and is discarded
  afterwards (the connection closes when more than 256 KiB were left, or when the client waited
  for `100-continue`); keep-alive as HTTP/1.1 says; a malformed request → 400 and close.

The websocket at `/ws` is echo-basic's `wsHandler` (x/net/websocket, `io.Copy(ws, ws)`): the
RFC 6455 handshake, then every frame echoed; a request to `/ws` that is no handshake gets 400.

h2c on 3001 (`BackendProtocolH2C`) is `echo_h2c.py`. What it leaves out, for later issues: TLS on
8443 (`BackendTLSPolicy`, `tls-backend`), the gRPC, TCP and UDP modes (`GRPC_ECHO_SERVER`, ...;
`echo_pods.py` serves no such pod), form bodies as a source of `delay` (Go's `FormValue` also reads
a POSTed form), and the exact reason phrases of unusual status codes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
import socket
import struct
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import formatdate
from http import HTTPStatus
from pathlib import Path
from typing import IO, Final, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import h11

__all__ = [
    "DEFAULT_HTTP_PORT",
    "EchoBasicServer",
    "EchoContext",
    "Incoming",
    "Reply",
    "RetrySimulation",
    "answer",
    "canonical_header_key",
    "clean_path",
    "echo",
    "parse_go_duration",
    "plan",
]

#: echo-basic's HTTP port unless `HTTP_PORT` says otherwise.
DEFAULT_HTTP_PORT = 3000
#: net/http buffers this much of a handler's output before it must choose chunking
#: (`bufferBeforeChunkingSize`); a body that fits gets a Content-Length.
GO_CHUNKING_THRESHOLD = 2048
#: net/http discards at most this much unread request body to keep a connection alive
#: (`maxPostHandlerReadBytes`); more and it closes the connection.
GO_POST_HANDLER_READ_BYTES = 256 << 10
#: How many echo log lines a server keeps (what `kubectl logs` would show of echo-basic).
LOG_LINES = 1000
# h11 refuses a request head larger than this; Go's DefaultMaxHeaderBytes is 1 MiB.
MAX_HEAD_BYTES = 1 << 20
READ_SIZE = 65536

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_FIELD_VALUE = re.compile(r"^[\t\x20-\x7e\x80-\xff]*$")
_STATUS = re.compile(r"^/status/(\d\d\d)$")
_GO_INT = re.compile(r"^[+-]?\d+$")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,
    "\u03bcs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_ELEMENT = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]*)")
# Go's StatusText where it differs from Python's phrase (the rest agree).
_GO_REASONS = {418: "I'm a teapot", 413: "Request Entity Too Large", 414: "Request URI Too Long"}


@dataclass(frozen=True, slots=True)
class EchoContext:
    """echo-basic's `Context`: NAMESPACE, INGRESS_NAME, SERVICE_NAME and POD_NAME of its env."""

    namespace: str = ""
    ingress: str = ""
    service: str = ""
    pod: str = ""


@dataclass(frozen=True, slots=True)
class Incoming:
    """One request head as it arrived: the raw target, and header fields as sent."""

    method: str
    target: str
    http_version: str
    headers: tuple[tuple[str, str], ...]

    def values(self, canonical_name: str) -> list[str]:
        return [v for n, v in self.headers if canonical_header_key(n) == canonical_name]


@dataclass(frozen=True, slots=True)
class Reply:
    """What to send: a response, or (`reset`) a TCP RST instead of any response."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    reset: bool = False
    delay_s: float = 0.0
    """Wait this long before answering (`?delay=`, `?delayRetry=`)."""
    echoed: bool = False
    """echoHandler ran (it logs the request, which the mirror tests look for)."""


def canonical_header_key(name: str) -> str:
    """Go's `textproto.CanonicalMIMEHeaderKey`: `x-foo-bar` → `X-Foo-Bar`; odd names unchanged."""
    if not _TOKEN.match(name):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def clean_path(path: str) -> str:
    """Go's ServeMux `cleanPath`: `path.Clean`, keeping a trailing slash."""
    if not path:
        return "/"
    if not path.startswith("/"):
        path = "/" + path
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    cleaned = "/" + "/".join(parts)
    if path.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned


def _go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_go_duration(text: str) -> float:
    """Go's `time.ParseDuration` in seconds; raises ValueError with Go's own message."""
    invalid = ValueError(f"time: invalid duration {_go_quote(text)}")
    rest = text[1:] if text[:1] in ("-", "+") else text
    sign = -1.0 if text[:1] == "-" else 1.0
    if rest == "0":
        return 0.0
    if not rest:
        raise invalid
    total = 0.0
    while rest:
        if not (rest[0] == "." or rest[0].isdigit()):
            raise invalid
        match = _DURATION_ELEMENT.match(rest)
        assert match is not None
        whole, fraction, unit = match.group(1), match.group(2), match.group(3)
        if not whole and not fraction:
            raise invalid
        if not unit:
            raise ValueError(f"time: missing unit in duration {_go_quote(text)}")
        if unit not in _DURATION_UNITS:
            raise ValueError(f"time: unknown unit {_go_quote(unit)} in duration {_go_quote(text)}")
        total += float(f"{whole or 0}.{fraction or 0}") * _DURATION_UNITS[unit]
        rest = rest[match.end() :]
    return sign * total


def _go_json(value: object, *, indent: int | None) -> bytes:
    """encoding/json output: HTML-safe escaping of `<>&` and U+2028/U+2029, raw UTF-8."""
    separators = (",", ": ") if indent is not None else (",", ":")
    text = json.dumps(value, indent=indent, ensure_ascii=False, separators=separators)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escape)
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return text.encode()


def _split(target: str) -> tuple[str, str]:
    """Path and query of a request target; origin-form `//x` is a path, not an authority."""
    if target.startswith(("http://", "https://")):
        parts = urlsplit(target)
        return parts.path, parts.query
    path, _, query = target.partition("?")
    return path, query


def _query(target: str) -> dict[str, list[str]]:
    return parse_qs(_split(target)[1], keep_blank_values=True, separator="&")


def _first(query: dict[str, list[str]], key: str) -> str:
    return query.get(key, [""])[0]


def _host(request: Incoming) -> str:
    if request.target.startswith(("http://", "https://")):
        return urlsplit(request.target).netloc
    hosts = request.values("Host")
    return hosts[0] if hosts else ""


def _request_headers(request: Incoming) -> dict[str, list[str]]:
    """Go's `Request.Header` on the server side, as JSON encodes it (keys sorted)."""
    headers: dict[str, list[str]] = {}
    for name, value in request.headers:
        key = canonical_header_key(name)
        if key in ("Host", "Transfer-Encoding"):
            continue  # promoted to Request.Host / consumed by the chunked reader
        headers.setdefault(key, []).append(value)
    # net/http fixPragmaCacheControl (RFC 7234 section 5.4).
    if headers.get("Pragma", [""])[0] == "no-cache" and "Cache-Control" not in headers:
        headers["Cache-Control"] = ["no-cache"]
    return dict(sorted(headers.items()))


def _echo_set_headers(request: Incoming) -> list[tuple[str, str]]:
    """`writeEchoResponseHeaders`: `Name:value` pairs, names as given, repeats joined by `,`."""
    merged: dict[str, str] = {}
    for header_list in request.values("X-Echo-Set-Header"):
        for pair in header_list.split(","):
            name, _, value = pair.strip().partition(":")
            if name in merged:
                merged[name] += "," + value.strip()
            else:
                merged[name] = value
    # Go's header writer drops invalid names and trims values (Header.writeSubset).
    return [
        (name, value.replace("\r", " ").replace("\n", " ").strip())
        for name, value in merged.items()
        if _TOKEN.match(name) and _FIELD_VALUE.match(value.replace("\r", " ").replace("\n", " "))
    ]


def _text(status: int, body: bytes, extra: Iterable[tuple[str, str]] = ()) -> Reply:
    headers = [*extra]
    if body:  # net/http sniffs a Content-Type when the handler set none
        headers.append(("Content-Type", "text/plain; charset=utf-8"))
    return Reply(status, tuple(headers), body)


def _error(message: str) -> Reply:
    """`processError`: 500 with `{"message": ...}`."""
    return Reply(
        500,
        (("Content-Type", "application/json"), ("X-Content-Type-Options", "nosniff")),
        _go_json({"message": message}, indent=None),
    )


def echo(request: Incoming, context: EchoContext, *, http_port: str) -> Reply:
    """`echoHandler`: the request as JSON, after `?delay=`."""
    try:
        delay = _delay(request, "delay")
    except ValueError as exc:
        return replace(_error(str(exc)), echoed=True)
    assertions = {
        "path": request.target,
        "host": _host(request),
        "method": request.method,
        "proto": f"HTTP/{request.http_version}",
        "headers": _request_headers(request),
        "httpPort": http_port,
        "namespace": context.namespace,
        "ingress": context.ingress,
        "service": context.service,
        "pod": context.pod,
    }
    own = {"Content-Type": "application/json", "X-Content-Type-Options": "nosniff"}
    # Header().Set after the copy replaces an echoed header of exactly the canonical name.
    headers = [(n, v) for n, v in _echo_set_headers(request) if n not in own]
    headers += own.items()
    return Reply(200, tuple(headers), _go_json(assertions, indent=1), delay_s=delay, echoed=True)


def _delay(request: Incoming, key: str) -> float:
    text = _first(_query(request.target), key)
    return parse_go_duration(text) if text else 0.0


@dataclass
class RetrySimulation:
    """`retrySimulation`: failed attempts so far per `uuid` (one per pod, like the Go process)."""

    attempts: dict[str, int] = field(default_factory=dict)

    def answer(self, request: Incoming, context: EchoContext, *, http_port: str) -> Reply:
        query = _query(request.target)
        uuid = _first(query, "uuid")
        if not uuid:
            return _text(400, b"uuid is required")
        succeed_after = _first(query, "succeedAfter")
        if not _GO_INT.match(succeed_after):
            return _text(400, b"succeedAfter is required")
        if self.attempts.get(uuid, 0) >= int(succeed_after):
            return echo(request, context, http_port=http_port)
        self.attempts[uuid] = self.attempts.get(uuid, 0) + 1
        try:
            delay = _delay(request, "delayRetry")
        except ValueError as exc:
            return _error(str(exc))
        code = _first(query, "responseCode")
        if _GO_INT.match(code):
            return Reply(int(code), delay_s=delay)
        return Reply(0, reset=True, delay_s=delay)


Route = Literal["options", "star", "redirect", "health", "status", "retry", "ws", "echo"]


def plan(request: Incoming) -> tuple[Route, str]:
    """Which of echo-basic's handlers answers, the way net/http and its ServeMux choose.

    Returns the route and, for "redirect", the Location.
    """
    if request.target == "*":
        return ("options", "") if request.method == "OPTIONS" else ("star", "")
    raw_path, query = _split(request.target)
    path = unquote(raw_path).replace("//", "/")  # preserveSlashes
    cleaned = clean_path(path)
    if path in ("/status", "/retry"):  # a subtree's root without its slash
        cleaned = path + "/"
    if cleaned != path:
        return "redirect", cleaned + (f"?{query}" if query else "")
    if path == "/health":
        return "health", ""
    if path == "/ws":
        return "ws", ""
    if path.startswith("/status/"):
        return "status", ""
    if path.startswith("/retry/"):
        return "retry", ""
    return "echo", ""


def answer(
    request: Incoming, context: EchoContext, *, http_port: str, retries: RetrySimulation
) -> Reply:
    """echo-basic's answer on its HTTP port (the retry simulation's state is in `retries`)."""
    route, location = plan(request)
    if route == "options":
        return Reply(200)
    if route == "star":
        return Reply(400, (("Connection", "close"),))
    if route == "redirect":
        body = b""
        headers = [("Location", location)]
        if request.method in ("GET", "HEAD"):
            headers.append(("Content-Type", "text/html; charset=utf-8"))
        if request.method == "GET":
            body = f'<a href="{location}">Moved Permanently</a>.\n\n'.encode()
        return Reply(301, tuple(headers), body)
    if route == "health":
        return _text(200, b"OK")
    if route == "ws":
        return Reply(400)
    if route == "status":
        match = _STATUS.match(request.target)
        return Reply(int(match.group(1)) if match else 400)
    if route == "retry":
        return retries.answer(request, context, http_port=http_port)
    return echo(request, context, http_port=http_port)


def _reason(status: int) -> bytes:
    if status in _GO_REASONS:
        return _GO_REASONS[status].encode()
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return f"status code {status}".encode()


def _framed(reply: Reply, method: str) -> list[tuple[str, str]]:
    """The handler's headers (sorted, as Go writes them), then Date and the body's framing."""
    headers = sorted(reply.headers, key=lambda kv: kv[0])
    if not any(name == "Date" for name, _ in headers):  # net/http keeps a handler's own Date
        headers.append(("Date", formatdate(usegmt=True)))
    no_body = reply.status in (204, 304) or 100 <= reply.status < 200
    if not no_body and (len(reply.body) <= GO_CHUNKING_THRESHOLD or method == "HEAD"):
        headers.append(("Content-Length", str(len(reply.body))))
    return headers


@dataclass
class EchoBasicServer:
    """echo-basic's HTTP server for one pod, on `ip:port`; runs on the caller's event loop."""

    ip: str
    port: int
    context: EchoContext
    log: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    """Lines as echo-basic prints them, each prefixed with an RFC 3339 time (CRI log style)."""
    _retries: RetrySimulation = field(default_factory=RetrySimulation)
    _retry_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _server: asyncio.Server | None = None
    _connections: dict[asyncio.Task[None], asyncio.StreamWriter] = field(default_factory=dict)
    log_file: Path | None = None
    """Where the lines also go, appended as they are printed: the file kwok's kubelet server
    reads for this pod's `pods/log` (echo_pods.py), as a kubelet reads a container's log."""
    _log_lock: threading.Lock = field(default_factory=threading.Lock)
    _log_sink: IO[str] | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._connection, self.ip, self.port, reuse_address=True
        )
        if self.log_file is not None:
            self._log_sink = self.log_file.open("a", encoding="utf-8", buffering=1)
        self._print(f"Starting server, listening on port {self.port} (http)")

    async def stop(self) -> None:
        """Stop listening, then end every open connection (none outlives its server)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        # Aborting the transport ends the connection's pending read, so its task returns.
        # A connection inside `?delay=` is cancelled: its task owns nothing else.
        for task, writer in list(self._connections.items()):
            writer.transport.abort()
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        with self._log_lock:
            sink, self._log_sink = self._log_sink, None
        if sink is not None:
            sink.close()

    def log_lines(self) -> list[str]:
        with self._log_lock:
            return list(self.log)

    def _print(self, line: str) -> None:
        # The CRI log format kubelets (and kwok's log server) read: RFC 3339 time, stream, tag.
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        entry = f"{stamp} stdout F {line}"
        with self._log_lock:
            self.log.append(entry)
            if self._log_sink is not None:
                self._log_sink.write(entry + "\n")  # line-buffered: readable at once

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            # The top of the connection's own task: a cancel from stop() ends it quietly, so
            # asyncio's start_server callback does not log the cancellation as an error.
            pass
        finally:
            self._connections.pop(task, None)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        peer = writer.get_extra_info("peername")
        remote = f"{peer[0]}:{peer[1]}" if peer else ""
        while True:
            try:
                event = await _next_event(conn, reader)
            except h11.RemoteProtocolError:
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    # net/http: "400 Bad Request" as text, then close.
                    writer.write(b"HTTP/1.1 400 Bad Request\r\n")
                    writer.write(b"Content-Type: text/plain; charset=utf-8\r\n")
                    writer.write(b"Connection: close\r\n\r\n400 Bad Request")
                    await writer.drain()
                return
            if not isinstance(event, h11.Request):
                return  # ConnectionClosed, or the peer went quiet mid-way
            request = Incoming(
                method=event.method.decode("latin-1"),
                target=event.target.decode("latin-1"),
                http_version=event.http_version.decode("latin-1"),
                headers=tuple(
                    (n.decode("latin-1"), v.decode("utf-8", "replace"))
                    for n, v in event.headers.raw_items()
                ),
            )
            waited_for_continue = conn.they_are_waiting_for_100_continue
            if plan(request)[0] == "ws" and _websocket_key(request) is not None:
                # echo-basic's wsHandler (x/net/websocket): the handshake, then io.Copy(ws, ws).
                rest = conn.trailing_data[0]
                await _websocket_echo(request, reader, writer, rest)
                return
            if not await self._respond(conn, writer, request, remote):
                return
            if waited_for_continue or not await _discard_body(conn, reader):
                return
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()

    async def _respond(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, request: Incoming, remote: str
    ) -> bool:
        """Answer one request; False when the connection was reset instead."""
        http_port = str(self.port)
        if plan(request)[0] == "retry":
            # The Go handler holds its mutex across delayRetry and the echo.
            async with self._retry_lock:
                reply = answer(request, self.context, http_port=http_port, retries=self._retries)
                await self._echoed(reply, request, remote)
        else:
            reply = answer(request, self.context, http_port=http_port, retries=self._retries)
            await self._echoed(reply, request, remote)
        if reply.reset:
            sock = writer.get_extra_info("socket")
            if sock is not None:  # SO_LINGER 0: close() sends RST, as TCPConn.SetLinger(0)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        response = h11.Response(
            status_code=reply.status,
            headers=_framed(reply, request.method),
            reason=_reason(reply.status),
        )
        writer.write(conn.send(response) or b"")
        if reply.body and request.method != "HEAD":
            writer.write(conn.send(h11.Data(data=reply.body)) or b"")
        writer.write(conn.send(h11.EndOfMessage()) or b"")
        await writer.drain()
        return True

    async def _echoed(self, reply: Reply, request: Incoming, remote: str) -> None:
        if reply.echoed:  # echoHandler prints before it waits out `?delay=`
            self._print(f"Echoing back request made to {request.target} to client ({remote})")
        await asyncio.sleep(reply.delay_s)


_WS_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3


def _websocket_key(request: Incoming) -> str | None:
    headers = {n.lower(): v for n, v in request.headers}
    if headers.get("upgrade", "").lower() != "websocket":
        return None
    return headers.get("sec-websocket-key")


async def _websocket_echo(
    request: Incoming, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rest: bytes
) -> None:
    """The server side of RFC 6455 as x/net/websocket's handler runs it: accept (§4.2.2), then
    send every data frame's payload back in a frame of the same type, unmasked (§5.2); answer
    a ping with a pong and a close with a close."""
    key = _websocket_key(request)
    assert key is not None
    accept = base64.b64encode(hashlib.sha1(key.encode() + _WS_GUID).digest()).decode()  # noqa: S324 - RFC 6455's choice
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: %b\r\n\r\n" % accept.encode()
    )
    buffer = bytearray(rest)

    async def need(n: int) -> bytes:
        while len(buffer) < n:
            more = await reader.read(READ_SIZE)
            if not more:
                raise ConnectionError("closed")
            buffer.extend(more)
        out = bytes(buffer[:n])
        del buffer[:n]
        return out

    try:
        while True:
            first, second = await need(2)
            opcode = first & 0x0F
            length = second & 0x7F
            if length == 126:
                length = struct.unpack("!H", await need(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", await need(8))[0]
            mask = await need(4) if second & 0x80 else b"\0\0\0\0"
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(await need(length)))
            if opcode == 0x8:  # close
                writer.write(bytes([0x88, len(payload[:125])]) + payload[:125])
                await writer.drain()
                return
            reply_opcode = 0xA if opcode == 0x9 else opcode  # ping -> pong
            if length < 126:
                header = bytes([0x80 | reply_opcode, length])
            elif length < 65536:
                header = bytes([0x80 | reply_opcode, 126]) + struct.pack("!H", length)
            else:
                header = bytes([0x80 | reply_opcode, 127]) + struct.pack("!Q", length)
            writer.write(header + payload)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        writer.close()


async def _next_event(conn: h11.Connection, reader: asyncio.StreamReader) -> h11.Event | type:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        conn.receive_data(await reader.read(READ_SIZE))


async def _discard_body(conn: h11.Connection, reader: asyncio.StreamReader) -> bool:
    """Read and drop what is left of the request body; False to close instead (Go's limit)."""
    left = GO_POST_HANDLER_READ_BYTES
    while conn.their_state is h11.SEND_BODY:
        event = await _next_event(conn, reader)
        if isinstance(event, h11.Data):
            left -= len(event.data)
            if left < 0:
                return False
        elif not isinstance(event, h11.EndOfMessage):
            return False
    return True
