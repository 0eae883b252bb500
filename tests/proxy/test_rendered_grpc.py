"""What kexpose renders for an app's ``grpc`` entries, served by kexpose-proxy to a grpcio client:
the Ingress paths (``Prefix /<service>``, ``Exact /<service>/<method>``) and the Service whose
port the builders marked ``appProtocol: kubernetes.io/h2c``, which is all that makes the proxy
speak h2c to a gRPC backend in Ingress mode."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from tests.proxy.conftest import Proxy, ProxyFactory
from tests.proxy.objects import endpoint, endpoint_slice

from kexpose.plan import plan_stack
from kexpose.validation import parse_stack

pytestmark = pytest.mark.asyncio

HOST = "rpc.example.com"


class _Backend:
    """A grpcio server (HTTP/2 only: it cannot answer HTTP/1.1) for two services."""

    def __init__(self) -> None:
        def handler(name: str) -> Any:
            return grpc.unary_unary_rpc_method_handler(lambda req, ctx: name.encode())

        self.server = grpc.server(ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "demo.Greeter", {"Hello": handler("Greeter/Hello")}
                ),
                grpc.method_handlers_generic_handler(
                    "demo.Admin", {"Reload": handler("Admin/Reload"), "Drop": handler("Drop")}
                ),
            )
        )
        self.port = self.server.add_insecure_port("127.0.0.2:0")
        self.server.start()


@pytest.fixture
def backend() -> Iterator[_Backend]:
    b = _Backend()
    yield b
    b.server.stop(None)


def _rendered() -> list[dict[str, Any]]:
    raw = {
        "environment": "dev",
        "controller": {"kind": "kexpose"},
        "apps": [
            {
                "name": "greeter",
                "namespace": "default",
                "workload": {
                    "image": "greeter:1",
                    "ports": [{"name": "grpc", "containerPort": 5000}],
                },
                "service": {"ports": [{"name": "grpc", "port": 5000}]},
                "ingress": {
                    "rules": [
                        {
                            "host": HOST,
                            "grpc": [
                                {"service": "demo.Greeter", "port": "grpc"},
                                {"service": "demo.Admin", "method": "Reload", "port": "grpc"},
                            ],
                        }
                    ]
                },
            }
        ],
    }
    spec = parse_stack(raw, stack_file="stacks/Pulumi.test.yaml")
    objs = [p.manifest for p in plan_stack(spec, tls=lambda a: None)]
    return [
        o
        for o in objs
        if o["kind"] in ("Ingress", "Service") and o["metadata"]["name"] == "greeter"
    ]


def _calls(target: str) -> list[str]:
    options = [("grpc.default_authority", HOST), ("grpc.enable_retries", 0)]
    out = []
    with grpc.insecure_channel(target, options=options) as channel:
        for method in ("/demo.Greeter/Hello", "/demo.Admin/Reload", "/demo.Admin/Drop"):
            try:
                out.append(channel.unary_unary(method)(b"", timeout=5).decode())
            except grpc.RpcError as exc:
                out.append(exc.code().name)
    return out


async def test_rendered_ingress_and_service_carry_grpc_through_the_proxy(
    start_proxy: ProxyFactory, backend: _Backend
) -> None:
    ingress, service = sorted(_rendered(), key=lambda o: str(o["kind"]))
    assert service["spec"]["ports"][0]["appProtocol"] == "kubernetes.io/h2c"
    proxy: Proxy = await start_proxy()
    proxy.load(
        ingress,
        service,
        endpoint_slice("greeter", [endpoint("127.0.0.2")], [("grpc", backend.port)]),
    )
    answers = await asyncio.to_thread(_calls, f"{proxy.http[0]}:{proxy.http[1]}")
    # Admin/Drop has no path (only Admin/Reload is routed, Exact): the proxy's own 404, read by
    # the gRPC client as UNIMPLEMENTED (gRPC's HTTP-to-status mapping).
    assert answers == ["Greeter/Hello", "Admin/Reload", "UNIMPLEMENTED"]
