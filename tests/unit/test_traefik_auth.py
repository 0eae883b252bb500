"""Edge auth under a Traefik controller (``kind: traefik``): the Middlewares (ipAllowList,
basicAuth, forwardAuth) an app's Ingress or HTTPRoute rules name, what Traefik cannot enforce and
is refused, and the controller's CRD provider, RBAC and CRDs.

Pure: stacks in, manifests out. Every Middleware validates against Traefik's own CRD schema
(``kexpose.traefik``, through ``tests/unit/gateway_schema.py``).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from tests.unit.gateway_schema import gateway_errors

from kexpose.errors import ConfigError
from kexpose.manifests import TlsMaterial
from kexpose.manifests.controller import KINDS
from kexpose.manifests.middleware import TraefikRef, traefik_ref
from kexpose.model import ControllerSpec, StackSpec
from kexpose.plan import plan_stack
from kexpose.traefik import TRAEFIK_VERSION, crds
from kexpose.validation import parse_stack

Raw = dict[str, Any]
Manifest = dict[str, Any]
MATERIAL = TlsMaterial("<cert>", "<key>")
ROUTER = "traefik.ingress.kubernetes.io/router.middlewares"

APP: Raw = {
    "name": "web",
    "namespace": "shop",
    "workload": {"image": "nginx", "ports": [{"name": "http", "containerPort": 8080}]},
    "service": {"ports": [{"name": "http", "port": 80}]},
    "ingress": {"rules": [{"host": "shop.example.com", "paths": [{"port": "http"}]}]},
    "tls": {"mode": "self-signed"},
}
USERS: Raw = {"type": "basic", "users": [{"name": "alice", "passwordConfig": "alicePassword"}]}
FORWARD: Raw = {
    "type": "forward",
    "url": "https://auth.example/check",
    "responseHeaders": ["X-User", "X-Email"],
}


def stack(*apps: Raw, api: str = "ingress", kind: str = "traefik", **controller: Any) -> Raw:
    return {
        "environment": "staging",
        "controller": {"kind": kind, "api": api, **controller},
        "apps": list(apps),
    }


def plan(raw: Raw) -> list[Manifest]:
    spec: StackSpec = parse_stack(raw, stack_file="stacks/Pulumi.test.yaml")
    tls = {"self-signed", "secret"}
    return [
        p.manifest for p in plan_stack(spec, tls=lambda a: MATERIAL if a.tls.mode in tls else None)
    ]


def find(objs: list[Manifest], kind: str, namespace: str | None = None) -> list[Manifest]:
    return [
        m for m in objs if m["kind"] == kind and namespace in (None, m["metadata"].get("namespace"))
    ]


def middlewares(objs: list[Manifest]) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m["spec"] for m in find(objs, "Middleware")}


def args_of(objs: list[Manifest]) -> list[str]:
    (deployment,) = find(objs, "Deployment", "kexpose-system")
    args: list[str] = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def with_paths(app: Raw, *paths: Raw) -> Raw:
    return {**app, "ingress": {"rules": [{"host": "shop.example.com", "paths": list(paths)}]}}


# ---- what Traefik cannot enforce: refused with the stack, field by field --------------------

GATEWAY_PATHS = (
    {"port": "http"},
    {"path": "/admin", "port": "http", "auth": {"type": "jwt", "jwksUrl": "https://idp/keys"}},
)


@pytest.mark.parametrize(
    ("app", "api", "field", "fragments"),
    [
        (
            {**APP, "auth": {"type": "jwt", "jwksUrl": "https://idp.example/keys"}},
            "ingress",
            "kexpose:apps[0].auth.type",
            ["no JWT middleware", "given: 'jwt'"],
        ),
        (
            {**APP, "auth": {**USERS, "exemptPaths": ["/healthz", "/ready"]}},
            "ingress",
            "kexpose:apps[0].auth.exemptPaths",
            ["every request of the route", "given: '/healthz,/ready'"],
        ),
        (
            {**APP, "auth": {**FORWARD, "signin": "https://login.example/"}},
            "gateway",
            "kexpose:apps[0].auth.signin",
            ["rd=<original URL>", "given: 'https://login.example/'"],
        ),
        (
            {**APP, "auth": {**FORWARD, "timeout": 2}},
            "ingress",
            "kexpose:apps[0].auth.timeout",
            ["no timeout setting", "given: 2.0"],
        ),
        (
            {**APP, "auth": {**FORWARD, "cacheSeconds": 30}},
            "ingress",
            "kexpose:apps[0].auth.cacheSeconds",
            ["caches no answers", "given: 30.0"],
        ),
        (
            with_paths(APP, *GATEWAY_PATHS),
            "gateway",
            "kexpose:apps[0].ingress.rules[0].paths[1].auth.type",
            ["no JWT middleware"],
        ),
        (
            # A path's own auth needs HTTPRoutes, whatever the controller.
            with_paths(APP, {"port": "http", "auth": {"type": "basic", "secret": "users"}}),
            "ingress",
            "kexpose:apps[0].ingress.rules[0].paths[0].auth",
            ["auth of a single path cannot be expressed with api 'ingress'"],
        ),
    ],
)
def test_what_traefik_cannot_enforce_is_refused_at_its_field(
    app: Raw, api: str, field: str, fragments: list[str]
) -> None:
    """Failing closed at configuration time: never a route served without what it asked for."""
    with pytest.raises(ConfigError) as caught:
        parse_stack(stack(app, api=api), stack_file="Pulumi.staging.yaml")
    lines = [line for line in str(caught.value).splitlines() if field + ":" in line]
    assert len(lines) == 1, str(caught.value)
    assert "app 'web'" in lines[0]
    for fragment in fragments:
        assert fragment in lines[0]
    if "single path" not in fragments[0]:
        assert "allowed with a traefik controller: type basic" in lines[0]
        # The same app under a kexpose controller is accepted.
        parse_stack(stack(app, api=api, kind="kexpose"), stack_file="Pulumi.staging.yaml")


@pytest.mark.parametrize(
    "extra",
    [
        {"auth": USERS},
        {"auth": {"type": "basic", "secret": "team-users", "realm": "team"}},
        {"auth": FORWARD},
        {"allowSourceRanges": ["10.0.0.0/8"]},
        {"auth": USERS, "allowSourceRanges": ["10.0.0.0/8", "2001:db8::/32"]},
    ],
)
@pytest.mark.parametrize("api", ["ingress", "gateway"])
def test_what_traefik_can_enforce_is_accepted(extra: Raw, api: str) -> None:
    objs = plan(stack({**APP, **extra}, api=api))
    assert find(objs, "Middleware")
    assert not find(objs, "EdgeAuth")


def test_an_app_another_controller_serves_keeps_kexpose_annotations() -> None:
    """Only the apps of Traefik's class are Traefik's to guard; another class's controller reads
    the kexpose.dev annotations (and may enforce jwt)."""
    other = {
        **APP,
        "ingress": {**APP["ingress"], "className": "edge"},
        "auth": {"type": "jwt", "jwksUrl": "https://idp.example/keys"},
    }
    objs = plan(stack(other))
    (ingress,) = find(objs, "Ingress")
    assert ingress["metadata"]["annotations"]["kexpose.dev/auth-type"] == "jwt"
    assert ROUTER not in ingress["metadata"]["annotations"]
    assert not find(objs, "Middleware")


# ---- Ingress: the router annotation --------------------------------------------------------


def test_an_ingress_names_its_middlewares_allow_list_first() -> None:
    app = {**APP, "auth": USERS, "allowSourceRanges": ["10.0.0.0/8", "2001:db8::/32"]}
    objs = plan(stack(app))
    (ingress,) = find(objs, "Ingress")
    notes = ingress["metadata"]["annotations"]
    assert notes[ROUTER] == "shop_web-allow-list@kubernetescrd,shop_web-auth@kubernetescrd"
    # Traefik reads no kexpose.dev annotation: none is written to claim otherwise.
    assert not [k for k in notes if k.startswith("kexpose.dev/")]
    assert middlewares(objs) == {
        "web-allow-list": {"ipAllowList": {"sourceRange": ["10.0.0.0/8", "2001:db8::/32"]}},
        "web-auth": {
            "basicAuth": {
                "secret": "web-basic-auth",
                "realm": "kexpose",
                "headerField": "X-Forwarded-User",
                "removeHeader": False,
            }
        },
    }
    kinds = [(m["kind"], m["metadata"]["name"]) for m in objs if m["metadata"].get("namespace")]
    # The htpasswd Secret, then the Middlewares reading it, then the Ingress naming them.
    order = [
        kinds.index(("Secret", "web-basic-auth")),
        kinds.index(("Middleware", "web-allow-list")),
        kinds.index(("Middleware", "web-auth")),
        kinds.index(("Ingress", "web")),
    ]
    assert order == sorted(order)
    for m in find(objs, "Middleware"):
        assert m["metadata"]["namespace"] == "shop"
        assert m["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kexpose"
        assert gateway_errors(m) == [], m["metadata"]["name"]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, {}),
        ({"allowSourceRanges": ["192.0.2.0/24"]}, {"web-allow-list": {"ipAllowList"}}),
        ({"auth": FORWARD}, {"web-auth": {"forwardAuth"}}),
        (
            {"auth": {"type": "basic", "secret": "team-users", "realm": "team"}},
            {"web-auth": {"basicAuth"}},
        ),
    ],
)
def test_each_mechanism_is_one_middleware(extra: Raw, expected: dict[str, set[str]]) -> None:
    objs = plan(stack({**APP, **extra}))
    assert {n: set(spec) for n, spec in middlewares(objs).items()} == expected
    (ingress,) = find(objs, "Ingress")
    named = ingress["metadata"].get("annotations", {}).get(ROUTER)
    assert named == (",".join(f"shop_{n}@kubernetescrd" for n in expected) or None)
    assert not find(objs, "Secret", "shop")[1:]  # only the TLS Secret: no users to hash


def test_forward_auth_carries_its_url_and_response_headers_and_trusts_no_client_header() -> None:
    spec = middlewares(plan(stack({**APP, "auth": FORWARD})))["web-auth"]
    assert spec == {
        "forwardAuth": {
            "address": "https://auth.example/check",
            "authResponseHeaders": ["X-User", "X-Email"],
            "trustForwardHeader": False,
            "maxResponseBodySize": 1048576,
        }
    }


def test_an_existing_secret_and_a_realm_are_named_as_given() -> None:
    auth = {"type": "basic", "secret": "team-users", "realm": "team"}
    spec = middlewares(plan(stack({**APP, "auth": auth})))["web-auth"]
    assert spec["basicAuth"]["secret"] == "team-users"
    assert spec["basicAuth"]["realm"] == "team"


@pytest.mark.parametrize(
    ("extra_args", "strategy"),
    [
        ((), None),
        (("--entryPoints.websecure.forwardedHeaders.insecure=true",), None),
        (
            ("--entryPoints.websecure.forwardedHeaders.trustedIPs=10.1.0.0/16,10.2.0.0/16",),
            {"excludedIPs": ["10.1.0.0/16", "10.2.0.0/16"]},
        ),
        (
            (
                "--entrypoints.web.forwardedheaders.trustedips=10.1.0.0/16",
                "--entryPoints.websecure.forwardedHeaders.trustedIPs=10.1.0.0/16, 192.0.2.1",
            ),
            {"excludedIPs": ["10.1.0.0/16", "192.0.2.1"]},
        ),
    ],
)
def test_the_allow_list_reads_the_client_address_as_the_entry_points_trust_it(
    extra_args: tuple[str, ...], strategy: dict[str, Any] | None
) -> None:
    """The TCP peer unless Traefik trusts forwarded headers from some proxies; then the
    right-most X-Forwarded-For address outside them (edge-auth.md, "Source ranges")."""
    raw = stack({**APP, "allowSourceRanges": ["192.0.2.0/24"]}, extraArgs=list(extra_args))
    allow = middlewares(plan(raw))["web-allow-list"]["ipAllowList"]
    assert allow.get("ipStrategy") == strategy
    assert allow["sourceRange"] == ["192.0.2.0/24"]


def test_traefik_ref_reads_trusted_proxies_from_the_controller_arguments() -> None:
    c = ControllerSpec.model_validate(
        {
            "kind": "traefik",
            "extraArgs": ["--log.level=DEBUG", "--ENTRYPOINTS.A.FORWARDEDHEADERS.TRUSTEDIPS=::1"],
        }
    )
    assert traefik_ref(c) == TraefikRef(("::1",))
    assert traefik_ref(ControllerSpec.model_validate({"kind": "traefik"})) == TraefikRef()


# ---- Gateway API: ExtensionRef filters, per rule ------------------------------------------

PATHS = (
    {"path": "/", "port": "http", "filters": {"responseHeaders": {"set": {"X-A": "1"}}}},
    {"path": "/admin", "port": "http", "auth": FORWARD},
    {"path": "/team", "port": "http", "auth": {"type": "basic", "secret": "team-users"}},
)


def rule_filters(objs: list[Manifest]) -> dict[str, list[dict[str, Any]]]:
    (route,) = find(objs, "HTTPRoute", "shop")
    return {r["matches"][0]["path"]["value"]: r.get("filters", []) for r in route["spec"]["rules"]}


def refs(filters: list[dict[str, Any]]) -> list[str]:
    out = []
    for f in filters:
        if f["type"] == "ExtensionRef":
            ref = f["extensionRef"]
            assert (ref["group"], ref["kind"]) == ("traefik.io", "Middleware")
            out.append(ref["name"])
    return out


def test_every_rule_names_its_middlewares_first_and_a_path_s_own_auth_replaces_the_app_s() -> None:
    app = {**with_paths(APP, *PATHS), "auth": USERS, "allowSourceRanges": ["10.0.0.0/8"]}
    objs = plan(stack(app, api="gateway"))
    filters = rule_filters(objs)
    assert {path: refs(f) for path, f in filters.items()} == {
        "/": ["web-allow-list", "web-auth"],
        "/admin": ["web-allow-list", "web-rule0-path1-auth"],
        "/team": ["web-allow-list", "web-rule0-path2-auth"],
    }
    # The auth before the rule's own filters (edge-auth.md: auth, then routing).
    assert [f["type"] for f in filters["/"]] == [
        "ExtensionRef",
        "ExtensionRef",
        "ResponseHeaderModifier",
    ]
    specs = middlewares(objs)
    assert set(specs) == {
        "web-allow-list",
        "web-auth",
        "web-rule0-path1-auth",
        "web-rule0-path2-auth",
    }
    assert specs["web-rule0-path1-auth"]["forwardAuth"]["address"] == FORWARD["url"]
    assert specs["web-rule0-path2-auth"]["basicAuth"]["secret"] == "team-users"
    # No kexpose EdgeAuth, nor its CRD: Traefik reads neither.
    assert not find(objs, "EdgeAuth")
    assert not [
        c for c in find(objs, "CustomResourceDefinition") if c["spec"]["group"] == "kexpose.dev"
    ]
    for m in [*find(objs, "Middleware"), *find(objs, "HTTPRoute")]:
        assert gateway_errors(m) == [], m["metadata"]["name"]


def test_only_the_middlewares_some_rule_names_are_made() -> None:
    paths = [p for p in PATHS if "auth" in p]
    objs = plan(stack({**with_paths(APP, *paths), "auth": USERS}, api="gateway"))
    # Every path has its own auth: the app's is named nowhere, so it is not made (its users'
    # Secret still is: the Secret belongs to the app's users).
    assert set(middlewares(objs)) == {"web-rule0-path0-auth", "web-rule0-path1-auth"}
    assert {path: refs(f) for path, f in rule_filters(objs).items()} == {
        "/admin": ["web-rule0-path0-auth"],
        "/team": ["web-rule0-path1-auth"],
    }


def test_an_app_without_auth_gets_no_middleware_and_no_filter() -> None:
    objs = plan(stack(with_paths(APP, *PATHS[:1]), api="gateway"))
    assert not find(objs, "Middleware")
    assert refs(rule_filters(objs)["/"]) == []


def test_grpc_routes_name_the_app_s_middlewares_too() -> None:
    """A gRPC entry declares no auth of its own; the app's covers its GRPCRoutes as it covers
    its HTTPRoutes (Traefik's Gateway provider takes ExtensionRef filters on GRPCRoute rules)."""
    rpc = {
        **APP,
        "workload": {"image": "x", "ports": [{"name": "grpc", "containerPort": 9090}]},
        "service": {"ports": [{"name": "grpc", "port": 9090}]},
        "ingress": {
            "rules": [
                {"host": "rpc.example.com", "grpc": [{"service": "shop.Cart", "port": "grpc"}]}
            ]
        },
        "auth": USERS,
        "allowSourceRanges": ["10.0.0.0/8"],
    }
    objs = plan(stack(rpc, api="gateway"))
    (route,) = find(objs, "GRPCRoute")
    for rule in route["spec"]["rules"]:
        assert refs(rule["filters"]) == ["web-allow-list", "web-auth"]
    assert set(middlewares(objs)) == {"web-allow-list", "web-auth"}
    assert gateway_errors(route) == []
    # Without auth, no filter at all.
    bare = {k: v for k, v in rpc.items() if k not in ("auth", "allowSourceRanges")}
    (route,) = find(plan(stack(bare, api="gateway")), "GRPCRoute")
    assert all("filters" not in rule for rule in route["spec"]["rules"])


# ---- the controller: CRD provider, RBAC, CRDs ---------------------------------------------

OTHER: Raw = {**APP, "name": "api", "namespace": "backend"}


@pytest.mark.parametrize("api", ["ingress", "gateway"])
def test_the_crd_provider_reads_only_kexpose_middlewares_of_the_served_namespaces(
    api: str,
) -> None:
    objs = plan(stack({**APP, "auth": USERS}, OTHER, api=api))
    args = args_of(objs)
    crd = [a for a in args if a.startswith("--providers.kubernetescrd")]
    assert crd == [
        "--providers.kubernetescrd=true",
        "--providers.kubernetescrd.namespaces=backend,shop",
        "--providers.kubernetescrd.labelSelector=app.kubernetes.io/managed-by=kexpose",
        "--providers.kubernetescrd.allowCrossNamespace=false",
        "--providers.kubernetescrd.allowExternalNameServices=false",
        "--providers.kubernetescrd.safeNaming=true",
    ]
    (deployment,) = find(objs, "Deployment", "kexpose-system")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"docker.io/library/traefik:{TRAEFIK_VERSION}"


def test_without_apps_the_crd_provider_watches_the_controller_namespace_not_all() -> None:
    objs = plan(stack())
    assert "--providers.kubernetescrd.namespaces=kexpose-system" in args_of(objs)


def test_a_kexpose_controller_runs_no_traefik_provider_and_gets_no_traefik_crds() -> None:
    objs = plan(stack({**APP, "auth": USERS}, kind="kexpose"))
    assert not [a for a in args_of(objs) if "kubernetescrd" in a]
    assert not [c for c in find(objs, "CustomResourceDefinition") if "traefik" in json.dumps(c)]
    (role,) = find(objs, "ClusterRole")
    assert not [r for r in role["rules"] if "traefik.io" in r["apiGroups"]]


@pytest.mark.parametrize("api", ["ingress", "gateway"])
def test_traefik_may_read_every_kind_its_crd_provider_watches_and_write_none(api: str) -> None:
    """The ClusterRole follows Traefik's CRD provider: an informer for every traefik.io kind
    (all of its CRDs, which it waits for) and ConfigMaps; a kind without RBAC would leave the
    provider unready (a 403 on its list), and the Middlewares unread."""
    objs = plan(stack({**APP, "auth": USERS}, api=api))
    (role,) = find(objs, "ClusterRole")
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for res in rule["resources"]:
                granted.setdefault((group, res), set()).update(rule["verbs"])
    plurals = {c["spec"]["names"]["plural"] for c in crds()}
    assert len(plurals) == 10
    for plural in plurals:
        assert granted[("traefik.io", plural)] == {"get", "list", "watch"}, plural
    assert {"list", "watch"} <= granted[("", "configmaps")]
    writes = {k for k, verbs in granted.items() if verbs - {"get", "list", "watch"}}
    assert all(res.endswith("/status") for _, res in writes), writes
    assert {"traefik.io"} == {g for g, _ in granted if g.startswith("traefik")}


@pytest.mark.parametrize("api", ["ingress", "gateway"])
def test_traefik_s_crds_are_installed_adopted_and_first(api: str) -> None:
    objs = plan(stack({**APP, "auth": USERS}, api=api))
    traefik = [
        c for c in find(objs, "CustomResourceDefinition") if c["spec"]["group"] == "traefik.io"
    ]
    assert {c["metadata"]["name"] for c in traefik} == {
        f"{c['spec']['names']['plural']}.traefik.io" for c in crds()
    }
    for c in traefik:
        assert c["metadata"]["annotations"]["pulumi.com/patchForce"] == "true"
        assert c["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kexpose"
    last_crd = max(i for i, m in enumerate(objs) if m["kind"] == "CustomResourceDefinition")
    assert last_crd < min(i for i, m in enumerate(objs) if m["kind"] == "Middleware")


def test_the_platform_owning_the_gateway_crds_does_not_own_traefik_s() -> None:
    raw = stack({**APP, "auth": USERS}, api="gateway", gateway={"installCrds": False})
    groups = {c["spec"]["group"] for c in find(plan(raw), "CustomResourceDefinition")}
    assert groups == {"traefik.io"}


def test_kinds_table_has_crd_reads_for_traefik_only() -> None:
    assert KINDS["kexpose"].crd_reads == ()
    assert [g for g, _, _ in KINDS["traefik"].crd_reads] == ["", "traefik.io"]


# ---- nothing secret in what is built -------------------------------------------------------


def test_no_credential_is_in_any_built_object() -> None:
    """Offline the users' Secret holds a placeholder (no password, no hash); the Middlewares
    hold a Secret's name only."""
    app = copy.deepcopy({**with_paths(APP, *PATHS), "auth": USERS})
    objs = plan(stack(app, api="gateway"))
    text = json.dumps(objs)
    assert "$2" not in text
    assert "alicePassword" not in json.dumps(middlewares(objs))
    (users,) = [s for s in find(objs, "Secret") if s["metadata"]["name"] == "web-basic-auth"]
    assert users["stringData"]["auth"].startswith("#")
