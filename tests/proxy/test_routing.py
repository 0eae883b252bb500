"""Routing over real loopback sockets: hosts, paths, defaults, 404/503, headers, keep-alive."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from tests.proxy.conftest import ProxyFactory, backend_objects
from tests.proxy.objects import backend, ingress, path, rule

pytestmark = pytest.mark.asyncio


async def test_routes_by_host_and_path(start_proxy: ProxyFactory, echo: Callable[..., Any]) -> None:
    api = await echo("api", "127.0.0.2")
    web = await echo("web", "127.0.0.3")
    proxy = await start_proxy()
    proxy.load(
        ingress("shop", rule("app.example.com", path("/api", "api"), path("/", "web"))),
        *backend_objects("api", [api]),
        *backend_objects("web", [web]),
    )
    c = await proxy.client()
    r = await c.request("GET", "/api/items?x=1")
    assert r.status == 200
    assert r.json()["backend"] == "api"
    assert r.json()["target"] == "/api/items?x=1"
    r = await c.request("GET", "/apix")
    assert r.json()["backend"] == "web"
    r = await c.request("GET", "/", host="APP.example.com:8080")
    assert r.json()["backend"] == "web"
    r = await c.request("GET", "/", host="other.example.com")
    assert r.status == 404
    await c.close()


async def test_request_headers_as_forwarded(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    web = await echo("web")
    proxy = await start_proxy()
    proxy.load(ingress("i", rule(None, path("/", "web"))), *backend_objects("web", [web]))
    c = await proxy.client()
    r = await c.request(
        "GET",
        "/",
        host="App.Example.com:8443",
        headers={
            "X-Forwarded-For": "6.6.6.6",
            "X-Real-IP": "6.6.6.6",
            "Connection": "keep-alive, X-Secret",
            "X-Secret": "hop",
            "Keep-Alive": "timeout=1",
            "TE": "trailers",
            "X-App": "kept",
        },
    )
    seen = dict(r.json()["headers"])
    names = [k for k, _ in r.json()["headers"]]
    assert seen["host"] == "App.Example.com:8443"  # as received
    assert seen["x-forwarded-for"] == "127.0.0.1"  # the peer, not what the client claimed
    assert seen["x-real-ip"] == "127.0.0.1"
    assert seen["x-forwarded-host"] == "App.Example.com:8443"
    assert seen["x-forwarded-port"] == "8443"
    assert seen["x-forwarded-proto"] == "http"
    assert len(seen["x-request-id"]) == 32
    assert seen["x-app"] == "kept"
    for hop in ("connection", "x-secret", "keep-alive", "te"):
        assert hop not in names
    assert names.count("x-forwarded-for") == 1
    # response: hop-by-hop headers removed, our framing kept
    assert r.header("connection") is None
    assert r.header("x-hop") is None
    assert r.header("keep-alive") is None
    assert r.header("content-length") is not None
    r2 = await c.request("GET", "/", headers={"X-Request-ID": "abc"})
    assert dict(r2.json()["headers"])["x-request-id"] == "abc"
    await c.close()


async def test_keep_alive_on_both_sides(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    web = await echo("web")
    proxy = await start_proxy()
    proxy.load(ingress("i", rule(None, path("/", "web"))), *backend_objects("web", [web]))
    c = await proxy.client()
    for _ in range(20):
        r = await c.request("GET", "/")
        assert r.status == 200
    assert web.connections == 1  # one pooled upstream connection served all 20
    assert web.requests == 20
    await c.close()


async def test_round_robin_over_ready_endpoints(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    backends = [await echo(f"b{i}", f"127.0.0.{i + 2}") for i in range(3)]
    proxy = await start_proxy()
    proxy.load(ingress("i", rule(None, path("/", "svc"))), *backend_objects("svc", backends))
    c = await proxy.client()
    seen = [(await c.request("GET", "/")).json()["backend"] for _ in range(9)]
    assert sorted(seen) == sorted(["b0", "b1", "b2"] * 3)
    assert seen[:3] == seen[3:6] == seen[6:]  # a fixed rotation
    await c.close()


async def test_no_endpoint_is_503_and_no_route_is_404(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    proxy = await start_proxy()
    proxy.load(
        ingress(
            "i",
            rule("app.example.com", path("/missing", "ghost"), path("/empty", "empty")),
        ),
        *backend_objects("empty", []),
    )
    c = await proxy.client()
    assert (await c.request("GET", "/missing")).status == 503
    assert (await c.request("GET", "/empty")).status == 503
    r = await c.request("GET", "/nothing")
    assert r.status == 404
    assert not r.closed  # local answers keep the connection
    assert (await c.request("HEAD", "/nothing")).status == 404
    assert (await c.request("GET", "/empty")).status == 503
    await c.close()


async def test_default_backend(start_proxy: ProxyFactory, echo: Callable[..., Any]) -> None:
    web = await echo("web")
    fallback = await echo("fallback", "127.0.0.3")
    proxy = await start_proxy()
    proxy.load(
        ingress("site", rule("app.example.com", path("/", "web", path_type="Exact"))),
        ingress("catch", default=backend("fallback")),
        *backend_objects("web", [web]),
        *backend_objects("fallback", [fallback]),
    )
    c = await proxy.client()
    assert (await c.request("GET", "/")).json()["backend"] == "web"
    assert (await c.request("GET", "/x")).status == 404  # named host: no fall back
    r = await c.request("GET", "/x", host="unknown.example.com")
    assert r.json()["backend"] == "fallback"
    await c.close()


async def test_head_and_bodiless_responses(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    web = await echo("web")
    proxy = await start_proxy()
    proxy.load(ingress("i", rule(None, path("/", "web"))), *backend_objects("web", [web]))
    c = await proxy.client()
    r = await c.request("HEAD", "/")
    assert r.status == 200
    assert r.body == b""
    assert int(r.header("content-length") or 0) > 0
    for status in (204, 304):
        r = await c.request("GET", "/", headers={"x-echo": f"status:{status}"})
        assert r.status == status
    r = await c.request("GET", "/")  # the connection is still in step
    assert r.status == 200
    assert r.json()["method"] == "GET"
    await c.close()
