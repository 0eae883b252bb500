"""Edge-authentication rules (edge-auth.md's annotations), one case table each."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kexpose.environment import ENVIRONMENTS

from .objects import (
    NS,
    auth_ingress,
    auth_stack,
    basic_auth_secret,
    check,
    edge_auth,
    found_at,
    ingress,
    jwks_secret,
    rule,
)

Objects = list[dict[str, Any]]
ADMIN = f"Ingress/{NS}/admin"
JWT = f"Ingress/{NS}/jwt"
BASIC = {"kexpose.dev/auth-type": "basic", "kexpose.dev/auth-secret": "admin-users"}
JWT_NOTES = {
    "kexpose.dev/auth-type": "jwt",
    "kexpose.dev/auth-jwks-secret": "shop/admin-jwks",
    "kexpose.dev/auth-jwt-issuer": "https://id.example.com/",
    "kexpose.dev/auth-jwt-audiences": "shop-api",
}


def note(key: str) -> str:
    return f'metadata.annotations["{key}"]'


def _with(*objects: dict[str, Any], drop: tuple[str, ...] = ()) -> Objects:
    """The auth stack with ``objects`` replacing those of the same kind and name, and the
    objects named in ``drop`` (``Kind/name``) left out."""
    given = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    stack = []
    for obj in copy.deepcopy(auth_stack()):
        key = (obj["kind"], obj["metadata"]["name"])
        if f"{key[0]}/{key[1]}" not in drop:
            stack.append(given.pop(key, obj))
    return [*stack, *given.values()]


def _admin(notes: dict[str, str], **kw: Any) -> dict[str, Any]:
    return auth_ingress("admin", host="admin.shop.example.com", annotations=notes, **kw)


def _basic_admin(*hosts: str | None, tls_hosts: list[str] | None = None) -> Objects:
    """The auth stack with Ingress ``admin`` under basic auth: a rule per host to Service
    ``admin``, TLS for ``tls_hosts`` (none: plain HTTP only)."""
    tls: dict[str, Any] = (
        {"tls": [{"hosts": tls_hosts, "secretName": "admin-tls"}]} if tls_hosts else {}
    )
    return _with(
        ingress(
            "admin",
            NS,
            annotations=BASIC,
            ingressClassName="kexpose",
            **tls,
            rules=[rule(host, service_name="admin") for host in hosts],
        )
    )


def _jwt(**notes: str) -> dict[str, Any]:
    merged = {**JWT_NOTES, **{k.replace("_", "-"): v for k, v in notes.items()}}
    return auth_ingress(
        "jwt",
        host="jwt.shop.example.com",
        annotations={k: v for k, v in merged.items() if v != "<drop>"},
    )


# --- auth-basic-requires-tls ------------------------------------------------------------------

H0 = "spec.rules[0].host"


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        (auth_stack(), []),
        (_with(_admin(BASIC, tls=False)), [(ADMIN, H0)]),
        (
            _with(_admin({"nginx.ingress.kubernetes.io/auth-type": "basic"}, tls=False)),
            [(ADMIN, H0)],
        ),
        (_with(_admin({"kexpose.dev/auth-type": "forward"}, tls=False)), []),  # not basic
        (_with(_admin({"kexpose.dev/auth-type": "jwt"}, tls=False)), []),
        (
            _basic_admin(None),
            [(ADMIN, H0)],  # a rule without host answers on any host, plain HTTP included
        ),
        (
            _basic_admin("admin.shop.example.com", tls_hosts=["*.shop.example.com"]),
            [],  # a one-label wildcard TLS host covers it
        ),
        (
            _basic_admin(
                "admin.shop.example.com",
                "ops.shop.example.com",
                tls_hosts=["admin.shop.example.com"],
            ),
            [(ADMIN, "spec.rules[1].host")],
        ),
    ],
    ids=[
        "stack",
        "no-tls",
        "nginx-basic",
        "forward",
        "jwt",
        "no-host",
        "wildcard-tls",
        "second-host",
    ],
)
def test_auth_basic_requires_tls(objects: Objects, expected: list[tuple[str, str]]) -> None:
    for env in ("staging", "prod"):
        assert found_at(objects, env, "auth-basic-requires-tls") == expected
    assert check(objects, "dev", rule_id="auth-basic-requires-tls") == []


# --- auth-secret-provisioned ------------------------------------------------------------------

SECRET = note("kexpose.dev/auth-secret")
JWKS = note("kexpose.dev/auth-jwks-secret")
BASIC_AUTH_SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "admin-users", "namespace": NS},
    "type": "kubernetes.io/basic-auth",
    "stringData": {"username": "ops", "password": "generated-at-deploy"},
}


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        (auth_stack(), []),
        (_with(drop=("Secret/admin-users",)), [(ADMIN, SECRET)]),
        (_with(_admin({"kexpose.dev/auth-type": "basic"})), [(ADMIN, SECRET)]),
        (_with(_admin({**BASIC, "kexpose.dev/auth-secret": ""})), [(ADMIN, SECRET)]),
        (_with(_admin({**BASIC, "kexpose.dev/auth-secret": "shop/admin-users"})), []),
        (_with(_admin({**BASIC, "kexpose.dev/auth-secret": "ops/admin-users"})), [(ADMIN, SECRET)]),
        (_with(_admin({**BASIC, "kexpose.dev/auth-secret": "a/b/c"})), [(ADMIN, SECRET)]),
        (_with(_admin({**BASIC, "kexpose.dev/auth-secret": "/admin-users"})), [(ADMIN, SECRET)]),
        (_with(basic_auth_secret(htpasswd="")), [(ADMIN, SECRET)]),  # an empty htpasswd file
        (_with({**basic_auth_secret(), "data": {"users": "eA=="}}), [(ADMIN, SECRET)]),
        (_with(BASIC_AUTH_SECRET), []),
        (_with({**BASIC_AUTH_SECRET, "type": "Opaque"}), [(ADMIN, SECRET)]),
        (_with({**BASIC_AUTH_SECRET, "stringData": {"username": "ops"}}), [(ADMIN, SECRET)]),
        (
            _with({**basic_auth_secret(), "metadata": {"name": "admin-users", "namespace": "ops"}}),
            [(ADMIN, SECRET)],
        ),
        # In dev as well, and for the nginx annotation it is not checked (its own Secret format).
        (_with(_admin({"nginx.ingress.kubernetes.io/auth-type": "basic"})), []),
        (_with(drop=("Secret/admin-jwks",)), [(JWT, JWKS)]),
        (_with({**jwks_secret(), "stringData": {"keys.json": "{}"}}), [(JWT, JWKS)]),
        (_with({**jwks_secret(), "stringData": {}, "data": {"jwks.json": "e30="}}), []),
        (_with(_jwt(**{"kexpose.dev/auth-jwks-secret": "admin-jwks"})), []),
        (_with(_jwt(**{"kexpose.dev/auth-jwks-secret": "elsewhere/admin-jwks"})), [(JWT, JWKS)]),
        (
            _with(
                _jwt(
                    **{
                        "kexpose.dev/auth-jwks-secret": "<drop>",
                        "kexpose.dev/auth-jwks-url": "https://id.example.com/jwks",
                    }
                ),
                drop=("Secret/admin-jwks",),
            ),
            [],  # only a JWKS URL: nothing in the stack to check
        ),
        (
            _with(
                _admin(
                    {
                        "kexpose.dev/auth-type": "forward",
                        "kexpose.dev/auth-url": "https://auth.example.com/",
                    }
                ),
                drop=("Secret/admin-users",),
            ),
            [],
        ),
    ],
    ids=[
        "stack",
        "secret-missing",
        "annotation-missing",
        "annotation-empty",
        "namespace-slash-name",
        "other-namespace",
        "malformed",
        "empty-namespace",
        "empty-htpasswd",
        "no-auth-key",
        "basic-auth-type",
        "username-password-not-basic-auth-type",
        "no-password",
        "secret-in-other-namespace",
        "nginx-basic",
        "jwks-missing",
        "jwks-wrong-key",
        "jwks-data",
        "jwks-own-namespace",
        "jwks-other-namespace",
        "jwks-url-only",
        "forward",
    ],
)
def test_auth_secret_provisioned(objects: Objects, expected: list[tuple[str, str]]) -> None:
    for env in ENVIRONMENTS:
        assert found_at(objects, env, "auth-secret-provisioned") == expected


def test_auth_secret_provisioned_says_why() -> None:
    (v,) = check(_with(drop=("Secret/admin-users",)), "dev", rule_id="auth-secret-provisioned")
    assert "no Secret 'admin-users' in namespace 'shop'" in v.message
    assert "503" in v.message
    (v,) = check(_with(BASIC_AUTH_SECRET | {"type": "Opaque"}), rule_id="auth-secret-provisioned")
    assert "'auth'" in v.message


# --- auth-url-safe ----------------------------------------------------------------------------

URL = note("kexpose.dev/auth-url")
JWKS_URL = note("kexpose.dev/auth-jwks-url")


def _forward(url: str) -> Objects:
    notes = {"kexpose.dev/auth-type": "forward", "kexpose.dev/auth-url": url}
    return _with(_admin(notes), drop=("Secret/admin-users",))


@pytest.mark.parametrize(
    ("url", "bad"),
    [
        ("https://auth.example.com/verify", False),
        ("http://oauth2-proxy.auth.svc.cluster.local:4180/oauth2/auth", False),
        ("HTTPS://Auth.Example.com/", False),  # scheme and host are case-insensitive
        ("http://203.0.113.7/auth", False),
        ("http://[2001:db8::1]/auth", False),
        ("ftp://auth.example.com/", True),
        ("/oauth2/auth", True),  # not absolute
        ("auth.example.com/verify", True),
        ("https:///verify", True),  # no host
        ("http://localhost:4180/", True),
        ("http://LOCALHOST./", True),
        ("http://auth.localhost/", True),
        ("http://127.0.0.1/", True),
        ("http://127.8.9.10/", True),
        ("http://[::1]/", True),
        ("http://[::ffff:127.0.0.1]/", True),  # IPv4-mapped
        ("http://169.254.169.254/latest/meta-data/", True),  # the cloud metadata endpoint
        ("http://[fe80::1]/", True),
        ("http://0.0.0.0:8080/", True),
        ("http://[::]/", True),
        ("http://2130706433/", True),  # 127.0.0.1 as inet_aton reads it
        ("http://0x7f.1/", True),
        ("http://0251.0376.0251.0376/", True),  # 169.254.169.254 in octal
        ("http://user@127.0.0.1/", True),
        ("http://127.0.0.1@auth.example.com/", False),  # the host is after the userinfo
        ("http://[::1/", True),  # not a URL
    ],
)
def test_auth_url_safe(url: str, bad: bool) -> None:
    objects = _forward(url)
    # The same URL in an EdgeAuth (the Gateway API form) gets the same verdict.
    edge = [*objects, edge_auth("admin", type="forward", url=url)]
    for env in ENVIRONMENTS:
        assert found_at(objects, env, "auth-url-safe") == ([(ADMIN, URL)] if bad else [])
        assert found_at(edge, env, "auth-url-safe") == (
            [(ADMIN, URL), (f"EdgeAuth/{NS}/admin", "spec.url")] if bad else []
        )


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        (auth_stack(), []),
        (
            _with(
                _jwt(
                    **{"kexpose.dev/auth-jwks-url": "https://id.example.com/.well-known/jwks.json"}
                )
            ),
            [],
        ),
        (
            _with(_jwt(**{"kexpose.dev/auth-jwks-url": "http://169.254.169.254/jwks"})),
            [(JWT, JWKS_URL)],
        ),
        (_with(_jwt(**{"kexpose.dev/auth-jwks-url": "file:///etc/jwks.json"})), [(JWT, JWKS_URL)]),
        (
            _with(
                auth_ingress(
                    "admin",
                    annotations={
                        "kexpose.dev/auth-type": "forward",
                        "kexpose.dev/auth-url": "http://localhost/",
                        "kexpose.dev/auth-jwks-url": "http://[::1]/",
                    },
                ),
                drop=("Secret/admin-users",),
            ),
            [(ADMIN, URL), (ADMIN, JWKS_URL)],
        ),
        # Only the kexpose annotations: ingress-nginx's auth-url is another rule's business.
        (_with(_admin({"nginx.ingress.kubernetes.io/auth-url": "http://127.0.0.1/"})), []),
    ],
    ids=["stack", "jwks-url", "jwks-metadata", "jwks-file", "both", "nginx-auth-url"],
)
def test_auth_url_safe_reads_both_annotations(
    objects: Objects, expected: list[tuple[str, str]]
) -> None:
    assert found_at(objects, "dev", "auth-url-safe") == expected


# --- auth-jwt-audience-required ---------------------------------------------------------------

ISS = note("kexpose.dev/auth-jwt-issuer")
AUD = note("kexpose.dev/auth-jwt-audiences")


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        (auth_stack(), []),
        (_with(_jwt(**{"kexpose.dev/auth-jwt-issuer": "<drop>"})), [(JWT, ISS)]),
        (_with(_jwt(**{"kexpose.dev/auth-jwt-audiences": "<drop>"})), [(JWT, AUD)]),
        (
            _with(
                _jwt(
                    **{
                        "kexpose.dev/auth-jwt-issuer": "<drop>",
                        "kexpose.dev/auth-jwt-audiences": "<drop>",
                    }
                )
            ),
            [(JWT, ISS), (JWT, AUD)],
        ),
        (_with(_jwt(**{"kexpose.dev/auth-jwt-issuer": ""})), [(JWT, ISS)]),
        (_with(_jwt(**{"kexpose.dev/auth-jwt-issuer": "  "})), [(JWT, ISS)]),
        (_with(_jwt(**{"kexpose.dev/auth-jwt-audiences": ""})), [(JWT, AUD)]),
        (_with(_jwt(**{"kexpose.dev/auth-jwt-audiences": " , "})), [(JWT, AUD)]),  # lists none
        (_with(_jwt(**{"kexpose.dev/auth-jwt-audiences": "shop-api, shop-admin"})), []),
        # Basic and forward auth carry no tokens to pin.
        (_with(_admin(BASIC)), []),
    ],
    ids=[
        "stack",
        "no-issuer",
        "no-audiences",
        "neither",
        "empty-issuer",
        "blank-issuer",
        "empty-audiences",
        "comma-only",
        "two-audiences",
        "basic",
    ],
)
def test_auth_jwt_audience_required(objects: Objects, expected: list[tuple[str, str]]) -> None:
    assert found_at(objects, "prod", "auth-jwt-audience-required") == expected
    for env in ("dev", "staging"):
        assert check(objects, env, rule_id="auth-jwt-audience-required") == []
