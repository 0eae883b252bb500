"""gRPC routes in the model and what each API and controller kind gets from them.

Pure: raw stacks in, manifests (or one ConfigError) out. Every GRPCRoute and ReferenceGrant
built here validates against the Gateway API CRD schemas (``tests/unit/gateway_schema.py``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from tests.unit.gateway_schema import gateway_errors, is_gateway_object

from kexpose.errors import ConfigError
from kexpose.manifests import TlsMaterial
from kexpose.model import ServicePort
from kexpose.plan import plan_stack
from kexpose.validation import parse_stack

Raw = dict[str, Any]
Manifest = dict[str, Any]
STACK_FILE = "stacks/Pulumi.test.yaml"
MATERIAL = TlsMaterial("<cert>", "<key>")
H2C = "kubernetes.io/h2c"


def grpc_app(name: str = "greeter", namespace: str = "shop", **ingress: Any) -> Raw:
    rule: Raw = {
        "host": "grpc.example.com",
        "grpc": [
            {"service": "helloworld.Greeter", "port": "grpc"},
            {"service": "helloworld.Admin", "method": "Reload", "port": 50051},
        ],
        **ingress,
    }
    return {
        "name": name,
        "namespace": namespace,
        "workload": {
            "image": "greeter:1",
            "ports": [
                {"name": "grpc", "containerPort": 50051},
                {"name": "http", "containerPort": 8080},
            ],
        },
        "service": {"ports": [{"name": "grpc", "port": 50051}, {"name": "http", "port": 80}]},
        "ingress": {"rules": [rule]},
        "tls": {"mode": "self-signed"},
    }


def stack(*apps: Raw, api: str = "gateway", kind: str = "kexpose") -> Raw:
    return {
        "environment": "staging",
        "controller": {"kind": kind, "api": api},
        "apps": list(apps),
    }


def plan(raw: Raw) -> list[Manifest]:
    spec = parse_stack(raw, stack_file=STACK_FILE)
    return [p.manifest for p in plan_stack(spec, tls=lambda a: MATERIAL)]


def find(objs: list[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    return [m for m in objs if m["kind"] == kind and name in (None, m["metadata"]["name"])]


def one(objs: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    (found,) = find(objs, kind, name)
    return found


def ports_of(service: Manifest) -> dict[str, Manifest]:
    return {p["name"]: p for p in service["spec"]["ports"]}


def test_gateway_api_renders_a_grpcroute_on_the_hosts_tls_listener() -> None:
    objs = plan(stack(grpc_app()))
    route = one(objs, "GRPCRoute", "greeter")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["metadata"]["namespace"] == "shop"
    spec = route["spec"]
    assert spec["hostnames"] == ["grpc.example.com"]
    assert spec["parentRefs"] == [
        {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": "kexpose",
            "namespace": "kexpose-system",
            "sectionName": "https-grpc.example.com",
        }
    ]
    assert spec["rules"] == [
        {
            "matches": [{"method": {"type": "Exact", "service": "helloworld.Greeter"}}],
            "backendRefs": [{"group": "", "kind": "Service", "name": "greeter", "port": 50051}],
        },
        {
            "matches": [
                {"method": {"type": "Exact", "service": "helloworld.Admin", "method": "Reload"}}
            ],
            "backendRefs": [{"group": "", "kind": "Service", "name": "greeter", "port": 50051}],
        },
    ]
    # no HTTPRoute for a gRPC-only rule; the Gateway has the host's TLS listener
    assert not find(objs, "HTTPRoute", "greeter")
    listeners = {x["name"] for x in one(objs, "Gateway")["spec"]["listeners"]}
    assert "https-grpc.example.com" in listeners
    ports = ports_of(one(objs, "Service", "greeter"))
    assert ports["grpc"]["appProtocol"] == H2C
    assert "appProtocol" not in ports["http"]
    for m in objs:
        if is_gateway_object(m):
            assert gateway_errors(m) == [], (m["kind"], gateway_errors(m))


def test_grpcroute_header_matches_weights_and_cross_namespace_backends() -> None:
    canary = grpc_app("canary", "next")
    canary["service"]["ports"][0]["appProtocol"] = H2C
    canary.pop("ingress")
    canary["tls"] = {}
    app = grpc_app()
    app["ingress"]["rules"][0]["grpc"] = [
        {
            "service": "helloworld.Greeter",
            "port": "grpc",
            "headers": [{"name": "x-tenant", "value": "a"}],
            "weight": 90,
            "backends": [{"service": "canary", "namespace": "next", "port": "grpc", "weight": 10}],
        }
    ]
    objs = plan(stack(app, canary))
    (rule,) = one(objs, "GRPCRoute", "greeter")["spec"]["rules"]
    assert rule["matches"][0]["headers"] == [{"type": "Exact", "name": "x-tenant", "value": "a"}]
    assert [(r["name"], r.get("namespace"), r["weight"]) for r in rule["backendRefs"]] == [
        ("greeter", None, 90),
        ("canary", "next", 10),
    ]
    grant = one(objs, "ReferenceGrant", "grpcroutes-from-shop")
    assert grant["metadata"]["namespace"] == "next"
    assert grant["spec"]["from"] == [
        {"group": "gateway.networking.k8s.io", "kind": "GRPCRoute", "namespace": "shop"}
    ]
    assert grant["spec"]["to"] == [{"group": "", "kind": "Service", "name": "canary"}]
    for m in objs:
        if is_gateway_object(m):
            assert gateway_errors(m) == [], (m["kind"], gateway_errors(m))


def test_ingress_api_routes_grpc_paths_to_the_h2c_port() -> None:
    app = grpc_app()
    app["ingress"]["rules"][0]["paths"] = [{"path": "/", "port": "http"}]
    objs = plan(stack(app, api="ingress"))
    (rule,) = one(objs, "Ingress", "greeter")["spec"]["rules"]
    assert rule["host"] == "grpc.example.com"
    assert [(p["path"], p["pathType"], p["backend"]["service"]) for p in rule["http"]["paths"]] == [
        ("/", "Prefix", {"name": "greeter", "port": {"name": "http"}}),
        ("/helloworld.Greeter", "Prefix", {"name": "greeter", "port": {"name": "grpc"}}),
        ("/helloworld.Admin/Reload", "Exact", {"name": "greeter", "port": {"number": 50051}}),
    ]
    svc = one(objs, "Service", "greeter")
    assert ports_of(svc)["grpc"]["appProtocol"] == H2C
    assert "traefik.ingress.kubernetes.io/service.serversscheme" not in (
        svc["metadata"].get("annotations") or {}
    )
    assert not find(objs, "GRPCRoute")


def test_traefik_gets_its_server_scheme_annotation_on_the_grpc_service() -> None:
    app = grpc_app()
    app["service"]["ports"] = [{"name": "grpc", "port": 50051}]
    app["workload"]["ports"] = [{"name": "grpc", "containerPort": 50051}]
    objs = plan(stack(app, api="ingress", kind="traefik"))
    svc = one(objs, "Service", "greeter")
    annotations = svc["metadata"]["annotations"]
    assert annotations["traefik.ingress.kubernetes.io/service.serversscheme"] == "h2c"
    assert ports_of(svc)["grpc"]["appProtocol"] == H2C


def test_a_declared_app_protocol_is_kept() -> None:
    app = grpc_app()
    app["service"]["ports"][1]["appProtocol"] = "http"
    objs = plan(stack(app))
    assert ports_of(one(objs, "Service", "greeter"))["http"]["appProtocol"] == "http"


Mutation = Callable[[Raw], None]


def _set(path: list[str | int], value: Any) -> Mutation:
    def apply(raw: Raw) -> None:
        node: Any = raw
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return apply


RULE: list[str | int] = ["apps", 0, "ingress", "rules", 0]
G0: list[str | int] = [*RULE, "grpc", 0]

#: (case, api, controller kind, mutation, field in the message, fragments of the message)
REFUSED: list[tuple[str, str, str, Mutation, str, tuple[str, ...]]] = [
    (
        "header match with ingress",
        "ingress",
        "kexpose",
        _set([*G0, "headers"], [{"name": "x-a", "value": "b"}]),
        "grpc[0].headers",
        ("a header match cannot be expressed with api 'ingress'", "'gateway' (GRPCRoute)"),
    ),
    (
        "weights with ingress",
        "ingress",
        "kexpose",
        _set([*G0, "weight"], 5),
        "grpc[0].weight",
        ("traffic split by weight",),
    ),
    (
        "HTTP paths and gRPC on one host with gateway",
        "gateway",
        "kexpose",
        _set([*RULE, "paths"], [{"path": "/", "port": "http"}]),
        "rules[0].grpc",
        ("may not share a hostname", "rule (host) of their own"),
    ),
    (
        "own port declares another protocol",
        "gateway",
        "kexpose",
        _set(["apps", 0, "service", "ports", 0, "appProtocol"], "http"),
        "grpc[0].port",
        ("whose appProtocol is 'http'", "kubernetes.io/h2c"),
    ),
    (
        "unknown own port",
        "gateway",
        "kexpose",
        _set([*G0, "port"], "grpcx"),
        "grpc[0].port",
        ("is not a port of the app's Service", "grpc (50051), http (80)", "'grpcx'"),
    ),
    (
        "unknown other app",
        "gateway",
        "kexpose",
        _set([*G0, "to"], "nobody"),
        "grpc[0].to",
        ("is not an app in namespace 'shop'", "'nobody'"),
    ),
    (
        "repeated service",
        "gateway",
        "kexpose",
        _set([*RULE, "grpc", 1], {"service": "helloworld.Greeter", "port": "grpc"}),
        "grpc[1].service",
        ("repeats grpc[0]",),
    ),
    (
        "bad service name",
        "gateway",
        "kexpose",
        _set([*G0, "service"], "hello/world"),
        "grpc[0].service",
        ("not a gRPC service name", "'hello/world'"),
    ),
    (
        "bad method name",
        "gateway",
        "kexpose",
        _set([*G0, "method"], "Say.Hello"),
        "grpc[0].method",
        ("not a gRPC method name",),
    ),
    (
        "rule with neither paths nor grpc",
        "gateway",
        "kexpose",
        _set([*RULE, "grpc"], []),
        "rules[0].paths",
        ("a rule needs paths (HTTP) or grpc entries",),
    ),
    (
        "reserved appProtocol",
        "gateway",
        "kexpose",
        _set(["apps", 0, "service", "ports", 1, "appProtocol"], "kubernetes.io/http3"),
        "ports[1].appProtocol",
        ("prefix is reserved to Kubernetes", "kubernetes.io/ws"),
    ),
    (
        "traefik: an HTTP path to a Service that speaks h2c",
        "ingress",
        "traefik",
        _set([*RULE, "paths"], [{"path": "/", "port": "http"}]),
        "rules[0].paths[0].port",
        ("Traefik reads h2c per Service", "serversscheme", "'http'"),
    ),
]


@pytest.mark.parametrize(
    ("api", "kind", "mutate", "field", "fragments"),
    [pytest.param(*row[1:], id=row[0]) for row in REFUSED],
)
def test_refused_with_the_field_the_value_and_the_fix(
    api: str, kind: str, mutate: Mutation, field: str, fragments: tuple[str, ...]
) -> None:
    raw = stack(grpc_app(), api=api, kind=kind)
    plan(copy.deepcopy(raw))  # the unmutated stack is fine
    mutate(raw)
    with pytest.raises(ConfigError) as caught:
        parse_stack(raw, stack_file=STACK_FILE)
    text = str(caught.value)
    assert text.startswith(STACK_FILE)
    assert "app 'greeter'" in text, text
    assert f"{field}:" in text, text
    for fragment in fragments:
        assert fragment in text, text


def test_a_grpc_host_may_not_have_http_paths_in_another_app_with_gateway() -> None:
    web = grpc_app("web")
    web["ingress"]["rules"][0] = {"host": "grpc.example.com", "paths": [{"port": "http"}]}
    with pytest.raises(ConfigError) as caught:
        parse_stack(stack(grpc_app(), web), stack_file=STACK_FILE)
    text = str(caught.value)
    assert "kexpose:apps[0].ingress.rules[0].grpc:" in text, text
    assert "has HTTP paths in app shop/web" in text, text
    plan(stack(grpc_app(), web, api="ingress"))  # one Ingress path table per host: fine


def test_ingress_refuses_a_grpc_path_an_http_path_already_routes() -> None:
    app = grpc_app()
    app["ingress"]["rules"][0]["paths"] = [{"path": "/helloworld.Greeter", "port": "http"}]
    with pytest.raises(ConfigError, match=r"grpc\[0\]\.service: renders as Ingress path"):
        parse_stack(stack(app, api="ingress"), stack_file=STACK_FILE)


def test_grpc_to_another_apps_port_needs_it_to_declare_h2c() -> None:
    backend = grpc_app("backend")
    backend.pop("ingress")
    backend["tls"] = {}
    front = grpc_app("front")
    front["ingress"]["rules"][0]["grpc"] = [
        {"service": "helloworld.Greeter", "to": "backend", "port": "grpc"}
    ]
    with pytest.raises(ConfigError) as caught:
        parse_stack(stack(front, backend), stack_file=STACK_FILE)
    text = str(caught.value)
    assert "grpc[0].port:" in text, text
    assert "of app shop/backend" in text, text
    assert "does not declare appProtocol kubernetes.io/h2c" in text, text
    backend["service"]["ports"][0]["appProtocol"] = H2C
    objs = plan(stack(front, backend))
    (rule,) = one(objs, "GRPCRoute", "front")["spec"]["rules"]
    assert rule["backendRefs"] == [
        {"group": "", "kind": "Service", "name": "backend", "port": 50051}
    ]


@pytest.mark.parametrize(
    "value", ["http", "https", "kubernetes.io/h2c", "kubernetes.io/ws", "example.com/my-proto"]
)
def test_app_protocol_accepts_iana_kubernetes_and_prefixed_names(value: str) -> None:
    assert ServicePort(name="web", port=80, app_protocol=value).app_protocol == value


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "not a qualified name"),
        ("-http", "not a qualified name"),
        ("a/b/c", "at most one '/'"),
        ("Example.COM/x", "not a DNS subdomain"),
        ("k8s.io/h2c", "reserved to Kubernetes"),
        ("x" * 64, "not a qualified name"),
    ],
)
def test_app_protocol_refuses_what_the_api_server_or_kubernetes_would(value: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        ServicePort(name="web", port=80, app_protocol=value)
