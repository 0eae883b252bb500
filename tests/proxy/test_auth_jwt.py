"""JWT bearer tokens over real loopback sockets: local and remote key sets, and the attacks
RFC 8725 warns about (edge-auth.md, "JWT")."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
from tests.proxy.auth_servers import AUTH, Keys, ScriptedServer, Seen, forged, jwks, secret
from tests.proxy.conftest import ProxyFactory, backend_objects
from tests.proxy.objects import ingress, path, rule

pytestmark = pytest.mark.asyncio

ISSUER = "https://issuer.example"
INVALID = 'Bearer realm="kexpose", error="invalid_token"'


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys.make()


def _jwt_ingress(**extra: str) -> Any:
    notes = {
        f"{AUTH}auth-type": "jwt",
        f"{AUTH}auth-jwt-issuer": ISSUER,
        f"{AUTH}auth-jwt-audiences": "shop, admin",
        f"{AUTH}auth-jwt-claim-headers": "sub:X-User,groups:X-Groups",
        **extra,
    }
    return ingress("web", rule("app.example.com", path("/", "web")), annotations=notes)


def _payload(token: str | None) -> dict[str, Any]:
    assert token is not None
    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def _claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISSUER, "aud": "shop", "sub": "u-1", "exp": now + 300, **over}


async def test_jwt_case_table(
    start_proxy: ProxyFactory, echo: Callable[..., Any], keys: Keys
) -> None:
    web = await echo("web")
    proxy = await start_proxy()
    key_set = jwks(
        keys.jwk("rsa", "k1"),
        keys.jwk("ec", "k2"),
        keys.jwk("ed", "k3"),
        keys.jwk("oct", "k4", alg="HS256"),
        keys.jwk("rsa", "k5", alg="PS256"),
    )
    proxy.load(
        _jwt_ingress(**{f"{AUTH}auth-jwks-secret": "keys"}),
        secret("keys", {"jwks.json": key_set}),
        *backend_objects("web", [web]),
    )
    now = int(time.time())
    pem = keys.rsa_public_pem()
    good = _claims(groups=["a", "b"])
    cases: list[tuple[str, str | None, int]] = [
        ("no token", None, 401),
        ("RS256", keys.token("rsa", good, alg="RS256"), 200),
        ("RS512 on the same RSA key", keys.token("rsa", good, alg="RS512"), 200),
        (
            "PS256 on a key whose JWK says PS256",
            keys.token("rsa", good, alg="PS256", kid="k5"),
            200,
        ),
        (
            "RS256 on a key whose JWK says PS256",
            keys.token("rsa", good, alg="RS256", kid="k5"),
            401,
        ),
        ("ES256", keys.token("ec", good, alg="ES256", kid="k2"), 200),
        ("EdDSA", keys.token("ed", good, alg="EdDSA", kid="k3"), 200),
        ("HS256 with an oct key", keys.token("oct", good, alg="HS256", kid="k4"), 200),
        ("no kid: every fitting key tried", keys.token("ec", good, alg="ES256", kid=None), 200),
        (
            "key confusion: HS256 with the RSA public key",
            forged({"alg": "HS256", "kid": "k1"}, good, pem),
            401,
        ),
        ("key confusion without kid", forged({"alg": "HS256"}, good, pem), 401),
        ("alg none", forged({"alg": "none", "kid": "k1"}, good, None), 401),
        ("alg None", forged({"alg": "None"}, good, None), 401),
        ("unknown kid", keys.token("rsa", good, alg="RS256", kid="zz"), 401),
        ("expired beyond the skew", keys.token("rsa", _claims(exp=now - 120), alg="RS256"), 401),
        ("expired within the skew", keys.token("rsa", _claims(exp=now - 30), alg="RS256"), 200),
        ("not yet valid", keys.token("rsa", _claims(nbf=now + 120), alg="RS256"), 401),
        ("nbf within the skew", keys.token("rsa", _claims(nbf=now + 30), alg="RS256"), 200),
        (
            "no exp",
            keys.token("rsa", {k: v for k, v in good.items() if k != "exp"}, alg="RS256"),
            401,
        ),
        ("wrong issuer", keys.token("rsa", _claims(iss="https://evil"), alg="RS256"), 401),
        ("wrong audience", keys.token("rsa", _claims(aud="other"), alg="RS256"), 401),
        (
            "audience list holding one",
            keys.token("rsa", _claims(aud=["x", "admin"]), alg="RS256"),
            200,
        ),
        (
            "no audience",
            keys.token("rsa", {k: v for k, v in good.items() if k != "aud"}, alg="RS256"),
            401,
        ),
        ("signature of another key", keys.token("ec", good, alg="ES256", kid="k1"), 401),
        ("malformed", "abc.def", 401),
    ]
    c = await proxy.client()
    for name, token, status in cases:
        headers = {"X-User": "root", "X-Groups": "admins"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        r = await c.request("GET", "/", headers=headers)
        assert r.status == status, name
        if status == 401:
            challenge = 'Bearer realm="kexpose"' if token is None else INVALID
            assert r.header("www-authenticate") == challenge, name
            continue
        seen = r.json()["headers"]
        assert [v for k, v in seen if k == "x-user"] == ["u-1"], name
        assert dict(seen)["authorization"] == f"Bearer {token}", name
        # The client's own X-Groups is removed; the claim's list is joined with ",".
        groups = [v for k, v in seen if k == "x-groups"]
        assert groups == (["a,b"] if "groups" in _payload(token) else []), name
    r = await c.request(
        "GET", "/", headers={"Authorization": f"bearer {keys.token('rsa', good, alg='RS256')}"}
    )
    assert r.status == 200  # the scheme is case-insensitive
    await c.close()


@pytest_asyncio.fixture
async def jwks_server() -> AsyncIterator[ScriptedServer]:
    server = await ScriptedServer().start()
    yield server
    await server.stop()


async def test_remote_jwks_rotation(
    start_proxy: ProxyFactory, echo: Callable[..., Any], keys: Keys, jwks_server: ScriptedServer
) -> None:
    """Keys served over HTTP: fetched once and cached; a token with a new kid makes the set be
    fetched again at once, but not more than once per 10 s for made-up kids."""
    web = await echo("web")
    current = {"body": jwks(keys.jwk("rsa", "k1"))}

    def reply(seen: Seen) -> tuple[int, list[tuple[str, str]], bytes]:
        assert seen.target == "/keys?v=1"
        return 200, [("content-type", "application/json")], current["body"].encode()

    jwks_server.reply = reply
    proxy = await start_proxy()
    clock = [1000.0]
    proxy.plane.guard.clock = lambda: clock[0]
    proxy.load(
        _jwt_ingress(**{f"{AUTH}auth-jwks-url": f"{jwks_server.url}/keys?v=1"}),
        *backend_objects("web", [web]),
    )
    c = await proxy.client()

    async def status(token: str) -> int:
        r = await c.request("GET", "/", headers={"Authorization": f"Bearer {token}"})
        if r.status == 401:
            assert r.header("www-authenticate") == INVALID
        code: int = r.status
        return code

    for _ in range(3):
        assert await status(keys.token("rsa", _claims(), alg="RS256")) == 200
    assert len(jwks_server.seen) == 1
    # Rotation: the issuer now signs with an EC key under a new kid.
    current["body"] = jwks(keys.jwk("rsa", "k1"), keys.jwk("ec", "k2"))
    rotated = keys.token("ec", _claims(), alg="ES256", kid="k2")
    clock[0] += 5  # within 10 s of the last fetch: not fetched again
    assert await status(rotated) == 401
    assert len(jwks_server.seen) == 1
    clock[0] += 6  # 11 s after it: fetched again at once, and the new key verifies
    assert await status(rotated) == 200
    assert len(jwks_server.seen) == 2
    # Made-up kids within 10 s of that fetch: refused without fetching again.
    for kid in ("x1", "x2", "x3"):
        assert await status(keys.token("rsa", _claims(), alg="RS256", kid=kid)) == 401
    assert len(jwks_server.seen) == 2
    # After 5 minutes the set is fetched again even for known kids; a removed key stops working.
    current["body"] = jwks(keys.jwk("ec", "k2"))
    clock[0] += 301
    assert await status(keys.token("rsa", _claims(), alg="RS256")) == 401
    assert len(jwks_server.seen) == 3
    assert await status(rotated) == 200
    await c.close()


async def test_remote_jwks_unreachable_fails_closed(
    start_proxy: ProxyFactory, echo: Callable[..., Any], keys: Keys, jwks_server: ScriptedServer
) -> None:
    web = await echo("web")
    jwks_server.reply = lambda seen: (500, [], b"down")
    proxy = await start_proxy()
    proxy.load(
        _jwt_ingress(**{f"{AUTH}auth-jwks-url": f"{jwks_server.url}/keys"}),
        *backend_objects("web", [web]),
    )
    c = await proxy.client()
    r = await c.request(
        "GET", "/", headers={"Authorization": f"Bearer {keys.token('rsa', _claims(), alg='RS256')}"}
    )
    assert r.status == 401
    assert web.requests == 0
    await c.close()


async def test_bad_key_sets_fail_closed(
    start_proxy: ProxyFactory, echo: Callable[..., Any], keys: Keys
) -> None:
    web = await echo("web")
    proxy = await start_proxy()
    for data, why in (
        ({"jwks.json": "{not json"}, "not JSON"),
        ({"jwks.json": json.dumps({"kty": "RSA"})}, "not a JWK Set"),
        ({"other": "x"}, "no jwks.json"),
    ):
        proxy.load(
            _jwt_ingress(**{f"{AUTH}auth-jwks-secret": "keys"}),
            secret("keys", data),
            *backend_objects("web", [web]),
        )
        assert any(why in p and "503" in p for p in proxy.plane.table.problems), why
        c = await proxy.client()
        token = keys.token("rsa", _claims(), alg="RS256")
        r = await c.request("GET", "/", headers={"Authorization": f"Bearer {token}"})
        assert r.status == 503
        await c.close()
    assert web.requests == 0
