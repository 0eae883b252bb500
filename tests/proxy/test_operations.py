"""Operations: metrics, the access log, health and readiness, drain, balancing, reloads."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from tests.proxy.backends import Client
from tests.proxy.conftest import CLAIM, FAST, Pki, ProxyFactory, backend_objects
from tests.proxy.objects import ingress, ingress_class, path, rule, tls, tls_secret

from kexpose.proxy.control.static import StaticSource
from kexpose.proxy.dataplane.server import DataPlane
from kexpose.proxy.ops.access_log import AccessLog
from kexpose.proxy.ops.health import HealthServer
from kexpose.proxy.ops.metrics import MetricsCollector
from kexpose.proxy.routes import ObjectSet, RouteTable, build_table

pytestmark = pytest.mark.asyncio


async def test_metrics_count_requests_latency_and_upstream_errors(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    web = await echo("web")
    proxy = await start_proxy()
    proxy.load(
        ingress("shop", rule("app.example.com", path("/", "web"), path("/none", "empty"))),
        *backend_objects("web", [web]),
        *backend_objects("empty", []),
    )
    c = await proxy.client()
    for _ in range(3):
        assert (await c.request("GET", "/")).status == 200
    assert (await c.request("GET", "/none")).status == 503
    assert (await c.request("GET", "/", host="nowhere")).status == 404
    assert (await c.request("GET", "/", headers={"x-echo": "hang"})).status == 504
    await c.close()
    for _ in range(100):  # the proxy sees the close a moment later
        if not proxy.plane.connections:
            break
        await asyncio.sleep(0.01)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MetricsCollector(proxy.plane.metrics.snapshot))
    text = generate_latest(registry).decode()
    base = 'ingress="default/shop",service="default/web:80"'
    assert f'kexpose_proxy_requests_total{{{base},status="200"}} 3.0' in text
    assert f'kexpose_proxy_requests_total{{{base},status="504"}} 1.0' in text
    assert (
        'kexpose_proxy_requests_total{ingress="default/shop",service="default/empty:80",'
        'status="503"} 1.0'
    ) in text
    assert 'kexpose_proxy_requests_total{ingress="",service="",status="404"} 1.0' in text
    assert ('kexpose_proxy_request_duration_seconds_count{ingress="default/shop"} 5.0') in text
    assert (
        'kexpose_proxy_upstream_errors_total{ingress="default/shop",kind="read_timeout",'
        'service="default/web:80"} 1.0'
    ) in text
    assert "kexpose_proxy_active_connections 0.0" in text
    assert "kexpose_proxy_route_table_reloads_total 1.0" in text


async def test_access_log_lines(pki: Pki, echo: Callable[..., Any]) -> None:
    web = await echo("web")
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    plane = DataPlane(
        settings=replace(FAST, access_log=True),
        default_certificate=pki.pairs["default"],
        access_log=AccessLog(write_end),
    )
    try:
        bound = dict(await plane.listen(bind="127.0.0.1", http_port=0, https_port=None))
        objects, _ = ObjectSet.from_documents(
            [
                ingress_class(),
                ingress("i", rule("app.example.com", path("/", "web"))),
                *backend_objects("web", [web]),
            ]
        )
        plane.swap(build_table(objects, claim=CLAIM))
        c = await Client.connect(bound["http"])
        await c.request(
            "GET", '/a"b?c', headers={"User-Agent": 'agent "quoted"', "X-Request-ID": "rid-1"}
        )
        await c.request("GET", "/x", host="elsewhere.example.com")
        await c.close()
    finally:
        await plane.close()
        os.close(write_end)
    lines = [json.loads(line) for line in os.read(read_end, 65536).decode().splitlines()]
    os.close(read_end)
    first, second = lines
    assert first["uri"] == '/a"b?c'
    assert first["user_agent"] == 'agent "quoted"'
    assert first["request_id"] == "rid-1"
    assert first["status"] == 200
    assert first["upstream"] == f"{web.host}:{web.port}"
    assert first["ingress"] == "default/i"
    assert first["service"] == "default/web:80"
    assert first["remote_addr"] == "127.0.0.1"
    assert first["duration"] >= 0
    assert second["status"] == 404
    assert second["upstream"] == ""


async def test_least_request_prefers_the_idle_endpoint(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    slow = await echo("slow", "127.0.0.2")
    fast = await echo("fast", "127.0.0.3")
    proxy = await start_proxy(replace(FAST, balance="least_request"))
    proxy.load(ingress("i", rule(None, path("/", "svc"))), *backend_objects("svc", [slow, fast]))
    hang = await proxy.client()
    # Pin one request on "slow": it never answers, so "slow" has one request in flight.
    hang.send(b"GET / HTTP/1.1\r\nHost: a\r\nx-echo: sleep:0.4\r\n\r\n")
    for _ in range(100):
        if slow.open or fast.open:
            break
        await asyncio.sleep(0.01)
    busy = "slow" if slow.open else "fast"
    c = await proxy.client()
    seen = [(await c.request("GET", "/")).json()["backend"] for _ in range(6)]
    assert busy not in seen  # two choices, always the one with nothing in flight
    await c.close()
    await hang.response()
    await hang.close()


async def test_health_and_readiness(pki: Pki) -> None:
    ready = False
    registry = CollectorRegistry(auto_describe=False)
    health = HealthServer(ready=lambda: ready, registry=registry)
    host, port = await health.listen(bind="127.0.0.1", port=0)

    async def get(path: str, method: str = "GET") -> int:
        c = await Client.connect((host, port))
        r = await c.request(method, path, host="x")
        await c.close()
        return r.status

    try:
        assert await get("/healthz") == 200
        assert await get("/readyz") == 503
        ready = True
        assert await get("/readyz") == 200
        assert await get("/metrics") == 200
        assert await get("/elsewhere") == 404
        assert await get("/healthz", "POST") == 405
    finally:
        await health.close()


async def test_drain_finishes_in_flight_requests(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    web = await echo("web")
    proxy = await start_proxy()
    proxy.load(ingress("i", rule(None, path("/", "web"))), *backend_objects("web", [web]))
    busy = await proxy.client()
    idle = await proxy.client()
    assert (await idle.request("GET", "/")).status == 200
    busy.send(b"GET / HTTP/1.1\r\nHost: a\r\nx-echo: sleep:0.3\r\n\r\n")
    for _ in range(100):
        if web.requests or (web.open and len(web.open) >= 2):
            break
        await asyncio.sleep(0.01)
    drain = asyncio.create_task(proxy.plane.drain(timeout=2.0))
    assert await idle.closed_by_peer()  # idle keep-alive connections close at once
    r = await busy.response()
    assert r.status == 200  # the in-flight one finishes ...
    assert r.header("connection") == "close"  # ... and is told the connection ends
    assert await drain == 0
    with pytest.raises(ConnectionRefusedError):
        await Client.connect(proxy.http)  # no longer accepting
    await busy.close()
    await idle.close()


async def test_drain_cuts_what_does_not_finish(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    web = await echo("web")
    proxy = await start_proxy(replace(FAST, timeouts=replace(FAST.timeouts, upstream_read=5.0)))
    proxy.load(ingress("i", rule(None, path("/", "web"))), *backend_objects("web", [web]))
    c = await proxy.client()
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\nx-echo: hang\r\n\r\n")
    for _ in range(100):
        if web.open:
            break
        await asyncio.sleep(0.01)
    assert await proxy.plane.drain(timeout=0.1) == 1
    assert await c.closed_by_peer()
    await c.close()


async def test_certificates_follow_the_table(
    start_proxy: ProxyFactory, echo: Callable[..., Any], pki: Pki
) -> None:
    web = await echo("web")
    proxy = await start_proxy()
    routes = [
        ingress(
            "i", rule("app.example.com", path("/", "web")), tls=[tls("cert", "app.example.com")]
        ),
        *backend_objects("web", [web]),
    ]
    proxy.load(*routes)  # the Secret does not exist yet: default certificate
    with pytest.raises(ssl.SSLCertVerificationError):
        await proxy.client(tls=pki.client_context(), sni="app.example.com")
    proxy.load(*routes, tls_secret("cert", pki.pairs["app"]))
    c = await proxy.client(tls=pki.client_context(), sni="app.example.com")
    assert (await c.request("GET", "/")).status == 200
    await c.close()
    assert len(proxy.plane.tls.contexts) == 1


async def test_static_source_reloads_on_change_and_keeps_routes_on_bad_yaml(
    tmp_path: Path,
) -> None:
    tables: list[RouteTable] = []
    sleeps: list[float] = []
    step = asyncio.Event()

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await step.wait()
        step.clear()

    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "a.yaml").write_text(
        yaml.safe_dump_all([ingress_class(), ingress("a", rule("a.example.com", path("/", "web")))])
    )
    source = StaticSource(folder, claim=CLAIM, on_table=tables.append, sleep=sleep)
    task = asyncio.create_task(source.run())
    try:
        for _ in range(20):
            await asyncio.sleep(0)
        assert set(tables[-1].hosts) == {"a.example.com"}
        (folder / "b.yml").write_text(
            yaml.safe_dump(ingress("b", rule("b.example.com", path("/", "web"))))
        )
        step.set()
        for _ in range(20):
            await asyncio.sleep(0)
        assert set(tables[-1].hosts) == {"a.example.com", "b.example.com"}
        (folder / "b.yml").write_text("kind: [broken\n")
        step.set()
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(tables) == 2  # the broken file changed nothing
        assert set(tables[-1].hosts) == {"a.example.com", "b.example.com"}
        assert sleeps
        assert all(s == 1.0 for s in sleeps)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
