"""The lightkube adapter and the control plane against a fake API server over loopback HTTP,
and the data plane serving what it learned."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.proxy.conftest import ProxyFactory, backend_objects
from tests.proxy.fake_apiserver import GONE, FakeApiServer
from tests.proxy.objects import ingress, ingress_class, path, rule, service, sport

from kexpose.defaults import CONTROLLER_NAME
from kexpose.proxy.control.kubeapi import LightkubeApi
from kexpose.proxy.control.plane import ControlPlane, Publish
from kexpose.proxy.errors import ProxyConfigError, WatchGoneError
from kexpose.proxy.routes import Claim

pytestmark = pytest.mark.asyncio


async def _api(server: FakeApiServer, tmp_path: Path) -> LightkubeApi:
    config = tmp_path / "kubeconfig"
    config.write_text(yaml.safe_dump(server.kubeconfig()))
    return LightkubeApi(kubeconfig=config)


async def test_list_watch_and_410(tmp_path: Path) -> None:
    server = await FakeApiServer(objects={"Ingress": [ingress("web")]}).start()
    api = await _api(server, tmp_path)
    try:
        items, version = await api.list_objects("Ingress", None)
        assert [i["metadata"]["name"] for i in items] == ["web"]
        assert version == "5"
        added = ingress("api")
        added["metadata"]["resourceVersion"] = "6"
        server.watches["Ingress"] = [[{"type": "ADDED", "object": added}, GONE]]
        seen: list[tuple[str, str]] = []

        async def follow() -> None:
            async for event, obj in api.watch_objects("Ingress", None, version, timeout=30):
                seen.append((event, obj["metadata"]["name"]))

        with pytest.raises(WatchGoneError):
            await follow()
        assert seen == [("ADDED", "api")]
        watch = next(t for m, t in server.requests if "watch" in t)
        assert "resourceVersion=5" in watch
    finally:
        await api.close()
        await server.stop()


async def test_bad_kubeconfig_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ProxyConfigError, match="no usable Kubernetes configuration"):
        LightkubeApi(kubeconfig=tmp_path / "missing")


async def test_control_plane_over_lightkube_routes_and_writes_status(
    tmp_path: Path, start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    web = await echo("web")
    ctl = service(
        "kexpose-controller", sport(80), namespace="kexpose-system", clusterIP="10.96.0.7"
    )
    svc, *slices = backend_objects("web", [web])
    server = await FakeApiServer(
        objects={
            "IngressClass": [ingress_class()],
            "Ingress": [ingress("web", rule("app.example.com", path("/", "web")))],
            "Service": [svc, ctl],
            "EndpointSlice": slices,
        },
        # the first Ingress watch expires at once: the plane must list again and carry on
        watches={"Ingress": [[GONE]]},
    ).start()
    api = await _api(server, tmp_path)
    proxy = await start_proxy()
    plane = ControlPlane(
        api,
        claim=Claim(CONTROLLER_NAME),
        on_table=proxy.plane.swap,
        publish=Publish(service="kexpose-system/kexpose-controller"),
    )
    task = asyncio.create_task(plane.run())
    try:
        async with asyncio.timeout(10):
            await plane.ready.wait()
            while not server.patches:
                await asyncio.sleep(0.01)
        c = await proxy.client()
        r = await c.request("GET", "/")
        assert r.status == 200
        assert r.json()["backend"] == "web"
        await c.close()
        assert server.patches[0] == (
            "/apis/networking.k8s.io/v1/namespaces/default/ingresses/web/status",
            {"status": {"loadBalancer": {"ingress": [{"ip": "10.96.0.7"}]}}},
        )
        lists = [
            t
            for m, t in server.requests
            if t.startswith("/apis/networking.k8s.io/v1/ingresses") and "watch" not in t
        ]
        async with asyncio.timeout(5):
            while len(lists) < 2:
                await asyncio.sleep(0.01)
                lists = [
                    t
                    for m, t in server.requests
                    if t.startswith("/apis/networking.k8s.io/v1/ingresses") and "watch" not in t
                ]
    finally:
        task.cancel()
        with pytest.raises((asyncio.CancelledError, BaseExceptionGroup)):
            await task
        await api.close()
        await server.stop()
