"""Gateway API traffic over loopback: Gateways get their own addresses from a pool, HTTPRoutes
route by host, path, headers and query, and filters, weights, timeouts and TLS listeners act on
real requests."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Callable
from typing import Any

import pytest
from tests.proxy.backends import Client, ScriptedBackend
from tests.proxy.conftest import Pki, Proxy, ProxyFactory, backend_objects
from tests.proxy.objects import tls_secret

from kexpose.defaults import CONTROLLER_NAME
from kexpose.proxy.routes import Claim, ObjectSet, RouteTable, build_table

pytestmark = pytest.mark.asyncio

GROUP = "gateway.networking.k8s.io"
CONTROLLER = "kexpose.dev/gateway-controller"
POOL = ipaddress.ip_network("127.77.0.0/24")
CLAIM = Claim(
    CONTROLLER_NAME, ingress_class="kexpose", gateway_controller=CONTROLLER, gateway_pool=POOL
)
Obj = dict[str, Any]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.77.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def gateway(name: str, *listeners: Obj) -> Obj:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"gatewayClassName": "kexpose", "listeners": list(listeners)},
    }


def route(name: str, *rules: Obj, parent: str = "gw", **spec: Any) -> Obj:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "parentRefs": [{"name": parent, **spec.pop("ref", {})}],
            "rules": list(rules),
            **spec,
        },
    }


def to(service: str, *, weight: int = 1) -> Obj:
    return {"name": service, "port": 80, "weight": weight}


GATEWAY_CLASS = {
    "apiVersion": f"{GROUP}/v1",
    "kind": "GatewayClass",
    "metadata": {"name": "kexpose"},
    "spec": {"controllerName": CONTROLLER},
}


async def load(proxy: Proxy, *objs: Obj) -> RouteTable:
    objects, problems = ObjectSet.from_documents([GATEWAY_CLASS, *objs])
    assert not problems
    table = build_table(objects, claim=CLAIM)
    proxy.plane.swap(table)
    await proxy.plane.gateway_ports_ready()
    return table


def address(table: RouteTable, gateway: str = "gw") -> str:
    found = next(g for g in table.gateway.gateways if g.name == gateway)
    assert found.addresses, found.conditions
    return found.addresses[0]


async def one_gateway(start_proxy: ProxyFactory, *objs: Obj) -> tuple[str, int]:
    """A proxy serving the Gateway ``gw`` (one HTTP listener) with ``objs`` (routes, backends);
    returns the address and port that listener is reached at."""
    proxy: Proxy = await start_proxy()
    port = free_port()
    listener = {"name": "http", "port": port, "protocol": "HTTP"}
    table = await load(proxy, gateway("gw", listener), *objs)
    return address(table), port


async def get(
    addr: tuple[str, int],
    target: str = "/",
    *,
    host: str = "example.com",
    headers: dict[str, str] | None = None,
    tls: ssl.SSLContext | None = None,
    sni: str | None = None,
) -> Any:
    c = await Client.connect(addr, tls=tls, sni=sni)
    try:
        return await c.request("GET", target, host=host, headers=headers)
    finally:
        await c.close()


async def test_routes_by_path_header_and_query_with_filters(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    web, api = await echo("web"), await echo("api")
    addr = await one_gateway(
        start_proxy,
        route(
            "r",
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "backendRefs": [to("web")],
            },
            {
                "matches": [
                    {
                        "path": {"type": "PathPrefix", "value": "/api"},
                        "headers": [{"name": "version", "value": "two"}],
                        "queryParams": [{"name": "debug", "value": "1"}],
                    }
                ],
                "filters": [
                    {
                        "type": "RequestHeaderModifier",
                        "requestHeaderModifier": {
                            "set": [{"name": "X-Set", "value": "set"}],
                            "add": [{"name": "X-Added", "value": "added"}],
                            "remove": ["X-Drop"],
                        },
                    },
                    {
                        "type": "ResponseHeaderModifier",
                        "responseHeaderModifier": {"set": [{"name": "X-Response", "value": "yes"}]},
                    },
                ],
                "backendRefs": [to("api")],
            },
        ),
        *backend_objects("web", [web]),
        *backend_objects("api", [api]),
    )
    r = await get(addr, "/api/x?debug=1", headers={"Version": "two", "X-Drop": "1", "X-Set": "old"})
    assert r.status == 200
    info = r.json()
    assert info["backend"] == "api"
    headers = dict(info["headers"])
    assert headers["x-set"] == "set"
    assert headers["x-added"] == "added"
    assert "x-drop" not in headers
    assert headers["host"] == "example.com"  # forwarded unmodified (HTTPRouteSpec.hostnames)
    assert r.header("x-response") == "yes"
    # Without the query parameter (or the header), the longer match does not apply.
    assert (await get(addr, "/api/x", headers={"Version": "two"})).json()["backend"] == "web"
    assert (await get(addr, "/api/x?debug=1")).json()["backend"] == "web"


async def test_redirects_rewrites_and_invalid_backends(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    web = await echo("web")
    addr = await one_gateway(
        start_proxy,
        route(
            "r",
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/old"}}],
                "filters": [
                    {
                        "type": "RequestRedirect",
                        "requestRedirect": {
                            "scheme": "https",
                            "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/new"},
                            "statusCode": 301,
                        },
                    }
                ],
            },
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/prefix/one"}}],
                "filters": [
                    {
                        "type": "URLRewrite",
                        "urlRewrite": {
                            "hostname": "rewritten.example.com",
                            "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/one"},
                        },
                    }
                ],
                "backendRefs": [to("web")],
            },
            {
                "matches": [{"path": {"type": "Exact", "value": "/missing"}}],
                "backendRefs": [to("nope")],
            },
            {
                "matches": [{"path": {"type": "Exact", "value": "/zero"}}],
                "backendRefs": [to("web", weight=0)],
            },
        ),
        *backend_objects("web", [web]),
    )
    r = await get(addr, "/old/path?q=1")
    assert r.status == 301
    assert r.header("location") == "https://example.com/new/path?q=1"
    r = await get(addr, "/prefix/one/two?x=y")
    info = r.json()
    assert info["target"] == "/one/two?x=y"
    assert dict(info["headers"])["host"] == "rewritten.example.com"
    assert (await get(addr, "/missing")).status == 500
    assert (await get(addr, "/zero")).status == 500
    assert (await get(addr, "/elsewhere")).status == 404
    assert web.requests == 1


async def test_each_gateway_has_its_own_address_and_listeners_are_isolated(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    a, b, foo = await echo("a"), await echo("b"), await echo("foo")
    proxy: Proxy = await start_proxy()
    port = free_port()
    table = await load(
        proxy,
        gateway("gw", {"name": "http", "port": port, "protocol": "HTTP"}),
        gateway(
            "other",
            {"name": "wild", "port": port, "protocol": "HTTP", "hostname": "*.example.com"},
            {"name": "foo", "port": port, "protocol": "HTTP", "hostname": "foo.example.com"},
        ),
        route("ra", {"backendRefs": [to("a")]}),
        route("rb", {"backendRefs": [to("b")]}, parent="other", ref={"sectionName": "wild"}),
        route("rfoo", {"backendRefs": [to("foo")]}, parent="other", ref={"sectionName": "foo"}),
        *backend_objects("a", [a]),
        *backend_objects("b", [b]),
        *backend_objects("foo", [foo]),
    )
    first, second = address(table, "gw"), address(table, "other")
    assert first != second  # both on the same port, so each needs an address of its own
    assert (await get((first, port), host="foo.example.com")).json()["backend"] == "a"
    assert (await get((second, port), host="bar.example.com")).json()["backend"] == "b"
    # foo.example.com belongs to the listener with that exact hostname, never to *.example.com.
    assert (await get((second, port), host="foo.example.com")).json()["backend"] == "foo"
    assert (await get((second, port), host="example.org")).status == 404  # no listener
    # A Gateway that goes away stops listening.
    await load(proxy, gateway("gw", {"name": "http", "port": port, "protocol": "HTTP"}))
    with pytest.raises(ConnectionRefusedError):
        await get((second, port), host="bar.example.com")


async def test_https_listeners_pick_certificates_and_refuse_misdirected_requests(
    start_proxy: ProxyFactory, echo: Callable[..., Any], pki: Pki
) -> None:
    web = await echo("web")
    proxy: Proxy = await start_proxy()
    port = free_port()

    def https(name: str, host: str, secret: str) -> Obj:
        return {
            "name": name,
            "port": port,
            "protocol": "HTTPS",
            "hostname": host,
            "tls": {"certificateRefs": [{"name": secret}]},
        }

    table = await load(
        proxy,
        gateway(
            "gw",
            https("app", "app.example.com", "app-tls"),
            https("wild", "*.wild.example.com", "wild-tls"),
        ),
        route("r", {"backendRefs": [to("web")]}),
        tls_secret("app-tls", pki.pairs["app"]),
        tls_secret("wild-tls", pki.pairs["wild"]),
        *backend_objects("web", [web]),
    )
    addr = (address(table), port)
    ctx = pki.client_context()
    r = await get(addr, host="app.example.com", tls=ctx, sni="app.example.com")
    assert r.status == 200
    assert dict(r.json()["headers"])["x-forwarded-proto"] == "https"
    assert (
        await get(addr, host="x.wild.example.com", tls=ctx, sni="x.wild.example.com")
    ).status == 200
    # The handshake chose the app listener; the Host belongs to the wildcard one: 421.
    r = await get(addr, host="x.wild.example.com", tls=ctx, sni="app.example.com")
    assert r.status == 421


async def test_a_request_timeout_answers_504(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    web = await echo("web")
    addr = await one_gateway(
        start_proxy,
        route("r", {"backendRefs": [to("web")], "timeouts": {"request": "200ms"}}),
        *backend_objects("web", [web]),
    )
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    r = await get(addr, headers={"x-echo": "sleep:0.4"})
    assert r.status == 504
    assert loop.time() - t0 < 0.39  # the route's 200 ms, not the backend's 400 ms
    assert (await get(addr)).status == 200


async def test_weights_split_traffic(start_proxy: ProxyFactory, echo: Callable[..., Any]) -> None:
    v1, v2 = await echo("v1"), await echo("v2")
    addr = await one_gateway(
        start_proxy,
        route("r", {"backendRefs": [to("v1", weight=3), to("v2", weight=1)]}),
        *backend_objects("v1", [v1]),
        *backend_objects("v2", [v2]),
    )
    c = await Client.connect(addr)
    seen = {"v1": 0, "v2": 0}
    for _ in range(200):
        seen[(await c.request("GET", "/")).json()["backend"]] += 1
    await c.close()
    # 3:1 over 200 draws: v2 expects 50 (sd ~6); far outside this range means no weighting.
    assert 20 <= seen["v2"] <= 85, seen


async def test_cors_preflights_are_answered_and_responses_carry_the_headers(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    web = await echo("web")
    addr = await one_gateway(
        start_proxy,
        route(
            "r",
            {
                "filters": [
                    {
                        "type": "CORS",
                        "cors": {
                            "allowOrigins": ["https://www.foo.com", "https://*.bar.com"],
                            "allowMethods": ["GET", "OPTIONS"],
                            "allowHeaders": ["x-header-1"],
                            "exposeHeaders": ["x-header-3"],
                            "allowCredentials": True,
                            "maxAge": 3600,
                        },
                    }
                ],
                "backendRefs": [to("web")],
            },
        ),
        *backend_objects("web", [web]),
    )
    c = await Client.connect(addr)
    r = await c.request(
        "OPTIONS",
        "/x",
        host="example.com",
        headers={
            "Origin": "https://a.bar.com",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-header-1",
        },
    )
    assert r.status == 200
    assert r.header("access-control-allow-origin") == "https://a.bar.com"
    assert r.header("access-control-allow-methods") == "GET, OPTIONS"
    assert r.header("access-control-allow-headers") == "x-header-1"
    assert r.header("access-control-max-age") == "3600"
    assert r.header("access-control-allow-credentials") == "true"
    assert web.requests == 0  # the preflight never reached the backend
    r = await c.request("GET", "/x", host="example.com", headers={"Origin": "https://www.foo.com"})
    assert r.status == 200
    assert r.header("access-control-allow-origin") == "https://www.foo.com"
    assert r.header("access-control-expose-headers") == "x-header-3"
    r = await c.request("GET", "/x", host="example.com", headers={"Origin": "https://evil.test"})
    assert r.status == 200
    assert r.header("access-control-allow-origin") is None
    r = await c.request(
        "OPTIONS",
        "/x",
        host="example.com",
        headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "GET"},
    )
    assert r.header("access-control-allow-origin") is None
    await c.close()


class Flaky(ScriptedBackend):
    """An endpoint that fails its first ``failures`` requests (with ``status``, or by resetting
    the connection when ``status`` is 0), then answers 200."""

    def __init__(self, failures: int, status: int) -> None:
        super().__init__()
        self.failures = failures
        self.status = status
        self.requests = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                self.requests += 1
                if self.requests <= self.failures and self.status == 0:
                    writer.transport.abort()  # a reset, as echo-basic's retry handler
                    return
                code = self.status if self.requests <= self.failures else 200
                writer.write(b"HTTP/1.1 %d X\r\nContent-Length: 2\r\n\r\nok" % code)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        writer.close()


@pytest.mark.parametrize(
    ("failures", "status", "attempts", "answer", "tries"),
    [
        (2, 500, 3, 200, 3),  # two retries, then the backend recovers
        (4, 500, 3, 500, 4),  # the budget runs out: the last answer is the client's
        (2, 503, 3, 503, 1),  # 503 is not in codes: no retry
        (1, 0, 2, 200, 2),  # a reset connection counts as a 502
    ],
)
async def test_route_retries(
    start_proxy: ProxyFactory, failures: int, status: int, attempts: int, answer: int, tries: int
) -> None:
    from tests.proxy.objects import endpoint, endpoint_slice, service, sport

    flaky = await Flaky(failures, status).start()
    try:
        addr = await one_gateway(
            start_proxy,
            route(
                "r",
                {
                    "backendRefs": [to("flaky")],
                    "retry": {"codes": [500, 502], "attempts": attempts},
                },
            ),
            service("flaky", sport(80, "http", name="http")),
            endpoint_slice("flaky", [endpoint("127.0.0.2")], [("http", flaky.port)]),
        )
        r = await get(addr)
        assert r.status == answer
        assert flaky.requests == tries
    finally:
        await flaky.stop()
