"""The control plane with the Gateway API on: it watches the Gateway kinds too, builds their
routes, and writes the status of our GatewayClasses, Gateways, ListenerSets and HTTPRoutes,
once."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable
from typing import Any

import pytest
from tests.proxy.fake_kube import FakeKubeApi
from tests.proxy.objects import app
from tests.proxy.test_control import Recorder, base_lists, start_plane

from kexpose.defaults import CONTROLLER_NAME, GATEWAY_CONTROLLER_NAME
from kexpose.proxy.control.plane import ControlPlane
from kexpose.proxy.routes import SUPPORTED_FEATURES, Claim

pytestmark = pytest.mark.asyncio

GROUP = "gateway.networking.k8s.io"
CLAIM = Claim(
    CONTROLLER_NAME,
    ingress_class="kexpose",
    gateway_controller=GATEWAY_CONTROLLER_NAME,
    gateway_pool=ipaddress.ip_network("10.250.0.0/24"),
)
OTHER_PARENT = {
    "parentRef": {"group": GROUP, "kind": "Gateway", "name": "elsewhere", "namespace": "infra"},
    "controllerName": "example.com/other",
    "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted"}],
}


def objects() -> dict[str, list[Any]]:
    cls = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "GatewayClass",
        "metadata": {"name": "kexpose", "generation": 2, "resourceVersion": "1"},
        "spec": {"controllerName": GATEWAY_CONTROLLER_NAME},
    }
    gw = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": "infra", "generation": 5},
        "spec": {
            "gatewayClassName": "kexpose",
            "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}],
        },
    }
    route = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "r", "namespace": "infra", "generation": 7},
        "spec": {
            "parentRefs": [{"group": GROUP, "kind": "Gateway", "name": "gw"}],
            "rules": [{"backendRefs": [{"name": "web", "port": 80}]}],
        },
        "status": {"parents": [OTHER_PARENT]},
    }
    svc, slice_ = app("web", "10.0.0.1", namespace="infra")
    return base_lists(
        Service=[([svc], "12")],
        EndpointSlice=[([slice_], "13")],
        GatewayClass=[([cls], "20")],
        Gateway=[([gw], "21")],
        HTTPRoute=[([route], "22")],
        ReferenceGrant=[([], "23")],
        Namespace=[
            ([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "infra"}}], "24")
        ],
    )


async def test_gateway_kinds_are_watched_and_their_status_written_once(
    running: Callable[..., Any],
) -> None:
    lists = objects()
    api = FakeKubeApi(lists=lists)
    plane, rec = await start_plane(running, api, CLAIM)
    watched = {c[1] for c in api.calls if c[0] == "watch"}
    assert {"GatewayClass", "Gateway", "HTTPRoute", "ReferenceGrant", "Namespace"} <= watched
    table = rec.tables[-1]
    [port] = table.gateway_ports.values()
    assert port.port == 80
    assert ipaddress.ip_address(port.addresses[0]) in ipaddress.ip_network("10.250.0.0/24")

    api.statuses.clear()
    assert await plane.write_status() == 3
    written = {(kind, name): status for kind, _, name, status in api.statuses}
    cls = written[("GatewayClass", "kexpose")]
    assert [c["type"] for c in cls["conditions"]] == ["Accepted", "SupportedVersion"]
    assert all(c["observedGeneration"] == 2 for c in cls["conditions"])
    assert cls["supportedFeatures"] == [{"name": f} for f in sorted(SUPPORTED_FEATURES)]
    gw = written[("Gateway", "gw")]
    assert gw["addresses"] == [{"type": "IPAddress", "value": port.addresses[0]}]
    assert {c["type"]: c["status"] for c in gw["conditions"]} == {
        "Accepted": "True",
        "Programmed": "True",
    }
    assert gw["listeners"][0]["attachedRoutes"] == 1
    parents = written[("HTTPRoute", "r")]["parents"]
    assert parents[0] == OTHER_PARENT  # another controller's entry is kept as it was
    ours = parents[1]
    assert ours["controllerName"] == GATEWAY_CONTROLLER_NAME
    assert {c["type"]: (c["status"], c["observedGeneration"]) for c in ours["conditions"]} == {
        "Accepted": ("True", 7),
        "ResolvedRefs": ("True", 7),
    }

    # The API now holds what was written: the next pass writes nothing, and keeps the times.
    store: dict[Any, Any] = plane._store
    for (kind, name), status in written.items():
        key = ("", name) if kind == "GatewayClass" else ("infra", name)
        updated: Any = {**store[kind][key], "status": status}
        store[kind][key] = updated
    api.statuses.clear()
    assert await plane.write_status() == 0
    assert api.statuses == []


async def test_without_the_gateway_api_no_gateway_kind_is_watched(
    running: Callable[..., Any],
) -> None:
    api = FakeKubeApi(lists=base_lists())
    rec = Recorder()
    plane = ControlPlane(
        api,
        claim=Claim(CONTROLLER_NAME, ingress_class="kexpose"),
        on_table=rec.on_table,
        sleep=rec.sleep,
    )
    running(plane)
    async with asyncio.timeout(5):
        await plane.ready.wait()
    assert not {c[1] for c in api.calls} & {"GatewayClass", "Gateway", "HTTPRoute"}


async def test_config_map_changes_rebuild_only_while_a_gateway_validates_client_certificates() -> (
    None
):
    # ConfigMaps are watched for the CA bundles of ``spec.tls.frontend``; other ConfigMaps
    # (leader-election locks, app settings) change often and must not rebuild the table.
    rec = Recorder()
    plane = ControlPlane(FakeKubeApi(lists=objects()), claim=CLAIM, on_table=rec.on_table)
    plane._changed("ConfigMap")
    assert not plane._dirty.is_set()
    plane._changed("ConfigMap", listed=True)  # the first list counts: the table waits for it
    assert plane._dirty.is_set()
    plane._dirty.clear()
    gw = objects()["Gateway"][0][0][0]
    gw["spec"]["tls"] = {"frontend": {"default": {"validation": {"caCertificateRefs": []}}}}
    plane._store["Gateway"][("infra", "gw")] = gw
    plane._changed("ConfigMap")
    assert plane._dirty.is_set()


async def test_listener_sets_are_watched_served_and_their_status_written(
    running: Callable[..., Any],
) -> None:
    lists = objects()
    [(gateways, version)] = lists["Gateway"]
    gw = {**gateways[0], "spec": {**gateways[0]["spec"]}}
    gw["spec"]["allowedListeners"] = {"namespaces": {"from": "Same"}}
    lists["Gateway"] = [([gw], version)]
    listener_set = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "ListenerSet",
        "metadata": {"name": "extra", "namespace": "infra", "generation": 9},
        "spec": {
            "parentRef": {"name": "gw"},
            "listeners": [{"name": "alt", "port": 8080, "protocol": "HTTP"}],
        },
    }
    lists["ListenerSet"] = [([listener_set], "25")]
    api = FakeKubeApi(lists=lists)
    plane, rec = await start_plane(running, api, CLAIM)
    assert "ListenerSet" in {c[1] for c in api.calls if c[0] == "watch"}
    assert sorted(port for _, port in rec.tables[-1].gateway_ports) == [80, 8080]

    api.statuses.clear()
    assert await plane.write_status() == 4
    written = {(kind, name): status for kind, _, name, status in api.statuses}
    assert written[("Gateway", "gw")]["attachedListenerSets"] == 1
    status = written[("ListenerSet", "extra")]
    assert {c["type"]: (c["status"], c["observedGeneration"]) for c in status["conditions"]} == {
        "Accepted": ("True", 9),
        "Programmed": ("True", 9),
    }
    assert [(lst["name"], lst["attachedRoutes"]) for lst in status["listeners"]] == [("alt", 0)]

    store: dict[Any, Any] = plane._store
    store["ListenerSet"][("infra", "extra")] = {**listener_set, "status": status}
    api.statuses.clear()
    await plane.write_status()
    assert all(kind != "ListenerSet" for kind, *_ in api.statuses)
