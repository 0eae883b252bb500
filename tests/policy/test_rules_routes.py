"""Route rules, one case table each: host names, parents, backends, cross-namespace grants and
duplicate matches."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kexpose.environment import ENVIRONMENTS

from .objects import (
    EDGE_NS,
    NS,
    backend_ref,
    check,
    found_at,
    gateway,
    gateway_stack,
    http_route,
    listener,
    parent,
    redirect_route,
    reference_grant,
    route_rule,
    service,
    tls_secret,
)

Objects = list[dict[str, Any]]
WEB = f"HTTPRoute/{NS}/web"
API = f"HTTPRoute/{NS}/api"
EDGE = f"Gateway/{EDGE_NS}/edge"


def _replace(*objects: dict[str, Any]) -> Objects:
    """The realistic Gateway stack with ``objects`` replacing those of the same kind and name."""
    given = {(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects}
    stack = []
    for obj in copy.deepcopy(gateway_stack()):
        meta = obj["metadata"]
        key = (obj["kind"], meta.get("namespace"), meta["name"])
        stack.append(given.pop(key, obj))
    return [*stack, *given.values()]


def _without(kind: str, name: str) -> Objects:
    return [o for o in gateway_stack() if (o["kind"], o["metadata"]["name"]) != (kind, name)]


def _web(**kw: Any) -> dict[str, Any]:
    kw.setdefault("parents", [parent("edge", section="https")])
    return http_route("web", NS, **kw)


# --- route-hostnames-required -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        (gateway_stack(), []),
        (_replace(_web(hostnames=None)), [(WEB, "spec.hostnames")]),
        (_replace(_web(hostnames=[])), [(WEB, "spec.hostnames")]),
        (_replace(_web(hostnames=["*.example.com"])), []),  # wildcards are the next rule's
        (
            [*gateway_stack(), http_route("grpc", kind="GRPCRoute", hostnames=None)],
            [(f"GRPCRoute/{NS}/grpc", "spec.hostnames")],
        ),
        # Another group's HTTPRoute is not a Gateway API route.
        ([*gateway_stack(), http_route("x", hostnames=None, api_version="example.com/v1")], []),
        (
            [
                *gateway_stack(),
                http_route("beta", hostnames=None, api_version="gateway.networking.k8s.io/v1beta1"),
            ],
            [(f"HTTPRoute/{NS}/beta", "spec.hostnames")],
        ),
    ],
    ids=["stack", "missing", "empty", "wildcard", "grpcroute", "other-group", "v1beta1"],
)
def test_route_hostnames_required(objects: Objects, expected: list[tuple[str, str]]) -> None:
    for env in ("staging", "prod"):
        assert found_at(objects, env, "route-hostnames-required") == expected
    assert check(objects, "dev", rule_id="route-hostnames-required") == []


# --- route-no-wildcard-hostname ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        (gateway_stack(), []),
        (_replace(_web(hostnames=["*.example.com"])), [(WEB, "spec.hostnames[0]")]),
        (
            _replace(_web(hostnames=["shop.example.com", "*.shop.example.com"])),
            [(WEB, "spec.hostnames[1]")],
        ),
        (_replace(_web(hostnames=["*"])), [(WEB, "spec.hostnames[0]")]),
        # A wildcard listener hostname is fine.
        (_replace(gateway("edge", EDGE_NS, listener(hostname="*.example.com"))), []),
        (
            [*gateway_stack(), http_route("grpc", kind="GRPCRoute", hostnames=["*.example.com"])],
            [(f"GRPCRoute/{NS}/grpc", "spec.hostnames[0]")],
        ),
    ],
    ids=["stack", "wildcard", "second", "star", "listener-wildcard", "grpcroute"],
)
def test_route_no_wildcard_hostname(objects: Objects, expected: list[tuple[str, str]]) -> None:
    assert found_at(objects, "prod", "route-no-wildcard-hostname") == expected
    for env in ("dev", "staging"):
        assert check(objects, env, rule_id="route-no-wildcard-hostname") == []


# --- route-parent-exists ----------------------------------------------------------------------

P0 = "spec.parentRefs[0]"


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        (gateway_stack(), []),
        (_replace(_web(parents=[parent("gone")])), [(WEB, f"{P0}.name")]),
        (_replace(_web(parents=[parent("edge", ns=None)])), [(WEB, f"{P0}.name")]),  # own namespace
        (_replace(_web(parents=[parent("edge", section=None)])), []),
        (_replace(_web(parents=[parent("edge", section="admin")])), [(WEB, f"{P0}.sectionName")]),
        (_replace(_web(parents=[parent("edge", section=None, port=443)])), []),
        (_replace(_web(parents=[parent("edge", section=None, port=8443)])), [(WEB, f"{P0}.port")]),
        (
            _replace(_web(parents=[parent("edge", section="admin", port=8443)])),
            [(WEB, f"{P0}.sectionName"), (WEB, f"{P0}.port")],
        ),
        (
            _replace(
                _web(
                    parents=[
                        parent(
                            "edge",
                            section="https",
                            group="gateway.networking.k8s.io",
                            kind="Gateway",
                        )
                    ]
                )
            ),
            [],
        ),
        # Not a Gateway parent (a Service for GAMMA mesh routing, another vendor's kind): skipped.
        (
            _replace(_web(parents=[parent("web", ns=NS, section=None, kind="Service", group="")])),
            [],
        ),
        (_replace(_web(parents=[parent("gone", kind="ListenerSet")])), []),
        (
            _replace(_web(parents=[parent("edge"), parent("edge-http", section="https")])),
            [(WEB, "spec.parentRefs[1].sectionName")],
        ),
        (
            [
                o
                for o in gateway_stack()
                if o["kind"] != "Gateway" or o["metadata"]["name"] != "edge-http"
            ],
            [(f"HTTPRoute/{EDGE_NS}/https-redirect", f"{P0}.name")],
        ),
        (
            [
                *_without("Gateway", "edge"),
                {**gateway("edge"), "apiVersion": "networking.istio.io/v1"},
            ],
            [(WEB, f"{P0}.name"), (API, f"{P0}.name")],  # only Gateway API Gateways count
        ),
    ],
    ids=[
        "stack",
        "missing",
        "wrong-namespace",
        "no-section",
        "unknown-section",
        "port",
        "unknown-port",
        "both-wrong",
        "explicit-group-kind",
        "service-parent",
        "other-parent-kind",
        "second-parent",
        "redirect-gateway-gone",
        "istio-gateway",
    ],
)
def test_route_parent_exists(objects: Objects, expected: list[tuple[str, str]]) -> None:
    for env in ENVIRONMENTS:
        assert found_at(objects, env, "route-parent-exists") == expected


# --- route-backend-exists ---------------------------------------------------------------------

B00 = "spec.rules[0].backendRefs[0]"


def _to(*backends: dict[str, Any]) -> Objects:
    return _replace(_web(rules=[route_rule(*backends)]))


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        (gateway_stack(), []),
        (_to(backend_ref("gone")), [(WEB, f"{B00}.name")]),
        (_to(backend_ref("web", 8080)), [(WEB, f"{B00}.port")]),
        (_to(backend_ref("web", None)), [(WEB, f"{B00}.port")]),
        # targetPort does not count: the ref names the Service port.
        (_replace(service("web", NS, ports=[{"port": 80, "targetPort": 8080}])), []),
        (
            _replace(
                service("web", NS, ports=[{"port": 80, "targetPort": 8080}]),
                _web(rules=[route_rule(backend_ref("web", 8080))]),
            ),
            [(WEB, f"{B00}.port")],
        ),
        (_to(backend_ref("orders", 8080)), [(WEB, f"{B00}.name")]),  # not in the route's namespace
        (_to(backend_ref("orders", 8080, namespace="orders")), []),
        (_to(backend_ref("orders", 80, namespace="orders")), [(WEB, f"{B00}.port")]),
        (_to(backend_ref("web", 80, kind="Service", group="")), []),
        (
            _to(backend_ref("bucket", None, kind="Bucket", group="storage.example.com")),
            [],
        ),  # not a Service ref
        (
            _to(backend_ref("web"), backend_ref("gone")),
            [(WEB, "spec.rules[0].backendRefs[1].name")],
        ),
        (
            [
                *gateway_stack(),
                http_route("grpc", kind="GRPCRoute", rules=[route_rule(backend_ref("gone", 9090))]),
            ],
            [(f"GRPCRoute/{NS}/grpc", f"{B00}.name")],
        ),
    ],
    ids=[
        "stack",
        "missing",
        "wrong-port",
        "no-port",
        "service-port",
        "target-port-not-counted",
        "other-namespace-implicit",
        "other-namespace",
        "other-namespace-port",
        "explicit-core-group",
        "not-a-service",
        "second-ref",
        "grpcroute",
    ],
)
def test_route_backend_exists(objects: Objects, expected: list[tuple[str, str]]) -> None:
    for env in ENVIRONMENTS:
        assert found_at(objects, env, "route-backend-exists") == expected


def test_route_backend_exists_lists_the_service_ports() -> None:
    (v,) = check(_to(backend_ref("web", 8080)), "dev", rule_id="route-backend-exists")
    assert "its ports: 80" in v.message


# --- route-cross-namespace-granted ------------------------------------------------------------

ORDERS_REF = "spec.rules[1].backendRefs[0].namespace"
API_CERT = "spec.listeners[1].tls.certificateRefs[0].namespace"


def _grants(*grants: dict[str, Any]) -> Objects:
    kept = [o for o in gateway_stack() if o["kind"] != "ReferenceGrant"]
    return [*kept, *grants]


SECRET_GRANT = reference_grant(NS, from_kind="Gateway", from_ns=EDGE_NS, to_kind="Secret")
ORDERS_GRANT = reference_grant("orders", name="allow-shop-routes", to_name="orders")


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        (gateway_stack(), []),
        (_grants(SECRET_GRANT), [(WEB, ORDERS_REF)]),
        (_grants(ORDERS_GRANT), [(EDGE, API_CERT)]),
        (_grants(), [(EDGE, API_CERT), (WEB, ORDERS_REF)]),
        (_grants(SECRET_GRANT, reference_grant("orders", to_name=None)), []),  # any Service there
        (_grants(SECRET_GRANT, reference_grant("orders", to_name="payments")), [(WEB, ORDERS_REF)]),
        (_grants(SECRET_GRANT, reference_grant("orders", from_ns="other")), [(WEB, ORDERS_REF)]),
        (
            _grants(SECRET_GRANT, reference_grant("orders", from_kind="GRPCRoute")),
            [(WEB, ORDERS_REF)],
        ),
        (_grants(SECRET_GRANT, reference_grant("orders", to_kind="Secret")), [(WEB, ORDERS_REF)]),
        (
            _grants(SECRET_GRANT, reference_grant(NS, to_name="orders")),
            [(WEB, ORDERS_REF)],
        ),  # grant must sit in the target namespace
        (
            _grants(
                SECRET_GRANT, reference_grant("orders", api_version="gateway.networking.k8s.io/v1")
            ),
            [],
        ),
        (
            _grants(SECRET_GRANT, {**ORDERS_GRANT, "apiVersion": "example.com/v1"}),
            [(WEB, ORDERS_REF)],
        ),
        (
            _grants(
                SECRET_GRANT,
                {
                    **ORDERS_GRANT,
                    "spec": {**ORDERS_GRANT["spec"], "to": [{"kind": "Service", "name": "orders"}]},
                },
            ),
            [(WEB, ORDERS_REF)],  # to.group must be "" (the core group)
        ),
        (
            _grants(
                ORDERS_GRANT,
                reference_grant(NS, from_kind="HTTPRoute", from_ns=EDGE_NS, to_kind="Secret"),
            ),
            [(EDGE, API_CERT)],
        ),
        (
            [
                *_grants(ORDERS_GRANT, SECRET_GRANT),
                http_route(
                    "grpc",
                    kind="GRPCRoute",
                    rules=[route_rule(backend_ref("orders", 8080, namespace="orders"))],
                ),
            ],
            [(f"GRPCRoute/{NS}/grpc", "spec.rules[0].backendRefs[0].namespace")],
        ),
        (
            [
                *_grants(
                    ORDERS_GRANT,
                    SECRET_GRANT,
                    reference_grant("orders", name="grpc", from_kind="GRPCRoute"),
                ),
                http_route(
                    "grpc",
                    kind="GRPCRoute",
                    rules=[route_rule(backend_ref("orders", 8080, namespace="orders"))],
                ),
            ],
            [],
        ),
        # A Secret ref into another namespace on a plain TLS listener needs a grant as well.
        (
            [
                gateway(
                    "tls",
                    EDGE_NS,
                    listener(
                        "tls",
                        "TLS",
                        443,
                        tls={
                            "mode": "Terminate",
                            "certificateRefs": [{"name": "c", "namespace": NS}],
                        },
                    ),
                ),
                tls_secret("c", NS),
            ],
            [(f"Gateway/{EDGE_NS}/tls", "spec.listeners[0].tls.certificateRefs[0].namespace")],
        ),
    ],
    ids=[
        "stack",
        "service-not-granted",
        "secret-not-granted",
        "none",
        "any-name",
        "other-name",
        "other-from-namespace",
        "other-from-kind",
        "other-to-kind",
        "grant-in-wrong-namespace",
        "grant-v1",
        "grant-other-group",
        "to-group-missing",
        "secret-grant-for-routes",
        "grpcroute-needs-its-own-grant",
        "grpcroute-granted",
        "tls-listener",
    ],
)
def test_route_cross_namespace_granted(objects: Objects, expected: list[tuple[str, str]]) -> None:
    for env in ENVIRONMENTS:
        assert found_at(objects, env, "route-cross-namespace-granted") == expected


def test_route_cross_namespace_granted_says_what_to_add() -> None:
    (v,) = check(_grants(SECRET_GRANT), "dev", rule_id="route-cross-namespace-granted")
    assert "ReferenceGrant in 'orders'" in v.fix
    assert "kind: HTTPRoute, namespace: shop" in v.fix


# --- route-unique-match -----------------------------------------------------------------------


def _pair(
    first: dict[str, Any] | None = None,
    second: dict[str, Any] | None = None,
    **kw: Any,
) -> Objects:
    """The stack plus a second route ``shop/web2`` claiming what ``shop/web`` claims, with
    ``first`` and ``second`` as the two routes' only match, unless they say otherwise."""

    def rules(match: dict[str, Any] | None) -> list[dict[str, Any]]:
        return [route_rule()] if match is None else [route_rule(matches=[match])]

    web = _web(rules=rules(first))
    other = http_route(
        "web2", NS, **{"parents": [parent("edge", section="https")], "rules": rules(second), **kw}
    )
    return [*_replace(web), other]


WEB2 = f"HTTPRoute/{NS}/web2"
R0 = "spec.rules[0]"
M0 = "spec.rules[0].matches[0]"
ROOT = {"path": {"type": "PathPrefix", "value": "/"}}


def _path(value: str, path_type: str | None = "PathPrefix") -> dict[str, Any]:
    path: dict[str, Any] = {"value": value}
    if path_type is not None:
        path["type"] = path_type
    return {"path": path}


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        (gateway_stack(), []),
        (_pair(), [(WEB, R0), (WEB2, R0)]),  # no matches on either: PathPrefix "/"
        (_pair(ROOT, None), [(WEB, M0), (WEB2, R0)]),
        (_pair({}, ROOT), [(WEB, M0), (WEB2, M0)]),  # a match without path: PathPrefix "/"
        (_pair(_path("/", None), ROOT), [(WEB, M0), (WEB2, M0)]),  # a path without type
        (_pair(_path("/a"), _path("/a", "Exact")), []),
        (_pair(_path("/a"), _path("/a/")), []),  # values compared exactly
        (_pair(ROOT, ROOT, hostnames=["other.shop.example.com"]), []),
        (_pair(ROOT, ROOT, hostnames=["SHOP.example.com"]), [(WEB, M0), (WEB2, M0)]),
        (_pair(ROOT, ROOT, hostnames=None), []),  # no shared host name
        (
            _pair(ROOT, ROOT, parents=[parent("edge", section="https-api")]),
            [(WEB, M0), (WEB2, M0)],
        ),  # sectionName ignored
        # On edge-http, web2 no longer meets web, but meets the redirect route there.
        (
            _pair(ROOT, ROOT, parents=[parent("edge-http", section="http")]),
            [(f"HTTPRoute/{EDGE_NS}/https-redirect", R0), (WEB2, M0)],
        ),
        (_pair(ROOT, ROOT, parents=[parent("other-gateway")]), []),
        (_pair({**ROOT, "method": "GET"}, {**ROOT, "method": "GET"}), [(WEB, M0), (WEB2, M0)]),
        (_pair({**ROOT, "method": "GET"}, ROOT), []),
        (
            _pair(
                {"headers": [{"name": "X-Canary", "value": "1"}]},
                {"headers": [{"name": "x-canary", "value": "1", "type": "Exact"}]},
            ),
            [(WEB, M0), (WEB2, M0)],  # header names fold, type defaults to Exact
        ),
        (
            _pair(
                {"headers": [{"name": "X-Canary", "value": "1"}]},
                {"headers": [{"name": "X-Canary", "value": "2"}]},
            ),
            [],
        ),
        (_pair({"headers": [{"name": "X-Canary", "value": "1"}]}, ROOT), []),
        (
            _pair(
                {"queryParams": [{"name": "v", "value": "2"}]},
                {"queryParams": [{"name": "v", "value": "2"}]},
            ),
            [(WEB, M0), (WEB2, M0)],
        ),
        (
            _pair(
                {"queryParams": [{"name": "v", "value": "2"}]},
                {"queryParams": [{"name": "V", "value": "2"}]},
            ),
            [],
        ),  # query names do not fold
        (
            _pair(
                {"headers": [{"name": "a", "value": "1"}, {"name": "b", "value": "2"}]},
                {"headers": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]},
            ),
            [(WEB, M0), (WEB2, M0)],  # header sets, in any order
        ),
        (_pair(ROOT, ROOT, kind="GRPCRoute"), []),  # only HTTPRoutes
        # One route repeating a match is not a clash between owners.
        (_replace(_web(rules=[route_rule(matches=[ROOT]), route_rule(matches=[ROOT])])), []),
        # The same name in two namespaces is two routes.
        (
            [
                *_replace(_web(rules=[route_rule(matches=[ROOT])])),
                http_route(
                    "web", "other", parents=[parent("edge")], rules=[route_rule(matches=[ROOT])]
                ),
            ],
            [(WEB, M0), ("HTTPRoute/other/web", M0)],
        ),
    ],
    ids=[
        "stack",
        "no-matches",
        "explicit-and-implicit-root",
        "match-without-path",
        "path-without-type",
        "other-path-type",
        "trailing-slash",
        "other-host",
        "host-case",
        "no-hostnames",
        "other-section",
        "other-gateway",
        "unknown-gateway",
        "same-method",
        "method-vs-any",
        "header-name-case",
        "header-value",
        "header-vs-none",
        "query",
        "query-name-case",
        "header-set-order",
        "grpcroute",
        "same-route-twice",
        "namespaces-do-not-separate",
    ],
)
def test_route_unique_match(objects: Objects, expected: list[tuple[str, str]]) -> None:
    for env in ENVIRONMENTS:
        assert found_at(objects, env, "route-unique-match") == expected


def test_route_unique_match_names_the_other_route_and_the_host() -> None:
    first, second = check(_pair(ROOT, ROOT), "dev", rule_id="route-unique-match")
    assert WEB2 in first.message
    assert WEB in second.message
    assert "shop.example.com on Gateway kexpose-system/edge" in first.message


def test_a_redirect_route_beside_the_app_routes_on_one_gateway_clashes() -> None:
    # route-unique-match ignores sectionName: a redirect route on the HTTP listener of the
    # Gateway that carries the HTTPS app routes claims the same host and PathPrefix "/".
    edge = gateway("edge", EDGE_NS, listener("http", "HTTP", 80, hostname=None), listener("https"))
    redirect = redirect_route(parents=[parent("edge", section="http")])
    found = check([edge, redirect, _web()], "prod", rule_id="route-unique-match")
    assert [v.resource for v in found] == [f"HTTPRoute/{EDGE_NS}/https-redirect", WEB]
