"""The control plane with GRPCRoutes: watched with the other Gateway kinds, served from the
table, and their status written to the GRPCRoute (not an HTTPRoute of the same name)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from tests.proxy.fake_kube import FakeKubeApi
from tests.proxy.test_control import Recorder
from tests.proxy.test_gateway_control import CLAIM, GROUP, objects

from kexpose.defaults import GATEWAY_CONTROLLER_NAME
from kexpose.proxy.control.plane import ControlPlane
from kexpose.proxy.routes import RequestView

pytestmark = pytest.mark.asyncio

GRPC_ROUTE = {
    "apiVersion": f"{GROUP}/v1",
    "kind": "GRPCRoute",
    "metadata": {"name": "g", "namespace": "infra", "generation": 4},
    "spec": {
        "parentRefs": [{"group": GROUP, "kind": "Gateway", "name": "gw"}],
        "hostnames": ["grpc.example.com"],
        "rules": [
            {
                "matches": [{"method": {"service": "echo.Echo", "method": "Echo"}}],
                "backendRefs": [{"name": "web", "port": 80}],
            }
        ],
    },
}


async def test_grpcroutes_are_watched_served_and_their_status_written(
    running: Callable[..., Any],
) -> None:
    lists = objects()
    lists["GRPCRoute"] = [([GRPC_ROUTE], "25")]
    api = FakeKubeApi(lists=lists)
    rec = Recorder()
    plane = ControlPlane(api, claim=CLAIM, on_table=rec.on_table, sleep=rec.sleep)
    running(plane)
    async with asyncio.timeout(5):
        await plane.ready.wait()
    assert "GRPCRoute" in {c[1] for c in api.calls if c[0] == "watch"}

    [port] = rec.tables[-1].gateway_ports.values()
    [lst] = port.listeners
    vhost = lst.host("grpc.example.com")
    assert vhost is not None
    found = vhost.select(
        RequestView("POST", "/echo.Echo/Echo", {"content-type": "application/grpc"})
    )
    assert found is not None
    assert found.grpc
    assert [b.backend.protocol for b in found.backends] == ["h2c"]

    api.statuses.clear()
    assert await plane.write_status() == 4  # class, gateway, the HTTPRoute and the GRPCRoute
    written = {(kind, name): status for kind, _, name, status in api.statuses}
    [ours] = written[("GRPCRoute", "g")]["parents"]
    assert ours["controllerName"] == GATEWAY_CONTROLLER_NAME
    assert {c["type"]: (c["status"], c["observedGeneration"]) for c in ours["conditions"]} == {
        "Accepted": ("True", 4),
        "ResolvedRefs": ("True", 4),
    }
    # The HTTPRoute (no hostnames: every host) shares grpc.example.com with the GRPCRoute, and
    # neither is older: cross-serving keeps infra/g, first by name.
    http = written[("HTTPRoute", "r")]["parents"][1]["conditions"]
    assert {c["type"]: (c["status"], c["reason"]) for c in http}["Accepted"] == (
        "False",
        "NotAllowedByListeners",
    )
    assert written[("Gateway", "gw")]["listeners"][0]["attachedRoutes"] == 1
