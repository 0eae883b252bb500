"""The four edge-auth rules on the Gateway API form: a kexpose ``EdgeAuth`` that HTTPRoute rules
name in an ``ExtensionRef`` filter (edge-auth.md, "Gateway API"), one case table per rule; and
the same stacks rendered with ``api: ingress`` and ``api: gateway`` get the same verdicts."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kexpose.environment import ENVIRONMENTS, Environment
from kexpose.manifests import TlsMaterial
from kexpose.plan import plan_stack
from kexpose.policy import PolicyConfig, evaluate
from kexpose.validation import parse_stack

from .objects import (
    EDGE_NS,
    NS,
    REDIRECT_TO_HTTPS,
    auth_filter,
    auth_route,
    basic_auth_secret,
    check,
    edge_auth,
    edge_auth_stack,
    found_at,
    gateway,
    jwks_secret,
    listener,
    parent,
)

Objects = list[dict[str, Any]]
ADMIN = f"EdgeAuth/{NS}/admin"
JWT = f"EdgeAuth/{NS}/jwt"
ROUTE = f"HTTPRoute/{NS}/admin"
REF = "spec.rules[0].filters[0].extensionRef.name"
HOST = "admin.shop.example.com"


def _with(*objects: dict[str, Any], drop: tuple[str, ...] = ()) -> Objects:
    """The EdgeAuth stack with ``objects`` replacing those of the same kind and name, and the
    objects named in ``drop`` (``Kind/name``) left out."""
    given = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    stack = []
    for obj in copy.deepcopy(edge_auth_stack()):
        key = (obj["kind"], obj["metadata"]["name"])
        if f"{key[0]}/{key[1]}" not in drop:
            stack.append(given.pop(key, obj))
    return [*stack, *given.values()]


def _admin(**settings: Any) -> dict[str, Any]:
    return edge_auth("admin", **settings)


def _jwt(**settings: Any) -> dict[str, Any]:
    merged = {
        "type": "jwt",
        "jwks_secret": "shop/admin-jwks",
        "jwt_issuer": "https://id.example.com/",
        "jwt_audiences": "shop-api",
        **settings,
    }
    return edge_auth("jwt", **{k: v for k, v in merged.items() if v != "<drop>"})


# --- auth-basic-requires-tls ------------------------------------------------------------------


def _edge(*listeners: dict[str, Any], name: str = "kexpose") -> dict[str, Any]:
    """kexpose's Gateway, its HTTP listener replaced by ``listeners`` (HTTPS ones kept)."""
    (gw,) = [o for o in edge_auth_stack() if o["kind"] == "Gateway"]
    https = [item for item in gw["spec"]["listeners"] if item["protocol"] == "HTTPS"]
    return gateway(name, EDGE_NS, *listeners, *https)


def _http(
    hostname: str | None = None, allowed: dict[str, Any] | None = None, port: int = 80
) -> dict[str, Any]:
    """A plain HTTP listener admitting every namespace unless ``allowed`` says otherwise."""
    item = listener("http", "HTTP", port, hostname=hostname, allowed_from="All")
    if allowed is not None:
        item["allowedRoutes"] = allowed
    return item


def _on(*parents: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return auth_route("admin", parents=list(parents), **kw)


def _selector(**labels: str) -> dict[str, Any]:
    return {"namespaces": {"from": "Selector", "selector": {"matchLabels": labels}}}


def _namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


ALL: dict[str, Any] = {"namespaces": {"from": "All"}}
OPEN = _edge(_http())  # its HTTP listener takes routes from every namespace
ANY_SECTION = parent("kexpose", section=None)
FLAGGED = [(ROUTE, REF)]


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        (edge_auth_stack(), []),
        # kexpose's own layout, but the route names the HTTP listener: it only redirects for
        # the Gateway's own namespace, so the route is not taken there (served nowhere).
        (_with(_on(parent("kexpose", section="http"))), []),
        (_with(OPEN, _on(parent("kexpose", section="http"))), FLAGGED),
        (_with(OPEN, _on(ANY_SECTION)), FLAGGED),  # no sectionName: every listener
        (_with(_on(ANY_SECTION)), []),  # ... but the HTTP listener admits only its namespace
        (_with(OPEN), []),  # attached to the HTTPS listener by sectionName
        (_with(OPEN, _on(parent("kexpose", section=None, port=443))), []),
        (_with(OPEN, _on(parent("kexpose", section=None, port=80))), FLAGGED),
        (_with(OPEN, _on(parent("kexpose", section="http", port=8080))), []),
        # Listener hostname against route hostnames (Gateway API: suffix wildcards).
        (_with(_edge(_http("plain.example.com")), _on(ANY_SECTION)), []),
        (_with(_edge(_http(HOST)), _on(ANY_SECTION)), FLAGGED),
        (_with(_edge(_http("*.example.com")), _on(ANY_SECTION)), FLAGGED),  # two labels
        (_with(_edge(_http("*.admin.shop.example.com")), _on(ANY_SECTION)), []),
        (_with(_edge(_http("plain.example.com")), _on(ANY_SECTION, hostnames=None)), FLAGGED),
        (_with(OPEN, _on(ANY_SECTION, hostnames=["*.shop.example.com"])), FLAGGED),
        # allowedRoutes: kinds and namespaces (the metadata.name label is always known).
        (
            _with(
                _edge(_http(allowed={"kinds": [{"kind": "GRPCRoute"}], **ALL})), _on(ANY_SECTION)
            ),
            [],
        ),
        (
            _with(
                _edge(_http(allowed={"kinds": [{"kind": "HTTPRoute"}], **ALL})), _on(ANY_SECTION)
            ),
            FLAGGED,
        ),
        (
            _with(_edge(_http(allowed=_selector(**{"kubernetes.io/metadata.name": NS}))), OPEN),
            [],  # the route still names the HTTPS listener
        ),
        (
            _with(
                _edge(_http(allowed=_selector(**{"kubernetes.io/metadata.name": NS}))),
                _on(ANY_SECTION),
            ),
            FLAGGED,
        ),
        (
            _with(
                _edge(_http(allowed=_selector(**{"kubernetes.io/metadata.name": "other"}))),
                _on(ANY_SECTION),
            ),
            [],
        ),
        # A label the stack cannot tell (no Namespace object) counts as a match.
        (_with(_edge(_http(allowed=_selector(team="shop"))), _on(ANY_SECTION)), FLAGGED),
        (
            _with(
                _edge(_http(allowed=_selector(team="shop"))),
                _on(ANY_SECTION),
                _namespace(NS, team="ops"),
            ),
            [],
        ),
        (
            _with(
                _edge(_http(allowed=_selector(team="shop"))),
                _on(ANY_SECTION),
                _namespace(NS, team="shop"),
            ),
            FLAGGED,
        ),
        (
            _with(_edge(_http(allowed={"namespaces": {"from": "Same"}})), _on(ANY_SECTION)),
            [],
        ),
        (_with(_edge(_http(allowed={})), _on(ANY_SECTION)), []),  # from defaults to Same
        (
            _with(_edge(_http(allowed={"namespaces": {"from": "Selector"}})), _on(ANY_SECTION)),
            FLAGGED,  # no selector: the API server refuses it; assumed to attach
        ),
        # What the EdgeAuth asks for.
        (_with(OPEN, _on(ANY_SECTION), _admin(type=" basic ", secret="admin-users")), FLAGGED),
        (
            _with(OPEN, _on(ANY_SECTION), _admin(type="forward", url="https://auth.example.com/")),
            [],
        ),
        (_with(OPEN, _on(ANY_SECTION), _admin(type="jwt", jwks_url="https://id.example/k")), []),
        (_with(OPEN, _on(ANY_SECTION), drop=("EdgeAuth/admin",)), []),  # unresolvable: a 500
        (
            _with(OPEN, _on(ANY_SECTION, filters=[auth_filter("admin", group="example.com")])),
            [],
        ),
        # Authenticated before the redirect: the 401 challenge would come over plain HTTP.
        (_with(OPEN, _on(ANY_SECTION, filters=[auth_filter("admin"), REDIRECT_TO_HTTPS])), FLAGGED),
        (_with(OPEN, _on(ANY_SECTION, filters=[REDIRECT_TO_HTTPS])), []),  # only redirects
        (_with(_on(parent("gone", section=None))), []),  # route-parent-exists reports it
        (
            _with(OPEN, _on(ANY_SECTION, kind="GRPCRoute")),
            [(f"GRPCRoute/{NS}/admin", REF)],  # gRPC clients send credentials unasked
        ),
    ],
    ids=[
        "stack",
        "http-section-same-namespace",
        "http-section-open",
        "no-section-open",
        "no-section-same-namespace",
        "https-section-open",
        "port-443",
        "port-80",
        "http-section-wrong-port",
        "listener-other-host",
        "listener-same-host",
        "listener-wildcard-two-labels",
        "listener-wildcard-below",
        "route-without-hostnames",
        "route-wildcard",
        "kinds-grpc-only",
        "kinds-http",
        "selector-https-section",
        "selector-name-matches",
        "selector-name-other",
        "selector-unknown-label",
        "selector-namespace-mismatch",
        "selector-namespace-match",
        "same-namespace-explicit",
        "allowed-routes-empty",
        "selector-missing",
        "blank-around-basic",
        "forward",
        "jwt",
        "edge-auth-missing",
        "other-group",
        "auth-then-redirect",
        "redirect-only",
        "gateway-missing",
        "grpcroute",
    ],
)
def test_auth_basic_requires_tls_on_routes(
    objects: Objects, expected: list[tuple[str, str]]
) -> None:
    for env in ("staging", "prod"):
        assert found_at(objects, env, "auth-basic-requires-tls") == expected
    assert check(objects, "dev", rule_id="auth-basic-requires-tls") == []


def test_auth_basic_requires_tls_on_routes_says_where_and_why() -> None:
    (v,) = check(_with(OPEN, _on(ANY_SECTION)), "prod", rule_id="auth-basic-requires-tls")
    assert v.resource == ROUTE
    assert v.field == REF
    assert "EdgeAuth/shop/admin" in v.message
    assert "Gateway/kexpose-system/kexpose listener 'http' (port 80)" in v.message
    assert "sectionName" in v.fix


# --- auth-secret-provisioned ------------------------------------------------------------------

SECRET = "spec.secret"
JWKS = "spec.jwks-secret"
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
        (edge_auth_stack(), []),
        (_with(drop=("Secret/admin-users",)), [(ADMIN, SECRET)]),
        (_with(_admin(type="basic")), [(ADMIN, SECRET)]),
        (_with(_admin(type="basic", secret="")), [(ADMIN, SECRET)]),
        (_with(_admin(type="basic", secret="  ")), [(ADMIN, SECRET)]),
        (_with(_admin(type="basic", secret="shop/admin-users")), []),
        (_with(_admin(type="basic", secret=" admin-users ")), []),  # the proxy strips it
        (_with(_admin(type="basic", secret="ops/admin-users")), [(ADMIN, SECRET)]),
        (_with(_admin(type="basic", secret="a/b/c")), [(ADMIN, SECRET)]),
        (_with(basic_auth_secret(htpasswd="")), [(ADMIN, SECRET)]),
        (_with({**basic_auth_secret(), "data": {"users": "eA=="}}), [(ADMIN, SECRET)]),
        (_with(BASIC_AUTH_SECRET), []),
        (_with({**BASIC_AUTH_SECRET, "type": "Opaque"}), [(ADMIN, SECRET)]),
        (_with(drop=("Secret/admin-jwks",)), [(JWT, JWKS)]),
        (_with({**jwks_secret(), "stringData": {"keys.json": "{}"}}), [(JWT, JWKS)]),
        (_with(_jwt(jwks_secret="admin-jwks")), []),
        (_with(_jwt(jwks_secret="elsewhere/admin-jwks")), [(JWT, JWKS)]),
        (
            _with(
                _jwt(jwks_secret="<drop>", jwks_url="https://id.example.com/jwks"),
                drop=("Secret/admin-jwks",),
            ),
            [],  # only a JWKS URL: nothing in the stack to check
        ),
        (
            _with(
                _admin(type="forward", url="https://auth.example.com/"),
                drop=("Secret/admin-users",),
            ),
            [],
        ),
        # Not kexpose's EdgeAuth: another group's kind of the same name is not read.
        (
            _with(
                {**_admin(type="basic", secret="gone"), "apiVersion": "example.com/v1"},
                drop=("EdgeAuth/admin",),
            ),
            [],
        ),
        # Read whether or not a route names it, as an Ingress's annotations are.
        (_with(_admin(type="basic", secret="gone"), drop=("HTTPRoute/admin",)), [(ADMIN, SECRET)]),
    ],
    ids=[
        "stack",
        "secret-missing",
        "field-missing",
        "field-empty",
        "field-blank",
        "namespace-slash-name",
        "blanks-around-name",
        "other-namespace",
        "malformed",
        "empty-htpasswd",
        "no-auth-key",
        "basic-auth-type",
        "username-password-not-basic-auth-type",
        "jwks-missing",
        "jwks-wrong-key",
        "jwks-own-namespace",
        "jwks-other-namespace",
        "jwks-url-only",
        "forward",
        "other-group",
        "unreferenced",
    ],
)
def test_auth_secret_provisioned_on_edge_auth(
    objects: Objects, expected: list[tuple[str, str]]
) -> None:
    for env in ENVIRONMENTS:
        assert found_at(objects, env, "auth-secret-provisioned") == expected


def test_auth_secret_provisioned_on_edge_auth_says_why() -> None:
    (v,) = check(_with(drop=("Secret/admin-users",)), "dev", rule_id="auth-secret-provisioned")
    assert v.message.startswith(f"{ADMIN} spec.secret: ")
    assert "no Secret 'admin-users' in namespace 'shop'" in v.message
    assert "every route rule whose ExtensionRef names this EdgeAuth" in v.message


# --- auth-url-safe ----------------------------------------------------------------------------
# The URL test itself is one function for both forms; test_rules_auth.py's URL table runs it
# over an EdgeAuth too. Here: which fields are read.


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        (edge_auth_stack(), []),
        (_with(_admin(type="forward", url="https://auth.example.com/verify")), []),
        (_with(_admin(type="forward", url="http://169.254.169.254/")), [(ADMIN, "spec.url")]),
        (_with(_admin(type="forward", url=" http://127.0.0.1/ ")), [(ADMIN, "spec.url")]),
        (_with(_jwt(jwks_url="http://[::1]/jwks", jwks_secret="<drop>")), [(JWT, "spec.jwks-url")]),
        (_with(_jwt(jwks_url="file:///etc/jwks.json")), [(JWT, "spec.jwks-url")]),
        (
            _with(_admin(type="forward", url="http://localhost/", jwks_url="http://0.0.0.0/")),
            [(ADMIN, "spec.url"), (ADMIN, "spec.jwks-url")],
        ),
        # signin is where a browser goes, not what the proxy calls.
        (_with(_admin(type="forward", url="https://a.example/", signin="http://localhost/")), []),
        (
            _with({**_admin(type="forward", url="http://127.0.0.1/"), "apiVersion": "x.io/v1"}),
            [],
        ),
    ],
    ids=[
        "stack",
        "forward",
        "metadata",
        "blanks",
        "jwks-loopback",
        "jwks-file",
        "both",
        "signin",
        "other-group",
    ],
)
def test_auth_url_safe_on_edge_auth(objects: Objects, expected: list[tuple[str, str]]) -> None:
    for env in ENVIRONMENTS:
        assert found_at(objects, env, "auth-url-safe") == expected


# --- auth-jwt-audience-required ---------------------------------------------------------------

ISS = "spec.jwt-issuer"
AUD = "spec.jwt-audiences"


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        (edge_auth_stack(), []),
        (_with(_jwt(jwt_issuer="<drop>")), [(JWT, ISS)]),
        (_with(_jwt(jwt_audiences="<drop>")), [(JWT, AUD)]),
        (_with(_jwt(jwt_issuer="<drop>", jwt_audiences="<drop>")), [(JWT, ISS), (JWT, AUD)]),
        (_with(_jwt(jwt_issuer="")), [(JWT, ISS)]),
        (_with(_jwt(jwt_issuer="  ")), [(JWT, ISS)]),
        (_with(_jwt(jwt_audiences=" , ")), [(JWT, AUD)]),
        (_with(_jwt(jwt_audiences="shop-api, shop-admin")), []),
        (_with(_jwt(type=" jwt ", jwt_audiences="")), [(JWT, AUD)]),
        (_with(_jwt(type="basic", secret="admin-users", jwt_issuer="<drop>")), []),
        (_with({**_jwt(jwt_issuer="<drop>"), "apiVersion": "x.io/v1"}, drop=("EdgeAuth/jwt",)), []),
    ],
    ids=[
        "stack",
        "no-issuer",
        "no-audiences",
        "neither",
        "empty-issuer",
        "blank-issuer",
        "comma-only",
        "two-audiences",
        "blank-around-jwt",
        "basic",
        "other-group",
    ],
)
def test_auth_jwt_audience_required_on_edge_auth(
    objects: Objects, expected: list[tuple[str, str]]
) -> None:
    assert found_at(objects, "prod", "auth-jwt-audience-required") == expected
    for env in ("dev", "staging"):
        assert check(objects, env, rule_id="auth-jwt-audience-required") == []
    if expected:
        (v, *_) = check(objects, "prod", rule_id="auth-jwt-audience-required")
        assert v.fix.startswith("Set spec.jwt-")


# --- Ingress and Gateway API agree ------------------------------------------------------------

AUTH_RULES = (
    "auth-basic-requires-tls",
    "auth-secret-provisioned",
    "auth-url-safe",
    "auth-jwt-audience-required",
)
_MATERIAL = TlsMaterial("<made at deployment>", "<made at deployment>")


def _rendered(auth: dict[str, Any], env: Environment, api: str) -> Objects:
    """One app behind ``auth`` through the real model, profile and builders (``plan_stack``),
    on ``api``. (A path's own ``auth:`` needs the Gateway API, so it has no Ingress twin.)"""
    paths: list[dict[str, Any]] = [{"path": "/", "port": "http"}]
    app: dict[str, Any] = {
        "name": "shop",
        "namespace": NS,
        "workload": {"image": "shop:1", "ports": [{"name": "http", "containerPort": 8080}]},
        "service": {"ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        "ingress": {"rules": [{"host": "shop.example.com", "paths": paths}]},
        "tls": {"mode": "self-signed"},
        "auth": auth,
    }
    raw = {"environment": env, "controller": {"kind": "kexpose", "api": api}, "apps": [app]}
    spec = parse_stack(raw, stack_file=f"stacks/Pulumi.{env}.yaml")
    material = {"self-signed": _MATERIAL}
    return [p.manifest for p in plan_stack(spec, tls=lambda a: material.get(a.tls.mode or ""))]


def _verdicts(objects: Objects, env: Environment) -> list[str]:
    found = evaluate(objects, environment=env, config=PolicyConfig.project(), rules=AUTH_RULES)
    return sorted(v.rule for v in found)


def _everywhere(rule: str) -> dict[str, list[str]]:
    return {env: [rule] for env in ENVIRONMENTS}


BASIC_USERS = {"type": "basic", "users": [{"name": "ops", "passwordConfig": "opsPassword"}]}
JWT_PINNED = {
    "type": "jwt",
    "jwksUrl": "https://id.example.com/jwks",
    "issuer": "https://id.example.com/",
    "audiences": ["shop"],
}


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        (BASIC_USERS, {}),
        (
            {"type": "basic", "secret": "missing-users"},
            _everywhere("auth-secret-provisioned"),
        ),
        (JWT_PINNED, {}),
        (
            {**JWT_PINNED, "jwksUrl": None, "jwksSecret": "shop-jwks"},
            _everywhere("auth-secret-provisioned"),
        ),
        ({**JWT_PINNED, "audiences": []}, {"prod": ["auth-jwt-audience-required"]}),
        (
            {"type": "jwt", "jwksUrl": "https://id.example.com/jwks"},
            {"prod": ["auth-jwt-audience-required", "auth-jwt-audience-required"]},
        ),
        (
            {"type": "forward", "url": "http://169.254.169.254/latest/"},
            _everywhere("auth-url-safe"),
        ),
        ({"type": "forward", "url": "https://auth.example.com/verify"}, {}),
    ],
    ids=[
        "basic-users",
        "basic-missing-secret",
        "jwt",
        "jwks-secret-missing",
        "jwt-no-audiences",
        "jwt-unpinned",
        "forward-metadata",
        "forward",
    ],
)
def test_ingress_and_gateway_agree(auth: dict[str, Any], expected: dict[str, list[str]]) -> None:
    for env in ENVIRONMENTS:
        on_ingress = _verdicts(_rendered(auth, env, "ingress"), env)
        on_gateway = _verdicts(_rendered(auth, env, "gateway"), env)
        assert on_gateway == on_ingress == expected.get(env, []), env


def test_a_rendered_basic_auth_gateway_stack_leaks_nothing_in_dev_only() -> None:
    """dev lets an app without TLS attach to the Gateway's plain HTTP listener, as its Ingress
    serves plain HTTP; the rule is inactive there. Made to look like staging (the rule active),
    the same objects are flagged at the route rule's ExtensionRef, as the Ingress is at its
    host."""
    app = {**BASIC_USERS}
    for api, resource, field in (
        ("ingress", f"Ingress/{NS}/shop", "spec.rules[0].host"),
        ("gateway", f"HTTPRoute/{NS}/shop", REF),
    ):
        raw = {
            "environment": "dev",
            "controller": {"kind": "kexpose", "api": api},
            "apps": [
                {
                    "name": "shop",
                    "namespace": NS,
                    "workload": {
                        "image": "shop:1",
                        "ports": [{"name": "http", "containerPort": 80}],
                    },
                    "service": {"ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
                    "ingress": {
                        "rules": [{"host": "shop.example.com", "paths": [{"port": "http"}]}]
                    },
                    "auth": app,
                }
            ],
        }
        spec = parse_stack(raw, stack_file="stacks/Pulumi.dev.yaml")
        objects = [p.manifest for p in plan_stack(spec, tls=lambda _: None)]
        assert _verdicts(objects, "dev") == []
        assert found_at(objects, "staging", "auth-basic-requires-tls") == [(resource, field)]
