"""ListenerSets in the pure Gateway API core: which attach to a Gateway (``allowedListeners``),
how their listeners merge into its ports (precedence, conflicts), how routes reach them
(parentRef kind ``ListenerSet``), and the status of both objects. Malformed ListenerSets are
reported or ignored, never raised."""

from __future__ import annotations

from typing import Any

import pytest
from tests.proxy.objects import app, tls_secret
from tests.proxy.test_gateway_core import (
    BACKENDS,
    GROUP,
    backend,
    build,
    conditions,
    gateway,
    gateway_class,
    http_route,
    listener,
    rule,
)

from kexpose.certs import self_signed
from kexpose.proxy.routes import (
    GatewayStatus,
    ListenerSetStatus,
    ObjectSet,
    gateway_status_body,
    listener_set_status_body,
)
from kexpose.proxy.routes._gateway import GatewayTable
from kexpose.proxy.routes._gwstatus import condition
from kexpose.proxy.routes._matches import RequestView as View

Obj = dict[str, Any]
NOW = "2026-12-06T00:00:00Z"


def listener_set(
    name: str,
    *listeners: Obj,
    namespace: str = "infra",
    parent: Obj | None = None,
    created: str = "2026-01-01T00:00:00Z",
) -> Obj:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "ListenerSet",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "generation": 4,
            "creationTimestamp": created,
        },
        "spec": {
            "parentRef": parent if parent is not None else {"name": "gw", "namespace": "infra"},
            "listeners": list(listeners),
        },
    }


def opted_in(*listeners: Obj, allowed: Obj | None = None, name: str = "gw") -> Obj:
    """A Gateway that allows ListenerSets (``from: All`` unless ``allowed`` says otherwise)."""
    gw = gateway(name, *listeners)
    gw["spec"]["allowedListeners"] = (
        allowed if allowed is not None else {"namespaces": {"from": "All"}}
    )
    return gw


def ls_parent(name: str, section: str | None = None, namespace: str = "infra") -> Obj:
    ref: Obj = {"group": GROUP, "kind": "ListenerSet", "name": name, "namespace": namespace}
    if section is not None:
        ref["sectionName"] = section
    return ref


def set_status(table: GatewayTable, name: str, namespace: str = "infra") -> ListenerSetStatus:
    return next(s for s in table.listener_sets if (s.namespace, s.name) == (namespace, name))


def entry(table: GatewayTable, set_name: str, listener_name: str) -> dict[str, tuple[str, str]]:
    found = set_status(table, set_name)
    return conditions(next(lst for lst in found.listeners if lst.name == listener_name))


def gateway_entry(table: GatewayTable, name: str) -> dict[str, tuple[str, str]]:
    return conditions(next(lst for lst in table.gateways[0].listeners if lst.name == name))


def served(table: GatewayTable, host: str, path: str, port: int = 80) -> str | None:
    """The route that answers ``host`` + ``path`` on the Gateway's port, or None (404)."""
    found = next((p for p in table.ports if p.port == port), None)
    if found is None:
        return None
    lst = found.listener(host)
    vhost = lst.host(host) if lst is not None else None
    chosen = vhost.select(View("GET", path, {}, {})) if vhost is not None else None
    return chosen.route if chosen is not None else None


def prefix(path: str) -> list[Obj]:
    return [{"path": {"type": "PathPrefix", "value": path}}]


# --- attachment: allowedListeners ----------------------------------------------------------------

ALLOWED: list[tuple[Obj | None, str, str, int]] = [
    # (gateway's allowedListeners, ListenerSet namespace, Accepted reason, attached count)
    (None, "infra", "NotAllowed", 0),  # the default is None: no ListenerSets
    ({"namespaces": {}}, "infra", "NotAllowed", 0),
    ({"namespaces": {"from": "None"}}, "infra", "NotAllowed", 0),
    ({"namespaces": {"from": "Same"}}, "infra", "Accepted", 1),
    ({"namespaces": {"from": "Same"}}, "apps", "NotAllowed", 0),
    ({"namespaces": {"from": "All"}}, "apps", "Accepted", 1),
    (
        {"namespaces": {"from": "Selector", "selector": {"matchLabels": {"team": "a"}}}},
        "apps",
        "Accepted",
        1,
    ),
    (
        {"namespaces": {"from": "Selector", "selector": {"matchLabels": {"team": "b"}}}},
        "apps",
        "NotAllowed",
        0,
    ),
    ({"namespaces": {"from": "Everywhere"}}, "infra", "NotAllowed", 0),
]


@pytest.mark.parametrize(("allowed", "namespace", "reason", "attached"), ALLOWED)
def test_allowed_listeners(allowed: Obj | None, namespace: str, reason: str, attached: int) -> None:
    gw = gateway("gw", listener("http", hostname="gw.example.com"))
    if allowed is not None:
        gw["spec"]["allowedListeners"] = allowed
    ls = listener_set("ls", listener("extra", hostname="ls.example.com"), namespace=namespace)
    table = build(gateway_class(), gw, ls, namespaces={"apps": {"team": "a"}, "infra": {}})
    status = set_status(table, "ls", namespace)
    assert conditions(status)["Accepted"] == ("True" if attached else "False", reason)
    assert conditions(status)["Programmed"][0] == ("True" if attached else "False")
    assert table.gateways[0].attached_listener_sets == attached
    port = next(p for p in table.ports if p.port == 80)
    assert ("ls.example.com" in port.by_hostname) is bool(attached)
    assert conditions(table.gateways[0])["Accepted"] == ("True", "Accepted")


def test_a_listener_set_of_another_controllers_gateway_gets_no_status() -> None:
    theirs = gateway("gw", listener("http"), cls="theirs")
    theirs["spec"]["allowedListeners"] = {"namespaces": {"from": "All"}}
    table = build(
        gateway_class(),
        gateway_class("theirs", controller="example.com/other"),
        theirs,
        listener_set("ls", listener("extra", hostname="ls.example.com")),
    )
    assert table.listener_sets == ()


# --- merged listeners and routes -----------------------------------------------------------------


def routing_objects() -> list[Obj]:
    """The shape of the conformance test ListenerSetHTTPRouting, scaled down."""
    return [
        gateway_class(),
        opted_in(
            listener("gw-1", hostname="gw-1.example.com", allowedRoutes={"namespaces": {}}),
            listener("gw-2", hostname="gw-2.example.com"),
        ),
        listener_set(
            "ls-1",
            listener("one", hostname="ls-1a.example.com"),
            listener("two", hostname="ls-1b.example.com"),
        ),
        listener_set("ls-2", listener("one", hostname="ls-2a.example.com"), created="2026-02-01"),
        http_route(
            "everywhere",
            rule(backend("web"), matches=prefix("/route")),
            parents=[{"name": "gw", "namespace": "infra"}, ls_parent("ls-1"), ls_parent("ls-2")],
        ),
        http_route("gw-only", rule(backend("api"), matches=prefix("/gateway-route"))),
        http_route(
            "ls-1-section",
            rule(backend("api"), matches=prefix("/ls-section")),
            parents=[ls_parent("ls-1", "one")],
        ),
        http_route(
            "gw-section-of-ls",
            rule(backend("api"), matches=prefix("/bad-section")),
            parents=[{"name": "gw", "namespace": "infra", "sectionName": "two"}],
        ),
        *BACKENDS,
    ]


ROUTING = [
    ("gw-1.example.com", "/route", "infra/everywhere"),
    ("ls-1a.example.com", "/route", "infra/everywhere"),
    ("ls-1b.example.com", "/route", "infra/everywhere"),
    ("ls-2a.example.com", "/route", "infra/everywhere"),
    ("gw-2.example.com", "/gateway-route", "infra/gw-only"),
    # a Gateway parentRef reaches only the Gateway's own listeners
    ("ls-1a.example.com", "/gateway-route", None),
    ("ls-2a.example.com", "/gateway-route", None),
    ("ls-1a.example.com", "/ls-section", "infra/ls-1-section"),
    ("ls-1b.example.com", "/ls-section", None),
    ("ls-2a.example.com", "/ls-section", None),  # same listener name, another ListenerSet
    ("gw-1.example.com", "/ls-section", None),
    ("ls-1b.example.com", "/bad-section", None),
]


@pytest.mark.parametrize(("host", "path", "route"), ROUTING)
def test_listener_set_routing(host: str, path: str, route: str | None) -> None:
    assert served(build(*routing_objects()), host, path) == route


def test_listener_set_routing_status() -> None:
    table = build(*routing_objects())
    assert table.gateways[0].attached_listener_sets == 2
    assert [lst.name for lst in table.gateways[0].listeners] == ["gw-1", "gw-2"]
    ls1 = set_status(table, "ls-1")
    assert conditions(ls1) == {
        "Accepted": ("True", "Accepted"),
        "Programmed": ("True", "Programmed"),
    }
    assert [(lst.name, lst.attached_routes) for lst in ls1.listeners] == [("one", 2), ("two", 1)]
    assert ls1.listeners[0].supported_kinds == ((GROUP, "HTTPRoute"), (GROUP, "GRPCRoute"))
    assert entry(table, "ls-1", "one") == {
        "Accepted": ("True", "Accepted"),
        "ResolvedRefs": ("True", "ResolvedRefs"),
        "Conflicted": ("False", "NoConflicts"),
        "Programmed": ("True", "Programmed"),
    }
    assert ls1.generation == 4
    routes = {r.name: r for r in table.routes}
    everywhere = routes["everywhere"].parents
    assert [conditions(p)["Accepted"] for p in everywhere] == [("True", "Accepted")] * 3
    assert [p.parent_ref.get("kind", "Gateway") for p in everywhere] == [
        "Gateway",
        "ListenerSet",
        "ListenerSet",
    ]
    bad = conditions(routes["gw-section-of-ls"].parents[0])["Accepted"]
    assert bad == ("False", "NoMatchingParent")


def test_same_namespace_routes_on_a_listener_set_listener_mean_the_listener_sets() -> None:
    table = build(
        gateway_class(),
        opted_in(listener("http", hostname="gw.example.com")),
        listener_set(
            "ls",
            listener("same", hostname="ls.example.com"),  # allowedRoutes default: Same
            namespace="apps",
        ),
        http_route(
            "here",
            rule(backend("web"), matches=prefix("/here")),
            namespace="apps",
            parents=[ls_parent("ls", namespace="apps")],
        ),
        http_route(
            "gateway-ns",
            rule(backend("web", namespace="apps"), matches=prefix("/there")),
            parents=[ls_parent("ls", namespace="apps")],
        ),
        *app("web", "10.0.0.9", namespace="apps"),
    )
    routes = {r.name: r for r in table.routes}
    assert conditions(routes["here"].parents[0])["Accepted"] == ("True", "Accepted")
    assert conditions(routes["gateway-ns"].parents[0])["Accepted"] == (
        "False",
        "NotAllowedByListeners",
    )
    assert served(table, "ls.example.com", "/here") == "apps/here"
    assert served(table, "ls.example.com", "/there") is None


def test_a_listener_set_adds_a_port() -> None:
    table = build(
        gateway_class(),
        opted_in(listener("http")),
        listener_set("ls", listener("alt", port=8080, hostname="alt.example.com")),
        http_route("alt", rule(backend("web"), matches=prefix("/")), parents=[ls_parent("ls")]),
        *BACKENDS,
    )
    assert sorted(p.port for p in table.ports) == [80, 8080]
    assert served(table, "alt.example.com", "/x", port=8080) == "infra/alt"
    assert served(table, "alt.example.com", "/x", port=80) is None


# --- conflicts and precedence --------------------------------------------------------------------


def conflict_objects(kind: str) -> list[Obj]:
    """The shape of ListenerSetHostnameConflict / ListenerSetProtocolConflict."""

    def clash(name: str) -> Obj:
        if kind == "HostnameConflict":
            return listener(name, hostname=f"{name}.example.com")
        return listener(name, port=80, protocol="TCP")  # unsupported, and in conflict

    gw_side = listener("with-gateway", hostname="with-gateway.example.com")
    set_side = listener("with-set", hostname="with-set.example.com")
    return [
        gateway_class(),
        opted_in(listener("gw", hostname="gw.example.com"), gw_side),
        listener_set(
            "a-gw-1", listener("a", hostname="a.example.com"), clash("with-gateway"), set_side
        ),
        listener_set("b-gw-2", clash("with-gateway")),
        # created later than a-gw-1: loses with-set even though its name sorts first
        listener_set(
            "0-set-1",
            listener("b", hostname="b.example.com"),
            clash("with-set"),
            created="2026-01-02T00:00:00Z",
        ),
        listener_set("c-set-2", clash("with-set"), created="2026-01-02T00:00:00Z"),
    ]


@pytest.mark.parametrize("reason", ["HostnameConflict", "ProtocolConflict"])
def test_listener_set_conflicts_follow_precedence(reason: str) -> None:
    table = build(*conflict_objects(reason))
    lost = {
        "Accepted": ("False", reason),
        "ResolvedRefs": ("True", "ResolvedRefs"),
        "Conflicted": ("True", reason),
        "Programmed": ("False", reason),
    }
    # The Gateway's own listeners always win, and are not marked by the later ones.
    assert gateway_entry(table, "with-gateway")["Conflicted"] == ("False", "NoConflicts")
    assert gateway_entry(table, "with-gateway")["Programmed"] == ("True", "Programmed")
    assert table.gateways[0].attached_listener_sets == 2
    assert entry(table, "a-gw-1", "a")["Programmed"] == ("True", "Programmed")
    assert entry(table, "a-gw-1", "with-gateway") == lost
    assert entry(table, "a-gw-1", "with-set")["Programmed"] == ("True", "Programmed")
    assert conditions(set_status(table, "a-gw-1"))["Accepted"] == ("True", "ListenersNotValid")
    assert conditions(set_status(table, "a-gw-1"))["Programmed"] == ("True", "Programmed")
    assert conditions(set_status(table, "b-gw-2")) == {
        "Accepted": ("False", "ListenersNotValid"),
        "Programmed": ("False", "ListenersNotValid"),
    }
    assert entry(table, "0-set-1", "with-set") == lost
    assert conditions(set_status(table, "c-set-2"))["Accepted"] == ("False", "ListenersNotValid")
    port = next(p for p in table.ports if p.port == 80)
    assert sorted(port.by_hostname) == [
        "a.example.com",
        "b.example.com",
        "gw.example.com",
        "with-gateway.example.com",
        "with-set.example.com",
    ]
    assert all(lst.protocol == "HTTP" for lst in port.listeners)


def test_equal_creation_times_fall_back_to_namespace_and_name() -> None:
    table = build(
        gateway_class(),
        opted_in(listener("gw", hostname="gw.example.com")),
        listener_set("zz", listener("x", hostname="x.example.com")),
        listener_set("aa", listener("x", hostname="x.example.com"), namespace="other"),
        listener_set("bb", listener("x", hostname="x.example.com")),
    )
    assert entry(table, "bb", "x")["Conflicted"] == ("False", "NoConflicts")  # infra/bb first
    assert entry(table, "zz", "x")["Conflicted"] == ("True", "HostnameConflict")
    other = next(s for s in table.listener_sets if s.namespace == "other")
    assert conditions(other.listeners[0])["Conflicted"] == ("True", "HostnameConflict")


# --- references ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grant_from", "resolved"),
    [("ListenerSet", ("True", "ResolvedRefs")), ("Gateway", ("False", "RefNotPermitted"))],
)
def test_listener_set_certificates_need_a_grant_from_listener_sets(
    grant_from: str, resolved: tuple[str, str]
) -> None:
    pair = self_signed(["secure.example.com"])
    tls = {"certificateRefs": [{"name": "cert", "namespace": "certs"}]}
    grant = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "ReferenceGrant",
        "metadata": {"name": "g", "namespace": "certs"},
        "spec": {
            "from": [{"group": GROUP, "kind": grant_from, "namespace": "infra"}],
            "to": [{"group": "", "kind": "Secret"}],
        },
    }
    table = build(
        gateway_class(),
        opted_in(listener("http")),
        listener_set(
            "ls",
            listener("https", port=443, protocol="HTTPS", hostname="secure.example.com", tls=tls),
        ),
        tls_secret("cert", pair, namespace="certs"),
        grant,
    )
    assert entry(table, "ls", "https")["ResolvedRefs"] == resolved
    ok = resolved[0] == "True"
    assert conditions(set_status(table, "ls"))["Accepted"] == (
        ("True", "Accepted") if ok else ("False", "ListenersNotValid")
    )
    assert table.gateways[0].attached_listener_sets == int(ok)
    assert any(p.port == 443 for p in table.ports) is ok


# --- parent state --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("own", "problems"),
    [
        (listener("udp", protocol="UDP"), None),  # no valid listener of its own
        (
            listener("http"),
            {("infra", "gw"): ("UnsupportedAddress", "10.0.0.300 is not an address")},
        ),
    ],
)
def test_a_listener_set_of_a_gateway_that_is_not_accepted(
    own: Obj, problems: dict[tuple[str, str], tuple[str, str]] | None
) -> None:
    table = build(
        gateway_class(),
        opted_in(own),
        listener_set("ls", listener("extra", hostname="ls.example.com")),
        address_problems=problems,
    )
    assert conditions(set_status(table, "ls")) == {
        "Accepted": ("False", "ParentNotAccepted"),
        "Programmed": ("False", "ParentNotAccepted"),
    }
    assert set_status(table, "ls").listeners == ()
    assert all("ls.example.com" not in p.by_hostname for p in table.ports)


def test_a_listener_set_waits_for_its_gateways_address() -> None:
    table = build(
        gateway_class(),
        opted_in(listener("http")),
        listener_set("ls", listener("extra", hostname="ls.example.com")),
        addressed=False,
    )
    assert conditions(set_status(table, "ls")) == {
        "Accepted": ("True", "Accepted"),
        "Programmed": ("False", "Pending"),
    }
    assert entry(table, "ls", "extra")["Programmed"] == ("False", "Pending")


# --- malformed ListenerSets ----------------------------------------------------------------------

MALFORMED: list[tuple[str, Obj, str | None]] = [
    # (what, spec, Accepted reason or None when no status is ours to give)
    ("no parentRef", {"listeners": [listener("x")]}, None),
    ("parentRef not an object", {"parentRef": "gw", "listeners": [listener("x")]}, None),
    ("parentRef without name", {"parentRef": {"namespace": "infra"}}, None),
    ("parentRef of another kind", {"parentRef": {"name": "gw", "kind": "Service"}}, None),
    ("parentRef name not a string", {"parentRef": {"name": ["gw"]}}, None),
    ("no listeners", {"parentRef": {"name": "gw"}}, "ListenersNotValid"),
    ("listeners not a list", {"parentRef": {"name": "gw"}, "listeners": 7}, "ListenersNotValid"),
    (
        "listener entries of the wrong shape",
        {"parentRef": {"name": "gw"}, "listeners": ["x", 3, None]},
        "ListenersNotValid",
    ),
    (
        "bad port and protocol",
        {
            "parentRef": {"name": "gw"},
            "listeners": [{"name": "x", "port": "80", "protocol": 4}, {"name": 5, "port": 0}],
        },
        "ListenersNotValid",
    ),
    (
        "bad hostname and allowedRoutes",
        {
            "parentRef": {"name": "gw"},
            "listeners": [
                {"name": "x", "port": 80, "protocol": "HTTP", "hostname": 9, "allowedRoutes": 1}
            ],
        },
        "Accepted",
    ),
    ("spec not an object", "nothing", None),  # type: ignore[list-item]
]


@pytest.mark.parametrize(("what", "spec", "reason"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_listener_sets_never_crash(what: str, spec: Any, reason: str | None) -> None:
    bad = listener_set("bad")
    bad["spec"] = spec
    table = build(
        gateway_class(),
        opted_in(listener("http", hostname="gw.example.com")),
        bad,
        http_route("web", rule(backend("web")), parents=[ls_parent("bad")]),
        http_route("gw", rule(backend("web"))),
        *BACKENDS,
    )
    assert served(table, "gw.example.com", "/") == "infra/gw", what
    found = [s for s in table.listener_sets if s.name == "bad"]
    if reason is None:
        assert found == []
        assert all(r.name != "web" for r in table.routes)  # not a parent of ours
    else:
        assert conditions(found[0])["Accepted"][1] == reason


def test_a_selector_of_the_wrong_shape_admits_nothing() -> None:
    gw = opted_in(
        listener("http"),
        allowed={
            "namespaces": {
                "from": "Selector",
                "selector": {"matchExpressions": [{"key": "t", "operator": "In", "values": 3}]},
            }
        },
    )
    table = build(
        gateway_class(),
        gw,
        listener_set("ls", listener("x", hostname="x.example.com")),
        namespaces={"infra": {"t": "a"}},
    )
    assert conditions(set_status(table, "ls"))["Accepted"] == ("False", "NotAllowed")


# --- status bodies and static mode ---------------------------------------------------------------


def test_listener_set_status_body() -> None:
    table = build(*routing_objects())
    wanted = set_status(table, "ls-1")
    body = listener_set_status_body(wanted, None, NOW)
    assert body is not None
    assert [c["type"] for c in body["conditions"]] == ["Accepted", "Programmed"]
    assert all(c["observedGeneration"] == 4 for c in body["conditions"])
    assert body["listeners"][0]["name"] == "one"
    assert body["listeners"][0]["attachedRoutes"] == 2
    assert body["listeners"][0]["supportedKinds"] == [
        {"group": GROUP, "kind": "HTTPRoute"},
        {"group": GROUP, "kind": "GRPCRoute"},
    ]
    # Written once, then steady: nothing to write.
    assert listener_set_status_body(wanted, {"status": body}, "later") is None


def test_gateway_status_counts_attached_listener_sets() -> None:
    wanted = GatewayStatus(
        "infra", "gw", 1, ("10.0.0.1",), (condition("Accepted", True, "Accepted"),), (), 3
    )
    body = gateway_status_body(wanted, None, NOW)
    assert body is not None
    assert body["attachedListenerSets"] == 3
    assert gateway_status_body(wanted, {"status": body}, NOW) is None


def test_static_mode_reads_listener_sets() -> None:
    ls = listener_set("ls", listener("x"))
    bad = {**listener_set("old"), "apiVersion": f"{GROUP}/v1alpha1"}
    objects, problems = ObjectSet.from_documents([ls, bad], origin="f.yaml")
    assert list(objects.listener_sets) == [("infra", "ls")]
    assert len(problems) == 1
    assert "ListenerSet apiVersion" in problems[0]
