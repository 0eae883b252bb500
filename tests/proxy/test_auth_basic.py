"""Basic authentication and source ranges over real loopback sockets (edge-auth.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from tests.proxy.auth_servers import AUTH, basic, bcrypt_line, secret, sha_line
from tests.proxy.conftest import ProxyFactory, backend_objects
from tests.proxy.objects import ingress, path, rule

pytestmark = pytest.mark.asyncio

HTPASSWD = "\n".join(
    [
        "# team",
        bcrypt_line("alice", "s3cret:with:colons"),
        "",
        sha_line("bob", "hunter2"),
        "bob2:$apr1$abcdefgh$jENn7gMAVPUBTYVKBjwHl0",  # openssl passwd -apr1 -salt abcdefgh pa:ss
        "carol:plain-text-is-ignored",
    ]
)


def _basic_ingress(**extra: str) -> Any:
    notes = {f"{AUTH}auth-type": "basic", f"{AUTH}auth-secret": "users", **extra}
    return ingress("web", rule("app.example.com", path("/", "web")), annotations=notes)


async def test_basic_case_table(start_proxy: ProxyFactory, echo: Callable[..., Any]) -> None:
    web = await echo("web")
    proxy = await start_proxy()
    proxy.load(
        _basic_ingress(**{f"{AUTH}auth-realm": "team area"}),
        secret("users", {"auth": HTPASSWD}),
        *backend_objects("web", [web]),
    )
    assert any("carol" in p and "ignored" in p for p in proxy.plane.table.problems)
    assert not any("plain-text-is-ignored" in p for p in proxy.plane.table.problems)
    c = await proxy.client()
    cases: list[tuple[dict[str, str], int, str | None]] = [
        ({}, 401, None),
        ({"Authorization": basic("alice", "s3cret:with:colons")}, 200, "alice"),
        ({"Authorization": basic("alice", "s3cret:with:colons", "bAsIc")}, 200, "alice"),
        ({"Authorization": basic("alice", "s3cret")}, 401, None),
        ({"Authorization": basic("Alice", "s3cret:with:colons")}, 401, None),
        ({"Authorization": basic("bob", "hunter2")}, 200, "bob"),
        ({"Authorization": basic("bob2", "pa:ss")}, 200, "bob2"),
        ({"Authorization": basic("bob2", "pa:sS")}, 401, None),
        ({"Authorization": basic("carol", "plain-text-is-ignored")}, 401, None),
        ({"Authorization": basic("mallory", "x")}, 401, None),
        ({"Authorization": "Basic not-base64!"}, 401, None),
        ({"Authorization": "Bearer abc"}, 401, None),
    ]
    for headers, status, user in cases:
        r = await c.request("GET", "/", headers={**headers, "X-Forwarded-User": "root"})
        assert r.status == status, (headers, r.status)
        if status == 401:
            assert r.header("www-authenticate") == 'Basic realm="team area"'
            assert r.body == b"401 Unauthorized\n"  # never says which part was wrong
            continue
        seen = r.json()["headers"]
        assert [v for k, v in seen if k == "x-forwarded-user"] == [user]
        assert dict(seen)["authorization"] == headers["Authorization"]
    assert web.requests == 4
    # Two Authorization headers are ambiguous: refused, whichever one is good.
    c.send(
        b"GET / HTTP/1.1\r\nHost: app.example.com\r\nAuthorization: "
        + basic("alice", "s3cret:with:colons").encode()
        + b"\r\nAuthorization: Basic eA==\r\n\r\n"
    )
    assert (await c.response()).status == 401
    assert web.requests == 4
    await c.close()


async def test_a_refused_request_body_never_reaches_the_backend(
    start_proxy: ProxyFactory, echo: Callable[..., Any]
) -> None:
    """A body sent with refused (or not yet checked) credentials is dropped, and the connection
    serves the next request; with good credentials the body is forwarded whole."""
    web = await echo("web")
    proxy = await start_proxy()
    proxy.load(
        _basic_ingress(),
        secret("users", {"auth": bcrypt_line("alice", "pw")}),
        *backend_objects("web", [web]),
    )
    c = await proxy.client()
    body = b"x" * 200_000
    r = await c.request(
        "POST", "/upload", body=body, headers={"Authorization": basic("alice", "no")}
    )
    assert r.status == 401
    r = await c.request(
        "POST", "/upload", body=body, headers={"Authorization": basic("alice", "pw")}
    )
    assert r.status == 200
    assert r.json()["size"] == len(body)
    r = await c.request("GET", "/", headers={"Authorization": basic("alice", "pw")})
    assert r.status == 200
    assert web.requests == 2
    await c.close()
