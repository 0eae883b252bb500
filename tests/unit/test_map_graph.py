"""The exposure graph: nodes, edges, badges and verdicts, from hand-written manifests (tables)
and from the three shipped stacks run offline as ``kexpose map`` runs them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from kexpose.certs import read_certificate, self_signed
from kexpose.cli.map import graph_of
from kexpose.exposure import ExposureGraph, Node, build_graph
from kexpose.policy.engine import Violation
from kexpose.preview import run_preview

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def svc(name: str, ns: str = "shop", typ: str = "ClusterIP", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "type": typ,
            "selector": {"app": name},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
            **spec,
        },
    }


def deploy(name: str, ns: str = "shop", labels: dict[str, str] | None = None) -> dict[str, Any]:
    pod = labels or {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": pod},
        "spec": {
            "replicas": 2,
            "template": {
                "metadata": {"labels": pod},
                "spec": {"containers": [{"name": "c", "image": f"img/{name}:1"}]},
            },
        },
    }


def ingress(
    name: str, rules: list[dict[str, Any]], ns: str = "shop", **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"rules": rules, **spec},
    }


def rule(host: str, *paths: tuple[str, str]) -> dict[str, Any]:
    return {
        "host": host,
        "http": {
            "paths": [
                {
                    "path": p,
                    "pathType": "Prefix",
                    "backend": {"service": {"name": s, "port": {"name": "http"}}},
                }
                for p, s in paths
            ]
        },
    }


CONTROLLER = {"app.kubernetes.io/component": "ingress-controller", "app": "edge"}
CONTROLLER_OBJECTS: list[dict[str, Any]] = [
    {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {
            "name": "edge",
            "labels": CONTROLLER,
            "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"},
        },
        "spec": {"controller": "kexpose.dev/ingress-controller"},
    },
    deploy("edge", "net", CONTROLLER),
    svc("edge", "net", "LoadBalancer", selector={"app": "edge"}),
]


def violation(
    resource: str, rule_id: str, field: str = "spec", enforcement: str = "mandatory"
) -> Violation:
    return Violation(
        rule=rule_id,
        severity="high",
        enforcement=enforcement,  # type: ignore[arg-type]
        resource=resource,
        field=field,
        message=f"{resource} breaks {rule_id}",
        fix="fix it",
    )


def graph(objs: list[dict[str, Any]], violations: list[Violation] | None = None) -> ExposureGraph:
    return build_graph(objs, violations or [], stack="t", environment="prod", now=NOW)


def shape(g: ExposureGraph) -> set[tuple[str, str]]:
    """Edges as (kind:title, kind:title)."""
    label = {n.id: f"{n.kind}:{n.title}" for n in g.nodes}
    return {(label[e.source], label[e.target]) for e in g.edges}


def only(g: ExposureGraph, kind: str) -> Node:
    (node,) = [n for n in g.nodes if n.kind == kind]
    return node


SIMPLE = [
    *CONTROLLER_OBJECTS,
    svc("web"),
    deploy("web"),
    ingress("web", [rule("a.example.com", ("/", "web"), ("/api", "api"))]),
]


def test_the_path_in_from_the_internet() -> None:
    g = graph(SIMPLE)
    assert shape(g) == {
        ("internet:Internet", "entry:LoadBalancer"),
        ("entry:LoadBalancer", "controller:edge"),
        ("controller:edge", "host:a.example.com"),
        ("host:a.example.com", "path:/"),
        ("host:a.example.com", "path:/api"),
        ("path:/", "service:web"),
        ("path:/api", "service:api"),
        ("service:web", "workload:web"),
    }
    assert g.node("svc:shop/api").missing  # a backend the stack does not create
    assert not g.node("svc:shop/web").missing
    assert [gr.name for gr in g.groups] == ["net", "shop"]
    assert only(g, "controller").group == "net"
    assert "listeners http :80" in only(g, "controller").details


@pytest.mark.parametrize(
    ("spec", "badges", "detail"),
    [
        ({}, {"sources: any (0.0.0.0/0)", "also opens node ports"}, None),
        (
            {"loadBalancerSourceRanges": ["10.0.0.0/8"], "allocateLoadBalancerNodePorts": False},
            {"1 source range(s)"},
            "sources 10.0.0.0/8",
        ),
        ({"externalIPs": ["192.0.2.1"]}, {"external IPs 192.0.2.1"}, None),
    ],
)
def test_load_balancer_sources(spec: dict[str, Any], badges: set[str], detail: str | None) -> None:
    g = graph([svc("web", typ="LoadBalancer", **spec), deploy("web")])
    entry = only(g, "entry")
    assert {b.label for b in entry.badges} >= badges
    if detail:
        assert detail in entry.details
    assert shape(g) == {
        ("internet:Internet", "entry:LoadBalancer"),
        ("entry:LoadBalancer", "service:web"),
        ("service:web", "workload:web"),
    }


def test_node_port_and_internal_services() -> None:
    g = graph(
        [
            svc("debug", typ="NodePort", ports=[{"port": 80, "nodePort": 30090}]),
            deploy("debug"),
            svc("db"),
            deploy("db"),
            svc("orphan", selector={"app": "legacy"}),
        ]
    )
    entry = only(g, "entry")
    assert entry.title == "NodePort"
    assert "node ports :30090→80" in entry.details
    assert "sources: any node address" in {b.label for b in entry.badges}
    assert g.node("svc:shop/debug").exposed
    assert not g.node("svc:shop/db").exposed
    assert not g.node("wl:shop/db").exposed
    missing = [n for n in g.nodes if n.missing]
    assert [(n.kind, n.details) for n in missing] == [("workload", ("selector app=legacy",))]


def test_tls_badges() -> None:
    pair = self_signed(["a.example.com"], days=90, now=NOW)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": "a-tls", "namespace": "shop"},
        "stringData": {"tls.crt": pair.cert_pem, "tls.key": "<redacted>"},
    }
    tls: dict[str, Any] = {"tls": [{"hosts": ["a.example.com"], "secretName": "a-tls"}]}
    cm = ingress("cm", [rule("c.example.com", ("/", "web"))])
    cm["metadata"]["annotations"] = {"cert-manager.io/cluster-issuer": "le"}
    cm["spec"]["tls"] = [{"hosts": ["c.example.com"], "secretName": "c-tls"}]
    g = graph(
        [
            *CONTROLLER_OBJECTS,
            secret,
            ingress("self", [rule("a.example.com", ("/", "web"))], **tls),
            ingress("plain", [rule("b.example.com", ("/", "web"))]),
            ingress(
                "ext",
                [rule("d.example.com", ("/", "web"))],
                tls=[{"hosts": ["d.example.com"], "secretName": "byo"}],
            ),
            cm,
        ]
    )
    hosts = {n.title: n for n in g.nodes if n.kind == "host"}
    a = hosts["a.example.com"]
    assert [b.label for b in a.badges] == ["TLS self-signed", "auth: none"]
    not_after = read_certificate(pair.cert_pem).not_after
    days = (not_after - NOW).days
    assert 88 <= days <= 90
    assert f"expires {not_after:%Y-%m-%d} ({days} d)" in a.details
    assert "TLS covers a.example.com" in a.details
    assert [b.label for b in hosts["b.example.com"].badges] == ["no TLS", "auth: none"]
    assert hosts["c.example.com"].badges[0].label == "TLS cert-manager"
    assert "issuer le" in hosts["c.example.com"].details
    assert "Secret byo not in stack; expiry unknown" in hosts["d.example.com"].details
    labels = {e.label for e in g.edges if g.node(e.target).title == "a.example.com"}
    assert labels == {"https"}
    # An expired certificate is bad news on the badge.
    later = build_graph(
        [
            *CONTROLLER_OBJECTS,
            secret,
            ingress("self", [rule("a.example.com", ("/", "web"))], **tls),
        ],
        [],
        stack="t",
        environment="prod",
        now=NOW + dt.timedelta(days=100),
    )
    (host,) = [n for n in later.nodes if n.kind == "host"]
    assert host.badges[0].tone == "bad"


@pytest.mark.parametrize(
    ("field", "node_id"),
    [
        ("spec.rules[0].host", "host:shop/web/0"),
        ("spec.rules[0].http.paths[1].backend", "path:shop/web/0/1"),
        ("spec.rules[1].http.paths[0].path", "path:shop/web/1/0"),
        ("metadata.annotations", "host:shop/web/0"),
    ],
)
def test_ingress_findings_land_on_the_host_or_path_they_are_about(field: str, node_id: str) -> None:
    objs = [
        *CONTROLLER_OBJECTS,
        ingress(
            "web",
            [
                rule("a.example.com", ("/", "web"), ("/api", "web")),
                rule("b.example.com", ("/", "web")),
            ],
        ),
    ]
    g = graph(objs, [violation("Ingress/shop/web", "ing-x", field)])
    with_findings = {n.id for n in g.nodes if n.findings}
    expected = (
        {node_id} if field.startswith("spec.rules") else {"host:shop/web/0", "host:shop/web/1"}
    )
    assert with_findings == expected
    assert g.node(node_id).verdict == "mandatory"


def test_findings_on_other_objects() -> None:
    objs = [
        *CONTROLLER_OBJECTS,
        svc("web"),
        deploy("web"),
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}},
        },
    ]
    vs = [
        violation("Service/shop/web", "svc-a", enforcement="advisory"),
        violation("PodDisruptionBudget/shop/web", "pdb-b"),
        violation("Namespace/default/shop", "ns-c"),
        violation("ConfigMap/shop/x", "cm-d"),
        violation("IngressClass/default/edge", "class-e", enforcement="advisory"),
    ]
    g = graph(objs, vs)
    assert g.node("svc:shop/web").verdict == "advisory"
    assert g.node("wl:shop/web").verdict == "mandatory"
    assert "PDB web" in {b.label for b in g.node("wl:shop/web").badges}
    assert g.node("ctrl:edge").verdict == "advisory"
    assert g.node("svc:shop/web").exposed is False
    (shop,) = [gr for gr in g.groups if gr.name == "shop"]
    assert [f.rule for f in shop.findings] == ["ns-c"]
    assert [f.rule for f in g.other_findings] == ["cm-d"]
    assert {f.rule for f in g.findings} == {"svc-a", "pdb-b", "ns-c", "cm-d", "class-e"}


def test_ingress_of_a_class_outside_the_stack_and_default_backend() -> None:
    ing = ingress("web", [], ingressClassName="nginx")
    ing["spec"]["defaultBackend"] = {"service": {"name": "web", "port": {"number": 80}}}
    g = graph([svc("web"), deploy("web"), ing])
    ctrl = only(g, "controller")
    assert (ctrl.title, ctrl.missing, ctrl.group) == ("nginx", True, "cluster")
    assert shape(g) >= {
        ("controller:nginx", "host:* (any host)"),
        ("host:* (any host)", "path:(default backend)"),
        ("path:(default backend)", "service:web"),
    }


def test_search_text_holds_names_and_rules() -> None:
    g = graph(SIMPLE, [violation("Service/shop/web", "svc-rule")])
    text = g.node("svc:shop/web").search_text()
    assert "svc-rule" in text
    assert "service/shop/web" in text


# The shipped stacks, run offline (a second or two each).


@pytest.fixture(scope="module", params=["dev", "staging", "prod"])
def shipped(request: pytest.FixtureRequest) -> ExposureGraph:
    return graph_of(run_preview(request.param, project=ROOT))


SHIPPED_SHOP = {
    ("path:/", "service:shop-web"),
    ("path:/api", "service:shop-api"),
    ("service:shop-web", "workload:shop-web"),
    ("service:shop-api", "workload:shop-api"),
    ("service:inventory", "workload:inventory"),
}
SHIPPED: dict[str, dict[str, Any]] = {
    "dev": {
        "host": "shop.dev.example.com",
        "tls": "no TLS",
        "entries": {("entry:NodePort", "controller:kexpose"), ("entry:NodePort", "service:debug")},
        "groups": ["kexpose-system", "shop", "tools"],
        "internal": {"inventory"},
    },
    "staging": {
        "host": "shop.staging.example.com",
        "tls": "TLS self-signed",
        "entries": {("entry:LoadBalancer", "controller:kexpose")},
        "groups": ["kexpose-system", "shop"],
        "internal": {"inventory"},
    },
    "prod": {
        "host": "shop.example.com",
        "tls": "TLS cert-manager",
        "entries": {("entry:LoadBalancer", "controller:kexpose")},
        "groups": ["kexpose-system", "shop"],
        "internal": {"inventory"},
        # the gRPC app: a GRPCRoute on a host of its own, its method shown as the gRPC path
        "grpc": {"rpc.shop.example.com"},
    },
}


def test_shipped_stack(shipped: ExposureGraph) -> None:
    want = SHIPPED[shipped.stack]
    edges = shape(shipped)
    host = f"host:{want['host']}"
    assert edges >= SHIPPED_SHOP | want["entries"]
    assert edges >= {("controller:kexpose", host), (host, "path:/"), (host, "path:/api")}
    assert sorted(g.name for g in shipped.groups) == want["groups"]
    hosts = {n.title: n for n in shipped.nodes if n.kind == "host"}
    assert set(hosts) == {want["host"], *want.get("grpc", ())}
    for h in hosts.values():
        assert [b.label for b in h.badges] == [want["tls"], "auth: none"]
    internal = {n.title for n in shipped.nodes if not n.exposed and n.kind == "service"}
    assert internal == want["internal"]
    assert not any(n.missing for n in shipped.nodes)
    # The shipped stacks pass their environment's policy: every node is green.
    assert {n.verdict for n in shipped.nodes} == {"pass"}
    if shipped.stack == "prod":
        assert edges >= {
            ("controller:kexpose", "host:rpc.shop.example.com"),
            ("host:rpc.shop.example.com", "path:/grpc.health.v1.Health/*"),
            ("path:/grpc.health.v1.Health/*", "service:shop-rpc"),
        }
        entry = only(shipped, "entry")
        assert "sources 203.0.113.0/24, 198.51.100.0/24" in entry.details
        assert "no node ports" in entry.details
    if shipped.stack == "staging":
        assert any(d.startswith("expires ") for d in h.details)


def test_gateway_routes_show_matches_and_weights() -> None:
    g = graph_of(run_preview("staging", project=ROOT))
    (host,) = [n for n in g.nodes if n.kind == "host"]
    assert host.details[:2] == (
        "HTTPRoute shop-web",
        "Gateway kexpose, listener https-shop.staging.example.com",
    )
    split, by_header, _api = sorted((n for n in g.nodes if n.kind == "path"), key=lambda n: n.id)
    assert split.details == (
        "PathPrefix → shop-web:80 (90), shop-web-canary:80 (10)",
        "EdgeAuth shop-web",  # staging is behind basic auth
    )
    assert "X-Canary: always" in by_header.details
    assert "ResponseHeaderModifier" in by_header.details
    labels = {(e.target, e.label) for e in g.edges if e.source == split.id}
    assert labels == {("svc:shop/shop-web", "80 (90)"), ("svc:shop/shop-web-canary", "80 (10)")}
    # the redirect route is the controller's, not a host of its own
    holders = [
        n.id for n in g.nodes if "HTTPRoute/kexpose-system/kexpose-https-redirect" in n.objects
    ]
    assert holders == ["ctrl:kexpose"]
