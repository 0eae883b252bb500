"""GRPCRoutes over loopback: a grpcio client through a Gateway listener (h2c with prior knowledge)
to grpcio backends, routed by service/method and metadata, and spoken to over h2c although their
Service ports name no ``appProtocol``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from tests.proxy.auth_servers import basic, bcrypt_line, secret
from tests.proxy.conftest import ProxyFactory
from tests.proxy.h2client import H2Client
from tests.proxy.objects import endpoint, endpoint_slice, service, sport
from tests.proxy.test_auth_gateway import edge_auth
from tests.proxy.test_gateway_traffic import GROUP, one_gateway

pytestmark = pytest.mark.asyncio

SERVICE = "kexpose.Echo"


class _Echo:
    """A grpcio server answering ``kexpose.Echo/{One,Two,Three}`` with its name and the method."""

    def __init__(self, name: str) -> None:
        self.name = name
        handlers = {
            method: grpc.unary_unary_rpc_method_handler(self._answer(method))
            for method in ("One", "Two", "Three")
        }
        self.server = grpc.server(ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, handlers),)
        )
        self.port: int = self.server.add_insecure_port("127.0.0.2:0")
        self.server.start()

    def _answer(self, method: str) -> Any:
        def answer(request: bytes, context: Any) -> bytes:
            return f"{self.name}:{method}".encode()

        return answer


@pytest.fixture
def echoes() -> Iterator[dict[str, _Echo]]:
    made = {name: _Echo(name) for name in ("v1", "v2")}
    yield made
    for echo in made.values():
        echo.server.stop(None)


def _backend_objects(echoes: dict[str, _Echo]) -> list[dict[str, Any]]:
    objs: list[dict[str, Any]] = []
    for name, echo in echoes.items():
        # No appProtocol: a GRPCRoute's backends are spoken to over h2c all the same.
        objs.append(service(name, sport(8080, "grpc", name="grpc")))
        objs.append(endpoint_slice(name, [endpoint("127.0.0.2")], [("grpc", echo.port)]))
    return objs


def _grpc_route(*rules: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "GRPCRoute",
        "metadata": {"name": "echo", "namespace": "default"},
        "spec": {
            "parentRefs": [{"name": "gw"}],
            "hostnames": ["grpc.example.com"],
            "rules": list(rules),
        },
    }


def _calls(target: str, calls: list[tuple[str, tuple[tuple[str, str], ...]]]) -> list[str]:
    """Each (method, metadata) called in turn: the answer, or the status code's name."""
    options = [("grpc.default_authority", "grpc.example.com"), ("grpc.enable_retries", 0)]
    out = []
    with grpc.insecure_channel(target, options=options) as channel:
        for method, metadata in calls:
            try:
                reply = channel.unary_unary(f"/{SERVICE}/{method}")(
                    b"", timeout=5, metadata=metadata
                )
                out.append(reply.decode())
            except grpc.RpcError as exc:
                out.append(exc.code().name)
    return out


async def test_calls_take_the_rule_of_their_method_and_metadata(
    start_proxy: ProxyFactory, echoes: dict[str, _Echo]
) -> None:
    def to(backend: str, *matches: dict[str, Any]) -> dict[str, Any]:
        return {"matches": list(matches), "backendRefs": [{"name": backend, "port": 8080}]}

    route = _grpc_route(
        to("v1", {"method": {"service": SERVICE, "method": "One"}}),
        to("v2", {"method": {"service": SERVICE, "method": "Two"}}),
        to(
            "v2",
            {
                "method": {"service": SERVICE, "method": "One"},
                "headers": [{"name": "version", "value": "two"}],
            },
        ),
    )
    addr, port = await one_gateway(start_proxy, route, *_backend_objects(echoes))
    answers = await asyncio.to_thread(
        _calls,
        f"{addr}:{port}",
        [
            ("One", ()),
            ("Two", ()),
            ("One", (("version", "two"),)),  # the header match is the more specific rule
            ("Three", ()),  # no rule: the client reads UNIMPLEMENTED, as the suite expects
        ],
    )
    assert answers == ["v1:One", "v2:Two", "v2:One", "UNIMPLEMENTED"]


async def test_a_rule_without_a_usable_backend_answers_unavailable(
    start_proxy: ProxyFactory, echoes: dict[str, _Echo]
) -> None:
    """GRPCRouteRule.backendRefs: "If *all* entries in BackendRefs are invalid, and there are
    also no filters specified in this route rule, *all* traffic which matches this rule MUST
    receive an ``UNAVAILABLE`` status", where an HTTPRoute's would get a 500 (UNKNOWN to a gRPC
    client). The rule of a usable backend beside it keeps working."""

    def to(*backends: dict[str, Any], method: str) -> dict[str, Any]:
        return {
            "matches": [{"method": {"service": SERVICE, "method": method}}],
            "backendRefs": list(backends),
        }

    route = _grpc_route(
        to({"name": "v1", "port": 8080}, method="One"),
        to({"name": "gone", "port": 8080}, method="Two"),  # no such Service
        to(
            {"name": "v1", "port": 8080, "kind": "Pod"},
            {"name": "gone", "port": 8080},
            method="Three",
        ),
    )
    addr, port = await one_gateway(start_proxy, route, *_backend_objects(echoes))
    answers = await asyncio.to_thread(
        _calls, f"{addr}:{port}", [("One", ()), ("Two", ()), ("Three", ())]
    )
    assert answers == ["v1:One", "UNAVAILABLE", "UNAVAILABLE"]


async def test_the_unavailable_answer_is_trailers_only(start_proxy: ProxyFactory) -> None:
    """gRPC over HTTP/2: "Trailers-Only" is one HEADERS frame that ends the stream, holding
    ``:status 200``, the content type and ``grpc-status``; no DATA, no second HEADERS."""
    route = _grpc_route({"backendRefs": [{"name": "gone", "port": 8080}]})
    addr, port = await one_gateway(start_proxy, route)
    c = await H2Client.connect((addr, port))
    try:
        sid = c.send_request(
            f"/{SERVICE}/One",
            method="POST",
            authority="grpc.example.com",
            headers=[("content-type", "application/grpc"), ("te", "trailers")],
            body=b"\x00\x00\x00\x00\x00",
        )
        (r,) = await c.wait(sid)
    finally:
        await c.close()
    assert (r.status, r.ended, bytes(r.body), r.trailers) == (200, True, b"", [])
    assert r.header(b"content-type") == b"application/grpc"
    assert r.header(b"grpc-status") == b"14"  # UNAVAILABLE
    assert r.header(b"grpc-message") == b"no backendRef of the rule can be used"


async def test_an_edge_auth_extension_ref_guards_a_grpcroute_rule(
    start_proxy: ProxyFactory, echoes: dict[str, _Echo]
) -> None:
    """An ExtensionRef to an EdgeAuth authenticates a GRPCRoute rule as it does an HTTPRoute's
    (edge-auth.md, "Gateway API"): no or wrong credentials get UNAUTHENTICATED (gRPC's mapping
    of 401) and never reach the backend; the rule without the filter stays open."""
    guarded = {
        "matches": [{"method": {"service": SERVICE, "method": "One"}}],
        "filters": [
            {
                "type": "ExtensionRef",
                "extensionRef": {"group": "kexpose.dev", "kind": "EdgeAuth", "name": "team"},
            }
        ],
        "backendRefs": [{"name": "v1", "port": 8080}],
    }
    open_rule = {
        "matches": [{"method": {"service": SERVICE, "method": "Two"}}],
        "backendRefs": [{"name": "v2", "port": 8080}],
    }
    addr, port = await one_gateway(
        start_proxy,
        _grpc_route(guarded, open_rule),
        edge_auth("team", type="basic", secret="users"),
        secret("users", {"auth": bcrypt_line("alice", "pw")}),
        *_backend_objects(echoes),
    )
    answers = await asyncio.to_thread(
        _calls,
        f"{addr}:{port}",
        [
            ("One", ()),
            ("One", (("authorization", basic("alice", "wrong")),)),
            ("One", (("authorization", basic("alice", "pw")),)),
            ("Two", ()),
        ],
    )
    assert answers == ["UNAUTHENTICATED", "UNAUTHENTICATED", "v1:One", "v2:Two"]
