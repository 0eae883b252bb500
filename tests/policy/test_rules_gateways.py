"""Gateway rules, one case table each: class, HTTPS listeners, allowedRoutes, plain HTTP, and the
listeners' certificates (provisioned, covering the hostname)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from kexpose.environment import ENVIRONMENTS

from .objects import (
    EDGE_NS,
    NS,
    REDIRECT_TO_HTTPS,
    check,
    found_at,
    gateway,
    gateway_stack,
    http_route,
    listener,
    parent,
    route_rule,
    tls_secret,
)

Objects = list[dict[str, Any]]


def _edit(change: Callable[[dict[tuple[str, str], dict[str, Any]]], None]) -> Objects:
    """The realistic Gateway stack with ``change`` applied to its objects (by kind and name)."""
    objects = copy.deepcopy(gateway_stack())
    change({(o["kind"], o["metadata"]["name"]): o for o in objects})
    return objects


def _edge(objects: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    return objects[("Gateway", "edge")]


EDGE = f"Gateway/{EDGE_NS}/edge"


# --- gw-class-allowed -------------------------------------------------------------------------


def _klass(name: str | None) -> Objects:
    def change(o: dict[tuple[str, str], dict[str, Any]]) -> None:
        if name is None:
            del _edge(o)["spec"]["gatewayClassName"]
        else:
            _edge(o)["spec"]["gatewayClassName"] = name

    return _edit(change)


ISTIO_GATEWAY = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "Gateway",
    "metadata": {"name": "istio-edge", "namespace": "istio-system"},
    "spec": {"selector": {"istio": "ingressgateway"}, "servers": []},
}


@pytest.mark.parametrize(
    ("objects", "overrides", "expected"),
    [
        (gateway_stack(), {}, []),
        (_klass("istio"), {}, [(EDGE, "spec.gatewayClassName")]),
        (_klass(None), {}, [(EDGE, "spec.gatewayClassName")]),
        (_klass(""), {}, [(EDGE, "spec.gatewayClassName")]),
        (_klass("istio"), {"allowed_gateway_classes": ["istio", "kexpose"]}, []),
        (
            gateway_stack(),
            {"allowed_gateway_classes": ["traefik"]},
            [
                (EDGE, "spec.gatewayClassName"),
                (f"Gateway/{EDGE_NS}/edge-http", "spec.gatewayClassName"),
            ],
        ),
        ([*gateway_stack(), ISTIO_GATEWAY], {}, []),  # another group's Gateway is not ours
        (
            [
                gateway(
                    "old", EDGE_NS, klass="nginx", api_version="gateway.networking.k8s.io/v1beta1"
                )
            ],
            {},
            [(f"Gateway/{EDGE_NS}/old", "spec.gatewayClassName")],
        ),
    ],
    ids=[
        "ok",
        "other-class",
        "missing",
        "empty",
        "configured",
        "config-narrows",
        "istio",
        "v1beta1",
    ],
)
def test_gw_class_allowed(
    objects: Objects, overrides: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    for env in ENVIRONMENTS:
        assert found_at(objects, env, "gw-class-allowed", **overrides) == expected


def test_gw_class_allowed_says_what_is_allowed() -> None:
    (v,) = check(_klass("istio"), "dev", rule_id="gw-class-allowed")
    assert "'istio'" in v.message
    assert "kexpose" in v.fix
    assert v.enforcement == "mandatory"


# --- gw-https-listener-tls --------------------------------------------------------------------


def _listener(**kw: Any) -> Objects:
    """The stack with the first HTTPS listener of ``edge`` replaced."""

    def change(o: dict[tuple[str, str], dict[str, Any]]) -> None:
        _edge(o)["spec"]["listeners"][0] = listener("https", **kw)

    return _edit(change)


L0 = "spec.listeners[0]"


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        (gateway_stack(), []),
        (_listener(certificate="shop-tls"), []),
        (_listener(certificate=None), [(EDGE, f"{L0}.tls")]),
        (_listener(tls={}), [(EDGE, f"{L0}.tls.certificateRefs")]),  # mode defaults to Terminate
        (_listener(tls={"mode": "Terminate"}), [(EDGE, f"{L0}.tls.certificateRefs")]),
        (
            _listener(tls={"mode": "Terminate", "certificateRefs": []}),
            [(EDGE, f"{L0}.tls.certificateRefs")],
        ),
        (_listener(tls={"certificateRefs": [{"name": "shop-tls"}]}), []),
        (_listener(protocol="TLS", tls={"mode": "Passthrough"}), []),
        (_listener(protocol="TLS", certificate=None), []),  # only HTTPS listeners are judged
        (_listener(protocol="HTTP", port=80, certificate=None), []),
        (
            [
                gateway(
                    "edge", EDGE_NS, listener("a", certificate="x"), listener("b", certificate=None)
                )
            ],
            [(EDGE, "spec.listeners[1].tls")],
        ),
    ],
    ids=[
        "ok",
        "secret",
        "no-tls",
        "empty-tls",
        "terminate-no-refs",
        "empty-refs",
        "default-mode",
        "tls-passthrough",
        "tls-protocol",
        "http-protocol",
        "second-listener",
    ],
)
def test_gw_https_listener_tls(objects: Objects, expected: list[tuple[str, str]]) -> None:
    for env in ("staging", "prod"):
        assert found_at(objects, env, "gw-https-listener-tls") == expected
    assert check(objects, "dev", rule_id="gw-https-listener-tls") == []


# --- gw-allowed-routes-restricted -------------------------------------------------------------


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        (gateway_stack(), []),  # Selector
        (_listener(allowed_from="Same"), []),
        (_listener(allowed_from=None), []),  # Same is the default
        (_listener(allowed_from="All"), [(EDGE, f"{L0}.allowedRoutes.namespaces.from")]),
        (
            [
                gateway(
                    "edge",
                    EDGE_NS,
                    listener(allowed_from="Same"),
                    listener("h", "HTTP", 80, allowed_from="All"),
                )
            ],
            [(EDGE, "spec.listeners[1].allowedRoutes.namespaces.from")],
        ),
    ],
    ids=["selector", "same", "default", "all", "second-listener"],
)
def test_gw_allowed_routes_restricted(objects: Objects, expected: list[tuple[str, str]]) -> None:
    assert found_at(objects, "prod", "gw-allowed-routes-restricted") == expected
    for env in ("dev", "staging"):
        assert check(objects, env, rule_id="gw-allowed-routes-restricted") == []


# --- gw-no-plain-http -------------------------------------------------------------------------

PLAIN = [
    gateway("edge", EDGE_NS, listener("http", "HTTP", 80, hostname=None), listener("https")),
    tls_secret("web-tls", EDGE_NS),
]
WEB = f"HTTPRoute/{NS}/web"


def _plain(*parents: dict[str, Any], rules: list[dict[str, Any]] | None = None) -> Objects:
    return [*PLAIN, http_route(parents=list(parents), rules=rules)]


REDIRECT_ONLY = [{"filters": [REDIRECT_TO_HTTPS]}]


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        (gateway_stack(), []),
        (_plain(parent(section="https")), []),
        (_plain(parent(section="http")), [(WEB, "spec.rules[0].filters")]),
        (_plain(parent(section=None)), [(WEB, "spec.rules[0].filters")]),  # attaches to both
        (_plain(parent(section=None, port=443)), []),
        (_plain(parent(section=None, port=80)), [(WEB, "spec.rules[0].filters")]),
        (_plain(parent(section="http", port=443)), []),  # that listener is not on 443
        (_plain(parent(section="http"), rules=REDIRECT_ONLY), []),
        (
            _plain(parent(section="http"), rules=[*REDIRECT_ONLY, route_rule()]),
            [(WEB, "spec.rules[1].filters")],
        ),
        (
            _plain(
                parent(section="http"),
                rules=[
                    {
                        "filters": [
                            {
                                "type": "RequestRedirect",
                                "requestRedirect": {"scheme": "http", "port": 8080},
                            }
                        ]
                    }
                ],
            ),
            [(WEB, "spec.rules[0].filters")],
        ),
        (_plain(parent(section="http"), rules=[]), []),  # no rules: not flagged
        (_plain(parent("elsewhere", section="http")), []),  # not a Gateway of the stack
        (_plain(parent(section="http", kind="ListenerSet")), []),  # not a Gateway parent
        (
            [*PLAIN, http_route(kind="GRPCRoute", parents=[parent(section="http")])],
            [],  # only HTTPRoutes
        ),
    ],
    ids=[
        "stack",
        "https-section",
        "http-section",
        "no-section",
        "port-443",
        "port-80",
        "section-and-other-port",
        "redirect",
        "redirect-and-more",
        "redirect-to-http",
        "no-rules",
        "unknown-gateway",
        "other-parent-kind",
        "grpcroute",
    ],
)
def test_gw_no_plain_http(objects: Objects, expected: list[tuple[str, str]]) -> None:
    assert found_at(objects, "prod", "gw-no-plain-http") == expected
    for env in ("dev", "staging"):
        assert check(objects, env, rule_id="gw-no-plain-http") == []


def test_gw_no_plain_http_names_the_listener() -> None:
    (v,) = check(_plain(parent(section="http")), rule_id="gw-no-plain-http")
    assert f"{EDGE} listener 'http' (port 80)" in v.message


def test_gw_no_plain_http_names_kexpose_opt_out() -> None:
    route = http_route(parents=[parent(section="http")])
    route["metadata"]["annotations"] = {"kexpose.dev/ssl-redirect": "false"}
    (v,) = check([*PLAIN, route], rule_id="gw-no-plain-http")
    assert "opts out of HTTPS: kexpose.dev/ssl-redirect is 'false'" in v.message
    (plain,) = check(_plain(parent(section="http")), rule_id="gw-no-plain-http")
    assert "opts out" not in plain.message


# --- gw-tls-secret-provisioned ----------------------------------------------------------------

CERT = {
    "apiVersion": "cert-manager.io/v1",
    "kind": "Certificate",
    "metadata": {"name": "shop", "namespace": EDGE_NS},
    "spec": {
        "secretName": "shop-tls",
        "dnsNames": ["shop.example.com"],
        "issuerRef": {"name": "le", "kind": "ClusterIssuer"},
    },
}
REF0 = f"{L0}.tls.certificateRefs[0].name"
REF1 = "spec.listeners[1].tls.certificateRefs[0].name"


def _without(kind: str, name: str, *extra: dict[str, Any]) -> Objects:
    return [
        o for o in gateway_stack() if (o["kind"], o["metadata"]["name"]) != (kind, name)
    ] + list(extra)


def _issuer(notes: dict[str, str]) -> Objects:
    """No Secret for the first listener, but an issuer annotation on the Gateway."""
    objects = _without("Secret", "shop-tls")
    edge = next(o for o in objects if o["kind"] == "Gateway" and o["metadata"]["name"] == "edge")
    edge["metadata"]["annotations"] = notes
    return objects


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        (gateway_stack(), []),
        (_without("Secret", "shop-tls"), [(EDGE, REF0)]),
        (_without("Secret", "api-tls"), [(EDGE, REF1)]),  # cross-namespace ref: its namespace
        (_without("Secret", "shop-tls", tls_secret("shop-tls", NS)), [(EDGE, REF0)]),
        (
            _without("Secret", "shop-tls", tls_secret("shop-tls", EDGE_NS, kind="Opaque")),
            [(EDGE, REF0)],
        ),
        (
            _without(
                "Secret",
                "shop-tls",
                {**tls_secret("shop-tls", EDGE_NS), "data": {"tls.crt": "eA=="}},
            ),
            [(EDGE, REF0)],
        ),
        (_without("Secret", "shop-tls", CERT), []),
        (
            _without("Secret", "shop-tls", {**CERT, "metadata": {"name": "shop", "namespace": NS}}),
            [(EDGE, REF0)],
        ),
        (_issuer({"cert-manager.io/cluster-issuer": "le"}), []),
        (_issuer({"cert-manager.io/issuer": "local"}), []),
        (_issuer({"cert-manager.io/issuer": ""}), [(EDGE, REF0)]),
        (_listener(protocol="TLS", certificate="nowhere"), []),  # only HTTPS listeners
        (
            _listener(tls={"certificateRefs": [{"kind": "ConfigMap", "name": "x"}]}),
            [],
        ),  # not a Secret ref
    ],
    ids=[
        "stack",
        "missing",
        "missing-other-namespace",
        "wrong-namespace",
        "wrong-type",
        "missing-key",
        "certificate",
        "certificate-other-namespace",
        "cluster-issuer",
        "issuer",
        "empty-issuer",
        "tls-listener",
        "not-a-secret-ref",
    ],
)
def test_gw_tls_secret_provisioned(objects: Objects, expected: list[tuple[str, str]]) -> None:
    for env in ("staging", "prod"):
        assert found_at(objects, env, "gw-tls-secret-provisioned") == expected
    assert check(objects, "dev", rule_id="gw-tls-secret-provisioned") == []


def test_gw_tls_secret_provisioned_says_why() -> None:
    (v,) = check(
        _without("Secret", "shop-tls", tls_secret("shop-tls", EDGE_NS, kind="Opaque")),
        rule_id="gw-tls-secret-provisioned",
    )
    assert "'Opaque'" in v.message
    (v,) = check(_without("Secret", "api-tls"), rule_id="gw-tls-secret-provisioned")
    assert "namespace 'shop'" in v.message


# --- gw-tls-cert-covers-hostname --------------------------------------------------------------


def _covered(hostname: str | None, *sans: str) -> Objects:
    gw = gateway("edge", EDGE_NS, listener("https", hostname=hostname, certificate="edge-tls"))
    return [gw, tls_secret("edge-tls", EDGE_NS, sans)]


H0 = [(EDGE, f"{L0}.hostname")]


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        (gateway_stack(), []),
        (_covered("shop.example.com", "shop.example.com"), []),
        (_covered("Shop.Example.com", "shop.example.com"), []),
        (_covered("shop.example.com", "*.example.com"), []),
        (_covered("a.shop.example.com", "*.example.com"), H0),
        (_covered("shop.example.com", "api.example.com", "www.example.com"), H0),
        (_covered("*.example.com", "*.example.com"), []),
        (_covered("*.example.com", "a.example.com", "b.example.com"), H0),  # only the wildcard SAN
        (_covered(None, "other.example.com"), []),  # no hostname: skipped
        (
            [
                gateway(
                    "edge",
                    EDGE_NS,
                    listener("https", hostname="shop.example.com", certificate="gone"),
                )
            ],
            [],
        ),
        (
            [
                gateway(
                    "edge",
                    EDGE_NS,
                    listener("https", hostname="shop.example.com", certificate="edge-tls"),
                ),
                tls_secret(
                    "edge-tls",
                    EDGE_NS,
                    pem="-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n",
                ),
            ],
            [],  # no parseable certificate: nothing to judge
        ),
        (
            [
                gateway(
                    "edge",
                    EDGE_NS,
                    {
                        **listener("https", hostname="api.example.com", certificate="a"),
                        "tls": {"certificateRefs": [{"name": "a"}, {"name": "b"}]},
                    },
                ),
                tls_secret("a", EDGE_NS, ("shop.example.com",)),
                tls_secret("b", EDGE_NS, ("api.example.com",)),
            ],
            [],  # one of its certificates covers it
        ),
        (_covered("shop.example.com", "www.example.com"), H0),
    ],
    ids=[
        "stack",
        "exact",
        "case",
        "wildcard-san",
        "two-labels",
        "other-sans",
        "wildcard-both",
        "wildcard-hostname-specific-sans",
        "no-hostname",
        "secret-not-in-stack",
        "unparseable",
        "second-certificate",
        "mismatch",
    ],
)
def test_gw_tls_cert_covers_hostname(objects: Objects, expected: list[tuple[str, str]]) -> None:
    for env in ("staging", "prod"):
        assert found_at(objects, env, "gw-tls-cert-covers-hostname") == expected
    assert check(objects, "dev", rule_id="gw-tls-cert-covers-hostname") == []


def test_gw_tls_cert_covers_hostname_lists_the_sans() -> None:
    (v,) = check(
        _covered("shop.example.com", "www.example.com"), rule_id="gw-tls-cert-covers-hostname"
    )
    assert "kexpose-system/edge-tls: www.example.com" in v.message
