"""HTTP/2 attacks and malformed requests over real sockets (frames crafted with hyperframe and
hpack): each closes the connection with the right GOAWAY code or refuses the one stream, never
reaches an endpoint, and leaves the proxy serving the next client."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from typing import Any

import pytest
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import StreamEnded
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
)
from tests.proxy.backends import EchoBackend
from tests.proxy.conftest import Pki, Proxy, ProxyFactory, backend_objects
from tests.proxy.h2client import H2Client, h2_context
from tests.proxy.objects import ingress, path, rule

pytestmark = pytest.mark.asyncio

PROTOCOL_ERROR = 0x1
ENHANCE_YOUR_CALM = 0xB


def pseudo(method: bytes = b"GET", path: bytes = b"/") -> list[tuple[bytes, bytes]]:
    """The pseudo-header fields of a plain-HTTP request to app.example.com (RFC 9113 §8.3.1)."""
    return [
        (b":method", method),
        (b":scheme", b"http"),
        (b":authority", b"app.example.com"),
        (b":path", path),
    ]


BASE = pseudo()


async def _proxy(start_proxy: ProxyFactory, echo: Callable[..., Any]) -> tuple[Proxy, EchoBackend]:
    web = await echo("web")
    proxy: Proxy = await start_proxy()
    proxy.load(
        ingress("site", rule("app.example.com", path("/", "web"))), *backend_objects("web", [web])
    )
    return proxy, web


async def _still_serving(proxy: Proxy) -> None:
    c = await H2Client.connect(proxy.http)
    r = await c.request("/healthy")
    assert r.status == 200
    await c.close()


def _headers(
    c: H2Client, sid: int, fields: list[tuple[bytes, bytes]], *, end: bool = True
) -> Frame:
    flags = ["END_HEADERS", "END_STREAM"] if end else ["END_HEADERS"]
    return HeadersFrame(sid, data=c.encoder.encode(fields), flags=flags)


# --- floods and resource limits -------------------------------------------------------------


async def test_rapid_reset(start_proxy: ProxyFactory, echo: Callable[..., Any]) -> None:
    # CVE-2023-44487: open a stream, cancel it at once, again and again; each would start
    # backend work while never counting against the concurrent-stream limit.
    proxy, _ = await _proxy(start_proxy, echo)
    c = await H2Client.connect(proxy.http)
    frames: list[Frame] = []
    for i in range(1000):
        sid = 2 * i + 1
        frames += [_headers(c, sid, BASE), RstStreamFrame(sid, error_code=8)]  # CANCEL
    c.raw(*frames)
    assert await c.outcome(0) == ("goaway", ENHANCE_YOUR_CALM)
    assert await c.next_frame() is None  # and closed
    await c.close()
    await _still_serving(proxy)


async def test_continuation_flood(start_proxy: ProxyFactory, echo: Callable[..., Any]) -> None:
    # CVE-2024-27316: a header block that never ends, one CONTINUATION frame after another.
    # h2 allows 64 per block (its CONTINUATION_BACKLOG), so at most 64 x 16 KiB are held.
    proxy, web = await _proxy(start_proxy, echo)
    c = await H2Client.connect(proxy.http)
    block = c.encoder.encode(BASE)
    frames: list[Frame] = [HeadersFrame(1, data=block)]
    frames += [ContinuationFrame(1, data=b"\x40\x01a\x01b") for _ in range(200)]
    c.raw(*frames)
    assert await c.outcome(1) == ("goaway", PROTOCOL_ERROR)
    assert web.requests == 0
    await c.close()
    await _still_serving(proxy)


async def test_hpack_bomb(start_proxy: ProxyFactory, echo: Callable[..., Any]) -> None:
    # A 4 KiB field indexed once, then referenced by one byte each: a small block that
    # decodes to far more than SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 §10.5.1).
    proxy, web = await _proxy(start_proxy, echo)
    c = await H2Client.connect(proxy.http)
    fields = BASE + [(b"x-bomb", b"a" * 4000)] * 60
    block = c.encoder.encode(fields)
    assert len(block) < 6000  # what was sent: small
    c.raw(HeadersFrame(1, data=block, flags=["END_HEADERS", "END_STREAM"]))
    assert await c.outcome(1) == ("goaway", ENHANCE_YOUR_CALM)
    assert web.requests == 0
    await c.close()
    await _still_serving(proxy)


async def test_oversized_header_list(start_proxy: ProxyFactory, echo: Callable[..., Any]) -> None:
    proxy, web = await _proxy(start_proxy, echo)
    c = await H2Client.connect(proxy.http)
    block = c.encoder.encode([*BASE, (b"x-big", b"b" * 40_000)], huffman=False)
    pieces = [block[i : i + 16_000] for i in range(0, len(block), 16_000)]
    frames: list[Frame] = [HeadersFrame(1, data=pieces[0], flags=["END_STREAM"])]
    frames += [ContinuationFrame(1, data=p) for p in pieces[1:-1]]
    frames.append(ContinuationFrame(1, data=pieces[-1], flags=["END_HEADERS"]))
    c.raw(*frames)
    assert await c.outcome(1) == ("goaway", ENHANCE_YOUR_CALM)
    assert web.requests == 0
    await c.close()
    await _still_serving(proxy)


@pytest.mark.parametrize(
    "flood",
    [
        lambda: PingFrame(0, opaque_data=b"12345678"),
        lambda: SettingsFrame(0, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 65_535}),
    ],
    ids=["PING", "SETTINGS"],
)
async def test_control_frame_floods(
    start_proxy: ProxyFactory, echo: Callable[..., Any], flood: Callable[[], Frame]
) -> None:
    # Each PING and SETTINGS asks for an ACK: a flood is work and output we did not choose.
    proxy, _ = await _proxy(start_proxy, echo)
    c = await H2Client.connect(proxy.http)
    c.raw(*[flood() for _ in range(5000)])
    assert await c.outcome(0) == ("goaway", ENHANCE_YOUR_CALM)
    assert await c.next_frame() is None
    await c.close()
    await _still_serving(proxy)


async def test_pings_at_a_normal_pace_are_answered(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    proxy, _ = await _proxy(start_proxy, echo)
    c = await H2Client.connect(proxy.http)
    for _ in range(3):
        c.conn.ping(b"kexpose!")
        c.flush()
        r = await c.request("/")
        assert r.status == 200
    assert c.goaway is None
    await c.close()


async def test_too_many_concurrent_streams(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    proxy, web = await _proxy(start_proxy, echo)
    limit = proxy.plane.settings.http2.max_concurrent_streams
    c = await H2Client.connect(proxy.http)
    hang = [*BASE, (b"x-echo", b"hang")]
    c.raw(*[_headers(c, 2 * i + 1, hang) for i in range(limit + 1)])
    # RFC 9113 §5.1.2: past SETTINGS_MAX_CONCURRENT_STREAMS is a PROTOCOL_ERROR (h2 makes it
    # the connection's).
    assert await c.outcome(0) == ("goaway", PROTOCOL_ERROR)
    await c.close()
    await _still_serving(proxy)
    assert web.requests <= limit


# --- malformed requests and HTTP/2 to HTTP/1.1 smuggling ------------------------------------

CL = (b"content-length", b"5")

MALFORMED: list[tuple[str, list[tuple[bytes, bytes]], bytes | None, tuple[str, int]]] = [
    # RFC 9113 §8.1.1: DATA that disagrees with content-length is malformed.
    ("length-longer-than-data", [*BASE, CL], b"abc", ("goaway", PROTOCOL_ERROR)),
    ("length-shorter-than-data", [*BASE, CL], b"abcdefghij", ("goaway", PROTOCOL_ERROR)),
    ("length-on-bodiless", [*BASE, CL], None, ("status", 400)),
    ("length-signed", [*BASE, (b"content-length", b"+3")], b"abc", ("goaway", PROTOCOL_ERROR)),
    (
        "lengths-disagree",
        [*BASE, CL, (b"content-length", b"6")],
        b"abcde",
        ("goaway", PROTOCOL_ERROR),
    ),
    # §8.2.1: field names are lower case.
    ("uppercase-name", [*BASE, (b"X-Up", b"1")], None, ("goaway", PROTOCOL_ERROR)),
    # §8.2.1: CR, LF and NUL are never allowed in a value (header injection into HTTP/1.1).
    ("lf-in-value", [*BASE, (b"x-a", b"1\r\nx-injected: 1")], None, ("goaway", PROTOCOL_ERROR)),
    ("nul-in-value", [*BASE, (b"x-a", b"1\x002")], None, ("goaway", PROTOCOL_ERROR)),
    # Other control characters: h2 lets them through, HTTP/1.1 endpoints read them variously.
    ("ctl-in-value", [*BASE, (b"x-a", b"1\x012")], None, ("status", 400)),
    # Names that are no HTTP token would change the HTTP/1.1 head's meaning.
    ("space-in-name", [*BASE, (b"x a", b"1")], None, ("goaway", PROTOCOL_ERROR)),
    ("colon-in-name", [*BASE, (b"x:a", b"1")], None, ("goaway", PROTOCOL_ERROR)),
    # §8.2.2: connection-specific fields are malformed; transfer-encoding is the h2->h1
    # downgrade smuggling vector (a chunked body the endpoint would read differently).
    (
        "transfer-encoding",
        [*BASE, (b"transfer-encoding", b"chunked")],
        b"0\r\n\r\n",
        ("goaway", PROTOCOL_ERROR),
    ),
    ("connection", [*BASE, (b"connection", b"keep-alive")], None, ("goaway", PROTOCOL_ERROR)),
    ("upgrade", [*BASE, (b"upgrade", b"websocket")], None, ("goaway", PROTOCOL_ERROR)),
    ("te-gzip", [*BASE, (b"te", b"gzip")], None, ("goaway", PROTOCOL_ERROR)),
    # §8.3.1: :path is not empty; only origin form is routed here.
    ("path-empty", pseudo(path=b""), None, ("goaway", PROTOCOL_ERROR)),
    ("path-absolute", pseudo(path=b"http://other.example.com/x"), None, ("status", 400)),
    ("path-asterisk", pseudo(b"OPTIONS", b"*"), None, ("status", 400)),
    (
        "no-authority",
        [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/")],
        None,
        ("goaway", PROTOCOL_ERROR),
    ),
    (
        "authority-with-space",
        [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"a b"), (b":path", b"/")],
        None,
        ("status", 400),
    ),
    ("host-disagrees", [*BASE, (b"host", b"other.example.com")], None, ("goaway", PROTOCOL_ERROR)),
    ("fragment", pseudo(path=b"/a#/../admin"), None, ("status", 400)),
]


@pytest.mark.parametrize(
    ("fields", "body", "expected"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
async def test_malformed_requests_never_reach_the_endpoint(
    start_proxy: ProxyFactory,
    echo: Callable[..., Any],
    fields: list[tuple[bytes, bytes]],
    body: bytes | None,
    expected: tuple[str, int],
) -> None:
    proxy, web = await _proxy(start_proxy, echo)
    c = await H2Client.connect(proxy.http)
    frames: list[Frame] = [_headers(c, 1, fields, end=body is None)]
    if body is not None:
        frames.append(DataFrame(1, data=body, flags=["END_STREAM"]))
    c.raw(*frames)
    assert await c.outcome(1) == expected
    assert web.requests == 0
    await c.close()
    await _still_serving(proxy)


async def test_a_body_that_stops_coming_is_408(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    # Slowloris on a stream: HEADERS without END_STREAM, then nothing (Timeouts.client_body).
    proxy, web = await _proxy(start_proxy, echo)
    c = await H2Client.connect(proxy.http)
    c.raw(_headers(c, 1, [*BASE, (b"content-length", b"10")], end=False))
    c.raw(DataFrame(1, data=b"abc"))
    assert await c.outcome(1) == ("status", 408)
    assert await c.outcome(1) == ("reset", 0)  # NO_ERROR: the client may stop sending
    assert web.requests == 0  # the endpoint never saw a whole request
    await c.close()
    await _still_serving(proxy)


class _QuietTls:
    """HTTP/2 over TLS that, like h2load, ends with GOAWAY and then waits for the server to
    close the TCP connection: it never answers the server's close_notify."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.h2 = H2Connection(H2Configuration(client_side=True, header_encoding=None))

    async def start(self, ctx: ssl.SSLContext) -> None:
        self.tls = ctx.wrap_bio(self.inc, self.out, server_hostname="app.example.com")
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.writer.write(self.out.read())
                data = await self.reader.read(65536)
                assert data, "closed during the handshake"
                self.inc.write(data)
        self.writer.write(self.out.read())
        self.h2.initiate_connection()
        self.send()

    def send(self) -> None:
        self.tls.write(self.h2.data_to_send())
        self.writer.write(self.out.read())

    async def answers(self, count: int) -> None:
        ended = 0
        while ended < count:
            data = await self.reader.read(65536)
            assert data, "closed before the answers"
            self.inc.write(data)
            with contextlib.suppress(ssl.SSLWantReadError):
                while True:
                    plain = self.tls.read(65536)
                    for ev in self.h2.receive_data(plain):
                        ended += isinstance(ev, StreamEnded)
            self.send()

    async def closed_by_server(self) -> bool:
        """Read the socket to its end (close_notify included, never answered)."""
        while True:
            try:
                data = await self.reader.read(65536)
            except ConnectionError:
                return True
            if not data:
                return True


async def test_a_client_goaway_over_tls_is_closed_without_waiting_for_close_notify(
    start_proxy: ProxyFactory, echo: Callable[..., Any], pki: Pki
) -> None:
    """Many connections end at once with GOAWAY (as h2load does at the end of a timed run) and
    wait for the TCP close without answering close_notify: the proxy closes every one of them
    (RFC 8446 §6.1: the closer need not wait for the peer's close_notify)."""
    proxy, _ = await _proxy(start_proxy, echo)
    ctx = h2_context(pki.client_context(verify=False))
    clients: list[_QuietTls] = []
    for _ in range(32):
        reader, writer = await asyncio.open_connection(*proxy.https)
        c = _QuietTls(reader, writer)
        await c.start(ctx)
        for _ in range(4):
            sid = c.h2.get_next_available_stream_id()
            c.h2.send_headers(sid, [*BASE[:1], (b":scheme", b"https"), *BASE[2:]], end_stream=True)
        c.send()
        clients.append(c)
    for c in clients:
        await c.answers(4)
        # Then streams still under way when the GOAWAY comes, as at the end of a timed run.
        for _ in range(4):
            sid = c.h2.get_next_available_stream_id()
            head = [*BASE[:1], (b":scheme", b"https"), *BASE[2:], (b"x-echo", b"sleep:0.3")]
            c.h2.send_headers(sid, head, end_stream=True)
        c.send()
    for c in clients:
        c.h2.close_connection()
        c.send()
    try:
        # Generous, yet short of uvloop's own 30 s wait for a close_notify that never comes.
        closed = await asyncio.wait_for(
            asyncio.gather(*(c.closed_by_server() for c in clients)), 20.0
        )
    finally:
        for c in clients:
            c.writer.transport.abort()
    assert all(closed)
    assert not proxy.plane.connections
    await _still_serving(proxy)
