"""Faults and bad input: dying and silent backends, refused connects, malformed requests."""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from tests.proxy.backends import Client
from tests.proxy.conftest import Proxy, ProxyFactory, backend_objects
from tests.proxy.objects import endpoint, endpoint_slice, ingress, path, rule, service, sport

pytestmark = pytest.mark.asyncio


async def _proxy(start_proxy: ProxyFactory, echo: Callable[..., Any]) -> tuple[Proxy, Any]:
    web = await echo("web")
    proxy = await start_proxy()
    proxy.load(ingress("i", rule(None, path("/", "web"))), *backend_objects("web", [web]))
    return proxy, web


def _dead_port(host: str = "127.0.0.4") -> int:
    """A port on which nothing listens (bound, then closed)."""
    s = socket.socket()
    s.bind((host, 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


async def test_backend_dying_mid_body_cuts_the_client(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    proxy, _ = await _proxy(start_proxy, echo)
    c = await proxy.client()
    r = await c.request("GET", "/", headers={"x-echo": "die"})
    assert r.status == 200
    assert r.closed  # the client can tell the body is incomplete
    assert len(r.body) < 100_000
    await c.close()
    c = await proxy.client()
    assert (await c.request("GET", "/")).status == 200  # the proxy is fine
    await c.close()


async def test_backend_that_never_answers_is_504(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    proxy, _ = await _proxy(start_proxy, echo)
    c = await proxy.client()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    r = await c.request("GET", "/", headers={"x-echo": "hang"})
    assert r.status == 504
    assert 0.4 < loop.time() - t0 < 2.0  # Timeouts.upstream_read is 0.5 s in these tests
    assert (await c.request("GET", "/")).status == 200  # the connection survives a 504
    await c.close()


async def test_refused_endpoint_is_retried_on_another(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    web = await echo("web")
    proxy = await start_proxy()
    dead = _dead_port()
    proxy.load(
        ingress("i", rule(None, path("/", "web"))),
        service("web", sport(80, "http", name="http")),
        endpoint_slice("web", [endpoint("127.0.0.4")], [("http", dead)], name="dead"),
        endpoint_slice("web", [endpoint(web.host)], [("http", web.port)], name="live"),
    )
    c = await proxy.client()
    for _ in range(4):  # round-robin hits the dead one at least twice
        assert (await c.request("GET", "/")).status == 200
    await c.close()


async def test_only_refused_endpoints_is_502(start_proxy: ProxyFactory) -> None:
    proxy = await start_proxy()
    proxy.load(
        ingress("i", rule(None, path("/", "web"))),
        service("web", sport(80, "http", name="http")),
        endpoint_slice("web", [endpoint("127.0.0.4")], [("http", _dead_port())]),
    )
    c = await proxy.client()
    assert (await c.request("GET", "/")).status == 502
    await c.close()


async def test_connect_timeout_is_504(start_proxy: ProxyFactory) -> None:
    # A listener whose accept queue is full: Linux drops further SYNs, so connects hang.
    listener = socket.socket()
    listener.bind(("127.0.0.5", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        f = socket.socket()
        f.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            f.connect(("127.0.0.5", port))
        fillers.append(f)
    await asyncio.sleep(0.05)
    try:
        proxy = await start_proxy()
        proxy.load(
            ingress("i", rule(None, path("/", "web"))),
            service("web", sport(80, "http", name="http")),
            endpoint_slice("web", [endpoint("127.0.0.5")], [("http", port)]),
        )
        c = await proxy.client()
        r = await c.request("GET", "/")
        assert r.status == 504
        await c.close()
    finally:
        for f in fillers:
            f.close()
        listener.close()


BAD_REQUESTS: list[tuple[str, bytes, int]] = [
    ("malformed request line", b"GET\r\n\r\n", 400),
    ("space in target", b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("malformed header", b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n", 400),
    ("header without colon", b"GET / HTTP/1.1\r\nHost: a\r\nnocolon\r\n\r\n", 400),
    ("obsolete line folding", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400),
    (
        "Content-Length with Transfer-Encoding",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
        400,
    ),
    (
        "two different Content-Lengths",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        400,
    ),
    (
        "bad chunk size",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        400,
    ),
    (
        "unknown transfer coding",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        501,
    ),
    ("HTTP/1.1 without Host", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("absolute-form without Host", b"GET http://a/ HTTP/1.1\r\n\r\n", 400),
    ("two Hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("bad Host", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    ("dot-dot Host", b"GET / HTTP/1.1\r\nHost: a..b\r\n\r\n", 400),
    ("path above the root", b"GET /../etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("bad escape", b"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("CONNECT", b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 405),
    ("oversized headers", b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"x" * 40_000 + b"\r\n\r\n", 431),
    (
        "many headers",
        b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X-Many: 0123456789\r\n" * 2000 + b"\r\n",
        431,
    ),
    ("oversized target", b"GET /" + b"a" * 40_000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
]


@pytest.mark.parametrize(("case", "raw", "status"), BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
async def test_bad_requests_are_refused_and_never_reach_a_backend(
    start_proxy: ProxyFactory, echo: Callable[..., Any], case: str, raw: bytes, status: int
) -> None:
    proxy, web = await _proxy(start_proxy, echo)
    c = await proxy.client()
    c.send(raw)
    r = await c.response()
    assert r.status == status
    assert r.header("connection") == "close"
    assert await c.closed_by_peer()
    assert web.requests == 0
    await c.close()


async def test_absolute_form_target_uses_its_authority(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    web = await echo("web")
    proxy = await start_proxy()
    proxy.load(
        ingress("i", rule("app.example.com", path("/", "web"))), *backend_objects("web", [web])
    )
    c = await proxy.client()
    c.send(b"GET http://app.example.com/x?y HTTP/1.1\r\nHost: ignored.example.com\r\n\r\n")
    r = await c.response()
    assert r.status == 200
    info = r.json()
    assert info["target"] == "/x?y"
    assert dict(info["headers"])["host"] == "app.example.com"  # RFC 9112 §3.2.2
    await c.close()


def _drip(addr: tuple[str, int], seconds: float) -> tuple[bytes, float]:
    """A slowloris client: one header line every 20 ms, until the server says something."""
    with socket.create_connection(addr, timeout=2) as s:
        t0 = time.monotonic()
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")
        while time.monotonic() - t0 < seconds:
            readable, _, _ = select.select([s], [], [], 0.02)
            if readable:
                break
            s.sendall(b"X-Drip: 1\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        return data, time.monotonic() - t0


async def test_slowloris_is_closed_after_the_header_timeout(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    proxy, web = await _proxy(start_proxy, echo)
    data, elapsed = await asyncio.to_thread(_drip, proxy.http, 3.0)
    assert data.startswith(b"HTTP/1.1 408 ")
    assert 0.4 < elapsed < 1.5  # Timeouts.header is 0.5 s in these tests
    assert web.requests == 0


async def test_idle_connection_that_sends_nothing_is_closed(start_proxy: ProxyFactory) -> None:
    proxy = await start_proxy()
    c = await proxy.client()
    assert await c.closed_by_peer(timeout=2.0)
    await c.close()


async def test_slow_request_body_is_408(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    proxy, _ = await _proxy(start_proxy, echo)
    c = await proxy.client()
    c.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
    r = await c.response()
    assert r.status in (408, 504)  # whichever deadline the sweep sees first
    assert await c.closed_by_peer()
    await c.close()


async def test_client_leaving_mid_request_frees_the_backend_connection(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    proxy, web = await _proxy(start_proxy, echo)
    c = await proxy.client()
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\nx-echo: hang\r\n\r\n")
    for _ in range(100):
        if web.open:
            break
        await asyncio.sleep(0.01)
    assert web.open
    c.writer.transport.abort()
    for _ in range(100):
        if not web.open:
            break
        await asyncio.sleep(0.01)
    assert not web.open
    c2 = await Client.connect(proxy.http)
    assert (await c2.request("GET", "/")).status == 200
    await c2.close()


async def test_a_reused_connection_closed_by_the_backend_is_retried_once(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    proxy, web = await _proxy(start_proxy, echo)
    c = await proxy.client()
    for _ in range(3):
        r = await c.request("GET", "/", headers={"x-echo": "drop-reused"})
        assert r.status == 200  # the stale pooled connection was dropped, a new one used
    assert web.requests == 3
    assert web.connections == 3
    # A request with a body may have been processed: it is not sent again.
    r = await c.request("POST", "/", headers={"x-echo": "drop-reused"}, body=b"once")
    assert r.status == 502
    await c.close()


async def test_expect_100_continue_is_relayed(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    proxy, _ = await _proxy(start_proxy, echo)
    c = await proxy.client()
    c.send(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    interim = await c.response()
    assert interim.status == 100
    c.send(b"hello")
    r = await c.response()
    assert r.status == 200
    assert r.json()["size"] == 5
    await c.close()
