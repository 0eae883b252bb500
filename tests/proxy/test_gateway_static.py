"""The real ``kexpose-proxy`` process in static mode with Gateway API manifests: the Gateway
gets an address from ``--gateway-addresses``, its HTTPRoute routes, and an edited manifest
moves traffic without a restart."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.proxy import process
from tests.proxy.backends import Client
from tests.proxy.conftest import backend_objects
from tests.proxy.test_gateway_traffic import GATEWAY_CLASS, gateway, route, to

from kexpose.proxy.routes import Claim, ObjectSet, build_table

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

POOL = "127.78.0.0/24"


def _write(path: Path, docs: list[Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump_all(docs))
    tmp.replace(path)  # atomic: the poll never reads half a file


async def test_static_mode_serves_a_gateway_and_follows_edits(
    tmp_path: Path, echo: Callable[..., Any]
) -> None:
    v1, v2 = await echo("v1"), await echo("v2")
    port = process.free_port()
    docs = [
        GATEWAY_CLASS,
        gateway("gw", {"name": "http", "port": port, "protocol": "HTTP"}),
        route("r", {"backendRefs": [to("v1")]}),
        *backend_objects("v1", [v1]),
        *backend_objects("v2", [v2]),
    ]
    folder = tmp_path / "manifests"
    folder.mkdir()
    _write(folder / "gateway.yaml", docs)
    # The address the proxy will choose: the same pure function, from the same objects.
    objects, _ = ObjectSet.from_documents(docs)
    claim = Claim(
        "kexpose.dev/ingress-controller",
        gateway_controller="kexpose.dev/gateway-controller",
        gateway_pool=ipaddress.ip_network(POOL),
    )
    [status] = build_table(objects, claim=claim).gateway.gateways
    addr = (status.addresses[0], port)
    proxy = process.start(
        ["kexpose-proxy", "--manifests", str(folder), "--gateway-addresses", POOL], tmp_path
    )
    try:
        await proxy.wait_ready()

        async def backend() -> str | None:
            try:
                c = await Client.connect(addr)
            except OSError:
                return None
            try:
                return str((await c.request("GET", "/", host="example.com")).json()["backend"])
            finally:
                await c.close()

        for _ in range(100):  # the Gateway socket opens right after the first table
            if await backend() == "v1":
                break
            await asyncio.sleep(0.05)
        assert await backend() == "v1", proxy.logs()
        docs[2] = route("r", {"backendRefs": [to("v2")]})
        _write(folder / "gateway.yaml", docs)
        for _ in range(100):  # polled once a second
            if await backend() == "v2":
                break
            await asyncio.sleep(0.05)
        assert await backend() == "v2", proxy.logs()
    finally:
        proxy.terminate()
        assert await proxy.wait_exit() == 0, proxy.logs()


async def test_a_bad_gateway_addresses_flag_is_a_usage_error(tmp_path: Path) -> None:
    proxy = process.start(
        ["kexpose-proxy", "--manifests", str(tmp_path), "--gateway-addresses", "10.0.0.300/24"],
        tmp_path,
    )
    assert await proxy.wait_exit() == 2
    assert "--gateway-addresses" in proxy.logs()


async def test_static_mode_serves_a_listener_sets_port(
    tmp_path: Path, echo: Callable[..., Any]
) -> None:
    """A ListenerSet's listener on a port the Gateway does not have: the proxy opens it and
    serves the routes attached to the ListenerSet there, and only those."""
    v1, v2 = await echo("v1"), await echo("v2")
    own, added = process.free_port(), process.free_port()
    gw = gateway("gw", {"name": "http", "port": own, "protocol": "HTTP"})
    gw["spec"]["allowedListeners"] = {"namespaces": {"from": "Same"}}
    listener_set = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "ListenerSet",
        "metadata": {"name": "extra", "namespace": "default"},
        "spec": {
            "parentRef": {"name": "gw"},
            "listeners": [
                {"name": "http", "port": added, "protocol": "HTTP", "hostname": "ls.example.com"}
            ],
        },
    }
    docs = [
        GATEWAY_CLASS,
        gw,
        listener_set,
        route("on-gateway", {"backendRefs": [to("v1")]}),
        route(
            "on-set",
            {"backendRefs": [to("v2")]},
            parent="extra",
            ref={"group": "gateway.networking.k8s.io", "kind": "ListenerSet"},
        ),
        *backend_objects("v1", [v1]),
        *backend_objects("v2", [v2]),
    ]
    folder = tmp_path / "manifests"
    folder.mkdir()
    _write(folder / "gateway.yaml", docs)
    objects, problems = ObjectSet.from_documents(docs)
    assert problems == ()
    claim = Claim(
        "kexpose.dev/ingress-controller",
        gateway_controller="kexpose.dev/gateway-controller",
        gateway_pool=ipaddress.ip_network(POOL),
    )
    [status] = build_table(objects, claim=claim).gateway.gateways
    address = status.addresses[0]
    proxy = process.start(
        ["kexpose-proxy", "--manifests", str(folder), "--gateway-addresses", POOL], tmp_path
    )
    try:
        await proxy.wait_ready()

        async def answer(port: int) -> tuple[int, str | None] | None:
            try:
                c = await Client.connect((address, port))
            except OSError:
                return None
            try:
                response = await c.request("GET", "/", host="ls.example.com")
                if response.status != 200:
                    return response.status, None
                return 200, str(response.json()["backend"])
            finally:
                await c.close()

        for _ in range(100):  # the Gateway's sockets open right after the first table
            if await answer(added) == (200, "v2"):
                break
            await asyncio.sleep(0.05)
        assert await answer(added) == (200, "v2"), proxy.logs()
        assert await answer(own) == (200, "v1")  # the Gateway's own listener: its own routes
    finally:
        proxy.terminate()
        assert await proxy.wait_exit() == 0, proxy.logs()
