"""Where edge auth applies: source ranges, trusted proxies, exempt paths, per-Ingress settings
on a shared host, fail-closed configuration, and a Secret changed under load (edge-auth.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from tests.proxy.auth_servers import AUTH, basic, bcrypt_line, secret
from tests.proxy.conftest import FAST, ProxyFactory, backend_objects
from tests.proxy.objects import backend, ingress, path, rule

from kexpose.proxy.filters import parse_networks

pytestmark = pytest.mark.asyncio

RANGES = f"{AUTH}allow-source-ranges"


def _web(**notes: str) -> Any:
    return ingress("web", rule("app.example.com", path("/", "web")), annotations=notes)


async def test_source_ranges_and_trusted_proxies(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    web = await echo("web")
    plain = await start_proxy()
    trusted, _ = parse_networks("127.0.0.0/8, ::1/128")
    behind = await start_proxy(replace(FAST, trusted_proxies=trusted))
    # (allow-list, X-Forwarded-For sent, status without trusted proxies, with 127/8 trusted)
    cases: list[tuple[str, str | None, int, int]] = [
        ("127.0.0.0/8", None, 200, 200),
        ("10.0.0.0/8, 2001:db8::/32", None, 403, 403),
        ("10.0.0.0/8", "10.1.2.3", 403, 200),  # a client's own XFF is believed only via trust
        ("10.0.0.0/8", "10.1.2.3, 127.0.0.5", 403, 200),  # right-most untrusted hop
        ("10.0.0.0/8", "10.1.2.3, 192.0.2.9", 403, 403),  # 192.0.2.9 is the client
        ("192.0.2.0/24", "192.0.2.9, 127.0.0.9", 403, 200),
        ("127.0.0.0/8", "10.1.2.3", 200, 403),
        ("10.0.0.0/8", "not-an-ip, 127.0.0.2", 403, 403),  # a malformed chain fails closed
        ("2001:db8::/32", "2001:db8::7", 403, 200),
    ]
    for ranges, xff, without, with_trust in cases:
        for proxy, expected in ((plain, without), (behind, with_trust)):
            proxy.load(_web(**{RANGES: ranges}), *backend_objects("web", [web]))
            c = await proxy.client()
            headers = {"X-Forwarded-For": xff} if xff else {}
            r = await c.request("GET", "/", headers=headers)
            assert r.status == expected, (ranges, xff, proxy is behind)
            await c.close()


async def test_order_ranges_before_auth_and_exempt_paths(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    web = await echo("web")
    proxy = await start_proxy()
    users = secret("users", {"auth": bcrypt_line("alice", "pw")})
    notes = {
        f"{AUTH}auth-type": "basic",
        f"{AUTH}auth-secret": "users",
        f"{AUTH}auth-exempt-paths": "/healthz, /.well-known/",
    }
    proxy.load(_web(**notes, **{RANGES: "10.0.0.0/8"}), users, *backend_objects("web", [web]))
    c = await proxy.client()
    assert (await c.request("GET", "/")).status == 403  # the allow-list first: 403, not 401
    assert (await c.request("GET", "/healthz")).status == 403
    proxy.load(_web(**notes), users, *backend_objects("web", [web]))
    cases = [
        ("/healthz", 200),
        ("/healthz/", 200),
        ("/healthz/deep", 200),
        ("/healthzfoo", 401),
        ("/HEALTHZ", 401),
        ("/.well-known/acme", 200),
        ("/.well-known", 200),
        ("/", 401),
        ("/x/../healthz", 200),  # matched after normalisation, as routes are
    ]
    for target, status in cases:
        r = await c.request("GET", target, headers={"X-Forwarded-User": "root"})
        assert r.status == status, target
        if status == 200:  # exempt, but a spoofed identity still never reaches the backend
            assert "x-forwarded-user" not in dict(r.json()["headers"])
    await c.close()


async def test_settings_are_per_ingress_on_a_shared_host(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    web = await echo("web")
    admin = await echo("admin", "127.0.0.3")
    proxy = await start_proxy()
    proxy.load(
        ingress("public", rule("app.example.com", path("/", "web"))),
        ingress(
            "private",
            rule("app.example.com", path("/admin", "admin")),
            default=backend("admin"),
            annotations={f"{AUTH}auth-type": "basic", f"{AUTH}auth-secret": "users"},
        ),
        ingress(
            "catchall",
            default=backend("admin"),
            annotations={f"{AUTH}auth-type": "basic", f"{AUTH}auth-secret": "users"},
        ),
        secret("users", {"auth": bcrypt_line("alice", "pw")}),
        *backend_objects("web", [web]),
        *backend_objects("admin", [admin]),
    )
    c = await proxy.client()
    assert (await c.request("GET", "/shop")).status == 200
    assert (await c.request("GET", "/admin/x")).status == 401
    ok = await c.request("GET", "/admin/x", headers={"Authorization": basic("alice", "pw")})
    assert ok.json()["backend"] == "admin"
    # The default backend of an Ingress with auth is authenticated too.
    assert (await c.request("GET", "/", host="other.example.com")).status == 401
    await c.close()


FAIL_CLOSED: list[tuple[dict[str, str], str]] = [
    ({"auth-type": "magic"}, "auth-type is 'magic'"),
    ({"auth-type": "basic"}, "auth-secret"),
    ({"auth-type": "basic", "auth-secret": "missing"}, "default/missing not found"),
    ({"auth-type": "basic", "auth-secret": "nokey"}, "has no auth key"),
    ({"auth-type": "basic", "auth-secret": "users", "auth-realm": 'a"b'}, "auth-realm"),
    ({"auth-type": "forward"}, "auth-url"),
    ({"auth-type": "forward", "auth-url": "/relative"}, "auth-url is '/relative'"),
    ({"auth-type": "forward", "auth-url": "ftp://auth.example/"}, "auth-url"),
    ({"auth-type": "forward", "auth-url": "http://a.example/", "auth-timeout": "-1"}, "timeout"),
    ({"auth-type": "jwt"}, "auth-jwks-secret"),
    ({"auth-type": "jwt", "auth-jwks-secret": "nokey"}, "no jwks.json"),
    ({"allow-source-ranges": "10.0.0.0/8, 300.1.2.3/8"}, "300.1.2.3/8"),
    ({"allow-source-ranges": "10.0.0.0/8,bogus"}, "bogus"),
]


@pytest.mark.parametrize(("notes", "named"), FAIL_CLOSED)
async def test_bad_configuration_fails_closed(
    start_proxy: ProxyFactory, echo: Callable[..., Any], notes: dict[str, str], named: str
) -> None:
    web = await echo("web")
    other = await echo("other", "127.0.0.3")
    proxy = await start_proxy()
    proxy.load(
        _web(**{f"{AUTH}{k}": v for k, v in notes.items()}),
        ingress("other", rule("other.example.com", path("/", "other"))),
        secret("nokey", {"x": "y"}),
        secret("users", {"auth": bcrypt_line("alice", "pw")}),
        *backend_objects("web", [web]),
        *backend_objects("other", [other]),
    )
    problems = [p for p in proxy.plane.table.problems if "Ingress default/web" in p]
    assert len(problems) == 1, proxy.plane.table.problems
    assert named in problems[0]
    assert "503" in problems[0]
    assert "annotation kexpose.dev/" in problems[0]  # the object and the annotation, named
    c = await proxy.client()
    r = await c.request("GET", "/", headers={"Authorization": basic("alice", "pw")})
    assert r.status == 503
    assert (await c.request("GET", "/", host="other.example.com")).status == 200
    assert web.requests == 0
    await c.close()


async def test_secret_changed_under_load_never_lets_a_request_through(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    """Clients keep sending old and new credentials while the Secret is swapped back and forth
    (and once deleted): every answer is 200 for the credentials valid in the table that took
    the request, else 401/503, and the backend never sees a request without valid ones."""
    web = await echo("web")
    proxy = await start_proxy()
    notes = {f"{AUTH}auth-type": "basic", f"{AUTH}auth-secret": "users"}
    old = secret("users", {"auth": bcrypt_line("alice", "old")})
    new = secret("users", {"auth": bcrypt_line("alice", "new")})
    stages = [old, new, None, old, new]
    proxy.load(_web(**notes), old, *backend_objects("web", [web]))
    statuses: dict[int, int] = {}
    stop = asyncio.Event()

    async def client(password: str | None) -> None:
        c = await proxy.client()
        headers = {"Authorization": basic("alice", password)} if password else {}
        while not stop.is_set():
            r = await c.request("GET", "/", headers={**headers, "X-Forwarded-User": "root"})
            statuses[r.status] = statuses.get(r.status, 0) + 1
            assert r.status in (200, 401, 503)
            if r.status == 200:
                assert password in ("old", "new")  # never without or with wrong ones
                users = [v for k, v in r.json()["headers"] if k == "x-forwarded-user"]
                assert users == ["alice"]
        await c.close()

    tasks = [asyncio.create_task(client(p)) for p in ("old", "new", None, "wrong", "old")]
    for stage in stages * 2:
        await asyncio.sleep(0.05)
        objs = [_web(**notes), *backend_objects("web", [web])]
        proxy.load(*objs, *([stage] if stage is not None else []))
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*tasks)
    assert statuses.get(200, 0) > 0
    assert statuses.get(401, 0) > 0
    assert statuses.get(503, 0) > 0
    # Every 200 carried credentials valid at that moment: the backend saw only those.
    assert web.requests == statuses[200]
