"""The route table: hosts, defaults, ownership, merging, endpoints and SNI, as case tables."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from tests.proxy.objects import (
    app,
    backend,
    endpoint,
    endpoint_slice,
    ingress,
    ingress_class,
    path,
    rule,
    service,
    sport,
    tls,
    tls_secret,
)

from kexpose.certs import self_signed
from kexpose.defaults import CONTROLLER_NAME
from kexpose.hosts import normalize_host
from kexpose.proxy.routes import Claim, ObjectSet, RouteTable, build_table

CLAIM = Claim(CONTROLLER_NAME, ingress_class="kexpose")


def table(*groups: Any, claim: Claim = CLAIM) -> RouteTable:
    docs: list[dict[str, Any]] = [ingress_class(), ingress_class("other", "example.com/other")]
    for g in groups:
        docs.extend(g if isinstance(g, list) else [g])
    objects, problems = ObjectSet.from_documents(docs)
    assert not problems
    return build_table(objects, claim=claim)


def where(t: RouteTable, host: str, p: str) -> str | None:
    """``ingress -> namespace/service:port`` for a request, or None (404)."""
    found = t.route(normalize_host(host), p)
    return None if found is None else f"{found.ingress}->{found.backend.key}"


# --- ownership --------------------------------------------------------------------------------

OWNERSHIP: list[tuple[str, dict[str, Any], Claim, bool]] = [
    ("field names our class", {"cls": "kexpose"}, CLAIM, True),
    ("field names another controller's class", {"cls": "other"}, CLAIM, False),
    ("field names a class that does not exist", {"cls": "ghost"}, CLAIM, False),
    ("annotation names our class", {"cls": None, "annotation": "kexpose"}, CLAIM, True),
    ("annotation names another's class", {"cls": None, "annotation": "other"}, CLAIM, False),
    (
        "annotation equals --ingress-class, no such IngressClass",
        {"cls": None, "annotation": "legacy"},
        Claim(CONTROLLER_NAME, ingress_class="legacy"),
        True,
    ),
    ("annotation names nothing we know", {"cls": None, "annotation": "nginx"}, CLAIM, False),
    ("field wins over annotation (ours)", {"cls": "kexpose", "annotation": "other"}, CLAIM, True),
    (
        "field wins over annotation (theirs)",
        {"cls": "other", "annotation": "kexpose"},
        CLAIM,
        False,
    ),
    ("class-less is not ours", {"cls": None}, CLAIM, False),
    (
        "class-less with --watch-ingress-without-class",
        {"cls": None},
        Claim(CONTROLLER_NAME, watch_without_class=True),
        True,
    ),
]


@pytest.mark.parametrize(
    ("case", "kwargs", "claim", "ours"), OWNERSHIP, ids=[c[0] for c in OWNERSHIP]
)
def test_ownership(case: str, kwargs: dict[str, Any], claim: Claim, ours: bool) -> None:
    ing = ingress(
        "web",
        rule("a.example.com", path("/", "web")),
        default=backend("web"),
        tls=[tls("cert", "a.example.com")],
        **kwargs,
    )
    pair = self_signed(["a.example.com"])
    t = table(ing, app("web", "10.0.0.1"), tls_secret("cert", pair), claim=claim)
    expected = "default/web->default/web:80" if ours else None
    # rules, default backend and TLS all take effect, or none of them does
    assert where(t, "a.example.com", "/") == expected
    assert where(t, "unknown.example.com", "/") is None
    assert (t.certificate("a.example.com") is not None) is ours
    assert t.owned == ((("default", "web"),) if ours else ())


# --- hosts ------------------------------------------------------------------------------------

HOSTS = [
    ingress("exact", rule("foo.bar.com", path("/", "exact"))),
    ingress("wild", rule("*.bar.com", path("/", "wild"))),
    ingress("any", rule(None, path("/", "any"))),
]
HOST_CASES = [
    ("foo.bar.com", "default/exact"),
    ("FOO.Bar.COM", "default/exact"),  # case-insensitive
    ("foo.bar.com:8080", "default/exact"),  # port ignored
    ("foo.bar.com.", "default/exact"),  # one trailing dot dropped
    ("baz.bar.com", "default/wild"),  # one label
    ("a.baz.bar.com", "default/any"),  # two labels: not the wildcard
    ("bar.com", "default/any"),  # zero labels: not the wildcard
    ("", "default/any"),  # HTTP/1.0 without Host
    ("10.1.2.3", "default/any"),
]


@pytest.mark.parametrize(
    ("host", "expected"), HOST_CASES, ids=[h or "<none>" for h, _ in HOST_CASES]
)
def test_hosts(host: str, expected: str) -> None:
    names = ["exact", "wild", "any"]
    t = table(*HOSTS, *(app(n, "10.0.0.1") for n in names))
    found = t.route(normalize_host(host), "/")
    assert found is not None
    assert found.ingress == expected


def test_a_named_host_never_falls_back_to_the_wildcard_or_catch_all() -> None:
    t = table(
        ingress("named", rule("foo.bar.com", path("/api", "api"))),
        ingress("wild", rule("*.bar.com", path("/", "wild"))),
        ingress("all", default=backend("all")),
        app("api", "10.0.0.1"),
        app("wild", "10.0.0.2"),
        app("all", "10.0.0.3"),
    )
    assert where(t, "foo.bar.com", "/api/x") == "default/named->default/api:80"
    assert where(t, "foo.bar.com", "/other") is None  # 404, not the wildcard, not the catch-all
    assert where(t, "x.bar.com", "/other") == "default/wild->default/wild:80"
    assert where(t, "elsewhere.com", "/other") == "default/all->default/all:80"


# --- default backends -------------------------------------------------------------------------


def test_default_backend_is_scoped_to_the_ingress_hosts_when_it_has_rules() -> None:
    t = table(
        ingress("shop", rule("shop.com", path("/cart", "cart")), default=backend("shopdef")),
        app("cart", "10.0.0.1"),
        app("shopdef", "10.0.0.2"),
    )
    assert where(t, "shop.com", "/cart") == "default/shop->default/cart:80"
    assert where(t, "shop.com", "/nothing") == "default/shop->default/shopdef:80"
    assert where(t, "other.com", "/cart") is None


def test_catch_all_comes_from_the_oldest_rule_less_ingress() -> None:
    t = table(
        ingress("newer", default=backend("b"), created="2024-02-01T00:00:00Z"),
        ingress("older", default=backend("a"), created="2024-01-01T00:00:00Z"),
        ingress(
            "with-rules",
            rule("x.com", path("/", "a")),
            default=backend("c"),
            created="2023-01-01T00:00:00Z",
        ),
        app("a", "10.0.0.1"),
        app("b", "10.0.0.2"),
        app("c", "10.0.0.3"),
    )
    assert where(t, "y.com", "/") == "default/older->default/a:80"


def test_no_match_and_no_default_is_404() -> None:
    t = table(ingress("web", rule("a.com", path("/a", "web"))), app("web", "10.0.0.1"))
    assert where(t, "a.com", "/b") is None
    assert where(t, "b.com", "/a") is None


def test_the_first_ingress_on_a_host_sets_its_default() -> None:
    t = table(
        ingress(
            "old",
            rule("a.com", path("/x", "x")),
            default=backend("d1"),
            created="2024-01-01T00:00:00Z",
        ),
        ingress(
            "new",
            rule("a.com", path("/y", "y")),
            default=backend("d2"),
            created="2024-06-01T00:00:00Z",
        ),
        *(app(n, "10.0.0.1") for n in ("x", "y", "d1", "d2")),
    )
    assert where(t, "a.com", "/y") == "default/new->default/y:80"  # paths merge
    assert where(t, "a.com", "/z") == "default/old->default/d1:80"


# --- several Ingresses on one host ------------------------------------------------------------


def test_same_path_oldest_wins() -> None:
    t = table(
        ingress("b", rule("a.com", path("/", "new")), created="2024-06-01T00:00:00Z"),
        ingress("a", rule("a.com", path("/", "old")), created="2024-01-01T00:00:00Z"),
        app("new", "10.0.0.1"),
        app("old", "10.0.0.2"),
    )
    assert where(t, "a.com", "/") == "default/a->default/old:80"
    assert any("already routed by an older Ingress" in p for p in t.problems)


def test_same_path_equal_age_greater_name_wins() -> None:
    t = table(
        ingress("aaa", rule("a.com", path("/", "s1"))),
        ingress("zzz", rule("a.com", path("/", "s2"))),
        app("s1", "10.0.0.1"),
        app("s2", "10.0.0.2"),
    )
    assert where(t, "a.com", "/") == "default/zzz->default/s2:80"


def test_other_namespaces_resolve_their_own_services() -> None:
    t = table(
        ingress("web", rule("a.com", path("/", "web")), namespace="shop"),
        app("web", "10.0.0.9", namespace="shop"),
        app("web", "10.0.0.1"),
    )
    found = t.route("a.com", "/")
    assert found is not None
    assert found.backend.endpoints == (("10.0.0.9", 8080),)


# --- backends ---------------------------------------------------------------------------------

SVC = "web"


def endpoints_of(*objs: Any, port: int | str = 80) -> tuple[tuple[str, int], ...] | str:
    t = table(ingress("i", rule("a.com", path("/", SVC, port))), *objs)
    found = t.route("a.com", "/")
    assert found is not None
    return found.backend.endpoints or str(found.backend.problem)


BACKENDS: list[tuple[str, list[Any], int | str, Any]] = [
    (
        "port.number is the Service port, not the targetPort",
        [
            service(SVC, sport(80, 8080)),
            endpoint_slice(SVC, [endpoint("10.0.0.1")], [(None, 8080)]),
        ],
        8080,
        "Service default/web has no port 8080",
    ),
    (
        "ready false skipped, ready unset kept",
        [
            service(SVC, sport(80, 8080)),
            endpoint_slice(
                SVC,
                [
                    endpoint("10.0.0.1", True),
                    endpoint("10.0.0.2", False),
                    endpoint("10.0.0.3", None),
                ],
                [(None, 8080)],
            ),
        ],
        80,
        (("10.0.0.1", 8080), ("10.0.0.3", 8080)),
    ),
    (
        "same address in two slices counts once",
        [
            service(SVC, sport(80, 8080)),
            endpoint_slice(SVC, [endpoint("10.0.0.1")], [(None, 8080)], name="s1"),
            endpoint_slice(
                SVC, [endpoint("10.0.0.1"), endpoint("10.0.0.2")], [(None, 8080)], name="s2"
            ),
        ],
        80,
        (("10.0.0.1", 8080), ("10.0.0.2", 8080)),
    ),
    (
        "port by name; named targetPort differs per slice",
        [
            service(SVC, sport(80, "http", name="http"), sport(9090, 9090, name="metrics")),
            endpoint_slice(
                SVC, [endpoint("10.0.0.1")], [("http", 8080), ("metrics", 9090)], name="s1"
            ),
            endpoint_slice(
                SVC, [endpoint("10.0.0.2")], [("http", 8081), ("metrics", 9090)], name="s2"
            ),
        ],
        "http",
        (("10.0.0.1", 8080), ("10.0.0.2", 8081)),
    ),
    (
        "port by number picks the slice port of the same name",
        [
            service(SVC, sport(80, "http", name="http"), sport(9090, 9090, name="metrics")),
            endpoint_slice(SVC, [endpoint("10.0.0.1")], [("metrics", 9090), ("http", 8080)]),
        ],
        80,
        (("10.0.0.1", 8080),),
    ),
    (
        "no slice port of that name: numeric targetPort",
        [
            service(SVC, sport(80, 8080, name="web")),
            endpoint_slice(SVC, [endpoint("10.0.0.1")], []),
        ],
        80,
        (("10.0.0.1", 8080),),
    ),
    (
        "no ready endpoint",
        [service(SVC, sport(80, 8080)), endpoint_slice(SVC, [endpoint("10.0.0.1", False)])],
        80,
        "Service default/web has no ready endpoint",
    ),
    ("missing Service", [], 80, "Service default/web not found"),
    (
        "port name the Service lacks",
        [service(SVC, sport(80, 8080, name="http"))],
        "grpc",
        "Service default/web has no port named 'grpc'",
    ),
    (
        "slices of other Services and FQDN slices are ignored",
        [
            service(SVC, sport(80, 8080)),
            endpoint_slice("other", [endpoint("10.0.0.9")]),
            endpoint_slice(SVC, [endpoint("web.example.com")], address_type="FQDN", name="f"),
            endpoint_slice(SVC, [endpoint("fd00::1")], address_type="IPv6", name="v6"),
        ],
        80,
        (("fd00::1", 8080),),
    ),
    (
        "ExternalName resolves to its DNS name",
        [service(SVC, sport(80), type_="ExternalName", externalName="api.example.com")],
        80,
        (("api.example.com", 80),),
    ),
]


@pytest.mark.parametrize(
    ("case", "objs", "port", "expected"), BACKENDS, ids=[b[0] for b in BACKENDS]
)
def test_backends(case: str, objs: list[Any], port: int | str, expected: Any) -> None:
    assert endpoints_of(*objs, port=port) == expected


def test_only_the_first_address_of_an_endpoint_counts() -> None:
    ep = {"addresses": ["10.0.0.1", "10.0.0.2"]}
    objs = [service(SVC, sport(80, 8080)), endpoint_slice(SVC, [ep])]
    assert endpoints_of(*objs) == (("10.0.0.1", 8080),)


def test_resource_backend_is_skipped_and_falls_through_to_the_default() -> None:
    resource = {
        "path": "/r",
        "pathType": "Prefix",
        "backend": {"resource": {"apiGroup": "x", "kind": "Bucket", "name": "b"}},
    }
    t = table(ingress("i", rule("a.com", resource), default=backend("d")), app("d", "10.0.0.1"))
    assert where(t, "a.com", "/r") == "default/i->default/d:80"
    assert any("Bucket backends are not served" in p for p in t.problems)


def test_invalid_paths_are_skipped_and_reported() -> None:
    bad = [path("nope", "web"), path("/x", "web", path_type="Regex")]
    t = table(ingress("i", rule("a.com", *bad)), app("web", "10.0.0.1"))
    assert where(t, "a.com", "/x") is None
    assert len(t.problems) == 2


# --- TLS and SNI ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pairs() -> dict[str, Any]:
    return {
        "a": self_signed(["a.example.com"]),
        "wild": self_signed(["*.example.com"]),
        "b": self_signed(["b.example.com", "c.example.com"]),
    }


def test_sni_selection(pairs: dict[str, Any]) -> None:
    t = table(
        ingress(
            "i",
            rule("a.example.com", path("/", "web")),
            rule("b.example.com", path("/", "web")),
            rule("c.example.com", path("/", "web")),
            tls=[tls("a", "a.example.com"), tls("wild", "*.example.com"), tls("b")],
        ),
        app("web", "10.0.0.1"),
        tls_secret("a", pairs["a"]),
        tls_secret("wild", pairs["wild"]),
        tls_secret("b", pairs["b"]),
    )

    def secret(name: str | None) -> str | None:
        cert = t.certificate(name)
        return None if cert is None else cert.secret

    assert secret("a.example.com") == "default/a"
    assert secret("A.Example.COM.") == "default/a"
    assert secret("x.example.com") == "default/wild"  # one label under the wildcard
    assert secret("x.y.example.com") is None  # two labels: default certificate
    assert secret("example.com") is None
    assert secret(None) is None  # no SNI: default certificate
    # hosts omitted: the Secret serves the rule hosts its certificate verifies
    assert secret("b.example.com") == "default/b"
    assert secret("c.example.com") == "default/b"
    assert t.hosts["b.example.com"].tls


def test_tls_turns_on_the_redirect_even_without_a_usable_secret(pairs: dict[str, Any]) -> None:
    t = table(
        ingress(
            "i", rule("a.example.com", path("/", "web")), tls=[tls("missing", "a.example.com")]
        ),
        ingress("j", rule("n.example.com", path("/", "web")), tls=[tls(None, "n.example.com")]),
        ingress("k", rule("plain.example.com", path("/", "web"))),
        ingress(
            "off",
            rule("off.example.com", path("/", "web")),
            tls=[tls("a", "off.example.com")],
            annotations={"kexpose.dev/ssl-redirect": "false"},
        ),
        ingress("w", rule("x.wild.com", path("/", "web")), tls=[tls(None, "*.wild.com")]),
        app("web", "10.0.0.1"),
        tls_secret("a", pairs["a"]),
    )
    assert t.hosts["a.example.com"].tls
    assert t.certificate("a.example.com") is None  # default certificate
    assert any("Secret default/missing not found" in p for p in t.problems)
    assert t.hosts["n.example.com"].tls
    assert not t.hosts["plain.example.com"].tls
    assert not t.hosts["off.example.com"].tls
    assert t.hosts["x.wild.com"].tls


def test_tls_of_an_ignored_ingress_never_takes_effect(pairs: dict[str, Any]) -> None:
    t = table(
        ingress(
            "theirs",
            rule("a.example.com", path("/", "web")),
            cls="other",
            tls=[tls("a", "a.example.com")],
        ),
        app("web", "10.0.0.1"),
        tls_secret("a", pairs["a"]),
    )
    assert t.certificate("a.example.com") is None
    assert t.hosts == {}


def test_bad_secret_is_reported() -> None:
    broken = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "bad", "namespace": "default"},
        "data": {"tls.crt": "bm90IGEgY2VydA==", "tls.key": "eA=="},
    }
    t = table(
        ingress("i", rule("a.com", path("/", "web")), tls=[tls("bad", "a.com")]),
        app("web", "10.0.0.1"),
        broken,
    )
    assert t.certificate("a.com") is None
    assert any("not a PEM certificate" in p for p in t.problems)


# --- documents --------------------------------------------------------------------------------


def docs_problems(docs: Iterable[dict[str, Any]]) -> tuple[str, ...]:
    return ObjectSet.from_documents(list(docs))[1]


def test_documents_of_unknown_kinds_are_skipped_and_old_versions_reported() -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}
    old = {"apiVersion": "extensions/v1beta1", "kind": "Ingress", "metadata": {"name": "o"}}
    nameless = {"apiVersion": "v1", "kind": "Service", "metadata": {}}
    problems = docs_problems([deployment, old, nameless, {"x": 1}])
    assert len(problems) == 3
    assert "use 'networking.k8s.io/v1'" in problems[0]


def test_a_list_document_is_unpacked() -> None:
    objects, problems = ObjectSet.from_documents(
        [{"apiVersion": "v1", "kind": "List", "items": [ingress_class(), *app("web", "10.0.0.1")]}]
    )
    assert not problems
    assert set(objects.classes) == {"kexpose"}
    assert ("default", "web") in objects.services
