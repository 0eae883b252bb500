"""The Gateway API core, pure: host names, matches and precedence, filters, and Gateway /
HTTPRoute objects translated into the route table with the spec's status values."""

from __future__ import annotations

from typing import Any

import pytest
from tests.proxy.objects import app, tls_secret

from kexpose.certs import self_signed
from kexpose.proxy.filters import (
    HeaderModifier,
    PathModifier,
    Redirect,
    apply_header_modifier,
    redirect_location,
    replace_path,
)
from kexpose.proxy.routes import ObjectSet
from kexpose.proxy.routes._backends import index_slices
from kexpose.proxy.routes._gateway import GatewayTable, build_gateway_table
from kexpose.proxy.routes._gwhosts import ANY_HOST, hostname_matches, intersect, most_specific
from kexpose.proxy.routes._gwstatus import Condition, RouteStatus
from kexpose.proxy.routes._gwtable import GatewayPort
from kexpose.proxy.routes._matches import HeaderMatch, PathMatch, QueryMatch, RequestMatch
from kexpose.proxy.routes._matches import RequestView as View

CONTROLLER = "kexpose.dev/gateway-controller"
GROUP = "gateway.networking.k8s.io"
Obj = dict[str, Any]

# --- host names ----------------------------------------------------------------------------------

HOST_MATCHES = [
    ("*.example.com", "foo.example.com", True),
    ("*.example.com", "foo.bar.example.com", True),  # a suffix match, unlike Ingress
    ("*.example.com", "example.com", False),
    ("foo.example.com", "foo.example.com", True),
    ("foo.example.com", "bar.example.com", False),
    (ANY_HOST, "anything.test", True),
]


@pytest.mark.parametrize(("pattern", "host", "expected"), HOST_MATCHES)
def test_hostname_matches(pattern: str, host: str, expected: bool) -> None:
    assert hostname_matches(pattern, host) is expected


INTERSECTIONS = [
    # (listener, route, contributed) from HTTPRouteSpec.hostnames' examples
    ("test.example.com", "test.example.com", "test.example.com"),
    ("test.example.com", "*.example.com", "test.example.com"),
    ("test.example.com", "other.example.com", None),
    ("*.example.com", "test.example.com", "test.example.com"),
    ("*.example.com", "foo.test.example.com", "foo.test.example.com"),
    ("*.example.com", "*.example.com", "*.example.com"),
    ("*.example.com", "*.foo.example.com", "*.foo.example.com"),
    ("*.foo.example.com", "*.example.com", "*.foo.example.com"),
    ("*.example.com", "example.com", None),
    ("*.example.com", "test.example.net", None),
    (None, "test.example.net", "test.example.net"),
]


@pytest.mark.parametrize(("listener", "route", "expected"), INTERSECTIONS)
def test_hostname_intersection(listener: str | None, route: str, expected: str | None) -> None:
    assert intersect(listener, route) == expected


def test_the_most_specific_name_wins() -> None:
    names = [ANY_HOST, "*.example.com", "*.foo.example.com", "bar.foo.example.com"]
    assert most_specific(names, "bar.foo.example.com") == "bar.foo.example.com"
    assert most_specific(names, "x.foo.example.com") == "*.foo.example.com"
    assert most_specific(names, "x.example.com") == "*.example.com"
    assert most_specific(names, "example.org") == ANY_HOST
    assert most_specific(["*.example.com"], "example.org") is None


# --- matches -------------------------------------------------------------------------------------

PATHS = [
    (PathMatch.make("PathPrefix", "/foo"), ["/foo", "/foo/", "/foo/bar"], ["/foobar", "/fo"]),
    (PathMatch.make("PathPrefix", "/foo/"), ["/foo", "/foo/bar"], ["/foobar"]),
    (PathMatch.make("PathPrefix", "/"), ["/", "/anything"], []),
    (PathMatch.make("Exact", "/foo"), ["/foo"], ["/foo/", "/foo/bar"]),
    (PathMatch.make("RegularExpression", r"/v[0-9]+/.*"), ["/v1/x", "/v22/"], ["/v/x", "/xv1/a"]),
]


@pytest.mark.parametrize(
    ("match", "yes", "no"), PATHS, ids=[f"{m.type} {m.value}" for m, _, _ in PATHS]
)
def test_path_matches(match: PathMatch, yes: list[str], no: list[str]) -> None:
    assert all(match.matches(p) for p in yes)
    assert not any(match.matches(p) for p in no)


def test_a_match_is_a_conjunction_and_keeps_the_first_of_each_name() -> None:
    m = RequestMatch.make(
        PathMatch.make("PathPrefix", "/api"),
        method="POST",
        headers=[HeaderMatch("version", "two"), HeaderMatch("version", "three")],
        query=[QueryMatch("q", "1")],
    )
    assert len(m.headers) == 1  # "only the first entry with an equivalent name" counts
    ok = View("POST", "/api/x", {"version": "two"}, {"q": "1"})
    assert m.matches(ok)
    assert not m.matches(View("GET", "/api/x", {"version": "two"}, {"q": "1"}))
    assert not m.matches(View("POST", "/apix", {"version": "two"}, {"q": "1"}))
    assert not m.matches(View("POST", "/api/x", {"version": "Two"}, {"q": "1"}))  # case-sensitive
    assert not m.matches(View("POST", "/api/x", {"version": "two"}, {}))


def test_precedence_ranks() -> None:
    exact = RequestMatch(PathMatch.make("Exact", "/a"))
    regex = RequestMatch(PathMatch.make("RegularExpression", "/a.*"))
    long_prefix = RequestMatch(PathMatch.make("PathPrefix", "/abc"))
    short_prefix = RequestMatch(PathMatch.make("PathPrefix", "/a"))
    with_method = RequestMatch(PathMatch.make("PathPrefix", "/a"), method="GET")
    with_headers = RequestMatch(
        PathMatch.make("PathPrefix", "/a"), headers=(HeaderMatch("x", "1"),)
    )
    with_query = RequestMatch(PathMatch.make("PathPrefix", "/a"), query=(QueryMatch("q", "1"),))
    ordered = sorted(
        [short_prefix, with_query, with_headers, with_method, long_prefix, regex, exact],
        key=RequestMatch.rank,
    )
    assert ordered == [
        exact,
        regex,
        long_prefix,
        with_method,
        with_headers,
        with_query,
        short_prefix,
    ]


# --- filters -------------------------------------------------------------------------------------

# HTTPPathModifier.replacePrefixMatch's table in the spec, row by row.
PREFIX_REPLACEMENTS = [
    ("/foo", "/foo/bar", "/xyz", "/xyz/bar"),
    ("/foo", "/foo/bar", "/xyz/", "/xyz/bar"),
    ("/foo/", "/foo/bar", "/xyz", "/xyz/bar"),
    ("/foo/", "/foo/bar", "/xyz/", "/xyz/bar"),
    ("/foo", "/foo", "/xyz", "/xyz"),
    ("/foo/", "/foo", "/xyz", "/xyz"),
    ("/foo", "/foo/", "/xyz", "/xyz/"),
    ("/foo", "/foo/bar", "", "/bar"),
    ("/foo/", "/foo/bar", "", "/bar"),
    ("/foo", "/foo/", "", "/"),
    ("/foo", "/foo", "", "/"),
    ("/foo/", "/foo", "/", "/"),
    ("/foo", "/foo", "/", "/"),
]


@pytest.mark.parametrize(("prefix", "path", "value", "expected"), PREFIX_REPLACEMENTS)
def test_replace_prefix_match(prefix: str, path: str, value: str, expected: str) -> None:
    assert replace_path(path, PathModifier("ReplacePrefixMatch", value), prefix) == expected


REDIRECTS = [
    (Redirect(scheme="https"), "http", 80, "https://example.com/p?q=1"),
    (Redirect(scheme="https", port=8443), "http", 80, "https://example.com:8443/p?q=1"),
    (Redirect(hostname="other.test"), "http", 8080, "http://other.test:8080/p?q=1"),
    (Redirect(port=80), "http", 8080, "http://example.com/p?q=1"),
    (Redirect(scheme="http"), "https", 443, "http://example.com/p?q=1"),
    (
        Redirect(path=PathModifier("ReplaceFullPath", "/new")),
        "http",
        80,
        "http://example.com/new?q=1",
    ),
]


@pytest.mark.parametrize(("redirect", "scheme", "port", "expected"), REDIRECTS)
def test_redirect_location(redirect: Redirect, scheme: str, port: int, expected: str) -> None:
    got = redirect_location(
        redirect,
        scheme=scheme,
        host="example.com",
        listener_port=port,
        path="/p",
        query="q=1",
        matched_prefix="/",
    )
    assert got == expected


def test_header_modifier_removes_sets_then_adds() -> None:
    headers = [("My-Header", "foo"), ("Keep", "1"), ("X-Drop", "a"), ("x-drop", "b")]
    modifier = HeaderModifier(set=(("my-header", "bar"),), add=(("Keep", "2"),), remove=("x-drop",))
    assert apply_header_modifier(headers, modifier) == [
        ("Keep", "1"),
        ("my-header", "bar"),
        ("Keep", "2"),
    ]


# --- objects to table ----------------------------------------------------------------------------


def gateway_class(name: str = "kexpose", controller: str = CONTROLLER) -> Obj:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "GatewayClass",
        "metadata": {"name": name, "generation": 1},
        "spec": {"controllerName": controller},
    }


def listener(name: str, port: int = 80, protocol: str = "HTTP", **extra: Any) -> Obj:
    return {"name": name, "port": port, "protocol": protocol, **extra}


def gateway(name: str, *listeners: Obj, namespace: str = "infra", cls: str = "kexpose") -> Obj:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": namespace, "generation": 3},
        "spec": {"gatewayClassName": cls, "listeners": list(listeners)},
    }


def http_route(
    name: str,
    *rules: Obj,
    namespace: str = "infra",
    parents: list[Obj] | None = None,
    hostnames: list[str] | None = None,
    created: str = "2026-01-01T00:00:00Z",
) -> Obj:
    spec: Obj = {
        "parentRefs": parents or [{"name": "gw", "namespace": "infra"}],
        "rules": list(rules),
    }
    if hostnames is not None:
        spec["hostnames"] = hostnames
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "HTTPRoute",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "generation": 2,
            "creationTimestamp": created,
        },
        "spec": spec,
    }


def backend(name: str, port: int = 80, **extra: Any) -> Obj:
    return {"name": name, "port": port, **extra}


def rule(*backends: Obj, matches: list[Obj] | None = None, **extra: Any) -> Obj:
    r: Obj = {"backendRefs": list(backends), **extra}
    if matches is not None:
        r["matches"] = matches
    return r


def key(obj: Obj) -> tuple[str, str]:
    meta = obj["metadata"]
    return (meta.get("namespace", ""), meta["name"])


def build(
    *objs: Obj,
    namespaces: dict[str, dict[str, str]] | None = None,
    addressed: bool = True,
    address_problems: dict[tuple[str, str], tuple[str, str]] | None = None,
) -> GatewayTable:
    """The Gateway table of ``objs``; each Gateway has the address 10.250.0.1 unless not
    ``addressed``."""
    by_kind: dict[str, dict[Any, Obj]] = {}
    grants = []
    for obj in objs:
        if obj["kind"] == "ReferenceGrant":
            grants.append(obj)
        elif obj["kind"] == "GatewayClass":
            by_kind.setdefault("GatewayClass", {})[obj["metadata"]["name"]] = obj
        else:
            by_kind.setdefault(obj["kind"], {})[key(obj)] = obj
    slices = index_slices(ObjectSet(slices=by_kind.get("EndpointSlice", {})))  # type: ignore[arg-type]
    gateways = by_kind.get("Gateway", {})
    return build_gateway_table(
        controller=CONTROLLER,
        classes=by_kind.get("GatewayClass", {}),
        gateways=gateways,
        routes=by_kind.get("HTTPRoute", {}),
        grants=grants,
        services=by_kind.get("Service", {}),  # type: ignore[arg-type]
        slices=slices,
        secrets=by_kind.get("Secret", {}),  # type: ignore[arg-type]
        namespaces=namespaces or {},
        addresses={k: ("10.250.0.1",) for k in gateways} if addressed else {},
        listener_sets=by_kind.get("ListenerSet", {}),
        address_problems=address_problems,
    )


def conditions(status: Any) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in status.conditions}


def route_parent(table: GatewayTable, name: str, index: int = 0) -> dict[str, tuple[str, str]]:
    found: RouteStatus = next(r for r in table.routes if r.name == name)
    return conditions(found.parents[index])


def the_port(table: GatewayTable, port: int = 80) -> GatewayPort:
    return next(p for p in table.ports if p.port == port)


def select(table: GatewayTable, host: str, path: str, **view: Any) -> Any:
    port = the_port(table)
    lst = port.listener(host)
    assert lst is not None
    vhost = lst.host(host)
    if vhost is None:
        return None
    return vhost.select(
        View(view.get("method", "GET"), path, view.get("headers", {}), view.get("query", {}))
    )


BACKENDS = [*app("web", "10.0.0.1", namespace="infra"), *app("api", "10.0.0.2", namespace="infra")]


def test_an_accepted_route_on_an_http_listener() -> None:
    table = build(
        gateway_class(),
        gateway_class("theirs", controller="example.com/other"),
        gateway("gw", listener("http")),
        gateway("other", listener("http"), cls="theirs"),
        http_route("r", rule(backend("web"))),
        *BACKENDS,
    )
    assert [c.name for c in table.classes] == ["kexpose"]
    assert conditions(table.classes[0])["Accepted"] == ("True", "Accepted")
    [gw] = table.gateways
    assert (gw.name, gw.generation, gw.addresses) == ("gw", 3, ("10.250.0.1",))
    assert conditions(gw) == {
        "Accepted": ("True", "Accepted"),
        "Programmed": ("True", "Programmed"),
    }
    [lst] = gw.listeners
    assert lst.attached_routes == 1
    assert lst.supported_kinds == ((GROUP, "HTTPRoute"), (GROUP, "GRPCRoute"))
    assert conditions(lst) == {
        "Accepted": ("True", "Accepted"),
        "ResolvedRefs": ("True", "ResolvedRefs"),
        "Conflicted": ("False", "NoConflicts"),
        "Programmed": ("True", "Programmed"),
    }
    assert route_parent(table, "r") == {
        "Accepted": ("True", "Accepted"),
        "ResolvedRefs": ("True", "ResolvedRefs"),
    }
    chosen = select(table, "any.example.com", "/x")
    assert chosen.backends[0].backend.endpoints == (("10.0.0.1", 8080),)


def test_a_gateway_without_an_address_is_not_programmed() -> None:
    table = build_gateway_table(
        controller=CONTROLLER,
        classes={"kexpose": gateway_class()},
        gateways={("infra", "gw"): gateway("gw", listener("http"))},
        routes={},
        grants=[],
        services={},
        slices={},
        secrets={},
        namespaces={},
        addresses={},
    )
    assert conditions(table.gateways[0])["Programmed"] == ("False", "AddressNotAssigned")
    assert table.ports == ()


PARENT_REFS = [
    ({"name": "gw", "namespace": "infra", "sectionName": "nope"}, "NoMatchingParent"),
    ({"name": "gw", "namespace": "infra", "port": 8080}, "NoMatchingParent"),
    ({"name": "gw", "namespace": "infra", "sectionName": "http", "port": 81}, "NoMatchingParent"),
    ({"name": "gw", "namespace": "infra", "sectionName": "http", "port": 80}, "Accepted"),
]


@pytest.mark.parametrize(("ref", "reason"), PARENT_REFS)
def test_parent_refs_select_listeners(ref: Obj, reason: str) -> None:
    table = build(
        gateway_class(),
        gateway("gw", listener("http")),
        http_route("r", rule(backend("web")), parents=[ref]),
        *BACKENDS,
    )
    assert route_parent(table, "r")["Accepted"][1] == reason


def test_a_parent_of_another_controller_gets_no_status_from_us() -> None:
    table = build(
        gateway_class(),
        gateway_class("theirs", controller="example.com/other"),
        gateway("other", listener("http"), cls="theirs"),
        http_route("r", rule(backend("web")), parents=[{"name": "other", "namespace": "infra"}]),
        *BACKENDS,
    )
    assert table.routes == ()


ALLOWED = [
    ({"namespaces": {"from": "Same"}}, "infra", "Accepted"),
    ({"namespaces": {"from": "Same"}}, "apps", "NotAllowedByListeners"),
    ({"namespaces": {"from": "All"}}, "apps", "Accepted"),
    (
        {"namespaces": {"from": "Selector", "selector": {"matchLabels": {"team": "a"}}}},
        "apps",
        "Accepted",
    ),
    (
        {"namespaces": {"from": "Selector", "selector": {"matchLabels": {"team": "b"}}}},
        "apps",
        "NotAllowedByListeners",
    ),
    (
        {"namespaces": {"from": "All"}, "kinds": [{"kind": "GRPCRoute"}]},
        "apps",
        "NotAllowedByListeners",
    ),
]


@pytest.mark.parametrize(("allowed", "route_ns", "reason"), ALLOWED)
def test_allowed_routes(allowed: Obj, route_ns: str, reason: str) -> None:
    table = build(
        gateway_class(),
        gateway("gw", listener("http", allowedRoutes=allowed)),
        http_route("r", rule(), namespace=route_ns),
        namespaces={"apps": {"team": "a"}},
    )
    assert route_parent(table, "r")["Accepted"][1] == reason


def test_hostnames_must_intersect() -> None:
    table = build(
        gateway_class(),
        gateway("gw", listener("http", hostname="*.example.com")),
        http_route("yes", rule(backend("web")), hostnames=["a.example.com", "a.example.net"]),
        http_route("no", rule(backend("web")), hostnames=["example.com"]),
        *BACKENDS,
    )
    assert route_parent(table, "yes")["Accepted"] == ("True", "Accepted")
    assert route_parent(table, "no")["Accepted"] == ("False", "NoMatchingListenerHostname")
    [lst] = the_port(table).listeners
    assert set(lst.hosts) == {"a.example.com"}  # a.example.net is ignored


def test_invalid_backends_answer_500_for_their_share_and_say_why() -> None:
    table = build(
        gateway_class(),
        gateway("gw", listener("http")),
        http_route("missing", rule(backend("nope")), hostnames=["missing.test"]),
        http_route(
            "kind",
            rule(backend("web", kind="Bucket", group="example.com")),
            hostnames=["kind.test"],
        ),
        http_route(
            "split",
            rule(backend("web", weight=3), backend("nope", weight=1)),
            hostnames=["split.test"],
        ),
        http_route("zero", rule(backend("web", weight=0)), hostnames=["zero.test"]),
        http_route("cross", rule(backend("api", namespace="apps")), hostnames=["cross.test"]),
        *BACKENDS,
        *app("api", "10.0.0.9", namespace="apps"),
    )
    assert route_parent(table, "missing")["ResolvedRefs"] == ("False", "BackendNotFound")
    assert route_parent(table, "kind")["ResolvedRefs"] == ("False", "InvalidKind")
    assert route_parent(table, "cross")["ResolvedRefs"] == ("False", "RefNotPermitted")
    assert route_parent(table, "missing")["Accepted"] == ("True", "Accepted")  # still attached
    assert select(table, "missing.test", "/").error
    split = select(table, "split.test", "/")
    assert (split.error, split.invalid_weight, split.total_weight) == (None, 1, 4)
    assert split.failure_status == 500  # "MUST receive an HTTP 500 status code"
    assert select(table, "zero.test", "/").error == "every backendRef of the rule has weight 0"


def test_a_reference_grant_allows_a_cross_namespace_backend() -> None:
    grant = {
        "apiVersion": f"{GROUP}/v1beta1",
        "kind": "ReferenceGrant",
        "metadata": {"name": "g", "namespace": "apps"},
        "spec": {
            "from": [{"group": GROUP, "kind": "HTTPRoute", "namespace": "infra"}],
            "to": [{"group": "", "kind": "Service", "name": "api"}],
        },
    }
    table = build(
        gateway_class(),
        gateway("gw", listener("http")),
        http_route("cross", rule(backend("api", namespace="apps"))),
        grant,
        *app("api", "10.0.0.9", namespace="apps"),
    )
    assert route_parent(table, "cross")["ResolvedRefs"] == ("True", "ResolvedRefs")
    assert select(table, "x", "/").backends[0].backend.key == "apps/api:80"


def test_precedence_across_rules_and_routes() -> None:
    def to(name: str, path_type: str, value: str, **extra: Any) -> Obj:
        return rule(backend(name), matches=[{"path": {"type": path_type, "value": value}, **extra}])

    names = ("exact", "long", "short", "method", "headers", "old", "new")
    flat = [obj for n in names for obj in app(n, "10.0.0.1", namespace="infra")]
    table = build(
        gateway_class(),
        gateway("gw", listener("http")),
        http_route("b-new", to("new", "PathPrefix", "/tie"), created="2026-02-01T00:00:00Z"),
        http_route("z-old", to("old", "PathPrefix", "/tie"), created="2026-01-01T00:00:00Z"),
        http_route(
            "r",
            to("short", "PathPrefix", "/a"),
            to("long", "PathPrefix", "/a/b"),
            to("exact", "Exact", "/a/b"),
            to("method", "PathPrefix", "/a", method="POST"),
            to("headers", "PathPrefix", "/a", headers=[{"name": "x", "value": "1"}]),
        ),
        *flat,
    )

    def name(path: str, **view: Any) -> str:
        return str(
            select(table, "h", path, **view).backends[0].backend.key.split("/")[1].split(":")[0]
        )

    assert name("/a/b") == "exact"
    assert name("/a/b/c") == "long"
    assert name("/a/c", method="POST", headers={"x": "1"}) == "method"
    assert name("/a/c", headers={"x": "1"}) == "headers"
    assert name("/a/c") == "short"
    assert name("/tie") == "old"  # the older route, whatever its name


def test_listener_isolation_and_conflicts() -> None:
    table = build(
        gateway_class(),
        gateway(
            "gw",
            listener("wild", hostname="*.example.com"),
            listener("foo", hostname="foo.example.com"),
            listener("twin", hostname="foo.example.com"),
            listener(
                "tls", port=8443, protocol="HTTPS", tls={"certificateRefs": [{"name": "nope"}]}
            ),
            listener("tcp", port=9000, protocol="TCP"),
        ),
        http_route("r", rule(backend("web"))),
        *BACKENDS,
    )
    status = {lst.name: conditions(lst) for lst in table.gateways[0].listeners}
    assert status["foo"]["Conflicted"] == ("True", "HostnameConflict")
    assert status["wild"]["Conflicted"] == ("False", "NoConflicts")
    assert status["tls"]["ResolvedRefs"] == ("False", "InvalidCertificateRef")
    assert status["tls"]["Programmed"] == ("False", "Invalid")
    assert status["tcp"]["Accepted"] == ("False", "UnsupportedProtocol")
    assert conditions(table.gateways[0])["Accepted"] == ("True", "ListenersNotValid")
    port = the_port(table)
    assert [lst.name for lst in port.listeners] == ["wild"]  # the conflicted pair serves nothing
    assert {p.port for p in table.ports} == {80}


def test_https_listener_certificates_and_grants() -> None:
    pair = self_signed(["secure.example.com"])
    cert_ref = {"certificateRefs": [{"name": "cert", "namespace": "certs"}]}
    grant = {
        "apiVersion": f"{GROUP}/v1beta1",
        "kind": "ReferenceGrant",
        "metadata": {"name": "g", "namespace": "certs"},
        "spec": {
            "from": [{"group": GROUP, "kind": "Gateway", "namespace": "infra"}],
            "to": [{"group": "", "kind": "Secret"}],
        },
    }
    objs = [
        gateway_class(),
        gateway(
            "gw",
            listener(
                "https", port=443, protocol="HTTPS", hostname="secure.example.com", tls=cert_ref
            ),
        ),
        tls_secret("cert", pair, namespace="certs"),
    ]
    refused = build(*objs)
    assert conditions(refused.gateways[0].listeners[0])["ResolvedRefs"] == (
        "False",
        "RefNotPermitted",
    )
    granted = build(*objs, grant)
    assert conditions(granted.gateways[0].listeners[0])["ResolvedRefs"] == ("True", "ResolvedRefs")
    port = the_port(granted, 443)
    cert = port.certificates.lookup("secure.example.com")
    assert cert is not None
    assert cert.secret == "certs/cert"


ROUTE_PROBLEMS = [
    (
        rule(backend("web"), matches=[{"path": {"type": "RegularExpression", "value": "("}}]),
        "UnsupportedValue",
    ),
    (
        rule(
            backend("web"),
            filters=[
                {"type": "RequestRedirect", "requestRedirect": {"scheme": "https"}},
                {"type": "URLRewrite", "urlRewrite": {"hostname": "x"}},
            ],
        ),
        "IncompatibleFilters",
    ),
    (
        rule(
            backend("web"),
            matches=[{"path": {"type": "Exact", "value": "/a"}}],
            filters=[
                {
                    "type": "URLRewrite",
                    "urlRewrite": {
                        "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/b"}
                    },
                }
            ],
        ),
        "UnsupportedValue",
    ),
    (rule(backend("web"), timeouts={"request": "ten seconds"}), "UnsupportedValue"),
    # Filters must not be able to inject header lines (static manifests skip CRD validation).
    *[
        (rule(backend("web"), filters=[f]), "UnsupportedValue")
        for f in (
            {
                "type": "RequestHeaderModifier",
                "requestHeaderModifier": {"set": [{"name": "X", "value": "a\r\nX-Injected: 1"}]},
            },
            {
                "type": "ResponseHeaderModifier",
                "responseHeaderModifier": {"add": [{"name": "Bad Name", "value": "1"}]},
            },
            {
                "type": "RequestHeaderModifier",
                "requestHeaderModifier": {"remove": ["X\r\nY"]},
            },
            {"type": "RequestRedirect", "requestRedirect": {"hostname": "a.test\r\nX: 1"}},
            {
                "type": "URLRewrite",
                "urlRewrite": {
                    "path": {"type": "ReplaceFullPath", "replaceFullPath": "/a\r\nX: 1"}
                },
            },
        )
    ],
    ("not a rule", "UnsupportedValue"),
    # HTTPBackendRef.weight is an int32 in 0..1000000 (the CRD's validation, which static
    # manifests skip): a JSON true is no weight, although Python's bool is an int.
    *[
        (rule(backend("web", weight=w)), "UnsupportedValue")
        for w in (True, False, -1, 1_000_001, 1.5, "1")
    ],
]


@pytest.mark.parametrize(("bad_rule", "reason"), ROUTE_PROBLEMS)
def test_routes_the_proxy_cannot_serve_are_not_accepted(bad_rule: Any, reason: str) -> None:
    table = build(
        gateway_class(),
        gateway("gw", listener("http")),
        http_route("bad", bad_rule, hostnames=["bad.test"]),
        http_route("good", rule(backend("web")), hostnames=["good.test"]),
        *BACKENDS,
    )
    assert route_parent(table, "bad")["Accepted"] == ("False", reason)
    assert route_parent(table, "good")["Accepted"] == ("True", "Accepted")
    [lst] = the_port(table).listeners
    assert set(lst.hosts) == {"good.test"}  # the bad route serves nothing; the good one works


def test_filters_timeouts_and_retries_reach_the_rule() -> None:
    table = build(
        gateway_class(),
        gateway("gw", listener("http")),
        http_route(
            "r",
            rule(
                backend("web"),
                filters=[
                    {
                        "type": "RequestHeaderModifier",
                        "requestHeaderModifier": {
                            "set": [{"name": "X-A", "value": "1"}],
                            "remove": ["X-B"],
                        },
                    },
                    {
                        "type": "RequestMirror",
                        "requestMirror": {"backendRef": backend("api"), "percent": 25},
                    },
                ],
                timeouts={"request": "1m30s", "backendRequest": "500ms"},
                retry={"codes": [500, 503], "attempts": 2, "backoff": "100ms"},
            ),
        ),
        *BACKENDS,
    )
    chosen = select(table, "h", "/")
    assert chosen.request_headers == HeaderModifier(set=(("X-A", "1"),), remove=("x-b",))
    assert (chosen.request_timeout, chosen.backend_timeout) == (90.0, 0.5)
    assert chosen.mirrors[0].percent == 25.0
    assert chosen.mirrors[0].backend.key == "infra/api:80"
    assert chosen.retry is not None
    assert (chosen.retry.codes, chosen.retry.attempts) == (
        (500, 503),
        2,
    )


def test_extension_ref_filters_are_not_skipped() -> None:
    table = build(
        gateway_class(),
        gateway("gw", listener("http")),
        http_route(
            "r",
            rule(
                backend("web"),
                filters=[
                    {
                        "type": "ExtensionRef",
                        "extensionRef": {"group": "x.io", "kind": "Auth", "name": "a"},
                    }
                ],
            ),
        ),
        *BACKENDS,
    )
    assert route_parent(table, "r")["ResolvedRefs"] == ("False", "InvalidKind")
    assert select(table, "h", "/").error  # answered 500, never passed through unfiltered


def test_malformed_objects_are_reported_not_raised() -> None:
    junk: list[Obj] = [
        gateway_class(),
        gateway("gw", listener("http"), "not a listener"),  # type: ignore[arg-type]
        {"kind": "HTTPRoute", "metadata": {"name": "a", "namespace": "infra"}, "spec": "x"},
        {
            "kind": "HTTPRoute",
            "metadata": {"name": "b", "namespace": "infra"},
            "spec": {"parentRefs": "x"},
        },
        {
            "kind": "HTTPRoute",
            "metadata": {"name": "c", "namespace": "infra"},
            "spec": {
                "parentRefs": [{"name": "gw"}],
                "rules": [{"matches": "x", "backendRefs": [1, None]}],
            },
        },
        {
            "kind": "Gateway",
            "metadata": {"name": "g2", "namespace": "infra"},
            "spec": {"gatewayClassName": "kexpose", "listeners": [{"port": "80", "protocol": 7}]},
        },
    ]
    table = build(*junk)
    assert {g.name for g in table.gateways} == {"gw", "g2"}
    statuses = {r.name: r for r in table.routes}
    assert set(statuses) == {"c"}  # a and b name no parent we can read
    assert all(isinstance(c, Condition) for c in statuses["c"].parents[0].conditions)


def test_routes_attach_to_a_listener_with_unresolved_certificates() -> None:
    # GatewayWithAttachedRoutes: attachedRoutes counts them; the listener still serves nothing.
    table = build(
        gateway_class(),
        gateway(
            "gw",
            listener(
                "tls", port=443, protocol="HTTPS", tls={"certificateRefs": [{"name": "nope"}]}
            ),
        ),
        http_route("r", rule(backend("web")), parents=[{"name": "gw", "namespace": "infra"}]),
        *BACKENDS,
    )
    [lst] = table.gateways[0].listeners
    assert lst.attached_routes == 1
    assert conditions(lst)["Programmed"] == ("False", "Invalid")
    assert route_parent(table, "r")["Accepted"] == ("True", "Accepted")
    assert table.ports == ()


def test_gateway_addresses_come_from_the_pool_stably() -> None:
    import ipaddress

    from kexpose.proxy.routes._addresses import assign_addresses

    pool = ipaddress.ip_network("10.250.0.0/24")
    gw = gateway("a", listener("http"))
    empty = {**gw, "spec": {**gw["spec"], "addresses": [{"type": "IPAddress"}]}}
    asked = {
        **gw,
        "spec": {**gw["spec"], "addresses": [{"type": "IPAddress", "value": "10.250.0.7"}]},
    }
    outside = {**gw, "spec": {**gw["spec"], "addresses": [{"value": "192.0.2.1"}]}}
    kept = {**gw, "status": {"addresses": [{"type": "IPAddress", "value": "10.250.0.9"}]}}
    first, _ = assign_addresses({("infra", "a"): gw}, pool)
    # Another Gateway appearing moves nobody; an empty request means any address.
    both, _ = assign_addresses({("infra", "a"): gw, ("infra", "b"): gateway("b")}, pool)
    assert both[("infra", "a")] == first[("infra", "a")]
    assert assign_addresses({("infra", "a"): empty}, pool)[0] == first
    assert assign_addresses({("infra", "a"): asked}, pool)[0] == {("infra", "a"): ("10.250.0.7",)}
    assert assign_addresses({("infra", "a"): kept}, pool)[0] == {("infra", "a"): ("10.250.0.9",)}
    none, problems = assign_addresses({("infra", "a"): outside}, pool)
    assert none == {}
    assert problems[("infra", "a")][0] == "AddressNotUsable"
    fake = {**gw, "spec": {**gw["spec"], "addresses": [{"type": "test/fake", "value": "x"}]}}
    assert assign_addresses({("infra", "a"): fake}, pool)[1][("infra", "a")][0] == (
        "UnsupportedAddress"
    )
    assert assign_addresses({("infra", "a"): gw}, None)[0] == {}


ORIGINS = [
    ("https://www.foo.com", True),
    ("HTTPS://WWW.FOO.COM", True),
    ("https://www.bar.com", True),
    ("https://a.www.bar.com", True),
    ("https://bar.com", False),
    ("http://www.foo.com", False),
    ("https://foobar.com", False),
    ("null", False),
]


@pytest.mark.parametrize(("origin", "allowed"), ORIGINS)
def test_cors_origins(origin: str, allowed: bool) -> None:
    from kexpose.proxy.filters import Cors, origin_allowed

    cors = Cors(allow_origins=("https://www.foo.com", "https://*.bar.com"))
    assert origin_allowed(cors, origin) is allowed
    assert origin_allowed(Cors(allow_origins=("*",)), origin) is (origin != "null")


def test_cors_values_cannot_inject_headers() -> None:
    bad = {"type": "CORS", "cors": {"allowOrigins": ["https://a.test\r\nX-Injected: 1"]}}
    table = build(
        gateway_class(),
        gateway("gw", listener("http")),
        http_route("r", rule(backend("web"), filters=[bad])),
        *BACKENDS,
    )
    assert route_parent(table, "r")["Accepted"] == ("False", "UnsupportedValue")
