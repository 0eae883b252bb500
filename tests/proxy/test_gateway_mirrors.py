"""Request mirrors over loopback: each copy reaches its mirror backend with the rule's filters,
the body and the primary's request ID; and nothing a mirror backend does (refusing, never
answering, not reading a huge body) reaches the primary request or grows without bound."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from tests.proxy.backends import Client, ScriptedBackend
from tests.proxy.conftest import ProxyFactory, backend_objects
from tests.proxy.objects import endpoint, endpoint_slice, service, sport
from tests.proxy.test_gateway_traffic import free_port, gateway, load, route, to

from kexpose.proxy.dataplane import _mirror
from kexpose.proxy.dataplane._mirror import MirrorLimits, Mirrors
from kexpose.proxy.ops.metrics import Metrics, MetricsCollector

pytestmark = pytest.mark.asyncio

Obj = dict[str, Any]
#: A safety net for a broken proxy, not a measurement: each wait ends as soon as its event is in.
SAFETY_S = 10.0


def mirror(service_name: str, **share: Any) -> Obj:
    return {
        "type": "RequestMirror",
        "requestMirror": {"backendRef": {"name": service_name, "port": 80}, **share},
    }


class MirrorEndpoint(ScriptedBackend):
    """A mirror backend's endpoint. ``mode``: ``answer`` (read each request whole, keep it,
    answer 500 and close), ``slow`` (the same, reading in small steps with pauses),
    ``silent`` (read it, never answer), ``stall`` (never read)."""

    def __init__(self, mode: str = "answer") -> None:
        super().__init__()
        self.mode = mode
        self.requests: list[tuple[bytes, bytes]] = []
        """(head, body with the chunked framing removed) of each request read whole."""
        self.connections = 0
        self.arrived = asyncio.Event()
        self._release = asyncio.Event()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.arrived.set()
        try:
            if self.mode == "stall":
                await self._release.wait()
                return
            if self.mode == "slow":
                reader = await _slowly(reader)
            head = await reader.readuntil(b"\r\n\r\n")
            body = await _read_body(reader, head)
            self.requests.append((head, body))
            self.arrived.set()
            if self.mode == "silent":
                await self._release.wait()
                return
            writer.write(b"HTTP/1.1 500 X\r\ncontent-length: 4\r\nconnection: close\r\n\r\nnope")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.transport.abort()

    async def next_request(self) -> tuple[bytes, bytes]:
        async with asyncio.timeout(SAFETY_S):
            while not self.requests:
                self.arrived.clear()
                await self.arrived.wait()
        return self.requests.pop(0)

    async def stop(self) -> None:
        self._release.set()
        await super().stop()


async def _slowly(reader: asyncio.StreamReader) -> asyncio.StreamReader:
    """A reader fed from ``reader`` in 64 KiB steps with a pause after each (until the peer
    stops sending), so that the proxy's writes to this endpoint back up and wait."""
    relay = asyncio.StreamReader(limit=1 << 30)
    while True:
        try:
            async with asyncio.timeout(0.5):
                chunk = await reader.read(65536)
        except TimeoutError:
            break  # the whole request is in: the sender waits for an answer now
        if not chunk:
            break
        relay.feed_data(chunk)
        await asyncio.sleep(0.002)
    relay.feed_eof()
    return relay


async def _read_body(reader: asyncio.StreamReader, head: bytes) -> bytes:
    fields = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(b":") for line in head.split(b"\r\n")[1:] if line)
    }
    if b"content-length" in fields:
        return await reader.readexactly(int(fields[b"content-length"]))
    if fields.get(b"transfer-encoding") != b"chunked":
        return b""
    body = b""
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
        chunk = await reader.readexactly(size + 2)
        if not size:
            return body
        body += chunk[:-2]


def header(head: bytes, name: bytes) -> list[bytes]:
    found = []
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            found.append(value.strip())
    return found


def shadow(name: str, port: int) -> list[Obj]:
    return [
        service(name, sport(80, "http", name="http")),
        endpoint_slice(name, [endpoint("127.0.0.2")], [("http", port)]),
    ]


async def serve_gateway(start_proxy: ProxyFactory, *objs: Obj) -> tuple[Any, tuple[str, int]]:
    proxy = await start_proxy()
    port = free_port()
    table = await load(
        proxy, gateway("gw", {"name": "http", "port": port, "protocol": "HTTP"}), *objs
    )
    found = next(g for g in table.gateway.gateways if g.name == "gw")
    assert found.addresses, found.conditions
    return proxy, (found.addresses[0], port)


@contextlib.asynccontextmanager
async def mirrored(
    start_proxy: ProxyFactory, echo: Callable[..., Any], mode: str = "answer", **share: Any
) -> AsyncIterator[tuple[Any, tuple[str, int], MirrorEndpoint]]:
    """A Gateway whose one route sends its requests to the echo backend ``web`` and mirrors
    them (``share``: the filter's percent or fraction) to a ``MirrorEndpoint(mode)``: the
    proxy, the listener's address and the mirror endpoint, stopped on the way out."""
    web = await echo("web")
    copy_to = await MirrorEndpoint(mode).start()
    try:
        proxy, addr = await serve_gateway(
            start_proxy,
            route("r", {"filters": [mirror("shadow", **share)], "backendRefs": [to("web")]}),
            *backend_objects("web", [web]),
            *shadow("shadow", copy_to.port),
        )
        yield proxy, addr, copy_to
    finally:
        await copy_to.stop()


async def until(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(SAFETY_S):
        while not check():
            await asyncio.sleep(0.01)


def draws(monkeypatch: pytest.MonkeyPatch, *values: float) -> None:
    """The mirror sampling's random draws, in this order."""
    queue = list(values)
    monkeypatch.setattr(_mirror, "random", lambda: queue.pop(0))


@pytest.mark.parametrize("chunked", [False, True])
async def test_the_copy_carries_the_rule_filters_the_body_and_the_request_id(
    start_proxy: ProxyFactory, echo: Callable[..., Any], chunked: bool
) -> None:
    web = await echo("web")
    copy_to = await MirrorEndpoint().start()
    try:
        _, addr = await serve_gateway(
            start_proxy,
            route(
                "r",
                {
                    "filters": [
                        {
                            "type": "RequestHeaderModifier",
                            "requestHeaderModifier": {
                                "set": [{"name": "X-Set", "value": "yes"}],
                                "remove": ["X-Gone"],
                            },
                        },
                        mirror("shadow"),
                    ],
                    "backendRefs": [
                        {
                            **to("web"),
                            "filters": [
                                {
                                    "type": "RequestHeaderModifier",
                                    "requestHeaderModifier": {
                                        "set": [{"name": "X-Primary-Only", "value": "1"}]
                                    },
                                }
                            ],
                        }
                    ],
                },
            ),
            *backend_objects("web", [web]),
            *shadow("shadow", copy_to.port),
        )
        body = bytes(range(256)) * 400
        c = await Client.connect(addr)
        if chunked:
            c.send(
                b"POST /m?q=1 HTTP/1.1\r\nHost: example.com\r\nX-Gone: 1\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
                + b"%x\r\n%b\r\n" % (len(body) // 2, body[: len(body) // 2])
                + b"%x\r\n%b\r\n0\r\n\r\n" % (len(body) - len(body) // 2, body[len(body) // 2 :])
            )
            r = await c.response()
        else:
            r = await c.request(
                "POST", "/m?q=1", host="example.com", headers={"X-Gone": "1"}, body=body
            )
        await c.close()
        assert r.status == 200  # the primary's answer, not the mirror's 500
        primary = dict(r.json()["headers"])
        assert primary["x-primary-only"] == "1"
        assert r.json()["size"] == len(body)

        head, copied = await copy_to.next_request()
        assert head.startswith(b"POST /m?q=1 HTTP/1.1\r\n")
        assert copied == body
        assert header(head, b"host") == [b"example.com"]  # the client's Host, unchanged
        assert header(head, b"x-set") == [b"yes"]
        assert header(head, b"x-gone") == []
        assert header(head, b"x-primary-only") == []  # the primary backend's own filter
        assert header(head, b"x-request-id") == [primary["x-request-id"].encode()]
        assert header(head, b"connection") == [b"close"]
    finally:
        await copy_to.stop()


async def test_every_mirror_filter_gets_its_copy(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    web = await echo("web")
    first, second = await MirrorEndpoint().start(), await MirrorEndpoint().start()
    try:
        _, addr = await serve_gateway(
            start_proxy,
            route(
                "r",
                {
                    "filters": [mirror("one"), mirror("two")],
                    "backendRefs": [to("web")],
                },
            ),
            *backend_objects("web", [web]),
            *shadow("one", first.port),
            *shadow("two", second.port),
        )
        c = await Client.connect(addr)
        r = await c.request("GET", "/both", host="example.com")
        await c.close()
        assert r.status == 200
        for endpoint_ in (first, second):
            head, _ = await endpoint_.next_request()
            assert head.startswith(b"GET /both HTTP/1.1\r\n")
    finally:
        await first.stop()
        await second.stop()


@pytest.mark.parametrize(
    ("share", "draw_values", "copies"),
    [
        ({"percent": 50}, (0.2, 0.7, 0.49), 2),
        ({"fraction": {"numerator": 1, "denominator": 4}}, (0.3, 0.24, 0.9), 1),
        ({}, (), 3),  # neither: every request, no draw at all
    ],
)
async def test_percentage_mirrors_sample_requests(
    start_proxy: ProxyFactory,
    echo: Callable[..., Any],
    share: Obj,
    draw_values: tuple[float, ...],
    copies: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with mirrored(start_proxy, echo, **share) as (proxy, addr, copy_to):
        draws(monkeypatch, *draw_values)
        c = await Client.connect(addr)
        for _ in range(3):
            assert (await c.request("GET", "/p", host="example.com")).status == 200
        await c.close()
        await until(lambda: proxy.plane.mirrors.in_flight == 0)
        assert proxy.plane.mirrors.sent == copies
        assert copy_to.connections == copies


async def test_a_mirror_backend_that_refuses_does_not_touch_the_primary(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    web = await echo("web")
    refused = free_port()  # nothing listens there
    proxy, addr = await serve_gateway(
        start_proxy,
        route("r", {"filters": [mirror("shadow")], "backendRefs": [to("web")]}),
        *backend_objects("web", [web]),
        service("shadow", sport(80, "http", name="http")),
        endpoint_slice("shadow", [endpoint("127.77.0.1")], [("http", refused)]),
    )
    c = await Client.connect(addr)
    for _ in range(3):
        r = await c.request("POST", "/x", host="example.com", body=b"payload")
        assert r.status == 200
        assert r.json()["size"] == 7
    await c.close()
    await until(lambda: proxy.plane.mirrors.failed == 3)
    assert proxy.plane.mirrors.in_flight == 0
    text = exposition(proxy.plane.metrics)
    assert 'kexpose_proxy_mirror_requests_total{outcome="failed"} 3.0' in text
    assert 'kexpose_proxy_mirror_requests_total{outcome="sent"} 0.0' in text


def exposition(metrics: Metrics) -> str:
    """The Prometheus text ``/metrics`` would serve for ``metrics``."""
    registry = CollectorRegistry()
    registry.register(MetricsCollector(metrics.snapshot))
    return generate_latest(registry).decode()


async def test_silent_mirror_backends_hold_at_most_in_flight_copies(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    async with mirrored(start_proxy, echo, "silent") as (proxy, addr, silent):
        proxy.plane.mirrors = Mirrors(MirrorLimits(in_flight=2))
        c = await Client.connect(addr)
        for _ in range(5):
            assert (await c.request("GET", "/s", host="example.com")).status == 200
        await c.close()
        mirrors = proxy.plane.mirrors
        await until(lambda: len(silent.requests) == 2)
        assert (mirrors.in_flight, mirrors.dropped) == (2, 3)  # the other three not mirrored
        # What /metrics says of them: the same counters, from the data plane's own Mirrors.
        text = exposition(proxy.plane.metrics)
        assert 'kexpose_proxy_mirror_requests_total{outcome="dropped"} 3.0' in text
        assert "kexpose_proxy_mirror_requests_in_flight 2.0" in text


async def test_a_silent_mirror_backend_frees_its_slot_at_the_deadline(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    async with mirrored(start_proxy, echo, "silent") as (proxy, addr, _):
        proxy.plane.mirrors = mirrors = Mirrors(MirrorLimits(deadline=0.2))
        c = await Client.connect(addr)
        assert (await c.request("GET", "/s", host="example.com")).status == 200
        await c.close()
        await until(lambda: mirrors.in_flight == 0)
        assert (mirrors.sent, mirrors.failed) == (1, 1)  # sent whole, then timed out


async def test_a_huge_body_to_a_mirror_that_does_not_read_is_cut_off_not_buffered(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    async with mirrored(start_proxy, echo, "stall") as (proxy, addr, _):
        limit = 256 << 10
        proxy.plane.mirrors = mirrors = Mirrors(MirrorLimits(buffered=limit))
        # Far more than the limit plus what loopback sockets hold (a few MiB each way).
        body = b"x" * (48 << 20)
        c = await Client.connect(addr)
        c.send(b"POST /big HTTP/1.1\r\nHost: example.com\r\nContent-Length: %d\r\n\r\n" % len(body))
        c.send(body)
        r = await c.response(timeout=60.0)
        await c.close()
        assert r.status == 200
        assert r.json()["size"] == len(body)  # the primary got all of it
        await until(lambda: mirrors.in_flight == 0)
        assert mirrors.dropped == 1
        assert mirrors.sent == 0


async def test_a_client_gone_mid_body_abandons_its_copy(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    async with mirrored(start_proxy, echo) as (proxy, addr, copy_to):
        c = await Client.connect(addr)
        c.send(b"POST /cut HTTP/1.1\r\nHost: example.com\r\nContent-Length: 1000\r\n\r\nhalf")
        await until(lambda: copy_to.connections == 1)
        c.writer.transport.abort()
        mirrors = proxy.plane.mirrors
        await until(lambda: mirrors.in_flight == 0)
        assert (mirrors.dropped, mirrors.sent) == (1, 0)
        assert copy_to.requests == []  # never a whole request


async def test_an_upgrade_request_is_not_mirrored(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    async with mirrored(start_proxy, echo) as (proxy, addr, copy_to):
        c = await Client.connect(addr)
        r = await c.request(
            "GET",
            "/ws",
            host="example.com",
            headers={"Connection": "upgrade", "Upgrade": "websocket", "x-echo": "ws"},
        )
        assert r.status == 101
        await c.close()
        assert proxy.plane.mirrors.in_flight == 0
        assert copy_to.connections == 0


async def test_a_request_without_host_gets_a_host_on_its_copy_too(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    async with mirrored(start_proxy, echo) as (_, addr, copy_to):
        c = await Client.connect(addr)
        c.send(b"GET /old HTTP/1.0\r\n\r\n")
        r = await c.response()
        await c.close()
        assert r.status == 200
        assert dict(r.json()["headers"])["host"] == "127.0.0.2"
        head, _ = await copy_to.next_request()
        assert header(head, b"host") == [b"127.0.0.2"]  # a valid HTTP/1.1 request


async def test_a_slow_mirror_backend_still_gets_the_whole_body(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    # The end of the body arrives while the copy waits for its endpoint to read: it must still
    # be sent (and the request completed), not wait for a wake-up that never comes.
    async with mirrored(start_proxy, echo, "slow") as (proxy, addr, slow):
        proxy.plane.mirrors = mirrors = Mirrors(MirrorLimits(buffered=64 << 20))
        body = bytes(range(256)) * (64 << 10)  # 16 MiB: more than loopback sockets hold
        c = await Client.connect(addr)
        r = await c.request("POST", "/slow", host="example.com", body=body)
        await c.close()
        assert r.status == 200
        _, copied = await slow.next_request()
        assert copied == body
        await until(lambda: mirrors.in_flight == 0)
        assert (mirrors.sent, mirrors.dropped, mirrors.failed) == (1, 0, 0)
