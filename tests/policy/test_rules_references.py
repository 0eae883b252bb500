"""Stack rules about references: selectors, backends, TLS Secrets, certificates, host claims."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from kexpose.environment import ENVIRONMENTS

from .objects import (
    NOW,
    cert_pem,
    check,
    deployment,
    fields,
    good_ingress,
    ingress,
    rule,
    service,
    tls_secret,
)

ALL_ENVS = ENVIRONMENTS


# --- svc-selector-matches-workload ------------------------------------------------------------


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        ([service(selector={"app": "web"}), deployment()], []),
        ([service(selector={"app": "web"}), deployment(labels={"app": "web", "tier": "fe"})], []),
        ([service(selector={"app": "web", "tier": "fe"}), deployment()], ["spec.selector"]),
        ([service(selector={"app": "web"}), deployment(ns="other")], ["spec.selector"]),
        ([service(selector={"app": "web"})], ["spec.selector"]),
        ([service(selector={"app": "web"}), deployment(kind="StatefulSet")], []),
        ([service(selector={"app": "web"}), deployment(kind="DaemonSet")], []),
        ([service(), deployment()], []),  # no selector: skipped
        ([service(selector={}), deployment()], []),
        ([service(type="ExternalName", externalName="db.example.com", selector={"app": "x"})], []),
        (
            [
                service(selector={"app": "web"}, ports=[{"port": 80, "targetPort": "web"}]),
                deployment(),
            ],
            ["spec.ports[0].targetPort"],
        ),
        (
            [
                service(selector={"app": "web"}, ports=[{"port": 80, "targetPort": 8080}]),
                deployment(),
            ],
            [],
        ),  # numeric targetPort is not checked against names
        # Two matched workloads: the name may come from either.
        (
            [
                service(selector={"app": "web"}, ports=[{"port": 80, "targetPort": "metrics"}]),
                deployment(),
                deployment(
                    "web-canary",
                    labels={"app": "web"},
                    ports=({"name": "metrics", "containerPort": 9090},),
                ),
            ],
            [],
        ),
    ],
    ids=[
        "match",
        "superset",
        "subset-fails",
        "other-namespace",
        "no-workload",
        "statefulset",
        "daemonset",
        "no-selector",
        "empty-selector",
        "externalname",
        "named-port-missing",
        "numeric-port",
        "second-workload",
    ],
)
def test_svc_selector_matches_workload(objects: list[dict[str, Any]], expected: list[str]) -> None:
    for env in ALL_ENVS:
        found = check(objects, env, rule_id="svc-selector-matches-workload")
        assert fields(found) == expected
        assert all(v.enforcement == "advisory" for v in found)


# --- ing-backend-service-exists ---------------------------------------------------------------


def _ing(*rules: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return ingress(rules=list(rules), **spec)


P0 = "spec.rules[0].http.paths[0].backend"


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        ([service(), _ing(rule("a.example.com"))], []),
        ([_ing(rule("a.example.com"))], [f"{P0}.service.name"]),
        ([service(ns="other"), _ing(rule("a.example.com"))], [f"{P0}.service.name"]),
        ([service(), _ing(rule("a.example.com", port=8080))], [f"{P0}.service.port.number"]),
        # targetPort does not count: the backend names the Service port.
        (
            [
                service(ports=[{"port": 80, "targetPort": 8080}]),
                _ing(rule("a.example.com", port=8080)),
            ],
            [f"{P0}.service.port.number"],
        ),
        ([service(), _ing(rule("a.example.com", port="http"))], []),
        ([service(), _ing(rule("a.example.com", port="https"))], [f"{P0}.service.port.name"]),
        # An unnamed port never matches by name (kube-score's "" == "" loophole).
        (
            [service(ports=[{"port": 80}]), _ing(rule("a.example.com", port=""))],
            [f"{P0}.service.port.name"],
        ),
        (
            [service(ports=[{"port": 80}]), _ing(rule("a.example.com", port="x"))],
            [f"{P0}.service.port.name"],
        ),
        (
            [
                service(),
                _ing(
                    rule("a.example.com"),
                    defaultBackend={"service": {"name": "gone", "port": {"number": 80}}},
                ),
            ],
            ["spec.defaultBackend.service.name"],
        ),
        ([service(), _ing(defaultBackend={"resource": {"kind": "Bucket", "name": "b"}})], []),
        (
            [
                service(),
                ingress(
                    api_version="extensions/v1beta1",
                    rules=[
                        {
                            "host": "a.example.com",
                            "http": {
                                "paths": [
                                    {
                                        "path": "/",
                                        "backend": {"serviceName": "web", "servicePort": 80},
                                    }
                                ]
                            },
                        }
                    ],
                ),
            ],
            [],
        ),
        (
            [
                service(),
                ingress(
                    api_version="extensions/v1beta1",
                    rules=[
                        {
                            "host": "a.example.com",
                            "http": {
                                "paths": [
                                    {
                                        "path": "/",
                                        "backend": {"serviceName": "web", "servicePort": "admin"},
                                    }
                                ]
                            },
                        }
                    ],
                ),
            ],
            ["spec.rules[0].http.paths[0].backend.servicePort"],
        ),
        (
            [
                service(),
                ingress(
                    api_version="networking.k8s.io/v1beta1",
                    backend={"serviceName": "nope", "servicePort": 80},
                ),
            ],
            ["spec.backend.serviceName"],
        ),
        (
            [
                service(),
                _ing(
                    {
                        "host": "a.example.com",
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": "web"}},
                                }
                            ]
                        },
                    }
                ),
            ],
            [f"{P0}.service.port.name"],
        ),
    ],
    ids=[
        "ok",
        "missing",
        "other-namespace",
        "port-number",
        "target-port-not-counted",
        "port-name",
        "port-name-missing",
        "unnamed-empty-name",
        "unnamed-by-name",
        "default-backend",
        "resource-backend",
        "v1beta1-ok",
        "v1beta1-port-name",
        "v1beta1-default",
        "no-port",
    ],
)
def test_ing_backend_service_exists(objects: list[dict[str, Any]], expected: list[str]) -> None:
    for env in ALL_ENVS:
        assert fields(check(objects, env, rule_id="ing-backend-service-exists")) == expected


# --- ing-tls-secret-provisioned ---------------------------------------------------------------

CERT_MANAGER = {
    "apiVersion": "cert-manager.io/v1",
    "kind": "Certificate",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {
        "secretName": "web-tls",
        "dnsNames": ["shop.example.com"],
        "issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer"},
    },
}
TLS0 = ["spec.tls[0].secretName"]


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        ([good_ingress(), tls_secret()], []),
        ([good_ingress(), tls_secret(string_data=True)], []),
        ([good_ingress()], TLS0),
        ([good_ingress(), tls_secret(ns="other")], TLS0),
        ([good_ingress(), tls_secret(kind="Opaque")], TLS0),
        ([good_ingress(), {**tls_secret(), "data": {"tls.crt": "eA=="}}], TLS0),
        ([good_ingress(), CERT_MANAGER], []),
        ([good_ingress(), {**CERT_MANAGER, "metadata": {"name": "web", "namespace": "x"}}], TLS0),
        ([good_ingress(annotations={"cert-manager.io/cluster-issuer": "letsencrypt"})], []),
        ([good_ingress(annotations={"cert-manager.io/issuer": "local"})], []),
        ([ingress(rules=[rule("a.example.com")], tls=[{"hosts": ["a.example.com"]}])], []),
    ],
    ids=[
        "secret",
        "string-data",
        "missing",
        "other-namespace",
        "wrong-type",
        "missing-key",
        "certificate",
        "certificate-other-ns",
        "cluster-issuer",
        "issuer",
        "no-secret-name",
    ],
)
def test_ing_tls_secret_provisioned(objects: list[dict[str, Any]], expected: list[str]) -> None:
    for env in ("staging", "prod"):
        assert fields(check(objects, env, rule_id="ing-tls-secret-provisioned")) == expected
    assert check(objects, "dev", rule_id="ing-tls-secret-provisioned") == []


def test_ing_tls_secret_provisioned_says_why() -> None:
    (v,) = check([good_ingress(), tls_secret(ns="other")], rule_id="ing-tls-secret-provisioned")
    assert "there is one in other" in v.message
    (v,) = check([good_ingress(), tls_secret(kind="Opaque")], rule_id="ing-tls-secret-provisioned")
    assert "'Opaque'" in v.message


# --- tls-cert-not-expiring --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "overrides", "bad"),
    [
        (365, {}, False),
        (31, {}, False),  # 30 whole days and change left
        (30, {}, True),  # fewer than 30 whole days (the cert started 5 minutes before NOW)
        (5, {}, True),
        (5, {"min_cert_days_remaining": 3}, False),
        (365, {"min_cert_days_remaining": 400}, True),
        (365, {"now": NOW + dt.timedelta(days=400)}, True),  # already expired
    ],
)
def test_tls_cert_not_expiring(days: int, overrides: dict[str, Any], bad: bool) -> None:
    obj = tls_secret(days=days)
    found = check([obj], "prod", rule_id="tls-cert-not-expiring", **overrides)
    assert fields(found) == (['data["tls.crt"]'] if bad else [])
    assert check([obj], "staging", rule_id="tls-cert-not-expiring", **overrides) == []


def test_tls_cert_not_expiring_edge_cases() -> None:
    expired = check(
        [tls_secret(days=10)], rule_id="tls-cert-not-expiring", now=NOW + dt.timedelta(days=20)
    )
    assert "expired" in expired[0].message
    broken = tls_secret(pem="-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    assert fields(check([broken], rule_id="tls-cert-not-expiring")) == ['data["tls.crt"]']
    plain = tls_secret(days=5, string_data=True)
    assert fields(check([plain], rule_id="tls-cert-not-expiring")) == ['stringData["tls.crt"]']
    opaque = tls_secret(days=5, kind="Opaque")
    assert check([opaque], rule_id="tls-cert-not-expiring") == []
    # `now` without an offset is read as UTC.
    naive = check(
        [tls_secret(days=365)], rule_id="tls-cert-not-expiring", now=dt.datetime(2027, 5, 20)
    )
    assert naive


# --- tls-cert-covers-hosts --------------------------------------------------------------------


def _covered(tls_hosts: list[str], sans: tuple[str, ...]) -> list[dict[str, Any]]:
    ing = ingress(
        ingressClassName="kexpose",
        rules=[rule(h) for h in tls_hosts],
        tls=[{"hosts": tls_hosts, "secretName": "web-tls"}],
    )
    return [ing, tls_secret(hosts=sans)]


@pytest.mark.parametrize(
    ("tls_hosts", "sans", "expected"),
    [
        (["shop.example.com"], ("shop.example.com",), []),
        (["shop.example.com"], ("*.example.com",), []),
        (["a.shop.example.com"], ("*.example.com",), ["spec.tls[0].hosts[0]"]),
        (["shop.example.com", "api.example.com"], ("shop.example.com",), ["spec.tls[0].hosts[1]"]),
        (["*.example.com"], ("*.example.com",), []),
        (["*.example.com"], ("a.example.com",), ["spec.tls[0].hosts[0]"]),
        (["Shop.Example.com"], ("shop.example.com",), []),
    ],
    ids=[
        "exact",
        "wildcard-san",
        "two-labels",
        "second-host",
        "wildcard-both",
        "wildcard-host-specific-san",
        "case",
    ],
)
def test_tls_cert_covers_hosts(
    tls_hosts: list[str], sans: tuple[str, ...], expected: list[str]
) -> None:
    objects = _covered(tls_hosts, sans)
    for env in ("staging", "prod"):
        assert fields(check(objects, env, rule_id="tls-cert-covers-hosts")) == expected
    assert check(objects, "dev", rule_id="tls-cert-covers-hosts") == []


def test_tls_cert_covers_hosts_only_reads_secrets_in_the_stack() -> None:
    ing = good_ingress(host="other.example.com")
    assert check([ing], rule_id="tls-cert-covers-hosts") == []
    wrong_ns = tls_secret(ns="elsewhere", hosts=("x.example.com",))
    assert check([ing, wrong_ns], rule_id="tls-cert-covers-hosts") == []
    broken = {**tls_secret(), "data": {"tls.crt": "!!!", "tls.key": "eA=="}}
    assert fields(check([good_ingress(), broken], rule_id="tls-cert-covers-hosts")) == [
        "spec.tls[0].secretName"
    ]
    # The CN alone does not count (RFC 6125): a SAN-less certificate covers nothing.
    assert cert_pem(("shop.example.com",)).startswith("-----BEGIN CERTIFICATE-----")


# --- ing-unique-host-path ---------------------------------------------------------------------


def _claim(
    name: str,
    ns: str = "shop",
    host: str = "a.example.com",
    path: str = "/",
    path_type: str = "Prefix",
    klass: str | None = "nginx",
    annotation: str | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"rules": [rule(host, (path, path_type))]}
    if klass is not None:
        spec["ingressClassName"] = klass
    notes = {"kubernetes.io/ingress.class": annotation} if annotation else None
    return ingress(name, ns, annotations=notes, **spec)


PATH0 = "spec.rules[0].http.paths[0].path"


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        ([_claim("a"), _claim("b")], [("a", PATH0), ("b", PATH0)]),
        ([_claim("a"), _claim("b", host="b.example.com")], []),
        ([_claim("a"), _claim("b", path="/api")], []),
        ([_claim("a", path="/api/"), _claim("b", path="/api")], [("a", PATH0), ("b", PATH0)]),
        (
            [
                _claim("a", path="/api/", path_type="Exact"),
                _claim("b", path="/api", path_type="Exact"),
            ],
            [],
        ),
        ([_claim("a"), _claim("b", path_type="Exact")], []),
        ([_claim("a", ns="one"), _claim("a", ns="two")], [("a", PATH0), ("a", PATH0)]),
        ([_claim("a"), _claim("b", klass="traefik")], []),
        ([_claim("a", klass=None, annotation="nginx"), _claim("b")], [("a", PATH0), ("b", PATH0)]),
        ([_claim("a", host="A.example.com"), _claim("b")], [("a", PATH0), ("b", PATH0)]),
        ([ingress("a", rules=[rule("a.example.com"), rule("a.example.com")])], []),
    ],
    ids=[
        "same",
        "other-host",
        "other-path",
        "prefix-trailing-slash",
        "exact-trailing-slash",
        "other-path-type",
        "namespaces-do-not-separate",
        "other-class",
        "annotation-class-equals-field",
        "host-case",
        "same-ingress-twice",
    ],
)
def test_ing_unique_host_path(
    objects: list[dict[str, Any]], expected: list[tuple[str, str]]
) -> None:
    for env in ALL_ENVS:
        found = check(objects, env, rule_id="ing-unique-host-path")
        assert [(v.resource.split("/")[2], v.field) for v in found] == expected


def test_ing_unique_host_path_names_the_other_claimant() -> None:
    first, second = check(
        [_claim("a", ns="one"), _claim("b", ns="two")], "dev", rule_id="ing-unique-host-path"
    )
    assert "Ingress/two/b" in first.message
    assert "Ingress/one/a" in second.message
