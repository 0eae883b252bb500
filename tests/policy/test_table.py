"""The rule table against the specification, and properties every rule shares."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kexpose.environment import ENVIRONMENTS
from kexpose.policy import PolicyConfig, early_violations, evaluate
from kexpose.policy.rules import RULES

from .objects import (
    app,
    auth_ingress,
    auth_stack,
    backend_ref,
    controller,
    deployment,
    gateway,
    gateway_stack,
    good_ingress,
    http_route,
    ingress,
    lb,
    listener,
    mandatory_violations,
    parent,
    realistic_stack,
    route_rule,
    rule,
    service,
    tls_secret,
)

ALL = ENVIRONMENTS
SP = ("staging", "prod")
P = ("prod",)
M, A = "mandatory", "advisory"

# policy-rules.md (id, scope, active) and policy-anchors.md "our default" (severity, levels).
SPEC: list[tuple[str, str, tuple[str, ...], str, dict[str, str]]] = [
    ("svc-no-nodeport", "R", SP, "high", {"staging": A, "prod": M}),
    ("svc-lb-node-ports", "R", P, "medium", {"prod": A}),
    ("svc-no-loadbalancer", "R", ALL, "medium", dict.fromkeys(ALL, M)),
    ("svc-lb-source-ranges", "R", P, "high", {"prod": M}),
    ("svc-no-external-ips", "R", ALL, "high", dict.fromkeys(ALL, M)),
    ("svc-externalname-no-loopback", "R", ALL, "high", dict.fromkeys(ALL, M)),
    ("svc-selector-matches-workload", "S", ALL, "medium", dict.fromkeys(ALL, A)),
    ("ing-require-tls", "R", SP, "high", dict.fromkeys(SP, M)),
    ("ing-tls-covers-hosts", "R", SP, "high", dict.fromkeys(SP, M)),
    ("ing-host-required", "R", SP, "high", dict.fromkeys(SP, M)),
    ("ing-no-wildcard-host", "R", P, "medium", {"prod": M}),
    ("ing-no-default-backend", "R", SP, "high", dict.fromkeys(SP, M)),
    ("ing-class-allowed", "R", ALL, "high", dict.fromkeys(ALL, M)),
    ("ing-no-deprecated-class-annotation", "R", ALL, "low", dict.fromkeys(ALL, A)),
    ("ing-no-deprecated-api", "R", ALL, "high", dict.fromkeys(ALL, M)),
    ("ing-no-plain-http", "R", P, "high", {"prod": M}),
    ("ing-unique-host-path", "S", ALL, "high", dict.fromkeys(ALL, M)),
    ("ing-backend-service-exists", "S", ALL, "high", dict.fromkeys(ALL, M)),
    ("ing-tls-secret-provisioned", "S", SP, "high", dict.fromkeys(SP, M)),
    ("tls-cert-not-expiring", "R", P, "medium", {"prod": M}),
    ("tls-cert-covers-hosts", "S", SP, "high", dict.fromkeys(SP, M)),
    ("nginx-no-snippets", "R", ALL, "critical", dict.fromkeys(ALL, M)),
    ("nginx-annotation-injection", "R", ALL, "critical", dict.fromkeys(ALL, M)),
    ("nginx-controller-patched", "S", ALL, "critical", dict.fromkeys(ALL, M)),
    ("nginx-admission-not-exposed", "S", ALL, "critical", dict.fromkeys(ALL, M)),
    ("ing-path-safe", "R", ALL, "high", dict.fromkeys(ALL, M)),
    # The second round (policy-rules.md): the levels of each rule's Ingress counterpart.
    ("gw-class-allowed", "R", ALL, "high", dict.fromkeys(ALL, M)),
    ("gw-https-listener-tls", "R", SP, "high", dict.fromkeys(SP, M)),
    ("gw-allowed-routes-restricted", "R", P, "high", {"prod": M}),
    ("gw-no-plain-http", "S", P, "high", {"prod": M}),
    ("gw-tls-secret-provisioned", "S", SP, "high", dict.fromkeys(SP, M)),
    ("gw-tls-cert-covers-hostname", "S", SP, "high", dict.fromkeys(SP, M)),
    ("route-hostnames-required", "R", SP, "high", dict.fromkeys(SP, M)),
    ("route-no-wildcard-hostname", "R", P, "medium", {"prod": M}),
    ("route-parent-exists", "S", ALL, "high", dict.fromkeys(ALL, M)),
    ("route-backend-exists", "S", ALL, "high", dict.fromkeys(ALL, M)),
    ("route-cross-namespace-granted", "S", ALL, "high", dict.fromkeys(ALL, M)),
    ("route-unique-match", "S", ALL, "high", dict.fromkeys(ALL, M)),
    ("auth-basic-requires-tls", "S", SP, "high", dict.fromkeys(SP, M)),
    ("auth-secret-provisioned", "S", ALL, "high", dict.fromkeys(ALL, M)),
    ("auth-url-safe", "R", ALL, "high", dict.fromkeys(ALL, M)),
    ("auth-jwt-audience-required", "R", P, "high", {"prod": M}),
]


def test_the_table_has_the_42_specified_ids_in_order() -> None:
    assert list(RULES) == [row[0] for row in SPEC]
    assert len(RULES) == 42


@pytest.mark.parametrize(
    ("rule_id", "scope", "active", "severity", "levels"), SPEC, ids=[row[0] for row in SPEC]
)
def test_rule_row_matches_the_specification(
    rule_id: str, scope: str, active: tuple[str, ...], severity: str, levels: dict[str, str]
) -> None:
    row = RULES[rule_id]
    assert (row.scope, row.active, row.severity, dict(row.enforcement)) == (
        scope,
        active,
        severity,
        levels,
    )
    assert (row.check_resource is not None) == (scope == "R")
    assert (row.check_stack is not None) == (scope == "S")
    assert set(row.config_keys) <= set(PolicyConfig.model_fields)


def _everything_wrong() -> list[dict[str, Any]]:
    """One object set that breaks all 42 rules in prod."""
    bad_ing = ingress(
        "bad",
        "shop",
        api_version="networking.k8s.io/v1beta1",
        annotations={
            "kubernetes.io/ingress.class": "traefik",
            "nginx.ingress.kubernetes.io/ssl-redirect": "false",
            "nginx.ingress.kubernetes.io/server-snippet": "x",
            "nginx.ingress.kubernetes.io/auth-url": "http://x; y",
        },
        ingressClassName="nginx",
        defaultBackend={"service": {"name": "missing", "port": {"number": 80}}},
        tls=[{"hosts": ["a.example.com"], "secretName": "nope"}, {"hosts": ["c.example.com"]}],
        rules=[
            rule("*.example.com", ("/etc", "Prefix")),
            rule(None),
            rule("b.example.com", service_name="ingress-nginx-controller-admission"),
        ],
    )
    return [
        service("np", type="NodePort"),
        lb("pub", "shop"),
        service("ext", externalIPs=["203.0.113.1"]),
        service("loop", type="ExternalName", externalName="localhost", ports=[]),
        service("orphan", selector={"app": "none"}),
        bad_ing,
        ingress(
            "dup",
            "shop",
            ingressClassName="nginx",
            rules=[rule("*.example.com", ("/etc", "Prefix"))],
        ),
        tls_secret("old", "shop", ("x.example.com",), days=3),
        ingress(
            "miscovered",
            "shop",
            ingressClassName="nginx",
            rules=[rule("z.example.com", service_name="np")],
            tls=[{"hosts": ["z.example.com"], "secretName": "old"}],
        ),
        deployment(
            "ingress-nginx-controller",
            "ingress-nginx",
            image="registry.k8s.io/ingress-nginx/controller:v1.11.0",
        ),
        service(
            "ingress-nginx-controller-admission",
            "shop",
            type="NodePort",
            labels={"app.kubernetes.io/name": "ingress-nginx"},
        ),
        *_gateway_api_wrong(),
        *_auth_wrong(),
    ]


def _gateway_api_wrong() -> list[dict[str, Any]]:
    """Gateway API objects that break the twelve gw-/route- rules in prod."""
    bad_gw = gateway(
        "edge-gw",
        "edge",
        listener("http", "HTTP", 80, hostname=None, allowed_from="All"),
        listener("https", hostname="shop.example.com", certificate="missing"),
        listener("bare", hostname="bare.example.com", certificate=None),
        listener(
            "miscovered", hostname="x.example.com", certificate="edge-tls", certificate_ns="other"
        ),
        klass="istio",
    )
    route = http_route(
        "loose",
        "shop",
        hostnames=["*.example.com"],
        parents=[parent("edge-gw", ns="edge", section=None), parent("gone")],
        rules=[
            route_rule(backend_ref("np", 8080)),
            route_rule(backend_ref("web", 80, namespace="x")),
        ],
    )
    twin = http_route(
        "twin", "shop", hostnames=["*.example.com"], parents=[parent("edge-gw", ns="edge")]
    )
    return [
        bad_gw,
        tls_secret("edge-tls", "other", ("y.example.com",)),
        route,
        twin,
        http_route("nohost", "shop", hostnames=None, parents=[parent("edge-gw", ns="edge")]),
    ]


def _auth_wrong() -> list[dict[str, Any]]:
    """Ingresses whose auth annotations break the four auth- rules in prod."""
    return [
        auth_ingress(
            "basic",
            annotations={"kexpose.dev/auth-type": "basic", "kexpose.dev/auth-secret": "nope"},
            tls=False,
        ),
        auth_ingress(
            "jwt",
            host="jwt.example.com",
            annotations={
                "kexpose.dev/auth-type": "jwt",
                "kexpose.dev/auth-jwks-url": "http://169.254.169.254/jwks",
            },
        ),
    ]


def test_every_rule_fires_in_prod_and_only_active_rules_elsewhere() -> None:
    objects = _everything_wrong()
    for env in ALL:
        found = evaluate(objects, environment=env, config=PolicyConfig())
        fired = {v.rule for v in found}
        assert fired == {r.id for r in RULES.values() if r.is_active(env)}, env
        for v in found:
            assert v.enforcement == RULES[v.rule].enforcement[env]
            assert v.severity == RULES[v.rule].severity
            # Messages name the resource and the field.
            assert v.message.startswith(f"{v.resource} {v.field}: ")
            assert v.resource.count("/") == 2
            assert v.fix


def test_restricting_to_rule_ids_and_unknown_ids() -> None:
    found = evaluate(
        _everything_wrong(), environment="prod", config=PolicyConfig(), rules=["svc-no-nodeport"]
    )
    assert {v.rule for v in found} == {"svc-no-nodeport"}
    with pytest.raises(ValueError, match="no-such-rule"):
        evaluate([], environment="prod", config=PolicyConfig(), rules=["no-such-rule"])


def test_violations_come_in_object_order() -> None:
    found = evaluate(_everything_wrong(), environment="prod", config=PolicyConfig())
    order = [o["metadata"]["name"] for o in _everything_wrong()]
    positions = [order.index(v.resource.split("/")[2]) for v in found]
    assert positions == sorted(positions)


MALFORMED: list[Any] = [
    {"kind": "Service", "metadata": {"name": "x"}, "spec": []},
    {
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"ports": "80", "type": 3, "externalIPs": "1.2.3.4"},
    },
    {
        "kind": "Service",
        "metadata": {"name": "x", "annotations": ["a"]},
        "spec": {"type": "LoadBalancer", "ports": [None, 1], "loadBalancerSourceRanges": [7]},
    },
    {
        "kind": "Ingress",
        "metadata": {"name": "x", "annotations": {"a": None}},
        "spec": {
            "rules": [None, {"host": 5, "http": {"paths": [None, {"path": 9}]}}],
            "tls": [None, {"hosts": "a"}],
            "defaultBackend": 7,
        },
    },
    {"kind": "Ingress", "metadata": {"name": "x"}, "spec": "nope"},
    {
        "kind": "Secret",
        "metadata": {"name": "x"},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": 5},
    },
    {"kind": "Secret", "metadata": {"name": "x"}, "type": "kubernetes.io/tls", "data": []},
    {
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"template": {"spec": {"containers": [None, {"image": 5}, {"ports": [None]}]}}},
    },
    {"kind": "ConfigMap", "metadata": {"name": "x"}, "data": None},
    {"kind": "ValidatingWebhookConfiguration", "metadata": {"name": "x"}, "webhooks": [None]},
    {
        "kind": "Certificate",
        "apiVersion": "cert-manager.io/v1",
        "metadata": {"name": "x"},
        "spec": None,
    },
    {"kind": "Service", "metadata": None},
    {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "x", "annotations": None},
        "spec": {
            "gatewayClassName": 5,
            "listeners": [
                None,
                {"protocol": "HTTPS", "tls": []},
                {"protocol": "HTTPS", "hostname": 7, "tls": {"certificateRefs": [None, 3]}},
                {"protocol": "HTTP", "port": "80", "allowedRoutes": {"namespaces": None}},
            ],
        },
    },
    {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "y"},
        "spec": None,
    },
    {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "x"},
        "spec": {
            "hostnames": [None, 3, "a.example.com"],
            "parentRefs": [None, {"name": 5, "port": "x"}, {"name": "x", "sectionName": 1}],
            "rules": [
                None,
                {"matches": [None, {"path": None, "headers": [None, {"name": 3}]}]},
                {
                    "backendRefs": [None, {"name": "x", "port": "80"}],
                    "filters": [None, {"type": 1}],
                },
            ],
        },
    },
    {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GRPCRoute",
        "metadata": {"name": "g"},
        "spec": [],
    },
    {
        "apiVersion": "gateway.networking.k8s.io/v1beta1",
        "kind": "ReferenceGrant",
        "metadata": {"name": "x"},
        "spec": {"from": [None, 3], "to": "x"},
    },
    {
        "kind": "Ingress",
        "metadata": {
            "name": "a",
            "annotations": {
                "kexpose.dev/auth-type": "basic",
                "kexpose.dev/auth-secret": 5,
                "kexpose.dev/auth-url": None,
                "kexpose.dev/auth-jwks-url": "http://[x",
            },
        },
        "spec": {"rules": [None]},
    },
    {
        "kind": "Ingress",
        "metadata": {
            "name": "j",
            "annotations": {"kexpose.dev/auth-type": "jwt", "kexpose.dev/auth-jwks-secret": []},
        },
    },
]


def test_malformed_objects_never_crash_a_rule() -> None:
    for env in ALL:
        evaluate(MALFORMED, environment=env, config=PolicyConfig())  # must not raise


@pytest.mark.parametrize(
    "stack",
    [realistic_stack(), gateway_stack(), auth_stack()],
    ids=["ingress", "gateway-api", "auth"],
)
def test_the_realistic_stacks_pass_every_environment_under_project_defaults(
    stack: list[dict[str, Any]],
) -> None:
    for env in ALL:
        assert mandatory_violations(stack, env) == []
        found = evaluate(stack, environment=env, config=PolicyConfig.project())
        assert found == [], [v.message for v in found]


def test_a_bad_prod_variant_fails_with_the_right_ids() -> None:
    stack = copy.deepcopy(realistic_stack())
    web_service = next(
        o for o in stack if o["kind"] == "Service" and o["metadata"]["name"] == "web"
    )
    web_service["spec"]["type"] = "NodePort"
    api_ingress = next(
        o for o in stack if o["kind"] == "Ingress" and o["metadata"]["name"] == "api"
    )
    del api_ingress["spec"]["tls"]
    web_ingress = next(
        o for o in stack if o["kind"] == "Ingress" and o["metadata"]["name"] == "web"
    )
    web_ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = "gone"
    found = mandatory_violations(stack, "prod")
    assert sorted({(v.rule, v.resource) for v in found}) == [
        ("ing-backend-service-exists", "Ingress/shop/web"),
        ("ing-require-tls", "Ingress/shop/api"),
        ("ing-tls-covers-hosts", "Ingress/shop/api"),
        ("svc-no-nodeport", "Service/shop/web"),
    ]


def test_early_violations_are_mandatory_per_object_rules_only() -> None:
    objects = [service("web", type="NodePort"), good_ingress(host="a.example.com")]
    prod = early_violations(objects, environment="prod", config=PolicyConfig.project())
    assert [v.rule for v in prod] == ["svc-no-nodeport"]
    # staging: NodePort is advisory, and stack rules (the dangling TLS Secret) are left out.
    assert early_violations(objects, environment="staging", config=PolicyConfig.project()) == []
    assert (
        early_violations([*app(), *controller()], environment="prod", config=PolicyConfig.project())
        == []
    )


def test_early_violations_include_the_gateway_api_and_auth_object_rules() -> None:
    # The components' early validation runs the mandatory per-object rules of the second
    # round as well: a foreign GatewayClass, an open listener, a wildcard route host, an auth
    # URL aimed at the metadata endpoint. Stack rules (a route's missing parent) stay out.
    edge = gateway("edge", "edge", listener(allowed_from="All"), klass="istio")
    route = http_route(hostnames=["*.example.com"], parents=[parent("gone")])
    notes = {"kexpose.dev/auth-type": "forward", "kexpose.dev/auth-url": "http://169.254.169.254/"}
    objects = [edge, route, auth_ingress("admin", annotations=notes)]
    found = early_violations(objects, environment="prod", config=PolicyConfig.project())
    assert [(v.rule, v.resource) for v in found] == [
        ("gw-class-allowed", "Gateway/edge/edge"),
        ("gw-allowed-routes-restricted", "Gateway/edge/edge"),
        ("route-no-wildcard-hostname", "HTTPRoute/shop/web"),
        ("auth-url-safe", "Ingress/shop/admin"),
    ]
    dev = early_violations(objects, environment="dev", config=PolicyConfig.project())
    assert [v.rule for v in dev] == ["gw-class-allowed", "auth-url-safe"]
    assert (
        early_violations(
            [*gateway_stack(), *auth_stack()], environment="prod", config=PolicyConfig.project()
        )
        == []
    )


def test_objects_without_namespace_land_in_default() -> None:
    obj = service(type="NodePort")
    del obj["metadata"]["namespace"]
    (v,) = evaluate([obj], environment="prod", config=PolicyConfig(), rules=["svc-no-nodeport"])
    assert v.resource == "Service/default/web"
