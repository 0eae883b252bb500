"""Regression tests for the data-plane defects and risks of the hardening issue (#14), each over
real loopback sockets: framing headers named in ``Connection``, fragments in the target,
unread pipelined answers, request lines and methods the proxy refuses, header names with
underscores, chunk sizes, bare-LF heads, and the header timeout after a keep-alive request.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from tests.proxy.backends import ScriptedBackend
from tests.proxy.conftest import FAST, Pki, Proxy, ProxyFactory, backend_objects
from tests.proxy.objects import (
    endpoint,
    endpoint_slice,
    ingress,
    path,
    rule,
    service,
    sport,
    tls,
    tls_secret,
)

from kexpose.proxy.dataplane._chunked import MAX_CHUNK_SIZE, ChunkedError, ChunkedScanner

pytestmark = pytest.mark.asyncio

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: app.example.com\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n"


async def _proxy(
    start_proxy: ProxyFactory, echo: Callable[..., Any], pki: Pki, *, redirect: bool = False
) -> tuple[Proxy, Any]:
    """app.example.com with TLS; plain HTTP is redirected to HTTPS only with ``redirect``."""
    web = await echo("web")
    proxy: Proxy = await start_proxy(replace(FAST, ssl_redirect=redirect))
    proxy.load(
        ingress(
            "i", rule("app.example.com", path("/", "web")), tls=[tls("app-tls", "app.example.com")]
        ),
        tls_secret("app-tls", pki.pairs["app"]),
        *backend_objects("web", [web]),
    )
    return proxy, web


# --- 1, 7: framing and Host can never be removed through Connection ------------------------------

SMUGGLING = [
    (
        "HTTP/1.1 Connection: content-length",
        b"POST /a HTTP/1.1\r\nHost: app.example.com\r\nConnection: content-length\r\n"
        b"Content-Length: %d\r\n\r\n%b" % (len(SMUGGLED), SMUGGLED),
    ),
    (
        "HTTP/1.0 Connection: keep-alive, Content-Length",
        b"POST /a HTTP/1.0\r\nHost: app.example.com\r\nConnection: keep-alive, Content-Length\r\n"
        b"Content-Length: %d\r\n\r\n%b" % (len(SMUGGLED), SMUGGLED),
    ),
    (
        "Connection: transfer-encoding on a chunked body",
        b"POST /a HTTP/1.1\r\nHost: app.example.com\r\nConnection: Transfer-Encoding\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%b\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED),
    ),
]


@pytest.mark.parametrize(("case", "raw"), SMUGGLING, ids=[c for c, _ in SMUGGLING])
@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_a_body_framed_by_a_header_named_in_connection_stays_a_body(
    start_proxy: ProxyFactory,
    echo: Callable[..., Any],
    pki: Pki,
    case: str,
    raw: bytes,
    scheme: str,
) -> None:
    proxy, web = await _proxy(start_proxy, echo, pki)
    tls_ctx = pki.client_context() if scheme == "https" else None
    c = await proxy.client(tls=tls_ctx, sni="app.example.com")
    c.send(raw)
    r = await c.response()
    assert r.status == 200
    info = r.json()
    assert (info["method"], info["target"], info["size"]) == ("POST", "/a", len(SMUGGLED))
    # The endpoint read one request, whose body is the would-be second request.
    assert web.requests == 1
    if b"HTTP/1.0" in raw.split(b"\r\n", 1)[0]:
        assert dict(info["headers"])["content-length"] == str(len(SMUGGLED))
    # No queue poisoning: the next request on a pooled endpoint connection gets its own answer.
    other = await proxy.client(tls=tls_ctx, sni="app.example.com")
    r = await other.request("GET", "/mine")
    assert r.json()["target"] == "/mine"
    assert web.requests == 2
    await other.close()
    await c.close()


async def test_connection_host_does_not_remove_host(
    start_proxy: ProxyFactory, echo: Callable[..., Any], pki: Pki
) -> None:
    proxy, _ = await _proxy(start_proxy, echo, pki)
    for tls_ctx in (None, pki.client_context()):
        c = await proxy.client(tls=tls_ctx, sni="app.example.com")
        c.send(
            b"GET /h HTTP/1.1\r\nHost: app.example.com\r\nConnection: host, x-gone\r\n"
            b"X-Gone: 1\r\n\r\n"
        )
        headers = dict((await c.response()).json()["headers"])
        assert headers["host"] == "app.example.com"
        assert "x-gone" not in headers  # other named headers are still hop-by-hop
        await c.close()


def _route_everything_to(proxy: Proxy, backend: ScriptedBackend) -> None:
    proxy.load(
        ingress("i", rule(None, path("/", "raw"))),
        service("raw", sport(80, "http", name="http")),
        endpoint_slice("raw", [endpoint("127.0.0.2")], [("http", backend.port)]),
    )


class RawBackend(ScriptedBackend):
    """An endpoint that answers every request head with fixed bytes."""

    def __init__(self, answer: bytes) -> None:
        super().__init__()
        self.answer = answer
        self.received = b""
        self.bodies: list[bytes] = []
        """The chunked request bodies received, as framed on the wire."""

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.received += head
                if b"transfer-encoding: chunked" in head.lower():
                    body = b""
                    while not body.endswith(b"0\r\n\r\n"):  # the tests' bodies only
                        more = await reader.read(65536)
                        if not more:
                            break
                        body += more
                    self.bodies.append(body)
                writer.write(self.answer)
                await writer.drain()
        writer.close()


async def test_a_response_framed_by_a_header_named_in_connection_stays_framed(
    start_proxy: ProxyFactory,
) -> None:
    # Defect 6: a backend's ``Connection: content-length`` must not leave the client without
    # the length of the body it receives on a kept-alive connection.
    body = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nnope!"  # looks like a response itself
    backend = await RawBackend(
        b"HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: %d\r\n\r\n%b"
        % (len(body), body)
    ).start()
    try:
        proxy: Proxy = await start_proxy()
        _route_everything_to(proxy, backend)
        c = await proxy.client()
        for _ in range(2):
            r = await c.request("GET", "/")
            assert r.status == 200
            assert r.header("content-length") == str(len(body))
            assert r.body == body
            assert not r.closed
        await c.close()
    finally:
        await backend.stop()


# --- 2: fragments ---------------------------------------------------------------------------------


@pytest.mark.parametrize("target", [b"/internal#/../public", b"/public#/../admin", b"/public#x"])
async def test_a_fragment_in_the_target_is_refused(
    start_proxy: ProxyFactory, echo: Callable[..., Any], target: bytes
) -> None:
    public, admin = await echo("public"), await echo("admin")
    proxy: Proxy = await start_proxy()
    proxy.load(
        ingress("i", rule("app.example.com", path("/public", "public"), path("/admin", "admin"))),
        *backend_objects("public", [public]),
        *backend_objects("admin", [admin]),
    )
    c = await proxy.client()
    c.send(b"GET %b HTTP/1.1\r\nHost: app.example.com\r\n\r\n" % target)
    assert (await c.response()).status == 400
    assert public.requests == admin.requests == 0
    await c.close()


# --- 4: a client that pipelines and never reads ---------------------------------------------


def _flood(addr: tuple[str, int], request: bytes, total: int, seconds: float) -> int:
    """Send up to ``total`` bytes of pipelined requests without reading; returns bytes sent."""
    batch = request * (65536 // len(request))
    sent = 0
    with socket.create_connection(addr) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(0.5)
        deadline = time.monotonic() + seconds
        while sent < total and time.monotonic() < deadline:
            try:
                sent += s.send(batch)
            except TimeoutError:
                continue  # the proxy stopped reading: keep trying until the deadline
    return sent


@pytest.mark.parametrize("host", [b"unknown.example.com", b"app.example.com"])
async def test_answers_a_client_does_not_read_are_bounded(
    start_proxy: ProxyFactory, echo: Callable[..., Any], pki: Pki, host: bytes
) -> None:
    # 404s (no such host) and 308s (TLS host on the plain port) are answered by the proxy itself.
    proxy, web = await _proxy(start_proxy, echo, pki, redirect=True)
    request = b"GET /x HTTP/1.1\r\nHost: %b\r\n\r\n" % host
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            size = sum(
                c.transport.get_write_buffer_size()
                for c in proxy.plane.connections
                if c.transport is not None
            )
            peak = max(peak, size)
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    sent = await asyncio.to_thread(_flood, proxy.http, request, 30_000_000, 3.0)
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    # Reading stopped once answers queued past the transport's high-water mark (64 KiB): what
    # is buffered is that plus the answers to one read's worth of requests.
    assert peak < 2_000_000, (peak, sent)
    assert sent < 10_000_000  # and the client was held back by TCP, not served into our memory
    assert web.requests == 0


# --- risks: request line, methods, header names, chunk sizes, bare LF --------------------------

REFUSED = [
    ("HTTP/2.0 request line", b"GET / HTTP/2.0\r\nHost: app.example.com\r\n\r\n", 505),
    # llhttp itself refuses versions it does not know (nginx: 505 for both).
    ("HTTP/3.0 request line", b"GET / HTTP/3.0\r\nHost: app.example.com\r\n\r\n", 400),
    ("TRACE", b"TRACE / HTTP/1.1\r\nHost: app.example.com\r\n\r\n", 405),
    ("TRACK", b"TRACK / HTTP/1.1\r\nHost: app.example.com\r\n\r\n", 400),  # llhttp: no method
    (
        "chunk size 2**64-1",
        b"POST / HTTP/1.1\r\nHost: app.example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"ffffffffffffffff\r\nabc",
        400,
    ),
    (
        "chunk size 2**63",
        b"POST / HTTP/1.1\r\nHost: app.example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"8000000000000000\r\nabc",
        400,
    ),
    ("bare LF head", b"GET / HTTP/1.1\nHost: app.example.com\n\n", 400),
    ("bare LF in a header", b"GET / HTTP/1.1\r\nHost: app.example.com\nX: y\r\n", 400),
]


@pytest.mark.parametrize(("case", "raw", "status"), REFUSED, ids=[c for c, _, _ in REFUSED])
async def test_refused_promptly_and_never_forwarded(
    start_proxy: ProxyFactory, echo: Callable[..., Any], case: str, raw: bytes, status: int
) -> None:
    web = await echo("web")
    # A long header timeout: a refusal must come from reading the bytes, not from the clock.
    slow = replace(FAST, timeouts=replace(FAST.timeouts, header=60.0, client_body=60.0))
    proxy: Proxy = await start_proxy(slow)
    proxy.load(ingress("i", rule(None, path("/", "web"))), *backend_objects("web", [web]))
    c = await proxy.client()
    c.send(raw)
    r = await c.response(timeout=5.0)
    assert r.status == status
    assert web.requests == 0
    await c.close()


@pytest.mark.filterwarnings("ignore::pytest.PytestWarning")  # a sync test in an asyncio module
def test_chunk_sizes_up_to_the_largest_off_t_are_read() -> None:
    scanner = ChunkedScanner()
    assert scanner.scan(b"%x\r\nab" % MAX_CHUNK_SIZE) == len(b"%x\r\nab" % MAX_CHUNK_SIZE)
    assert not scanner.done
    with pytest.raises(ChunkedError):
        ChunkedScanner().scan(b"%x\r\n" % (MAX_CHUNK_SIZE + 1))
    with pytest.raises(ChunkedError):
        ChunkedScanner().scan(b"1%s\r\n" % (b"0" * 40))
    done = ChunkedScanner()
    assert done.scan(b"0000000000000003\r\nabc\r\n0\r\n\r\n") > 0  # leading zeros are fine
    assert done.done
    with pytest.raises(ChunkedError):  # ... up to 16 digits, as a 64-bit size has
        ChunkedScanner().scan(b"00000000000000003\r\nabc\r\n")


async def test_header_names_with_underscores_are_dropped(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    web = await echo("web")
    proxy: Proxy = await start_proxy()
    proxy.load(ingress("i", rule(None, path("/", "web"))), *backend_objects("web", [web]))
    c = await proxy.client()
    r = await c.request(
        "GET",
        "/",
        headers={"X_Forwarded_For": "6.6.6.6", "Foo_Bar": "x", "X-Kept": "a_b", "_": "y"},
    )
    names = [n for n, _ in r.json()["headers"]]
    assert "x-kept" in names
    assert not [n for n in names if "_" in n]
    assert dict(r.json()["headers"])["x-forwarded-for"] == "127.0.0.1"
    await c.close()


async def test_the_header_timeout_applies_after_a_keep_alive_request(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    # Slowloris on a reused connection: once a new head starts, it gets Timeouts.header to
    # finish, not the (much longer) keep-alive idle timeout.
    web = await echo("web")
    settings = replace(FAST, timeouts=replace(FAST.timeouts, header=0.5, keepalive=30.0))
    proxy: Proxy = await start_proxy(settings)
    proxy.load(ingress("i", rule(None, path("/", "web"))), *backend_objects("web", [web]))
    c = await proxy.client()
    assert (await c.request("GET", "/")).status == 200
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n")

    async def drip() -> None:
        for _ in range(500):
            await asyncio.sleep(0.02)
            c.send(b"X-Drip: 1\r\n")

    dripping = asyncio.create_task(drip())
    try:
        r = await c.response(timeout=10.0)
    finally:
        dripping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await dripping
    assert r.status == 408
    assert loop.time() - t0 < 5.0  # the header timeout (0.5 s), far from keep-alive's 30 s
    await c.close()


# --- found by the differential fuzzer ------------------------------------------------------------


async def test_empty_lines_after_a_request_leave_the_connection_idle_with_a_deadline(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    web = await echo("web")
    proxy: Proxy = await start_proxy()  # keep-alive timeout 2 s (conftest.FAST)
    proxy.load(ingress("i", rule(None, path("/", "web"))), *backend_objects("web", [web]))
    c = await proxy.client()
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n\r\n")
    assert (await c.response()).status == 200
    assert await c.closed_by_peer(timeout=5.0)  # not held open forever
    await c.close()


async def test_request_trailers_never_reach_the_endpoint(start_proxy: ProxyFactory) -> None:
    backend = await RawBackend(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").start()
    try:
        proxy: Proxy = await start_proxy()
        _route_everything_to(proxy, backend)
        c = await proxy.client()
        c.send(
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\nX_Forwarded_For: 6.6.6.6\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n"
        )
        assert (await c.response()).status == 200
        await c.close()
        body = await _body_received(backend)
        assert body == b"3\r\nabc\r\n0\r\n\r\n"
    finally:
        await backend.stop()


async def _body_received(backend: RawBackend) -> bytes:
    for _ in range(100):
        if backend.bodies:
            return backend.bodies[0]
        await asyncio.sleep(0.01)
    return b""


async def test_connect_with_a_body_is_answered_405_not_dropped(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    # scripts/fuzz (seed 1102918417): llhttp reads CONNECT as a tunnel, so parsing its chunked
    # body raised out of data_received and the connection was aborted with the 405 unsent.
    web = await echo("web")
    proxy: Proxy = await start_proxy()
    proxy.load(ingress("i", rule(None, path("/", "web"))), *backend_objects("web", [web]))
    c = await proxy.client()
    c.send(
        b"CONNECT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4b ;e=1\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n\r\n"
        b"0\r\n\r\n"
    )
    r = await c.response()
    assert r.status == 405
    assert await c.closed_by_peer()
    assert web.requests == 0
    await c.close()
