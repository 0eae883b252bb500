"""The Gateway API builders: listeners, routes, grants, the controller's args and RBAC.

Pure: stacks in, manifests out. Every Gateway API object built here also validates against the
CRD schemas of the release (``tests/unit/gateway_schema.py``).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from tests.unit.gateway_schema import gateway_errors, is_gateway_object

from kexpose.errors import ConfigError
from kexpose.manifests import TlsMaterial
from kexpose.model import StackSpec
from kexpose.plan import plan_stack
from kexpose.validation import parse_stack

Raw = dict[str, Any]
Manifest = dict[str, Any]
MATERIAL = TlsMaterial("<cert>", "<key>")


def app(name: str, namespace: str = "shop", **extra: Any) -> Raw:
    return {
        "name": name,
        "namespace": namespace,
        "workload": {
            "image": "nginx",
            "replicas": 2,
            "ports": [{"name": "http", "containerPort": 8080}],
        },
        "service": {
            "ports": [
                {"name": "http", "port": 80},
                {"name": "admin", "port": 9000, "targetPort": "http"},
            ]
        },
        **extra,
    }


def routed(host: str | None, *paths: Raw, tls: Raw | None = None) -> Raw:
    rule: Raw = {"paths": list(paths) or [{"path": "/", "port": "http"}]}
    if host is not None:
        rule["host"] = host
    out: Raw = {"ingress": {"rules": [rule]}}
    if tls is not None:
        out["tls"] = tls
    return out


def raw_stack(environment: str, *apps: Raw, kind: str = "kexpose", **controller: Any) -> Raw:
    return {
        "environment": environment,
        "controller": {"kind": kind, "api": "gateway", **controller},
        "apps": list(apps),
    }


def plan(raw: Raw) -> list[Manifest]:
    spec: StackSpec = parse_stack(raw, stack_file="stacks/Pulumi.test.yaml")
    tls = {"self-signed", "secret"}
    return [
        p.manifest for p in plan_stack(spec, tls=lambda a: MATERIAL if a.tls.mode in tls else None)
    ]


def find(objs: list[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    return [m for m in objs if m["kind"] == kind and name in (None, m["metadata"]["name"])]


def one(objs: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    (found,) = find(objs, kind, name)
    return found


SHOP = app(
    "web",
    **routed(
        "shop.example.com",
        {
            "path": "/",
            "port": "http",
            "weight": 90,
            "backends": [{"service": "next", "port": "http", "weight": 10}],
        },
        {"path": "/api", "port": 9000, "service": "api", "namespace": "backend"},
        tls={"mode": "self-signed"},
    ),
)
NEXT = app("next")
API = app("api", "backend")


def listeners(objs: list[Manifest]) -> dict[str, Manifest]:
    return {entry["name"]: entry for entry in one(objs, "Gateway")["spec"]["listeners"]}


def test_staging_gateway_redirects_plain_http_and_terminates_tls_per_host() -> None:
    objs = plan(raw_stack("staging", SHOP, NEXT, API))
    gateway = one(objs, "Gateway", "kexpose")
    assert gateway["metadata"]["namespace"] == "kexpose-system"
    assert gateway["spec"]["gatewayClassName"] == "kexpose"
    by_name = listeners(objs)
    assert set(by_name) == {"http", "https-shop.example.com"}
    http = by_name["http"]
    assert (http["protocol"], http["port"]) == ("HTTP", 80)
    # only the Gateway's own namespace: the redirect route, nothing of the apps
    assert http["allowedRoutes"] == {"namespaces": {"from": "Same"}}
    https = by_name["https-shop.example.com"]
    assert (https["protocol"], https["port"], https["hostname"]) == (
        "HTTPS",
        443,
        "shop.example.com",
    )
    assert https["tls"] == {
        "mode": "Terminate",
        "certificateRefs": [
            {"group": "", "kind": "Secret", "name": "web-tls", "namespace": "shop"}
        ],
    }
    selector = https["allowedRoutes"]["namespaces"]
    assert selector["from"] == "Selector"
    assert selector["selector"]["matchExpressions"] == [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["shop"]}
    ]
    redirect = one(objs, "HTTPRoute", "kexpose-https-redirect")
    assert redirect["metadata"]["namespace"] == "kexpose-system"
    assert redirect["spec"]["hostnames"] == ["shop.example.com"]
    assert [p["sectionName"] for p in redirect["spec"]["parentRefs"]] == ["http"]
    (rule,) = redirect["spec"]["rules"]
    assert rule["filters"] == [
        {"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 308}}
    ]
    assert "backendRefs" not in rule


def test_the_app_route_attaches_to_its_https_listener_only() -> None:
    objs = plan(raw_stack("staging", SHOP, NEXT, API))
    route = one(objs, "HTTPRoute", "web")
    assert route["metadata"]["namespace"] == "shop"
    assert route["spec"]["hostnames"] == ["shop.example.com"]
    assert route["spec"]["parentRefs"] == [
        {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "namespace": "kexpose-system",
            "name": "kexpose",
            "sectionName": "https-shop.example.com",
        }
    ]
    split, api = route["spec"]["rules"]
    assert split["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    assert split["backendRefs"] == [
        {"group": "", "kind": "Service", "name": "web", "port": 80, "weight": 90},
        {"group": "", "kind": "Service", "name": "next", "port": 80, "weight": 10},
    ]
    assert api["backendRefs"] == [
        {"group": "", "kind": "Service", "name": "api", "port": 9000, "namespace": "backend"}
    ]


def test_grants_open_exactly_the_cross_namespace_references() -> None:
    objs = plan(raw_stack("staging", SHOP, NEXT, API))
    grants = {
        (g["metadata"]["namespace"], g["metadata"]["name"]): g["spec"]
        for g in find(objs, "ReferenceGrant")
    }
    assert grants == {
        ("shop", "web-tls-to-gateways"): {
            "from": [
                {
                    "group": "gateway.networking.k8s.io",
                    "kind": "Gateway",
                    "namespace": "kexpose-system",
                }
            ],
            "to": [{"group": "", "kind": "Secret", "name": "web-tls"}],
        },
        ("backend", "httproutes-from-shop"): {
            "from": [
                {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "shop"}
            ],
            "to": [{"group": "", "kind": "Service", "name": "api"}],
        },
    }


def test_dev_lets_apps_without_tls_on_the_http_listener() -> None:
    plain = app("web", **routed("shop.dev.example.com"))
    secure = app("admin", "tools", **routed("admin.dev.example.com", tls={"mode": "self-signed"}))
    objs = plan(raw_stack("dev", plain, secure, service={"type": "NodePort"}))
    http = listeners(objs)["http"]
    assert http["allowedRoutes"]["namespaces"]["selector"]["matchExpressions"][0]["values"] == [
        "kexpose-system",  # the redirect route of the TLS host
        "shop",
    ]
    assert [p["sectionName"] for p in one(objs, "HTTPRoute", "web")["spec"]["parentRefs"]] == [
        "http"
    ]
    assert [p["sectionName"] for p in one(objs, "HTTPRoute", "admin")["spec"]["parentRefs"]] == [
        "https-admin.dev.example.com"
    ]
    assert one(objs, "HTTPRoute", "kexpose-https-redirect")["spec"]["hostnames"] == [
        "admin.dev.example.com"
    ]


def opted_out(raw: Raw) -> Raw:
    """``raw`` with the app's opt-out of the HTTPS redirect (``kexpose.dev/ssl-redirect``)."""
    out = copy.deepcopy(raw)
    out["ingress"]["annotations"] = {"kexpose.dev/ssl-redirect": "false"}
    return out


def test_dev_serves_an_app_that_opts_out_of_the_redirect_on_plain_http_too() -> None:
    checkout = opted_out(
        app("checkout", "payments", **routed("pay.dev.example.com", tls={"mode": "self-signed"}))
    )
    secure = app("admin", "tools", **routed("admin.dev.example.com", tls={"mode": "self-signed"}))
    objs = plan(raw_stack("dev", checkout, secure, service={"type": "NodePort"}))
    http = listeners(objs)["http"]
    assert http["allowedRoutes"]["namespaces"]["selector"]["matchExpressions"][0]["values"] == [
        "kexpose-system",
        "payments",
    ]
    route = one(objs, "HTTPRoute", "checkout")
    assert [p["sectionName"] for p in route["spec"]["parentRefs"]] == [
        "http",
        "https-pay.dev.example.com",
    ]
    # The redirect leaves the opted-out host alone and still catches the other one.
    assert one(objs, "HTTPRoute", "kexpose-https-redirect")["spec"]["hostnames"] == [
        "admin.dev.example.com"
    ]
    # Alone, the opted-out app needs no redirect route at all (an empty hostnames list would
    # catch every host).
    alone = plan(raw_stack("dev", checkout, service={"type": "NodePort"}))
    assert find(alone, "HTTPRoute", "kexpose-https-redirect") == []


def test_a_host_another_app_still_redirects_keeps_the_redirect() -> None:
    a = opted_out(app("a", **routed("shop.dev.example.com", {"path": "/a", "port": "http"},
                                   tls={"mode": "self-signed"})))  # fmt: skip
    b = app("b", "other", **routed("shop.dev.example.com", {"path": "/b", "port": "http"},
                                   tls={"mode": "self-signed"}))  # fmt: skip
    objs = plan(raw_stack("dev", a, b, service={"type": "NodePort"}))
    assert one(objs, "HTTPRoute", "kexpose-https-redirect")["spec"]["hostnames"] == [
        "shop.dev.example.com"
    ]


@pytest.mark.parametrize("environment", ["staging", "prod"])
def test_staging_and_prod_gateways_refuse_the_opt_out(environment: str) -> None:
    checkout = opted_out(
        app("checkout", "payments", **routed("pay.example.com", tls={"mode": "self-signed"}))
    )
    with pytest.raises(ConfigError) as caught:
        plan(raw_stack(environment, checkout))
    message = str(caught.value)
    assert "apps[0].ingress.annotations" in message
    assert "kexpose.dev/ssl-redirect" in message
    assert "plain HTTP only as a redirect" in message


def test_a_regular_expression_path_renders_as_the_gateway_api_match() -> None:
    web = app(
        "web",
        **routed(
            "shop.dev.example.com",
            {"path": "^/static.*", "pathType": "RegularExpression", "port": "http"},
            {"path": "/", "port": "http"},
        ),
    )
    objs = plan(raw_stack("dev", web, service={"type": "NodePort"}))
    rules = one(objs, "HTTPRoute", "web")["spec"]["rules"]
    assert [r["matches"][0]["path"] for r in rules] == [
        {"type": "RegularExpression", "value": "^/static.*"},
        {"type": "PathPrefix", "value": "/"},
    ]


def test_a_host_shared_by_two_apps_is_one_listener_with_both_certificates() -> None:
    a = app(
        "a",
        **routed("shop.example.com", {"path": "/a", "port": "http"}, tls={"mode": "self-signed"}),
    )
    b = app(
        "b",
        "other",
        **routed("shop.example.com", {"path": "/b", "port": "http"}, tls={"mode": "self-signed"}),
    )
    objs = plan(raw_stack("staging", a, b))
    https = listeners(objs)["https-shop.example.com"]
    assert [r["namespace"] for r in https["tls"]["certificateRefs"]] == ["other", "shop"]
    values = https["allowedRoutes"]["namespaces"]["selector"]["matchExpressions"][0]["values"]
    assert values == ["other", "shop"]


def test_wildcard_tls_hosts_get_one_listener_and_routes_keep_exact_hosts() -> None:
    wild = app(
        "web",
        ingress={
            "rules": [
                {"host": "a.example.com", "paths": [{"path": "/", "port": "http"}]},
                {"host": "b.example.com", "paths": [{"path": "/", "port": "http"}]},
            ]
        },
        tls={"mode": "self-signed", "hosts": ["*.example.com"]},
    )
    objs = plan(raw_stack("staging", wild))
    assert "https-wildcard.example.com" in listeners(objs)
    routes = {
        r["metadata"]["name"]: r["spec"]
        for r in find(objs, "HTTPRoute")
        if r["metadata"]["namespace"] == "shop"
    }
    assert {n: s["hostnames"] for n, s in routes.items()} == {
        "web": ["a.example.com"],
        "web-1": ["b.example.com"],
    }
    for s in routes.values():
        assert [p["sectionName"] for p in s["parentRefs"]] == ["https-wildcard.example.com"]


def test_timeouts_and_cors_render_as_the_gateway_api_says() -> None:
    api = app(
        "web",
        **routed(
            "shop.example.com",
            {
                "path": "/api",
                "port": "http",
                "timeouts": {"request": "3m5s", "backendRequest": "60s"},
                "filters": {
                    "requestHeaders": {"set": {"X-Env": "prod"}},
                    "cors": {
                        "allowOrigins": ["https://shop.example.com", "https://*.shop.example.com"],
                        "allowMethods": ["GET", "POST"],
                        "allowHeaders": ["Content-Type"],
                        "exposeHeaders": ["X-Total"],
                        "allowCredentials": True,
                        "maxAge": 1728000,
                    },
                },
            },
            {"path": "/", "port": "http", "filters": {"cors": {"allowOrigins": ["*"]}}},
            tls={"mode": "self-signed"},
        ),
    )
    objs = plan(raw_stack("staging", api))
    route = one(objs, "HTTPRoute", "web")
    assert gateway_errors(route) == []
    first, second = route["spec"]["rules"]
    assert first["timeouts"] == {"request": "3m5s", "backendRequest": "60s"}
    assert first["filters"][-1] == {
        "type": "CORS",
        "cors": {
            "allowOrigins": ["https://shop.example.com", "https://*.shop.example.com"],
            "allowMethods": ["GET", "POST"],
            "allowHeaders": ["Content-Type"],
            "exposeHeaders": ["X-Total"],
            "allowCredentials": True,
            "maxAge": 1728000,
        },
    }
    # Defaults written out (maxAge 5, the CRD's), nothing else; no timeouts when none given.
    assert second["filters"] == [{"type": "CORS", "cors": {"allowOrigins": ["*"], "maxAge": 5}}]
    assert "timeouts" not in second


def test_matches_and_filters_render_as_the_gateway_api_says() -> None:
    rich = app(
        "web",
        **routed(
            "shop.example.com",
            {
                "path": "/v1",
                "pathType": "Exact",
                "port": "http",
                "method": "GET",
                "headers": [{"name": "X-Canary", "value": "always"}],
                "queryParams": [{"name": "v", "value": "^2", "type": "RegularExpression"}],
                "filters": {
                    "requestHeaders": {"set": {"X-Env": "prod"}, "remove": ["X-Debug"]},
                    "responseHeaders": {"add": {"X-Served-By": "kexpose"}},
                    "rewrite": {"hostname": "internal.example.com", "path": {"fullPath": "/"}},
                },
            },
            {
                "path": "/old",
                "port": "http",
                "filters": {"redirect": {"path": {"prefix": "/new"}, "statusCode": 301}},
            },
            tls={"mode": "self-signed"},
        ),
    )
    objs = plan(raw_stack("staging", rich))
    first, moved = one(objs, "HTTPRoute", "web")["spec"]["rules"]
    assert first["matches"] == [
        {
            "path": {"type": "Exact", "value": "/v1"},
            "headers": [{"type": "Exact", "name": "X-Canary", "value": "always"}],
            "queryParams": [{"type": "RegularExpression", "name": "v", "value": "^2"}],
            "method": "GET",
        }
    ]
    assert first["filters"] == [
        {
            "type": "RequestHeaderModifier",
            "requestHeaderModifier": {
                "set": [{"name": "X-Env", "value": "prod"}],
                "remove": ["X-Debug"],
            },
        },
        {
            "type": "ResponseHeaderModifier",
            "responseHeaderModifier": {"add": [{"name": "X-Served-By", "value": "kexpose"}]},
        },
        {
            "type": "URLRewrite",
            "urlRewrite": {
                "hostname": "internal.example.com",
                "path": {"type": "ReplaceFullPath", "replaceFullPath": "/"},
            },
        },
    ]
    assert moved["filters"] == [
        {
            "type": "RequestRedirect",
            "requestRedirect": {
                "statusCode": 301,
                "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/new"},
            },
        }
    ]
    assert "backendRefs" not in moved  # the redirect answers; nothing is proxied
    for m in objs:
        if is_gateway_object(m):
            assert gateway_errors(m) == [], m["kind"]


def test_cert_manager_issues_the_gateways_certificates_through_its_annotation() -> None:
    managed = app("web", **routed("shop.example.com", tls={"mode": "cert-manager", "issuer": "le"}))
    objs = plan(raw_stack("prod", managed))
    gateway = one(objs, "Gateway")
    assert gateway["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "le"}
    https = listeners(objs)["https-shop.example.com"]
    # in the Gateway's namespace, where cert-manager's gateway-shim issues it
    assert https["tls"]["certificateRefs"] == [
        {"group": "", "kind": "Secret", "name": "shop-web-tls"}
    ]
    assert not find(objs, "Certificate")
    assert not find(objs, "ReferenceGrant")  # nothing crosses namespaces
    assert not find(objs, "Ingress")


def test_cert_manager_via_certificate_makes_it_in_the_gateways_namespace() -> None:
    managed = app(
        "web",
        **routed(
            "shop.example.com",
            tls={
                "mode": "cert-manager",
                "issuer": "ca",
                "issuerKind": "Issuer",
                "via": "certificate",
            },
        ),
    )
    objs = plan(raw_stack("prod", managed))
    cert = one(objs, "Certificate", "shop-web-tls")
    assert cert["metadata"]["namespace"] == "kexpose-system"
    assert cert["spec"]["secretName"] == "shop-web-tls"
    assert cert["spec"]["dnsNames"] == ["shop.example.com"]
    assert cert["spec"]["issuerRef"] == {"name": "ca", "kind": "Issuer", "group": "cert-manager.io"}
    assert "annotations" not in one(objs, "Gateway")["metadata"]


RBAC_GROUP = "gateway.networking.k8s.io"


def rules_of(objs: list[Manifest]) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = one(objs, "ClusterRole")["rules"]
    return rules


@pytest.mark.parametrize("kind", ["kexpose", "traefik"])
def test_gateway_rbac_is_read_plus_status_only(kind: str) -> None:
    objs = plan(raw_stack("staging", SHOP, NEXT, API, kind=kind))
    gw_rules = [r for r in rules_of(objs) if RBAC_GROUP in r["apiGroups"]]
    reads = [r for r in gw_rules if not any(res.endswith("/status") for res in r["resources"])]
    writes = [r for r in gw_rules if r not in reads]
    assert {"gatewayclasses", "gateways", "httproutes", "grpcroutes", "referencegrants"} <= {
        res for r in reads for res in r["resources"]
    }
    assert all(r["verbs"] == ["get", "list", "watch"] for r in reads)
    (status,) = writes
    assert all(res.endswith("/status") for res in status["resources"])
    assert {
        "gatewayclasses/status",
        "gateways/status",
        "httproutes/status",
        "grpcroutes/status",
    } <= set(status["resources"])
    assert status["verbs"] == (["patch"] if kind == "kexpose" else ["update"])
    core = [r for r in rules_of(objs) if r["apiGroups"] == [""] and "namespaces" in r["resources"]]
    assert core
    assert core[0]["verbs"] == ["get", "list", "watch"]


def test_ingress_api_grants_nothing_of_the_gateway_api() -> None:
    raw = raw_stack(
        "staging", app("web", **routed("shop.example.com", tls={"mode": "self-signed"}))
    )
    raw["controller"]["api"] = "ingress"
    objs = plan(raw)
    assert not [r for r in rules_of(objs) if RBAC_GROUP in r["apiGroups"]]
    assert not [m for m in objs if is_gateway_object(m) or m["kind"] == "CustomResourceDefinition"]
    args = one(objs, "Deployment", "kexpose-controller")["spec"]["template"]["spec"]["containers"][
        0
    ]["args"]
    assert not [a for a in args if a.startswith("--gateway")]


def container(objs: list[Manifest]) -> dict[str, Any]:
    pod = one(objs, "Deployment", "kexpose-controller")["spec"]["template"]["spec"]
    c: dict[str, Any] = pod["containers"][0]
    return c


def test_the_proxy_serves_the_gateway_on_80_and_443_without_root() -> None:
    objs = plan(raw_stack("staging", SHOP, NEXT, API, gateway={"addresses": "10.0.0.0/24"}))
    c = container(objs)
    assert "--gateway-controller-name=kexpose.dev/gateway-controller" in c["args"]
    assert "--gateway-addresses=10.0.0.0/24" in c["args"]
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {
        "http": 80,
        "https": 443,
        "health": 10254,
    }
    pod = one(objs, "Deployment", "kexpose-controller")["spec"]["template"]["spec"]
    assert pod["securityContext"]["sysctls"] == [
        {"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}
    ]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert one(objs, "GatewayClass")["spec"]["controllerName"] == "kexpose.dev/gateway-controller"


def test_traefik_serves_gateway_listeners_on_its_entry_points() -> None:
    objs = plan(raw_stack("staging", SHOP, NEXT, API, kind="traefik"))
    c = container(objs)
    assert "--providers.kubernetesgateway=true" in c["args"]
    assert (
        "--providers.kubernetesgateway.statusaddress.service.name=kexpose-controller" in c["args"]
    )
    entry_points = {
        a.split("=")[1] for a in c["args"] if a.startswith("--entryPoints.web") and ".address=" in a
    }
    ports = {str(entry["port"]) for entry in one(objs, "Gateway")["spec"]["listeners"]}
    assert {f":{p}/tcp" for p in ports} == entry_points
    assert one(objs, "GatewayClass")["spec"]["controllerName"] == "traefik.io/gateway-controller"
    pod = one(objs, "Deployment", "kexpose-controller")["spec"]["template"]["spec"]
    assert "sysctls" not in pod["securityContext"]


def test_the_crds_are_installed_unless_the_platform_owns_them() -> None:
    objs = plan(raw_stack("staging", SHOP, NEXT, API))
    crds = [
        c
        for c in find(objs, "CustomResourceDefinition")
        if c["spec"]["group"] == "gateway.networking.k8s.io"
    ]
    names = {c["metadata"]["name"] for c in crds}
    assert {
        "gateways.gateway.networking.k8s.io",
        "httproutes.gateway.networking.k8s.io",
        "referencegrants.gateway.networking.k8s.io",
    } <= names
    assert all(
        c["metadata"]["annotations"]["gateway.networking.k8s.io/bundle-version"] == "v1.6.3"
        for c in crds
    )
    # Adopted when already there (another field manager applied the same bundle).
    assert all(c["metadata"]["annotations"]["pulumi.com/patchForce"] == "true" for c in crds)
    # before any object of theirs in apply order
    first_gateway_object = min(i for i, m in enumerate(objs) if is_gateway_object(m))
    assert (
        max(i for i, m in enumerate(objs) if m["kind"] == "CustomResourceDefinition")
        < first_gateway_object
    )
    owned = plan(raw_stack("staging", SHOP, NEXT, API, gateway={"installCrds": False}))
    # kexpose's own EdgeAuth CRD stays: the platform owns the Gateway API's, not ours.
    assert [c["metadata"]["name"] for c in find(owned, "CustomResourceDefinition")] == [
        "edgeauths.kexpose.dev"
    ]
    assert len(owned) == len(objs) - len(crds)


@pytest.mark.parametrize("kind", ["kexpose", "traefik"])
@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_every_gateway_object_validates_against_the_crd_schemas(
    kind: str, environment: str
) -> None:
    apps = [copy.deepcopy(a) for a in (SHOP, NEXT, API)]
    if environment == "prod":
        apps[0]["tls"] = {"mode": "cert-manager", "issuer": "le"}
    controller: Raw = {"service": {"type": "NodePort"}} if environment == "dev" else {}
    objs = plan(raw_stack(environment, *apps, kind=kind, **controller))
    checked = [m for m in objs if is_gateway_object(m)]
    assert {m["kind"] for m in checked} == {
        "GatewayClass",
        "Gateway",
        "HTTPRoute",
        "ReferenceGrant",
    }
    for m in checked:
        assert gateway_errors(m) == [], f"{m['kind']} {m['metadata']['name']}"


@pytest.mark.parametrize(
    ("kind", "mutate", "fragment"),
    [
        ("Gateway", lambda s: s["listeners"][0].update(port=0), "listeners/0/port"),
        ("Gateway", lambda s: s["listeners"][0].update(protocol="HTTP 1"), "listeners/0/protocol"),
        (
            "HTTPRoute",
            lambda s: s["rules"][0]["matches"][0]["path"].update(type="Prefix"),
            "path/type",
        ),
        ("HTTPRoute", lambda s: s.update(hostname=["x"]), "Additional properties"),
        ("ReferenceGrant", lambda s: s.update(to=[]), "to"),
    ],
)
def test_the_schema_check_can_fail(kind: str, mutate: Any, fragment: str) -> None:
    objs = plan(raw_stack("staging", SHOP, NEXT, API))
    broken = copy.deepcopy(find(objs, kind)[-1])
    mutate(broken["spec"])
    errors = gateway_errors(broken)
    assert errors
    assert any(fragment in e for e in errors), errors


def test_namespaces_carry_the_name_label_the_selectors_read() -> None:
    # The API server sets it on every Namespace; written out, an offline reader (kexpose-proxy
    # --manifests, kexpose check) matches the listeners' selectors as a cluster does.
    objs = plan(raw_stack("staging", SHOP, NEXT, API))
    namespaces = find(objs, "Namespace")
    assert {n["metadata"]["name"] for n in namespaces} == {"kexpose-system", "shop", "backend"}
    for n in namespaces:
        assert n["metadata"]["labels"]["kubernetes.io/metadata.name"] == n["metadata"]["name"]


def test_the_proxy_may_read_every_kind_it_watches_and_patch_every_status_it_writes() -> None:
    """The ClusterRole follows kexpose-proxy itself: every kind its control plane lists and
    watches in Gateway mode, and every status subresource it patches. A kind added to the
    proxy without RBAC would leave an in-cluster proxy unready (a 403 on its list)."""
    from kexpose.proxy.control import kubeapi
    from kexpose.proxy.routes import GATEWAY_KINDS, KINDS
    from kexpose.proxy.routes._objects import EXTENSION_KINDS

    objs = plan(raw_stack("staging", SHOP, NEXT, API, kind="kexpose"))
    granted: dict[tuple[str, str], set[str]] = {}
    for r in rules_of(objs):
        for group in r["apiGroups"]:
            for res in r["resources"]:
                granted.setdefault((group, res), set()).update(r["verbs"])
    watched: dict[str, str] = {str(k): v for k, v in KINDS.items()}
    watched.update({str(k): v[0] for k, v in GATEWAY_KINDS.items()})
    watched.update({str(k): v[0] for k, v in EXTENSION_KINDS.items()})
    for kind, api_version in watched.items():
        group = api_version.rpartition("/")[0]
        plural = kubeapi._PLURALS[kind]
        assert {"list", "watch"} <= granted.get((group, plural), set()), (kind, group, plural)
    for kind in ("GatewayClass", "Gateway", "HTTPRoute", "ListenerSet"):
        group = watched[kind].rpartition("/")[0]
        assert "patch" in granted.get((group, f"{kubeapi._PLURALS[kind]}/status"), set()), kind
