"""CORS preflights on authenticated HTTPRoute rules, over loopback.

A browser sends a preflight without credentials (Fetch standard, "CORS-preflight fetch":
credentials mode "omit"), so the rule's CORS filter (HTTPCORSFilter, gateway-api v1.6.3) answers
it before the edge-auth mechanism, as ingress-nginx (rewrite phase before access phase) and
Envoy (cors before ext_authz/jwt_authn) do. Everything else stays fail-closed: the answer holds
the filter's headers only and never reaches the backend or the auth service; the actual request,
an ``OPTIONS`` that is no preflight and a rule without a CORS filter still need credentials; the
allow-list (edge-auth.md: "source-range allow-list first") and a broken configuration still
answer 403 and 503. An Ingress has no CORS filter in kexpose, so its preflights need auth.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from tests.proxy.auth_servers import (
    AUTH,
    Keys,
    Reply,
    ScriptedServer,
    Seen,
    basic,
    bcrypt_line,
    jwks,
    secret,
)
from tests.proxy.backends import Client, EchoBackend
from tests.proxy.conftest import ProxyFactory, backend_objects
from tests.proxy.h2client import H2Client
from tests.proxy.objects import ingress, ingress_class, path, rule
from tests.proxy.test_auth_gateway import auth_filter, edge_auth
from tests.proxy.test_gateway_traffic import address, free_port, gateway, load, route, to

pytestmark = pytest.mark.asyncio

APP = "https://app.example.com"
EVIL = "https://evil.example.org"
USER = ("alice", "pw")
PREFLIGHT = {"Origin": APP, "Access-Control-Request-Method": "PUT"}
CORS = {
    "type": "CORS",
    "cors": {
        "allowOrigins": [APP],
        "allowMethods": ["GET", "PUT"],
        "allowHeaders": ["x-header-1"],
        "allowCredentials": True,
        "maxAge": 600,
    },
}
#: The headers of the filter's answer to ``PREFLIGHT`` (from ``CORS``).
ALLOWED = {
    "access-control-allow-origin": APP,
    "access-control-allow-methods": "GET, PUT",
    "access-control-allow-headers": "x-header-1",
    "access-control-allow-credentials": "true",
    "access-control-max-age": "600",
    "vary": "origin",
}


def _forward(seen: Seen) -> Reply:
    """The auth service: 2xx for the right bearer token only."""
    if seen.get("authorization") == "Bearer letmein":
        return 200, [], b""
    return 401, [("WWW-Authenticate", 'Bearer realm="sso"')], b"log in"


@dataclass
class Site:
    gateway: tuple[str, int]
    ingress: tuple[str, int]
    web: EchoBackend
    auth: ScriptedServer
    credentials: dict[str, str]
    """Per mechanism: the ``Authorization`` that passes."""


def _rule(prefix: str, *filters: dict[str, Any]) -> dict[str, Any]:
    return {
        "matches": [{"path": {"type": "PathPrefix", "value": prefix}}],
        "filters": list(filters),
        "backendRefs": [to("web")],
    }


@pytest_asyncio.fixture
async def auth_server() -> AsyncIterator[ScriptedServer]:
    server = await ScriptedServer(reply=_forward).start()
    yield server
    await server.stop()


@pytest_asyncio.fixture
async def site(
    start_proxy: ProxyFactory, echo: Callable[..., Any], auth_server: ScriptedServer
) -> Site:
    web = await echo("web")
    keys = Keys.make()
    token = keys.token("rsa", {"sub": "u", "exp": int(time.time()) + 300}, alg="RS256")
    proxy = await start_proxy()
    port = free_port()
    listener = {"name": "http", "port": port, "protocol": "HTTP"}
    notes = {f"{AUTH}auth-type": "basic", f"{AUTH}auth-secret": "users"}
    table = await load(
        proxy,
        gateway("gw", listener),
        route(
            "r",
            _rule("/basic", CORS, auth_filter("team")),
            _rule("/forward", auth_filter("sso"), CORS),  # listed before CORS: same answer
            _rule("/jwt", CORS, auth_filter("tokens")),
            _rule("/no-cors", auth_filter("team")),
            _rule("/far", CORS, auth_filter("far")),
            _rule("/near", CORS, auth_filter("near")),
            _rule("/broken", CORS, auth_filter("broken")),
        ),
        edge_auth("team", type="basic", secret="users"),
        edge_auth("sso", type="forward", url=f"{auth_server.url}/check"),
        edge_auth("tokens", type="jwt", **{"jwks-secret": "keys"}),
        edge_auth("far", type="basic", secret="users", **{"allow-source-ranges": "10.0.0.0/8"}),
        edge_auth("near", type="basic", secret="users", **{"allow-source-ranges": "127.0.0.0/8"}),
        edge_auth("broken", type="basic", secrett="users"),
        secret("users", {"auth": bcrypt_line(*USER)}),
        secret("keys", {"jwks.json": jwks(keys.jwk("rsa", "k1"))}),
        ingress_class(),
        ingress("vault", rule("app.example.com", path("/", "web")), annotations=notes),
        *backend_objects("web", [web]),
    )
    return Site(
        (address(table), port),
        proxy.http,
        web,
        auth_server,
        {
            "basic": basic(*USER),
            "forward": "Bearer letmein",
            "jwt": f"Bearer {token}",
        },
    )


async def _ask(addr: tuple[str, int], method: str, target: str, headers: dict[str, str]) -> Any:
    c = await Client.connect(addr)
    try:
        return await c.request(method, target, host="app.example.com", headers=headers)
    finally:
        await c.close()


def _answered_by_the_proxy(r: Any) -> bool:
    """The proxy's own answer: none of the echo backend's JSON nor its headers."""
    return r.header("content-type") != "application/json" and b"backend" not in r.body


def _cors_headers(r: Any) -> dict[str, str | None]:
    return {name: r.header(name) for name in ALLOWED}


@pytest.mark.parametrize("mechanism", ["basic", "forward", "jwt"])
async def test_a_preflight_gets_the_cors_answer_without_credentials(
    site: Site, mechanism: str
) -> None:
    c = await Client.connect(site.gateway)
    try:
        r = await c.request("OPTIONS", f"/{mechanism}/items", host="x", headers=PREFLIGHT)
        assert r.status == 200, r.body
        assert _cors_headers(r) == ALLOWED
        assert r.header("www-authenticate") is None
        assert _answered_by_the_proxy(r)
        # Wrong credentials on a preflight change nothing: still only the filter's answer.
        wrong = {**PREFLIGHT, "Authorization": "Basic Z3Vlc3M6Z3Vlc3M="}
        r = await c.request("OPTIONS", f"/{mechanism}/items", host="x", headers=wrong)
        assert r.status == 200
        assert _answered_by_the_proxy(r)
        assert site.web.requests == 0
        assert site.auth.seen == []
        # The actual request, on the same connection, still needs credentials.
        actual = {"Origin": APP}
        r = await c.request("PUT", f"/{mechanism}/items", host="x", headers=actual)
        assert r.status == 401
        assert r.header("access-control-allow-origin") is None
        assert site.web.requests == 0
        actual["Authorization"] = site.credentials[mechanism]
        r = await c.request("PUT", f"/{mechanism}/items", host="x", headers=actual)
        assert r.status == 200
        assert r.json()["method"] == "PUT"
        assert r.header("access-control-allow-origin") == APP
        assert site.web.requests == 1
    finally:
        await c.close()
    assert len(site.auth.seen) == (2 if mechanism == "forward" else 0)


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        ("OPTIONS", {}),
        ("OPTIONS", {"Origin": APP}),
        ("OPTIONS", {"Access-Control-Request-Method": "PUT"}),
        ("OPTIONS", {"Origin": APP, "Access-Control-Request-Method": ""}),
        ("OPTIONS", {"Origin": "", "Access-Control-Request-Method": "PUT"}),
        ("GET", PREFLIGHT),
        ("POST", PREFLIGHT),
    ],
    ids=[
        "plain-options",
        "no-request-method",
        "no-origin",
        "empty-request-method",
        "empty-origin",
        "get-with-preflight-headers",
        "post-with-preflight-headers",
    ],
)
@pytest.mark.parametrize("mechanism", ["basic", "forward"])
async def test_what_is_no_preflight_needs_credentials(
    site: Site, mechanism: str, method: str, headers: dict[str, str]
) -> None:
    r = await _ask(site.gateway, method, f"/{mechanism}/items", headers)
    assert r.status == 401
    assert r.header("access-control-allow-methods") is None
    assert site.web.requests == 0
    # Forward auth was asked (and said no): the request went through the mechanism.
    assert len(site.auth.seen) == (1 if mechanism == "forward" else 0)


@pytest.mark.parametrize("mechanism", ["basic", "forward", "jwt"])
async def test_a_preflight_from_another_origin_gets_no_allow_headers(
    site: Site, mechanism: str
) -> None:
    headers = {**PREFLIGHT, "Origin": EVIL, "Access-Control-Request-Headers": "x-header-1"}
    r = await _ask(site.gateway, "OPTIONS", f"/{mechanism}/items", headers)
    assert r.status == 200
    assert _cors_headers(r) == {**dict.fromkeys(ALLOWED), "vary": "origin"}
    assert _answered_by_the_proxy(r)
    assert site.web.requests == 0
    assert site.auth.seen == []


async def test_a_preflight_needs_auth_where_no_cors_filter_answers_it(site: Site) -> None:
    """A rule without a CORS filter, and an Ingress (kexpose has no CORS on Ingresses): the
    preflight is an ordinary request, refused without credentials, passed with them."""
    for addr, target in ((site.gateway, "/no-cors/items"), (site.ingress, "/items")):
        r = await _ask(addr, "OPTIONS", target, PREFLIGHT)
        assert r.status == 401, target
        assert r.header("www-authenticate") is not None
        assert r.header("access-control-allow-origin") is None
        assert site.web.requests == 0
    for n, (addr, target) in enumerate(
        ((site.gateway, "/no-cors/items"), (site.ingress, "/items")), start=1
    ):
        headers = {**PREFLIGHT, "Authorization": basic(*USER)}
        r = await _ask(addr, "OPTIONS", target, headers)
        assert r.status == 200
        assert r.json()["method"] == "OPTIONS"  # the backend answered it
        assert site.web.requests == n


async def test_the_allow_list_and_a_broken_configuration_hold_for_preflights(site: Site) -> None:
    r = await _ask(site.gateway, "OPTIONS", "/far/items", PREFLIGHT)
    assert r.status == 403
    assert r.header("access-control-allow-origin") is None
    r = await _ask(site.gateway, "OPTIONS", "/broken/items", PREFLIGHT)
    assert r.status == 503
    assert r.header("access-control-allow-origin") is None
    # A client inside the allow-list gets the filter's answer; its actual request needs auth.
    r = await _ask(site.gateway, "OPTIONS", "/near/items", PREFLIGHT)
    assert r.status == 200
    assert _cors_headers(r) == ALLOWED
    assert (await _ask(site.gateway, "PUT", "/near/items", {"Origin": APP})).status == 401
    assert site.web.requests == 0


async def test_http2_preflights_take_the_same_way(site: Site) -> None:
    c = await H2Client.connect(site.gateway)
    try:
        preflight = [(k.lower(), v) for k, v in PREFLIGHT.items()]
        r = await c.request("/jwt/items", method="OPTIONS", headers=preflight)
        assert r.status == 200
        assert r.header(b"access-control-allow-origin") == APP.encode()
        assert r.header(b"access-control-allow-methods") == b"GET, PUT"
        assert r.header(b"content-type") != b"application/json"
        r = await c.request("/forward/items", method="OPTIONS", headers=preflight[:1])
        assert r.status == 401
        r = await c.request("/far/items", method="OPTIONS", headers=preflight)
        assert r.status == 403
    finally:
        await c.close()
    assert site.web.requests == 0
    assert len(site.auth.seen) == 1  # the OPTIONS without Access-Control-Request-Method
