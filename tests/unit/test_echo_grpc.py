"""The gRPC echo stand-in (tests/e2e/echo_grpc.py) against echo-basic's Go source
(conformance@v1.6.3 `echo-basic/grpc/grpc.go`) and what the suite checks of its answers
(`conformance/utils/grpc/grpc.go` `compareResponse`): which Pods it serves, then the server over
a real loopback socket with a grpcio client, as the suite's client calls it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import pytest_asyncio
from tests.e2e.echo_basic import EchoContext
from tests.e2e.echo_grpc import (
    FULL_SERVICE,
    GRPC_ECHO_PROTO,
    EchoGrpcServer,
    grpc_echo_address,
    grpcecho,
    proto_dir,
)
from tests.e2e.echo_pods import echo_basic_address

pytestmark = pytest.mark.skipif(
    not (proto_dir() / GRPC_ECHO_PROTO).is_file(),
    reason="the suite's grpcecho.proto is in the Go module cache scripts/toolchain.sh fills",
)

CONTEXT = EchoContext(namespace="gateway-conformance-infra", pod="grpc-infra-backend-v1-5f-abcde")
IMAGE = "registry.k8s.io/gateway-api/echo-basic:v1.5.1"


def pod(*env: dict[str, Any], ready: str = "True", ip: str | None = "10.244.0.7") -> dict[str, Any]:
    """A Pod as base/manifests.yaml's grpc-infra-backend Deployments make them."""
    status: dict[str, Any] = {"conditions": [{"type": "Ready", "status": ready}]}
    if ip is not None:
        status["podIP"] = ip
    return {
        "metadata": {"name": CONTEXT.pod, "namespace": CONTEXT.namespace},
        "spec": {"containers": [{"name": "c", "image": IMAGE, "env": list(env)}]},
        "status": status,
    }


FIELD_ENV = (
    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    {"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
)
GRPC_MODE = {"name": "GRPC_ECHO_SERVER", "value": "1"}

PODS = [
    (pod(*FIELD_ENV, GRPC_MODE), (("10.244.0.7", 3000), CONTEXT)),
    (
        pod(*FIELD_ENV, GRPC_MODE, {"name": "HTTP_PORT", "value": "9000"}),
        (("10.244.0.7", 9000), CONTEXT),
    ),
    (pod(*FIELD_ENV), None),  # the HTTP echo: echo_pods serves it
    (pod(*FIELD_ENV, GRPC_MODE, ready="False"), None),
    (pod(*FIELD_ENV, GRPC_MODE, ip=None), None),
]


@pytest.mark.parametrize(("raw", "expected"), PODS)
def test_which_pods_get_a_grpc_stand_in(raw: dict[str, Any], expected: Any) -> None:
    assert grpc_echo_address(raw) == expected
    if expected is not None:
        assert echo_basic_address(raw) is None  # never both an HTTP and a gRPC stand-in


@pytest_asyncio.fixture
async def server() -> AsyncIterator[tuple[str, EchoGrpcServer]]:
    echo = EchoGrpcServer("127.0.0.1", 0, CONTEXT)
    port = await echo.start()
    try:
        yield f"127.0.0.1:{port}", echo
    finally:
        await echo.stop()


@pytest.mark.asyncio
async def test_echo_answers_what_the_suite_compares(server: tuple[str, EchoGrpcServer]) -> None:
    address, _ = server
    messages, services = grpcecho()
    jitter = uuid.uuid4().hex
    async with grpc.aio.insecure_channel(address) as channel:
        stub = services.GrpcEchoStub(channel)
        for method in ("Echo", "EchoTwo"):
            response = await getattr(stub, method)(
                messages.EchoRequest(), metadata=[("x-jitter", jitter), ("version", "two")]
            )
            assertions = response.assertions
            assert assertions.fully_qualified_method == f"/{FULL_SERVICE}/{method}"
            assert assertions.context.namespace == CONTEXT.namespace
            assert assertions.context.pod.startswith("grpc-infra-backend-v1")
            echoed = {(h.key, h.value) for h in assertions.headers}
            assert {("x-jitter", jitter), ("version", "two")} <= echoed


@pytest.mark.asyncio
async def test_echo_three_is_unimplemented(server: tuple[str, EchoGrpcServer]) -> None:
    address, _ = server
    messages, services = grpcecho()
    async with grpc.aio.insecure_channel(address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await services.GrpcEchoStub(channel).EchoThree(messages.EchoRequest())
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED


@pytest.mark.asyncio
async def test_an_address_that_cannot_be_bound_is_an_os_error() -> None:
    with pytest.raises(OSError, match=r"cannot listen on 192\.0\.2\.1"):
        await EchoGrpcServer("192.0.2.1", 3000, CONTEXT).start()
