"""Per-Ingress rules, one case table each."""

from __future__ import annotations

from typing import Any

import pytest

from kexpose.environment import ENVIRONMENTS

from .objects import check, fields, good_ingress, ingress, rule

CLASS = "kubernetes.io/ingress.class"
ALL_ENVS = ENVIRONMENTS


def _tls(*entries: dict[str, Any], rules: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return ingress(tls=list(entries), rules=rules or [rule("a.example.com")])


@pytest.mark.parametrize(
    ("obj", "overrides", "expected"),
    [
        (ingress(rules=[rule("a.example.com")]), {}, ["spec.tls"]),
        (_tls(), {}, ["spec.tls"]),  # tls: [] (Polaris accepts it)
        (_tls({}), {}, ["spec.tls[0].secretName"]),  # tls: [{}] (Gatekeeper accepts it)
        (_tls({"hosts": ["a.example.com"]}), {}, ["spec.tls[0].secretName"]),
        (_tls({"hosts": ["a.example.com"], "secretName": "a"}), {}, []),
        (
            _tls({"hosts": ["a.example.com"], "secretName": "a"}, {"hosts": ["b.example.com"]}),
            {},
            ["spec.tls[1].secretName"],
        ),
        (_tls({"hosts": ["a.example.com"]}), {"allow_default_certificate": True}, []),
        (_tls({}), {"allow_default_certificate": True}, ["spec.tls[0].secretName"]),
        (_tls({"hosts": []}), {"allow_default_certificate": True}, ["spec.tls[0].secretName"]),
        (_tls({"secretName": ""}), {}, ["spec.tls[0].secretName"]),
    ],
    ids=[
        "no-tls",
        "empty-list",
        "empty-entry",
        "no-secret",
        "ok",
        "second-entry",
        "default-cert-allowed",
        "default-cert-no-hosts",
        "default-cert-empty-hosts",
        "empty-secret-name",
    ],
)
def test_ing_require_tls(
    obj: dict[str, Any], overrides: dict[str, Any], expected: list[str]
) -> None:
    for env in ("staging", "prod"):
        assert fields(check([obj], env, rule_id="ing-require-tls", **overrides)) == expected
    assert check([obj], "dev", rule_id="ing-require-tls", **overrides) == []


@pytest.mark.parametrize(
    ("tls_hosts", "rule_hosts", "expected"),
    [
        (["a.example.com"], ["a.example.com"], []),
        (["b.example.com", "a.example.com"], ["a.example.com", "b.example.com"], []),
        (["*.example.com"], ["a.example.com"], []),  # Kyverno's exact match fails this
        (["*.example.com"], ["a.b.example.com"], ["spec.rules[0].host"]),  # one label only
        (["*.example.com"], ["example.com"], ["spec.rules[0].host"]),
        (["A.Example.com"], ["a.example.com"], []),  # case-insensitive
        (["a.example.com"], ["a.example.com", "b.example.com"], ["spec.rules[1].host"]),
        (None, ["a.example.com"], ["spec.rules[0].host"]),  # no tls: nothing covered
        (["*.example.com"], ["*.example.com"], []),
        (["a.example.com"], [None], []),  # host-less rule: ing-host-required's business
    ],
    ids=[
        "exact",
        "order",
        "wildcard",
        "wildcard-two-labels",
        "wildcard-apex",
        "case",
        "second-host",
        "no-tls",
        "wildcard-rule",
        "no-host",
    ],
)
def test_ing_tls_covers_hosts(
    tls_hosts: list[str] | None, rule_hosts: list[str | None], expected: list[str]
) -> None:
    spec: dict[str, Any] = {"rules": [rule(h) for h in rule_hosts]}
    if tls_hosts is not None:
        spec["tls"] = [{"hosts": tls_hosts, "secretName": "s"}]
    obj = ingress(**spec)
    assert fields(check([obj], "prod", rule_id="ing-tls-covers-hosts")) == expected
    assert fields(check([obj], "staging", rule_id="ing-tls-covers-hosts")) == expected
    assert check([obj], "dev", rule_id="ing-tls-covers-hosts") == []


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ([rule("a.example.com")], []),
        ([rule(None)], ["spec.rules[0].host"]),
        ([rule("")], ["spec.rules[0].host"]),
        ([rule("a.example.com"), rule(None)], ["spec.rules[1].host"]),
        ([{"host": "a.example.com"}], []),  # a host without http is legal
        ([], []),
    ],
    ids=["host", "omitted", "empty", "second", "host-only", "no-rules"],
)
def test_ing_host_required(rules: list[dict[str, Any]], expected: list[str]) -> None:
    obj = ingress(rules=rules)
    assert fields(check([obj], "prod", rule_id="ing-host-required")) == expected
    assert fields(check([obj], "staging", rule_id="ing-host-required")) == expected
    assert check([obj], "dev", rule_id="ing-host-required") == []


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"rules": [rule("a.example.com"), rule("*.example.com")]}, ["spec.rules[1].host"]),
        ({"rules": [rule("a.example.com")], "tls": [{"hosts": ["*.example.com"]}]}, []),
        ({"rules": [rule("a.example.com")]}, []),
    ],
    ids=["wildcard-beside-valid", "tls-wildcard-ok", "plain"],
)
def test_ing_no_wildcard_host(spec: dict[str, Any], expected: list[str]) -> None:
    obj = ingress(**spec)
    assert fields(check([obj], "prod", rule_id="ing-no-wildcard-host")) == expected
    assert check([obj], "staging", rule_id="ing-no-wildcard-host") == []


@pytest.mark.parametrize(
    ("spec", "api", "expected"),
    [
        (
            {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}},
            "networking.k8s.io/v1",
            ["spec.defaultBackend"],
        ),
        (
            {
                "defaultBackend": {
                    "resource": {"apiGroup": "k8s.example.com", "kind": "Bucket", "name": "static"}
                }
            },
            "networking.k8s.io/v1",
            ["spec.defaultBackend"],
        ),
        (
            {"backend": {"serviceName": "web", "servicePort": 80}},
            "extensions/v1beta1",
            ["spec.backend"],
        ),
        ({"rules": [rule("a.example.com")]}, "networking.k8s.io/v1", []),
    ],
    ids=["v1-service", "v1-resource", "v1beta1", "none"],
)
def test_ing_no_default_backend(spec: dict[str, Any], api: str, expected: list[str]) -> None:
    obj = ingress(api_version=api, **spec)
    assert fields(check([obj], "prod", rule_id="ing-no-default-backend")) == expected
    assert fields(check([obj], "staging", rule_id="ing-no-default-backend")) == expected
    assert check([obj], "dev", rule_id="ing-no-default-backend") == []


@pytest.mark.parametrize(
    ("klass", "note", "overrides", "expected"),
    [
        ("nginx", None, {}, []),
        ("traefik", None, {}, ["spec.ingressClassName"]),
        (None, None, {}, ["spec.ingressClassName"]),
        ("", None, {}, ["spec.ingressClassName"]),
        (None, "nginx", {}, []),  # the annotation alone is honoured (Kyverno reads only it)
        (None, "traefik", {}, [f'metadata.annotations["{CLASS}"]']),
        ("nginx", "nginx", {}, []),
        ("nginx", "traefik", {}, [f'metadata.annotations["{CLASS}"]']),  # disagreement
        ("traefik", "nginx", {}, [f'metadata.annotations["{CLASS}"]', "spec.ingressClassName"]),
        ("kexpose", None, {"allowed_ingress_classes": ["kexpose"]}, []),
        ("nginx", None, {"allowed_ingress_classes": ["kexpose"]}, ["spec.ingressClassName"]),
    ],
    ids=[
        "allowed",
        "not-allowed",
        "missing",
        "empty",
        "annotation-only",
        "annotation-not-allowed",
        "both-equal",
        "both-differ",
        "both-differ-field-bad",
        "config-allows",
        "config-refuses",
    ],
)
def test_ing_class_allowed(
    klass: str | None, note: str | None, overrides: dict[str, Any], expected: list[str]
) -> None:
    spec: dict[str, Any] = {"rules": [rule("a.example.com")]}
    if klass is not None:
        spec["ingressClassName"] = klass
    obj = ingress(annotations={CLASS: note} if note else None, **spec)
    for env in ALL_ENVS:
        assert fields(check([obj], env, rule_id="ing-class-allowed", **overrides)) == expected


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ({CLASS: "nginx"}, [f'metadata.annotations["{CLASS}"]']),
        (None, []),
        ({"other": "x"}, []),
    ],
)
def test_ing_no_deprecated_class_annotation(
    annotations: dict[str, str] | None, expected: list[str]
) -> None:
    # Flagged even when it equals the field.
    obj = ingress(annotations=annotations, ingressClassName="nginx", rules=[rule("a.example.com")])
    for env in ALL_ENVS:
        found = check([obj], env, rule_id="ing-no-deprecated-class-annotation")
        assert fields(found) == expected
        assert all(v.enforcement == "advisory" and v.severity == "low" for v in found)


@pytest.mark.parametrize(
    ("api", "expected"),
    [
        ("extensions/v1beta1", ["apiVersion"]),
        ("networking.k8s.io/v1beta1", ["apiVersion"]),
        ("networking.k8s.io/v1", []),
    ],
)
def test_ing_no_deprecated_api(api: str, expected: list[str]) -> None:
    obj = ingress(api_version=api, rules=[rule("a.example.com")])
    for env in ALL_ENVS:
        assert fields(check([obj], env, rule_id="ing-no-deprecated-api")) == expected


SSL = "nginx.ingress.kubernetes.io/ssl-redirect"
FORCE = "nginx.ingress.kubernetes.io/force-ssl-redirect"
ALLOW = "kubernetes.io/ingress.allow-http"
OURS = "kexpose.dev/ssl-redirect"


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ({SSL: "false"}, [SSL]),
        ({FORCE: "false"}, [FORCE]),
        ({ALLOW: "true"}, [ALLOW]),
        ({SSL: "0"}, [SSL]),  # Go's ParseBool, as ingress-nginx reads it
        ({SSL: "False"}, [SSL]),
        ({SSL: "true"}, []),
        ({ALLOW: "false"}, []),
        ({}, []),  # a missing allow-http is not a violation (unlike Kyverno/Gatekeeper)
        ({SSL: "false", ALLOW: "true"}, [SSL, ALLOW]),
        ({SSL: "no"}, []),  # not a boolean nginx understands: the default (redirect) stays
        # kexpose-proxy's own opt-out, read as it reads it: "false" in any case, nothing else.
        ({OURS: "false"}, [OURS]),
        ({OURS: "False"}, [OURS]),
        ({OURS: "true"}, []),
        ({OURS: "0"}, []),
        ({SSL: "false", OURS: "false"}, [SSL, OURS]),
    ],
    ids=[
        "ssl-false",
        "force-false",
        "allow-http",
        "zero",
        "False",
        "ssl-true",
        "allow-false",
        "none",
        "two",
        "not-bool",
        "kexpose-false",
        "kexpose-False",
        "kexpose-true",
        "kexpose-zero",
        "nginx-and-kexpose",
    ],
)
def test_ing_no_plain_http(annotations: dict[str, str], expected: list[str]) -> None:
    obj = good_ingress(annotations=annotations)
    found = check([obj], "prod", rule_id="ing-no-plain-http")
    assert fields(found) == [f'metadata.annotations["{k}"]' for k in expected]
    assert check([obj], "staging", rule_id="ing-no-plain-http") == []


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        ("/", False),
        ("/api/v1", False),
        ("/roots-and-shoots", False),  # segment match, not substring (Kyverno flags it)
        ("/etcetera", False),
        ("/static/etc", False),
        ("/etc", True),
        ("/etc/", True),
        ("/etc/passwd", True),
        ("/root", True),
        ("/var/run/secrets/kubernetes.io", True),
        ("/var/run/kubernetes/serviceaccount", True),
        ("/etc(/|$)(.*)", True),  # a use-regex path still reaches /etc
        ("api", True),  # not absolute
        ("/a b", True),
        ("/a;b", True),
        ("/a{b}", True),
        ('/a"b', True),
        ("/a'b", True),
        ("/a\\b", True),
        ("/a\tb", True),
    ],
)
def test_ing_path_safe(path: str, bad: bool) -> None:
    obj = good_ingress()
    obj["spec"]["rules"][0]["http"]["paths"][0]["path"] = path
    for env in ALL_ENVS:
        found = check([obj], env, rule_id="ing-path-safe")
        assert fields(found) == (["spec.rules[0].http.paths[0].path"] if bad else [])


def test_ing_path_safe_skips_missing_path_and_names_the_second_path() -> None:
    obj = ingress(
        rules=[
            {
                "host": "a.example.com",
                "http": {
                    "paths": [
                        {"pathType": "ImplementationSpecific", "backend": {}},
                        {"path": "/ok", "pathType": "Prefix", "backend": {}},
                        {"path": "/etc/nginx", "pathType": "Prefix", "backend": {}},
                    ]
                },
            }
        ]
    )
    (v,) = check([obj], "dev", rule_id="ing-path-safe")
    assert v.field == "spec.rules[0].http.paths[2].path"
    assert "'/etc/nginx'" in v.message
    assert v.message.startswith("Ingress/shop/web spec.rules[0].http.paths[2].path: ")
