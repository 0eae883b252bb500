"""gRPC clients (grpcio) through the proxy over HTTP/2 with prior knowledge, as gRPC clients with
insecure credentials connect: the proxy's own answers read as gRPC statuses."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import grpc
import pytest
from tests.proxy.conftest import Proxy, ProxyFactory
from tests.proxy.objects import endpoint, endpoint_slice, ingress, path, rule, service, sport

from kexpose.proxy.dataplane._grpc import grpc_local_response, grpc_status, grpc_timeout, is_grpc


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


def test_grpc_is_told_by_content_type() -> None:
    assert is_grpc(b"\r\nhost: a\r\ncontent-type: application/grpc+proto")
    assert is_grpc(b"\r\nContent-Type:application/grpc")
    assert not is_grpc(b"\r\ncontent-type: application/json\r\nx-note: application/grpc")
