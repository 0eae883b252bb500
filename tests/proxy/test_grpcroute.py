"""GRPCRoute in the Gateway API core, pure: method and header matches as path, POST and
content-type matches, precedence, filters, h2c backends, listener kinds, cross-serving with
HTTPRoutes, and the status the spec asks for."""

from __future__ import annotations

from typing import Any

import pytest
from tests.proxy.objects import app, service, sport
from tests.proxy.test_gateway_core import (
    BACKENDS,
    CONTROLLER,
    GROUP,
    backend,
    conditions,
    gateway,
    gateway_class,
    http_route,
    listener,
    rule,
)

from kexpose.proxy.routes import ObjectSet
from kexpose.proxy.routes._backends import index_slices
from kexpose.proxy.routes._gateway import GatewayTable, build_gateway_table
from kexpose.proxy.routes._gwstatus import RouteStatus
from kexpose.proxy.routes._gwtable import GatewayRule
from kexpose.proxy.routes._matches import RequestView

Obj = dict[str, Any]
SERVICE = "gateway_api_conformance.echo_basic.grpcecho.GrpcEcho"
GRPC = {"content-type": "application/grpc"}


def grpc_route(
    name: str,
    *rules: Obj,
    namespace: str = "infra",
    parents: list[Obj] | None = None,
    hostnames: list[str] | None = None,
    created: str = "2026-01-01T00:00:00Z",
) -> Obj:
    route = http_route(
        name, *rules, namespace=namespace, parents=parents, hostnames=hostnames, created=created
    )
    return {**route, "kind": "GRPCRoute"}


def method(service: str | None = None, name: str | None = None, type_: str | None = None) -> Obj:
    spec: Obj = {}
    for key, value in (("service", service), ("method", name), ("type", type_)):
        if value is not None:
            spec[key] = value
    return {"method": spec}


def build(*objs: Obj, **extra: Any) -> GatewayTable:
    by_kind: dict[str, dict[Any, Obj]] = {}
    grants = []
    for obj in objs:
        meta = obj["metadata"]
        if obj["kind"] == "ReferenceGrant":
            grants.append(obj)
        elif obj["kind"] == "GatewayClass":
            by_kind.setdefault("GatewayClass", {})[meta["name"]] = obj
        else:
            by_kind.setdefault(obj["kind"], {})[(meta.get("namespace", ""), meta["name"])] = obj
    gateways = by_kind.get("Gateway", {})
    return build_gateway_table(
        controller=CONTROLLER,
        classes=by_kind.get("GatewayClass", {}),
        gateways=gateways,
        routes=by_kind.get("HTTPRoute", {}),
        grpc_routes=by_kind.get("GRPCRoute", {}),
        grants=grants,
        services=by_kind.get("Service", {}),  # type: ignore[arg-type]
        slices=index_slices(ObjectSet(slices=by_kind.get("EndpointSlice", {}))),  # type: ignore[arg-type]
        secrets={},
        namespaces=extra.get("namespaces", {}),
        addresses={k: ("10.250.0.1",) for k in gateways},
    )


def parent(table: GatewayTable, name: str, kind: str = "GRPCRoute") -> dict[str, tuple[str, str]]:
    found: RouteStatus = next(r for r in table.routes if r.name == name and r.kind == kind)
    return conditions(found.parents[0])


def call(
    table: GatewayTable,
    path: str,
    *,
    host: str = "grpc.example.com",
    verb: str = "POST",
    headers: dict[str, str] | None = None,
    port: int = 80,
) -> GatewayRule | None:
    gw_port = next(p for p in table.ports if p.port == port)
    lst = gw_port.listener(host)
    vhost = lst.host(host) if lst is not None else None
    if vhost is None:
        return None
    return vhost.select(RequestView(verb, path, GRPC if headers is None else headers))


# --- method matches ------------------------------------------------------------------------------

METHOD_MATCHES = [
    # (method match, paths taken, paths not taken)
    (
        method(SERVICE, "Echo"),
        [f"/{SERVICE}/Echo"],
        [f"/{SERVICE}/EchoTwo", f"/{SERVICE}/Echo/x", f"/{SERVICE}x/Echo", "/Echo"],
    ),
    (method(SERVICE), [f"/{SERVICE}/Echo", f"/{SERVICE}/Any"], [f"/{SERVICE}", "/a.B/Echo"]),
    (method(name="Echo"), ["/a.B/Echo", f"/{SERVICE}/Echo"], ["/a.B/EchoTwo", "/Echo"]),
    # Exact names are compared as written: a dot is a dot, not any character.
    (method("a.b"), ["/a.b/M"], ["/axb/M"]),
    (
        method(r"gateway_api_conformance\..*", "Echo.*", "RegularExpression"),
        [f"/{SERVICE}/Echo", f"/{SERVICE}/EchoTwo"],
        ["/other.Svc/Echo", f"/{SERVICE}/Other"],
    ),
    (method(name="Echo(Two)?", type_="RegularExpression"), ["/x.Y/Echo", "/x.Y/EchoTwo"], []),
    ({}, ["/any.Service/AnyMethod", "/"], []),
]


@pytest.mark.parametrize(("match", "yes", "no"), METHOD_MATCHES)
def test_method_matches_become_path_matches(match: Obj, yes: list[str], no: list[str]) -> None:
    table = build(
        gateway_class(),
        gateway("gw", listener("http")),
        grpc_route("r", rule(backend("web"), matches=[match])),
        *BACKENDS,
    )
    assert parent(table, "r")["Accepted"] == ("True", "Accepted")
    assert [p for p in yes if call(table, p) is None] == []
    assert [p for p in no if call(table, p) is not None] == []


CALL_SHAPES = [
    # (HTTP method, headers, a gRPC call?)
    ("POST", {"content-type": "application/grpc"}, True),
    ("POST", {"content-type": "application/grpc+proto"}, True),
    ("POST", {"content-type": "application/grpc;charset=utf-8"}, True),
    ("POST", {"content-type": "Application/GRPC"}, True),
    ("POST", {"content-type": "application/grpcx"}, False),
    ("POST", {"content-type": "application/json"}, False),
    ("POST", {}, False),
    ("GET", {"content-type": "application/grpc"}, False),
]


@pytest.mark.parametrize(("verb", "headers", "taken"), CALL_SHAPES)
def test_only_grpc_calls_take_a_grpc_rule(verb: str, headers: dict[str, str], taken: bool) -> None:
    table = build(
        gateway_class(),
        gateway("gw", listener("http")),
        grpc_route("r", rule(backend("web"))),
        *BACKENDS,
    )
    found = call(table, f"/{SERVICE}/Echo", verb=verb, headers=headers)
    assert (found is not None) is taken


# --- precedence ----------------------------------------------------------------------------------


def to(name: str, *matches: Obj) -> Obj:
    return rule(backend(name), matches=list(matches))


def headers(**values: str) -> Obj:
    return {"headers": [{"name": k, "value": v} for k, v in values.items()]}


def test_header_matches_as_the_conformance_route_writes_them() -> None:
    # gateway-api v1.6.3 conformance/tests/grpcroute-header-matching.yaml, rule for rule.
    table = build(
        gateway_class(),
        gateway("gw", listener("http")),
        grpc_route(
            "r",
            to("v1", headers(version="one")),
            to("v2", headers(version="two")),
            to("v1", headers(version="two", color="orange")),
            to("v1", headers(color="blue"), headers(color="green")),
            to("v2", headers(color="red"), headers(color="yellow")),
        ),
        *app("v1", "10.0.0.1", namespace="infra"),
        *app("v2", "10.0.0.2", namespace="infra"),
    )

    def goes_to(**values: str) -> str | None:
        found = call(table, f"/{SERVICE}/Echo", headers={**GRPC, **values})
        return found.backends[0].backend.key.split("/")[1].split(":")[0] if found else None

    assert goes_to(version="one") == "v1"
    assert goes_to(version="two") == "v2"
    assert goes_to(version="two", color="orange") == "v1"  # two header matches beat one
    assert goes_to(color="blue") == "v1"
    assert goes_to(color="green") == "v1"
    assert goes_to(color="red") == "v2"
    assert goes_to(color="yellow") == "v2"
    assert goes_to(color="purple") is None
    assert goes_to() is None


def test_precedence_service_then_method_then_headers_then_age() -> None:
    table = build(
        gateway_class(),
        gateway("gw", listener("http")),
        grpc_route(
            "old",
            to("method-only", method(name="EchoTwo")),
            to("service-only", method(SERVICE)),
            created="2025-01-01T00:00:00Z",
        ),
        grpc_route(
            "new",
            to("exact", method(SERVICE, "Echo")),
            to("headers", {**method(SERVICE), **headers(version="one")}),
            to("catch-all"),
            created="2026-06-01T00:00:00Z",
        ),
        grpc_route("newer", to("same-as-old", method(SERVICE)), created="2026-07-01T00:00:00Z"),
    )

    def rule_of(path: str, **values: str) -> tuple[str, int] | None:
        found = call(table, path, headers={**GRPC, **values})
        return (found.route, found.rule) if found else None

    assert rule_of(f"/{SERVICE}/Echo") == ("infra/new", 0)  # service and method characters
    # A longer service beats a method match alone; headers break the tie between two
    # service-only matches; age breaks the tie between equal matches.
    assert rule_of(f"/{SERVICE}/EchoTwo") == ("infra/old", 1)
    assert rule_of(f"/{SERVICE}/EchoTwo", version="one") == ("infra/new", 1)
    assert rule_of("/other.Svc/EchoTwo") == ("infra/old", 0)
    assert rule_of("/other.Svc/Other") == ("infra/new", 2)


# --- filters and backends ------------------------------------------------------------------------


def test_filters_weights_and_h2c_backends_reach_the_rule() -> None:
    modifier = {"set": [{"name": "x-set", "value": "1"}], "remove": ["x-gone"]}
    table = build(
        gateway_class(),
        gateway("gw", listener("http")),
        grpc_route(
            "r",
            rule(
                backend("v1", weight=3),
                backend("v2", weight=1),
                backend("zero", weight=0),
                name="named",
                filters=[
                    {"type": "RequestHeaderModifier", "requestHeaderModifier": modifier},
                    {"type": "ResponseHeaderModifier", "responseHeaderModifier": modifier},
                    {"type": "RequestMirror", "requestMirror": {"backendRef": backend("mirror")}},
                ],
            ),
        ),
        *[
            obj
            for n in ("v1", "v2", "zero", "mirror")
            for obj in app(n, "10.0.0.1", namespace="infra")
        ],
    )
    assert parent(table, "r") == {
        "Accepted": ("True", "Accepted"),
        "ResolvedRefs": ("True", "ResolvedRefs"),
    }
    found = call(table, f"/{SERVICE}/Echo")
    assert found is not None
    assert found.grpc
    assert found.name == "named"
    assert found.error is None
    assert [(b.weight, b.backend.protocol) for b in found.backends] == [(3, "h2c"), (1, "h2c")]
    assert found.request_headers is not None
    assert found.request_headers.set == (("x-set", "1"),)
    assert found.response_headers is not None
    assert [m.backend.protocol for m in found.mirrors] == ["h2c"]


@pytest.mark.parametrize("app_protocol", ["kubernetes.io/h2c", None, "http"])
def test_a_grpcroute_speaks_h2c_whatever_the_service_port_says(app_protocol: str | None) -> None:
    port = sport(8080, 3000)
    if app_protocol is not None:
        port["appProtocol"] = app_protocol
    table = build(
        gateway_class(),
        gateway("gw", listener("http")),
        grpc_route("g", rule(backend("svc", 8080))),
        service("svc", port, namespace="infra"),
    )
    assert parent(table, "g")["ResolvedRefs"] == ("True", "ResolvedRefs")
    found = call(table, f"/{SERVICE}/Echo")
    assert found is not None
    assert [b.backend.protocol for b in found.backends] == ["h2c"]


def test_invalid_backends_are_answered_by_the_rule_as_grpc_and_said_why() -> None:
    table = build(
        gateway_class(),
        gateway("gw", listener("http")),
        grpc_route("none", rule(backend("nope")), hostnames=["none.test"]),
        grpc_route("half", rule(backend("web"), backend("nope")), hostnames=["half.test"]),
        grpc_route("empty", rule(), hostnames=["empty.test"]),
        *BACKENDS,
    )
    assert parent(table, "none")["ResolvedRefs"] == ("False", "BackendNotFound")
    assert parent(table, "none")["Accepted"] == ("True", "Accepted")
    none = call(table, "/a.B/C", host="none.test")
    assert none is not None
    assert none.grpc
    assert none.error
    half = call(table, "/a.B/C", host="half.test")
    assert half is not None
    assert half.error is None
    assert half.invalid_weight == 1
    empty = call(table, "/a.B/C", host="empty.test")
    assert empty is not None
    assert empty.error == "the rule has no backendRefs"
    # What each rule answers itself reads UNAVAILABLE to a gRPC client (503 -> 14, ``_grpc``).
    assert [r.failure_status for r in (none, half, empty)] == [503, 503, 503]


def test_a_reference_grant_must_name_grpcroute() -> None:
    def grant(kind: str) -> Obj:
        return {
            "apiVersion": f"{GROUP}/v1beta1",
            "kind": "ReferenceGrant",
            "metadata": {"name": "g", "namespace": "apps"},
            "spec": {
                "from": [{"group": GROUP, "kind": kind, "namespace": "infra"}],
                "to": [{"group": "", "kind": "Service"}],
            },
        }

    ref = backend("web", namespace="apps")
    objs = [gateway_class(), gateway("gw", listener("http")), grpc_route("r", rule(ref))]
    objs += app("web", "10.0.0.9", namespace="apps")
    assert parent(build(*objs, grant("HTTPRoute")), "r")["ResolvedRefs"] == (
        "False",
        "RefNotPermitted",
    )
    assert parent(build(*objs, grant("GRPCRoute")), "r")["ResolvedRefs"] == (
        "True",
        "ResolvedRefs",
    )


# --- what is refused -----------------------------------------------------------------------------

REFUSED = [
    (rule(backend("web"), matches=[method()]), "at least one of service and method"),
    (rule(backend("web"), matches=[method("bad/service")]), "not a gRPC service name"),
    (rule(backend("web"), matches=[method(name="Bad.Method")]), "not a gRPC method name"),
    (rule(backend("web"), matches=[method("a", type_="Prefix")]), "method.type 'Prefix'"),
    (rule(backend("web"), matches=[method("(", type_="RegularExpression")]), "regular expr"),
    (rule(backend("web"), matches=[{"method": "Echo"}]), "method must be an object"),
    (rule(backend("web"), matches=[{"headers": [{"name": "x", "type": "Prefix"}]}]), "header"),
    (
        rule(backend("web"), filters=[{"type": "RequestRedirect", "requestRedirect": {}}]),
        "'RequestRedirect' is not one of",
    ),
    (rule(backend("web"), filters=[{"type": "URLRewrite", "urlRewrite": {}}]), "'URLRewrite'"),
    (rule(backend("web"), filters=[{"type": "CORS", "cors": {}}]), "'CORS'"),
    # GRPCBackendRef.weight is an int32 in 0..1000000 (the CRD's validation); a JSON true is no
    # weight, although Python's bool is an int.
    *[(rule(backend("web", weight=w)), "weight") for w in (-1, True, False, 1_000_001, 1.5)],
]


@pytest.mark.parametrize(("bad_rule", "said"), REFUSED)
def test_values_the_proxy_cannot_use_are_not_accepted(bad_rule: Obj, said: str) -> None:
    table = build(
        gateway_class(),
        gateway("gw", listener("http")),
        grpc_route("r", bad_rule),
        *BACKENDS,
    )
    [status] = table.routes
    [accepted] = [c for c in status.parents[0].conditions if c.type == "Accepted"]
    assert (accepted.status, accepted.reason) == ("False", "UnsupportedValue")
    assert said in accepted.message
    assert any(p.startswith("GRPCRoute infra/r: ") and said in p for p in table.problems)
    assert table.ports[0].listeners[0].hosts == {}  # nothing of it is served


MALFORMED: list[Obj] = [
    {"spec": "x"},
    {"spec": {"parentRefs": [{"name": "gw"}], "rules": "x"}},
    {"spec": {"parentRefs": [{"name": "gw"}], "rules": ["x", None]}},
    {"spec": {"parentRefs": [{"name": "gw"}], "rules": [{"matches": "x", "backendRefs": [1]}]}},
    {"spec": {"parentRefs": [{"name": "gw"}], "rules": [{"matches": [{"method": []}]}]}},
    {"spec": {"parentRefs": [{"name": "gw"}], "hostnames": "x", "rules": [{"filters": 3}]}},
    {"spec": {"parentRefs": [{"name": "gw"}], "rules": [{"matches": [{"headers": "x"}]}]}},
    {"spec": {"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": [{"name": 7}]}]}},
]


@pytest.mark.parametrize("junk", MALFORMED)
def test_malformed_grpcroutes_are_reported_not_raised(junk: Obj) -> None:
    route = {"kind": "GRPCRoute", "metadata": {"name": "junk", "namespace": "infra"}, **junk}
    table = build(gateway_class(), gateway("gw", listener("http")), route, *BACKENDS)
    assert [g.name for g in table.gateways] == ["gw"]
    for status in table.routes:
        assert status.kind == "GRPCRoute"
        assert {c.type for c in status.parents[0].conditions} == {"Accepted", "ResolvedRefs"}


# --- listeners and cross-serving -----------------------------------------------------------------

KINDS = [
    (None, "Accepted"),
    ([{"kind": "GRPCRoute"}], "Accepted"),
    ([{"group": GROUP, "kind": "GRPCRoute"}, {"kind": "HTTPRoute"}], "Accepted"),
    ([{"kind": "HTTPRoute"}], "NotAllowedByListeners"),
]


@pytest.mark.parametrize(("kinds", "reason"), KINDS)
def test_listener_route_kinds(kinds: list[Obj] | None, reason: str) -> None:
    allowed: dict[str, Any] = {} if kinds is None else {"allowedRoutes": {"kinds": kinds}}
    table = build(
        gateway_class(),
        gateway("gw", listener("http", **allowed)),
        grpc_route("r", rule(backend("web"))),
        *BACKENDS,
    )
    assert parent(table, "r")["Accepted"][1] == reason
    [lst] = table.gateways[0].listeners
    assert conditions(lst)["ResolvedRefs"] == ("True", "ResolvedRefs")
    assert lst.attached_routes == (1 if reason == "Accepted" else 0)


def test_hostnames_intersect_with_the_listener_as_for_httproutes() -> None:
    table = build(
        gateway_class(),
        gateway("gw", listener("http", hostname="*.example.com")),
        grpc_route("yes", rule(backend("web")), hostnames=["grpc.example.com", "grpc.example.net"]),
        grpc_route("no", rule(backend("web")), hostnames=["example.com"]),
        *BACKENDS,
    )
    assert parent(table, "yes")["Accepted"] == ("True", "Accepted")
    assert parent(table, "no")["Accepted"] == ("False", "NoMatchingListenerHostname")
    assert set(table.ports[0].listeners[0].hosts) == {"grpc.example.com"}


OLD, NEW = "2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z"
CROSS_SERVING = [
    # (HTTPRoute (created, name, hostnames), GRPCRoute (same), which one keeps the listener)
    ((OLD, "web", ["a.example.com"]), (NEW, "grpc", ["a.example.com"]), "HTTPRoute"),
    ((NEW, "web", ["a.example.com"]), (OLD, "grpc", ["a.example.com"]), "GRPCRoute"),
    ((OLD, "web", None), (NEW, "grpc", ["a.example.com"]), "HTTPRoute"),
    ((NEW, "web", ["*.example.com"]), (OLD, "grpc", ["a.example.com"]), "GRPCRoute"),
    ((OLD, "b", ["a.example.com"]), (OLD, "a", ["a.example.com"]), "GRPCRoute"),  # by name
    ((OLD, "a", ["a.example.com"]), (OLD, "b", ["a.example.com"]), "HTTPRoute"),
    ((OLD, "web", ["a.example.com"]), (NEW, "grpc", ["b.example.com"]), "both"),
]


@pytest.mark.parametrize(("http", "grpc", "winner"), CROSS_SERVING)
def test_cross_serving_accepts_exactly_one_route_per_host(
    http: tuple[str, str, list[str] | None],
    grpc: tuple[str, str, list[str] | None],
    winner: str,
) -> None:
    table = build(
        gateway_class(),
        gateway("gw", listener("http")),
        http_route(http[1], rule(backend("web")), hostnames=http[2], created=http[0]),
        grpc_route(grpc[1], rule(backend("web")), hostnames=grpc[2], created=grpc[0]),
        *BACKENDS,
    )
    accepted = {
        kind: parent(table, name, kind)["Accepted"][0] == "True"
        for kind, name in (("HTTPRoute", http[1]), ("GRPCRoute", grpc[1]))
    }
    assert accepted == {
        "HTTPRoute": winner in ("HTTPRoute", "both"),
        "GRPCRoute": winner in ("GRPCRoute", "both"),
    }
    [lst] = table.gateways[0].listeners
    assert lst.attached_routes == (2 if winner == "both" else 1)
    served = call(table, f"/{SERVICE}/Echo", host="a.example.com")
    web = call(table, "/", host="a.example.com", verb="GET", headers={})
    if winner == "GRPCRoute":
        assert served is not None
        assert served.grpc
        assert web is None
    else:
        assert web is not None
        assert not web.grpc
    if winner != "both":
        loser = "GRPCRoute" if winner == "HTTPRoute" else "HTTPRoute"
        name = grpc[1] if loser == "GRPCRoute" else http[1]
        found = next(r for r in table.routes if r.kind == loser)
        [cond] = [c for c in found.parents[0].conditions if c.type == "Accepted"]
        assert (name, cond.reason) == (found.name, "NotAllowedByListeners")
        assert f"{winner} infra/" in cond.message


def test_cross_serving_is_settled_per_listener() -> None:
    # The GRPCRoute loses the shared listener to the older HTTPRoute but keeps its own.
    table = build(
        gateway_class(),
        gateway("gw", listener("shared"), listener("grpc", port=8080)),
        http_route(
            "web",
            rule(backend("web")),
            parents=[{"name": "gw", "sectionName": "shared"}],
            created=OLD,
        ),
        grpc_route("grpc", rule(backend("web")), created=NEW),
        *BACKENDS,
    )
    assert parent(table, "grpc")["Accepted"] == ("True", "Accepted")
    assert [lst.attached_routes for lst in table.gateways[0].listeners] == [1, 1]
    assert call(table, f"/{SERVICE}/Echo", port=8080) is not None
    on_shared = call(table, f"/{SERVICE}/Echo", port=80)
    assert on_shared is not None
    assert on_shared.route == "infra/web"
    assert not on_shared.grpc


# --- objects in ----------------------------------------------------------------------------------


def test_static_documents_read_grpcroutes_of_v1_only() -> None:
    good = grpc_route("r", rule(backend("web")))
    old = {**good, "apiVersion": f"{GROUP}/v1alpha2"}
    objects, problems = ObjectSet.from_documents([good, old], origin="routes.yaml")
    assert list(objects.grpc_routes) == [("infra", "r")]
    assert problems == (
        "routes.yaml document 2: GRPCRoute apiVersion 'gateway.networking.k8s.io/v1alpha2' "
        "(str) is not read; use 'gateway.networking.k8s.io/v1'",
    )


def test_a_grpcroute_without_usable_metadata_is_reported_alone() -> None:
    good = grpc_route("r", rule(backend("web")))
    bad = {**good, "metadata": {"name": 7}}
    objects, problems = ObjectSet.from_documents([bad, good], origin="routes.yaml")
    assert list(objects.grpc_routes) == [("infra", "r")]
    [problem] = problems
    assert problem.startswith("routes.yaml document 1: GRPCRoute (no usable metadata.name)")
    assert "metadata.name" in problem
