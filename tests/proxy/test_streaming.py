"""Bodies both ways, chunked framing, pipelining and WebSocket upgrades, over loopback."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from tests.proxy.conftest import Proxy, ProxyFactory, backend_objects
from tests.proxy.objects import ingress, path, rule

pytestmark = pytest.mark.asyncio


async def _proxy(start_proxy: ProxyFactory, echo: Callable[..., Any]) -> tuple[Proxy, Any]:
    web = await echo("web")
    proxy = await start_proxy()
    proxy.load(ingress("i", rule(None, path("/", "web"))), *backend_objects("web", [web]))
    return proxy, web


async def test_large_request_body_streams_through(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    proxy, _ = await _proxy(start_proxy, echo)
    body = bytes(range(256)) * (32 * 1024)  # 8 MiB, far above every buffer
    c = await proxy.client()
    r = await c.request("POST", "/upload", body=body)
    assert r.status == 200
    assert r.json()["size"] == len(body)
    assert r.json()["sha256"] == hashlib.sha256(body).hexdigest()
    await c.close()


async def test_large_response_body_streams_through(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    proxy, _ = await _proxy(start_proxy, echo)
    c = await proxy.client()
    size = 16 * 1024 * 1024
    r = await c.request("GET", "/", headers={"x-echo": f"stream:{size}"})
    assert r.status == 200
    assert len(r.body) == size
    assert r.header("transfer-encoding") == "chunked"
    # the proxy never held the whole body: its per-connection buffers stay bounded
    assert (await c.request("GET", "/")).status == 200
    await c.close()


async def test_chunked_request_is_rechunked(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    proxy, _ = await _proxy(start_proxy, echo)
    c = await proxy.client()
    c.send(
        b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    r = await c.response()
    info = r.json()
    assert info["size"] == 11
    assert info["sha256"] == hashlib.sha256(b"hello world").hexdigest()
    assert dict(info["headers"])["transfer-encoding"] == "chunked"
    assert "content-length" not in dict(info["headers"])
    await c.close()


async def test_chunked_response_to_http11_and_close_delimited_to_http10(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    proxy, _ = await _proxy(start_proxy, echo)
    c = await proxy.client()
    r = await c.request("GET", "/", headers={"x-echo": "chunked"})
    assert r.header("transfer-encoding") == "chunked"
    assert r.json()["backend"] == "web"
    r = await c.request("GET", "/", headers={"x-echo": "close"})  # backend closes to end it
    assert r.header("transfer-encoding") == "chunked"
    assert r.json()["backend"] == "web"
    assert not r.closed
    await c.close()
    c = await proxy.client()
    c.send(b"GET / HTTP/1.0\r\nHost: a\r\nx-echo: chunked\r\n\r\n")
    r = await c.response()
    assert r.header("transfer-encoding") is None  # HTTP/1.0 knows no chunks
    assert r.json()["backend"] == "web"
    assert r.closed
    await c.close()


async def test_http10_keep_alive(start_proxy: ProxyFactory, echo: Callable[..., Any]) -> None:
    proxy, _ = await _proxy(start_proxy, echo)
    c = await proxy.client()
    for _ in range(2):
        c.send(b"GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n")
        r = await c.response()
        assert r.status == 200
        assert r.header("connection") == "keep-alive"
    c.send(b"GET / HTTP/1.0\r\n\r\n")  # no Host is fine in HTTP/1.0
    r = await c.response()
    assert r.status == 200
    assert r.header("connection") == "close"
    await c.close()


async def test_pipelined_requests_are_answered_in_order(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    proxy, _ = await _proxy(start_proxy, echo)
    c = await proxy.client()
    c.send(
        b"GET /1 HTTP/1.1\r\nHost: a\r\nx-echo: sleep:0.05\r\n\r\n"
        b"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /3 HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    targets = [(await c.response()).json()["target"] for _ in range(3)]
    assert targets == ["/1", "/2", "/3"]
    await c.close()


async def test_websocket_upgrade_is_a_tunnel(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    proxy, web = await _proxy(start_proxy, echo)
    c = await proxy.client()
    c.send(
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        b"x-echo: ws\r\n\r\nearly-bytes"
    )
    r = await c.response()
    assert r.status == 101
    assert (r.header("upgrade") or "").lower() == "websocket"
    assert (r.header("connection") or "").lower() == "upgrade"
    got = c.leftover
    while len(got) < len(b"early-bytes"):
        got += await c.reader.read(100)
    assert got == b"early-bytes"  # sent before the 101, delivered after it
    for message in (b"\x81\x05hello", b"x" * 200_000):
        c.send(message)
        echoed = b""
        while len(echoed) < len(message):
            echoed += await c.reader.read(65536)
        assert echoed == message
    await c.close()
    for _ in range(50):
        if not web.open:
            break
        await asyncio.sleep(0.01)
    assert not web.open  # closing one side closes the other


async def test_upgrade_declined_by_the_backend(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    proxy, _ = await _proxy(start_proxy, echo)
    c = await proxy.client()
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n")
    r = await c.response()
    assert r.status == 200
    assert dict(r.json()["headers"])["upgrade"] == "websocket"
    assert await c.closed_by_peer()
    await c.close()
