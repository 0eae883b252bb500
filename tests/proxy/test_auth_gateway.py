"""Edge auth on HTTPRoutes: an ``ExtensionRef`` filter to a kexpose ``EdgeAuth`` authenticates
a rule exactly as an Ingress path would be (edge-auth.md, "Gateway API")."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from tests.proxy.auth_servers import Keys, basic, bcrypt_line, jwks, secret
from tests.proxy.conftest import ProxyFactory, backend_objects
from tests.proxy.test_gateway_traffic import get, one_gateway, route, to

pytestmark = pytest.mark.asyncio


def edge_auth(name: str, **spec: str) -> dict[str, Any]:
    return {
        "apiVersion": "kexpose.dev/v1alpha1",
        "kind": "EdgeAuth",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }


def auth_filter(name: str, kind: str = "EdgeAuth") -> dict[str, Any]:
    return {
        "type": "ExtensionRef",
        "extensionRef": {"group": "kexpose.dev", "kind": kind, "name": name},
    }


async def test_extension_ref_authenticates_a_rule(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    web = await echo("web")
    keys = Keys.make()
    token = keys.token("rsa", {"sub": "u", "exp": int(time.time()) + 60}, alg="RS256")
    addr = await one_gateway(
        start_proxy,
        route(
            "r",
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/open"}}],
                "backendRefs": [to("web")],
            },
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/basic"}}],
                "filters": [auth_filter("team")],
                "backendRefs": [to("web")],
            },
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/jwt"}}],
                "filters": [auth_filter("tokens")],
                "backendRefs": [to("web")],
            },
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/broken"}}],
                "filters": [auth_filter("broken")],
                "backendRefs": [to("web")],
            },
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/missing"}}],
                "filters": [auth_filter("nope")],
                "backendRefs": [to("web")],
            },
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/other-kind"}}],
                "filters": [auth_filter("team", kind="Other")],
                "backendRefs": [to("web")],
            },
        ),
        edge_auth(
            "team", type="basic", secret="users", realm="gw", **{"exempt-paths": "/basic/health"}
        ),
        edge_auth(
            "tokens", type="jwt", **{"jwks-secret": "keys", "jwt-claim-headers": "sub:X-User"}
        ),
        edge_auth("broken", type="basic", secrett="users"),
        secret("users", {"auth": bcrypt_line("alice", "pw")}),
        secret("keys", {"jwks.json": jwks(keys.jwk("rsa", "k1"))}),
        *backend_objects("web", [web]),
    )
    assert (await get(addr, "/open")).status == 200
    r = await get(addr, "/basic")
    assert r.status == 401
    assert r.header("www-authenticate") == 'Basic realm="gw"'
    r = await get(
        addr, "/basic", headers={"Authorization": basic("alice", "pw"), "X-Forwarded-User": "x"}
    )
    assert r.status == 200
    assert [v for k, v in r.json()["headers"] if k == "x-forwarded-user"] == ["alice"]
    assert (await get(addr, "/basic/health")).status == 200
    assert (await get(addr, "/jwt")).status == 401
    r = await get(addr, "/jwt", headers={"Authorization": f"Bearer {token}"})
    assert r.status == 200
    assert [v for k, v in r.json()["headers"] if k == "x-user"] == ["u"]
    # A misspelt setting fails closed (503); an unresolvable reference is a Gateway API 500.
    assert (
        await get(addr, "/broken", headers={"Authorization": basic("alice", "pw")})
    ).status == 503
    assert (await get(addr, "/missing")).status == 500
    assert (await get(addr, "/other-kind")).status == 500
    assert web.requests == 4
