"""gRPC clients (grpcio) through the proxy over HTTP/2 with prior knowledge, as gRPC clients with
insecure credentials connect: the proxy's own answers read as gRPC statuses."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import grpc
import pytest
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import StreamReset
from tests.proxy.conftest import FAST, Pki, Proxy, ProxyFactory
from tests.proxy.h2client import H2Client
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
from tests.proxy.test_gateway_traffic import one_gateway, route

from kexpose.proxy.dataplane._grpc import (
    grpc_local_response,
    grpc_status,
    grpc_timeout,
    is_grpc,
    trailers_only,
)

#: FAST's timeouts, with an upstream read timeout longer than the calls that wait on purpose.
SLOW = replace(FAST, timeouts=replace(FAST.timeouts, upstream_read=10.0))


def _call(target: str, method: str, *, authority: str, timeout: float = 5.0) -> grpc.RpcError:
    options = [("grpc.default_authority", authority), ("grpc.enable_retries", 0)]
    with grpc.insecure_channel(target, options=options) as channel:
        call = channel.unary_unary(method)
        try:
            call(b"\x00\x00\x00\x00\x00", timeout=timeout)
        except grpc.RpcError as exc:
            return exc
    raise AssertionError("the call succeeded")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.2", 0))
        return int(s.getsockname()[1])


@pytest.mark.asyncio
async def test_unreachable_backend_is_unavailable(start_proxy: ProxyFactory) -> None:
    proxy: Proxy = await start_proxy()
    proxy.load(
        ingress("g", rule("grpc.example.com", path("/", "gone"))),
        service("gone", sport(80, "http", name="http")),
        endpoint_slice("gone", [endpoint("127.0.0.2")], [("http", _closed_port())]),
    )
    target = f"{proxy.http[0]}:{proxy.http[1]}"
    err: Any = await asyncio.to_thread(
        _call, target, "/kexpose.Test/Unary", authority="grpc.example.com"
    )
    # Not "UNKNOWN: unexpected HTTP status 502": a status clients retry and fail over on.
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    assert "connect 127.0.0.2" in err.details()


@pytest.mark.asyncio
async def test_no_route_is_unimplemented(start_proxy: ProxyFactory) -> None:
    proxy: Proxy = await start_proxy()
    proxy.load(ingress("g", rule("grpc.example.com", path("/other", "gone"))))
    target = f"{proxy.http[0]}:{proxy.http[1]}"
    err: Any = await asyncio.to_thread(
        _call, target, "/kexpose.Test/Unary", authority="grpc.example.com"
    )
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED


TIMEOUTS = [
    (b"1S", 1.0),
    (b"100m", 0.1),
    (b"2M", 120.0),
    (b"1H", 3600.0),
    (b"5u", 5e-6),
    (b"7n", 7e-9),
    (b"12345678S", 12345678.0),
    (b"123456789S", None),  # more than 8 digits
    (b"1s", None),  # units are case-sensitive
    (b"-1S", None),
    (b"S", None),
    (b"1.5S", None),
]


@pytest.mark.parametrize(("value", "seconds"), TIMEOUTS, ids=[v.decode() for v, _ in TIMEOUTS])
def test_grpc_timeout(value: bytes, seconds: float | None) -> None:
    got = grpc_timeout(value)
    assert got == pytest.approx(seconds) if seconds is not None else got is None


@pytest.mark.parametrize(
    ("http", "code"), [(404, 12), (502, 14), (503, 14), (504, 14), (401, 16), (403, 7), (500, 2)]
)
def test_local_answers_map_to_grpc_statuses(http: int, code: int) -> None:
    assert grpc_status(http) == code
    answer = grpc_local_response(http, "no 100% ünicode", close=False)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(
        b"\r\n0\r\ngrpc-status: %d\r\ngrpc-message: no 100%%25 %%C3%%BCnicode\r\n\r\n" % code
    )


_OK = (b":status", b"200")
_GRPC = (b"content-type", b"application/grpc")
_STATUS = [(b"grpc-status", b"14"), (b"grpc-message", b"down")]


@pytest.mark.parametrize(
    ("head", "trailers", "expected"),
    [
        ([_OK, _GRPC], _STATUS, True),  # every answer the proxy makes to a gRPC call
        ([_OK, (b"content-type", b"Application/GRPC+proto")], _STATUS, True),
        ([_OK, _GRPC], [(b"x-note", b"1")], False),  # no gRPC status: not a gRPC ending
        ([_OK, _GRPC, (b"x-meta", b"1")], _STATUS, False),  # metadata would become trailers
        ([(b":status", b"503"), _GRPC], _STATUS, False),
        ([_OK, (b"content-type", b"text/plain")], _STATUS, False),
        ([_OK], _STATUS, False),
    ],
)
def test_trailers_only_is_for_grpc_answers_without_metadata(
    head: list[tuple[bytes, bytes]], trailers: list[tuple[bytes, bytes]], expected: bool
) -> None:
    assert trailers_only(head, trailers) is expected


def test_grpc_is_told_by_content_type() -> None:
    assert is_grpc(b"\r\nhost: a\r\ncontent-type: application/grpc+proto")
    assert is_grpc(b"\r\nContent-Type:application/grpc")
    assert not is_grpc(b"\r\ncontent-type: application/json\r\nx-note: application/grpc")


# --- through the proxy to a grpcio backend over h2c --------------------------------------------


class _Backend:
    """A grpcio server with one generic service (raw bytes, no generated code)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.cancelled = threading.Event()
        self.metadata: dict[str, str] = {}
        handlers = {
            "Unary": grpc.unary_unary_rpc_method_handler(self.unary),
            "Server": grpc.unary_stream_rpc_method_handler(self.server_stream),
            "Client": grpc.stream_unary_rpc_method_handler(self.client_stream),
            "Bidi": grpc.stream_stream_rpc_method_handler(self.bidi),
            "Hang": grpc.unary_unary_rpc_method_handler(self.hang),
        }
        self.server = grpc.server(ThreadPoolExecutor(max_workers=8))
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("kexpose.Test", handlers),)
        )
        self.port = self.server.add_insecure_port("127.0.0.2:0")
        self.server.start()

    def unary(self, request: bytes, context: Any) -> bytes:
        if request == b"hello":
            self.metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        if request == b"fail":
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "asked to fail")
        return request[::-1]

    def server_stream(self, request: bytes, context: Any) -> Iterator[bytes]:
        for i in range(int(request)):
            yield b"%d" % i

    def client_stream(self, requests: Iterator[bytes], context: Any) -> bytes:
        return b"+".join(requests)

    def bidi(self, requests: Iterator[bytes], context: Any) -> Iterator[bytes]:
        for r in requests:
            yield r.upper()

    def hang(self, request: bytes, context: Any) -> bytes:
        context.add_callback(self.cancelled.set)
        self.entered.set()
        self.cancelled.wait(10)
        return b""


@pytest.fixture
def grpc_backend() -> Iterator[_Backend]:
    b = _Backend()
    yield b
    b.server.stop(None)


def _grpc_site(proxy: Proxy, backend: _Backend) -> str:
    proxy.load(
        ingress("g", rule("grpc.example.com", path("/", "svc", 50051))),
        service("svc", sport(50051, "grpc", name="grpc", app_protocol="kubernetes.io/h2c")),
        endpoint_slice("svc", [endpoint("127.0.0.2")], [("grpc", backend.port)]),
    )
    return f"{proxy.http[0]}:{proxy.http[1]}"


def _calls(target: str, backend: _Backend) -> dict[str, Any]:
    options = [("grpc.default_authority", "grpc.example.com"), ("grpc.enable_retries", 0)]
    out: dict[str, Any] = {}
    with grpc.insecure_channel(target, options=options) as ch:
        out["unary"] = ch.unary_unary("/kexpose.Test/Unary")(
            b"hello", timeout=5, metadata=[("x-who", "me")]
        )
        out["server"] = list(ch.unary_stream("/kexpose.Test/Server")(b"5", timeout=5))
        out["client"] = ch.stream_unary("/kexpose.Test/Client")(iter([b"a", b"b", b"c"]), timeout=5)
        out["bidi"] = list(ch.stream_stream("/kexpose.Test/Bidi")(iter([b"x", b"y"]), timeout=5))
        big = bytes(range(256)) * 4096  # 1 MiB each way: many flow-control windows
        out["big"] = ch.unary_unary("/kexpose.Test/Unary")(big, timeout=10) == big[::-1]
        try:
            ch.unary_unary("/kexpose.Test/Unary")(b"fail", timeout=5)
        except grpc.RpcError as exc:
            out["fail"] = (exc.code(), exc.details())
        try:
            ch.unary_unary("/kexpose.Test/Hang")(b"", timeout=1.0)
        except grpc.RpcError as exc:
            out["deadline"] = exc.code()
        out["deadline_reached_backend"] = backend.cancelled.wait(5)
        backend.cancelled.clear()
        backend.entered.clear()
        future = ch.unary_unary("/kexpose.Test/Hang").future(b"", timeout=10)
        out["cancel_call_arrived"] = backend.entered.wait(5)  # the backend has the call
        future.cancel()
        out["cancel_reached_backend"] = backend.cancelled.wait(5)
    return out


@pytest.mark.asyncio
async def test_grpc_calls_of_every_kind_over_h2c(
    start_proxy: ProxyFactory, grpc_backend: _Backend
) -> None:
    proxy: Proxy = await start_proxy(SLOW)
    target = _grpc_site(proxy, grpc_backend)
    out = await asyncio.to_thread(_calls, target, grpc_backend)
    assert out["unary"] == b"olleh"
    assert grpc_backend.metadata["x-who"] == "me"
    assert out["server"] == [b"0", b"1", b"2", b"3", b"4"]
    assert out["client"] == b"a+b+c"
    assert out["bidi"] == [b"X", b"Y"]
    assert out["big"]
    # grpc-status and grpc-message from the backend's trailers ("trailers-only" here).
    assert out["fail"] == (grpc.StatusCode.FAILED_PRECONDITION, "asked to fail")
    # grpc-timeout travels to the backend, whose deadline cancels the call there too.
    assert out["deadline"] == grpc.StatusCode.DEADLINE_EXCEEDED
    assert out["deadline_reached_backend"]
    # A client's RST_STREAM becomes the proxy's RST_STREAM to the backend.
    assert out["cancel_call_arrived"]
    assert out["cancel_reached_backend"]


def _unary(target: str, authority: str) -> bytes:
    options = [("grpc.default_authority", authority), ("grpc.enable_retries", 0)]
    with grpc.insecure_channel(target, options=options) as ch:
        reply: bytes = ch.unary_unary("/kexpose.Test/Unary")(b"gateway", timeout=5)
        return reply


@pytest.mark.asyncio
async def test_httproute_backend_with_h2c_app_protocol(
    start_proxy: ProxyFactory, grpc_backend: _Backend
) -> None:
    # HTTPRouteBackendProtocolH2C (GEP-1911): the Service port's appProtocol picks h2c.
    rule = {"backendRefs": [{"name": "svc", "port": 50051}]}
    addr, port = await one_gateway(
        start_proxy,
        route("r", rule, hostnames=["grpc.example.com"]),
        service("svc", sport(50051, "grpc", name="grpc", app_protocol="kubernetes.io/h2c")),
        endpoint_slice("svc", [endpoint("127.0.0.2")], [("grpc", grpc_backend.port)]),
    )
    assert await asyncio.to_thread(_unary, f"{addr}:{port}", "grpc.example.com") == b"yawetag"


@pytest.mark.asyncio
async def test_idle_h2c_connections_are_closed(
    start_proxy: ProxyFactory, grpc_backend: _Backend
) -> None:
    settings = replace(FAST, timeouts=replace(FAST.timeouts, upstream_idle=0.2))
    proxy: Proxy = await start_proxy(settings)
    target = _grpc_site(proxy, grpc_backend)
    for _ in range(3):  # one connection carries them all
        assert await asyncio.to_thread(_unary, target, "grpc.example.com") == b"yawetag"
    assert proxy.plane.h2c_pool.connection_count() == 1
    async with asyncio.timeout(5):
        while proxy.plane.h2c_pool.connection_count():
            await asyncio.sleep(0.05)
    # And a new call opens a new one.
    assert await asyncio.to_thread(_unary, target, "grpc.example.com") == b"yawetag"


def _unary_tls(target: str, ca: bytes) -> bytes:
    creds = grpc.ssl_channel_credentials(root_certificates=ca)
    options = [("grpc.ssl_target_name_override", "app.example.com")]
    with grpc.secure_channel(target, creds, options=options) as ch:
        reply: bytes = ch.unary_unary("/kexpose.Test/Unary")(b"tls", timeout=5)
        return reply


@pytest.mark.asyncio
async def test_grpc_over_tls_by_alpn(
    start_proxy: ProxyFactory, grpc_backend: _Backend, pki: Pki
) -> None:
    proxy: Proxy = await start_proxy(SLOW)
    proxy.load(
        ingress(
            "g",
            rule("app.example.com", path("/", "svc", 50051)),
            tls=[tls("app-tls", "app.example.com")],
        ),
        tls_secret("app-tls", pki.pairs["app"]),
        service("svc", sport(50051, "grpc", name="grpc", app_protocol="kubernetes.io/h2c")),
        endpoint_slice("svc", [endpoint("127.0.0.2")], [("grpc", grpc_backend.port)]),
    )
    target = f"{proxy.https[0]}:{proxy.https[1]}"
    ca = pki.pairs["app"].cert_pem.encode()
    assert await asyncio.to_thread(_unary_tls, target, ca) == b"slt"


class _DeafH2c(asyncio.Protocol):
    """An h2c endpoint that takes calls and never answers (nor watches deadlines); it notes
    the streams the proxy resets."""

    resets: asyncio.Queue[int]

    def __init__(self, resets: asyncio.Queue[int]) -> None:
        self.resets = resets
        self.h2 = H2Connection(H2Configuration(client_side=False, header_encoding=None))
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.h2.initiate_connection()
        transport.write(self.h2.data_to_send())  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        for event in self.h2.receive_data(data):
            if isinstance(event, StreamReset):
                self.resets.put_nowait(int(event.error_code or 0))
        assert self.transport is not None
        self.transport.write(self.h2.data_to_send())


@pytest.mark.asyncio
async def test_grpc_timeout_is_enforced_by_the_proxy(start_proxy: ProxyFactory) -> None:
    # Neither the client (raw HTTP/2) nor the endpoint watches the deadline: the proxy does.
    resets: asyncio.Queue[int] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _DeafH2c(resets), "127.0.0.2", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        proxy: Proxy = await start_proxy(SLOW)
        proxy.load(
            ingress("g", rule("grpc.example.com", path("/", "svc", 50051))),
            service("svc", sport(50051, "grpc", name="grpc", app_protocol="kubernetes.io/h2c")),
            endpoint_slice("svc", [endpoint("127.0.0.2")], [("grpc", port)]),
        )
        c = await H2Client.connect(proxy.http)
        headers = [
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("grpc-timeout", "300m"),
        ]
        sid = c.send_request(
            "/kexpose.Test/Deaf",
            method="POST",
            authority="grpc.example.com",
            headers=headers,
            body=b"\x00\x00\x00\x00\x00",
        )
        (r,) = await c.wait(sid)
        assert r.status == 200
        assert r.header(b"grpc-status") == b"4"  # DEADLINE_EXCEEDED, trailers-only
        assert r.header(b"grpc-message") == b"grpc-timeout passed"
        # The endpoint's stream was reset with CANCEL (RFC 9113 §7: 0x8).
        assert await asyncio.wait_for(resets.get(), 5) == 0x8
        await c.close()
    finally:
        server.close()
        await server.wait_closed()
