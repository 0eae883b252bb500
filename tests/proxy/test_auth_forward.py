"""Forward authentication against a scripted auth service over loopback (edge-auth.md,
"Forward auth"; nginx ``auth_request`` semantics)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import pytest
import pytest_asyncio
from tests.proxy.auth_servers import AUTH, Reply, ScriptedServer, Seen
from tests.proxy.conftest import ProxyFactory, backend_objects
from tests.proxy.objects import ingress, path, rule

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def auth_server() -> AsyncIterator[ScriptedServer]:
    server = await ScriptedServer().start()
    yield server
    await server.stop()


def _forward_ingress(url: str, **extra: str) -> Any:
    notes = {f"{AUTH}auth-type": "forward", f"{AUTH}auth-url": url, **extra}
    return ingress("web", rule("app.example.com", path("/", "web")), annotations=notes)


def _script(seen: Seen) -> Reply:
    """Decides by the client's X-Test header (passed on to the auth service)."""
    mode = seen.get("x-test") or "ok"
    if mode == "ok":
        return 200, [("X-Auth-User", "alice"), ("X-Auth-Groups", "a"), ("X-Other", "no")], b""
    if mode == "ok-bare":
        return 204, [], b""
    if mode == "401":
        return (
            401,
            [("WWW-Authenticate", 'Bearer realm="sso"'), ("Set-Cookie", "s=1"), ("X-Secret", "x")],
            b"log in",
        )
    if mode == "403":
        return 403, [("Content-Type", "text/html")], b"<p>no</p>"
    if mode == "302":
        return 302, [("Location", "https://sso.example/")], b""
    return int(mode), [], b"nope"


async def test_forward_case_table(
    start_proxy: ProxyFactory, echo: Callable[..., Any], auth_server: ScriptedServer
) -> None:
    web = await echo("web")
    auth_server.reply = _script
    proxy = await start_proxy()
    proxy.load(
        _forward_ingress(
            f"{auth_server.url}/verify?app=shop",
            **{f"{AUTH}auth-response-headers": "X-Auth-User, x-auth-groups"},
        ),
        *backend_objects("web", [web]),
    )
    c = await proxy.client()
    spoof = {"X-Auth-User": "root", "X-Auth-Groups": "admins"}
    # 2xx: on to the backend with the listed headers copied, the client's removed.
    r = await c.request(
        "POST",
        "/cart?id=7",
        headers={"X-Test": "ok", "Cookie": "c=1", "Expect": "100-continue", **spoof},
        body=b"item",
    )
    assert r.status == 200
    seen = r.json()["headers"]
    assert [v for k, v in seen if k == "x-auth-user"] == ["alice"]
    assert [v for k, v in seen if k == "x-auth-groups"] == ["a"]
    assert "x-other" not in dict(seen)
    assert r.json()["sha256"]  # the body went to the backend
    sub = auth_server.seen[-1]
    assert (sub.method, sub.target) == ("GET", "/verify?app=shop")
    assert sub.get("host") == f"127.0.0.4:{auth_server.port}"
    assert sub.get("x-forwarded-method") == "POST"
    assert sub.get("x-forwarded-proto") == "http"
    assert sub.get("x-forwarded-host") == "app.example.com"
    assert sub.get("x-forwarded-uri") == "/cart?id=7"
    assert sub.get("x-forwarded-for") == "127.0.0.1"
    assert sub.get("x-original-url") == "http://app.example.com/cart?id=7"
    assert sub.get("cookie") == "c=1"
    assert sub.get("content-length") is None
    assert sub.get("expect") is None
    # A 2xx without the headers: the client's are still removed.
    r = await c.request("GET", "/", headers={"X-Test": "ok-bare", **spoof})
    assert r.status == 200
    assert {"x-auth-user", "x-auth-groups"}.isdisjoint(dict(r.json()["headers"]))
    # 401/403: that status, the auth answer's body and its challenge/location/cookie headers.
    r = await c.request("GET", "/", headers={"X-Test": "401"})
    assert (r.status, r.body) == (401, b"log in")
    assert r.header("www-authenticate") == 'Bearer realm="sso"'
    assert r.header("set-cookie") == "s=1"
    assert r.header("x-secret") is None
    r = await c.request("GET", "/", headers={"X-Test": "403"})
    assert (r.status, r.body) == (403, b"<p>no</p>")
    # Any other answer: 500, never 2xx.
    for mode in ("302", "404", "500", "503"):
        r = await c.request("GET", "/", headers={"X-Test": mode})
        assert r.status == 500, mode
    assert web.requests == 2
    # Keep-alive towards the auth service: one connection for all of the above.
    assert auth_server.connections == 1
    await c.close()


async def test_forward_signin_redirect(
    start_proxy: ProxyFactory, echo: Callable[..., Any], auth_server: ScriptedServer
) -> None:
    web = await echo("web")
    auth_server.reply = _script
    proxy = await start_proxy()
    signin = "https://sso.example/start?x=1"
    proxy.load(
        _forward_ingress(f"{auth_server.url}/", **{f"{AUTH}auth-signin": signin}),
        *backend_objects("web", [web]),
    )
    c = await proxy.client()
    r = await c.request("GET", "/a b?q=1&r=2".replace(" ", "%20"), headers={"X-Test": "401"})
    assert r.status == 302
    original = "http://app.example.com/a%20b?q=1&r=2"
    assert r.header("location") == f"{signin}&rd={quote(original, safe='')}"
    r = await c.request("GET", "/", headers={"X-Test": "403"})
    assert r.status == 403  # only a 401 goes to the sign-in page
    await c.close()


async def test_forward_unreachable_and_slow(
    start_proxy: ProxyFactory, echo: Callable[..., Any], auth_server: ScriptedServer
) -> None:
    web = await echo("web")
    proxy = await start_proxy()
    await auth_server.stop()  # nothing listens there any more
    proxy.load(_forward_ingress(auth_server.url), *backend_objects("web", [web]))
    c = await proxy.client()
    r = await c.request("GET", "/")
    assert r.status == 503
    slow = await ScriptedServer(delay=1.0).start()
    try:
        proxy.load(
            _forward_ingress(slow.url, **{f"{AUTH}auth-timeout": "0.2"}),
            *backend_objects("web", [web]),
        )
        r = await c.request("GET", "/")
        assert r.status == 503
    finally:
        await slow.stop()
    assert web.requests == 0
    await c.close()


async def test_forward_answers_cached_only_when_asked(
    start_proxy: ProxyFactory, echo: Callable[..., Any], auth_server: ScriptedServer
) -> None:
    web = await echo("web")
    auth_server.reply = _script
    proxy = await start_proxy()
    clock = [0.0]
    proxy.plane.guard.clock = lambda: clock[0]
    proxy.load(_forward_ingress(auth_server.url), *backend_objects("web", [web]))
    c = await proxy.client()
    for _ in range(3):
        assert (await c.request("GET", "/", headers={"Authorization": "Bearer a"})).status == 200
    assert len(auth_server.seen) == 3
    proxy.load(
        _forward_ingress(auth_server.url, **{f"{AUTH}auth-cache-seconds": "30"}),
        *backend_objects("web", [web]),
    )
    for _ in range(3):
        assert (await c.request("GET", "/", headers={"Authorization": "Bearer a"})).status == 200
    assert len(auth_server.seen) == 4
    # Another Authorization or Cookie value is another entry; failures are not cached.
    assert (await c.request("GET", "/", headers={"Authorization": "Bearer b"})).status == 200
    assert (
        await c.request("GET", "/", headers={"Cookie": "s=1", "Authorization": "Bearer a"})
    ).status == 200
    assert len(auth_server.seen) == 6
    for _ in range(2):
        r = await c.request("GET", "/", headers={"Authorization": "Bearer c", "X-Test": "403"})
        assert r.status == 403
    assert len(auth_server.seen) == 8
    clock[0] += 31  # expired: asked again
    assert (await c.request("GET", "/", headers={"Authorization": "Bearer a"})).status == 200
    assert len(auth_server.seen) == 9
    await c.close()


async def test_a_malformed_auth_answer_is_a_500(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    """An answer that is not HTTP is still an answer: 500, like any other unusable one."""
    web = await echo("web")

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: nope\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.4", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        proxy = await start_proxy()
        proxy.load(_forward_ingress(f"http://127.0.0.4:{port}/"), *backend_objects("web", [web]))
        c = await proxy.client()
        r = await c.request("GET", "/", headers={"Expect": "100-continue"})
        assert r.status == 500
        await c.close()
    finally:
        server.close()
        await server.wait_closed()
    assert web.requests == 0
