"""What each Ingress and annotation becomes (``kexpose.importer``): case tables."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import pytest

from kexpose.environment import Environment
from kexpose.importer import (
    CONVERTED,
    CONVERTED_NOW,
    NEEDS_MODEL,
    UNSUPPORTED,
    Conversion,
    Origin,
    assess,
    convert,
    gateway_manifests,
    ingress_manifests,
    read_objects,
    stack_file_text,
)
from kexpose.importer.access import source_ranges
from kexpose.importer.conversion import Api
from kexpose.validation import parse_stack
from kexpose.yamlio import load_one

NGINX = "nginx.ingress.kubernetes.io/"


def ingress(
    name: str = "web",
    *,
    host: str = "a.example.com",
    path: str = "/",
    path_type: str = "Prefix",
    service: str = "web",
    tls: list[dict[str, Any]] | None = None,
    annotations: dict[str, str] | None = None,
    namespace: str = "shop",
    cls: str | None = "nginx",
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "rules": [
            {
                "host": host,
                "http": {
                    "paths": [
                        {
                            "path": path,
                            "pathType": path_type,
                            "backend": {"service": {"name": service, "port": {"number": 80}}},
                        }
                    ]
                },
            }
        ],
    }
    if cls:
        spec["ingressClassName"] = cls
    if tls is not None:
        spec["tls"] = tls
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
        "spec": spec,
    }


def svc(name: str = "web", namespace: str = "shop") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80}]},
    }


def run(
    *objs: dict[str, Any], env: Environment = "dev", cls: str | None = None, api: Api | None = None
) -> Conversion:
    source = read_objects([(o, Origin("in.yaml", i + 1)) for i, o in enumerate(objs)])
    return convert(source, environment=env, ingress_class=cls, api=api)


def verdict(conv: Conversion, topic: str, subject: str = "Ingress/shop/web") -> str:
    found = [i for i in conv.items if i.subject == subject and i.topic == topic]
    assert found, [(i.subject, i.topic) for i in conv.items]
    return found[0].verdict


def detail(conv: Conversion, topic: str, subject: str = "Ingress/shop/web") -> str:
    return next(i.detail for i in conv.items if i.subject == subject and i.topic == topic)


def app_ingress(conv: Conversion, name: str = "web") -> dict[str, Any]:
    app = next(a for a in conv.apps if a.name == name)
    assert app.ingress is not None
    return app.ingress


TLS = [{"hosts": ["a.example.com"], "secretName": "a-tls"}]


@pytest.mark.parametrize(
    ("annotations", "tls", "kexpose_annotations", "key", "expected"),
    [
        (
            {"ssl-redirect": "false"},
            TLS,
            {"kexpose.dev/ssl-redirect": "false"},
            "ssl-redirect",
            "converted",
        ),
        ({"ssl-redirect": "true"}, TLS, {}, "ssl-redirect", "converted"),
        ({"ssl-redirect": "false"}, None, {}, "ssl-redirect", "converted"),
        (
            {"ssl-redirect": "false", "force-ssl-redirect": "true"},
            TLS,
            {},
            "force-ssl-redirect",
            "converted",
        ),
        ({"force-ssl-redirect": "true"}, None, {}, "force-ssl-redirect", "not-convertible"),
        ({"preserve-trailing-slash": "true"}, TLS, {}, "preserve-trailing-slash", "converted"),
        ({"backend-protocol": "HTTP"}, None, {}, "backend-protocol", "converted"),
        ({"backend-protocol": "AUTO_HTTP"}, None, {}, "backend-protocol", "converted"),
        ({"use-regex": "false"}, None, {}, "use-regex", "converted"),
        ({"use-regex": "true"}, None, {}, "use-regex", "approximated"),
        ({"ssl-redirect": "maybe"}, TLS, {}, "ssl-redirect", "not-convertible"),
        ({"configuration-snippet": "deny all;"}, None, {}, "configuration-snippet", "refused"),
        ({"server-snippet": "x"}, None, {}, "server-snippet", "refused"),
        ({"stream-snippet": "x"}, None, {}, "stream-snippet", "refused"),
        ({"rewrite-target": "/"}, None, {}, "rewrite-target", "approximated"),
        ({"proxy-body-size": "8m"}, None, {}, "proxy-body-size", "not-convertible"),
        ({"affinity": "cookie"}, None, {}, "affinity", "not-convertible"),
        ({"enable-cors": "true"}, None, {}, "enable-cors", "approximated"),
        ({"proxy-read-timeout": "30"}, None, {}, "proxy-read-timeout", "approximated"),
        ({"made-up-thing": "1"}, None, {}, "made-up-thing", "not-convertible"),
    ],
)
def test_annotation_table(
    annotations: dict[str, str],
    tls: list[dict[str, Any]] | None,
    kexpose_annotations: dict[str, str],
    key: str,
    expected: str,
) -> None:
    conv = run(ingress(annotations={NGINX + k: v for k, v in annotations.items()}, tls=tls), svc())
    assert verdict(conv, NGINX + key) == expected
    assert app_ingress(conv).get("annotations", {}) == kexpose_annotations


@pytest.mark.parametrize(
    ("env", "api", "kexpose_annotations", "expected", "said"),
    [
        ("dev", "ingress", {"kexpose.dev/ssl-redirect": "false"}, "converted", "plain HTTP is"),
        (
            "dev",
            "gateway",
            {"kexpose.dev/ssl-redirect": "false"},
            "converted",
            "HTTPRoutes to the Gateway's HTTP listener too",
        ),
        ("staging", "gateway", {}, "approximated", "HTTPS is enforced"),
    ],
)
def test_ssl_redirect_false_per_target(
    env: Environment, api: Api, kexpose_annotations: dict[str, str], expected: str, said: str
) -> None:
    conv = run(ingress(annotations={NGINX + "ssl-redirect": "false"}, tls=TLS), svc(), env=env,
               api=api)  # fmt: skip
    assert verdict(conv, NGINX + "ssl-redirect") == expected
    assert said in detail(conv, NGINX + "ssl-redirect")
    assert app_ingress(conv).get("annotations", {}) == kexpose_annotations


def test_ssl_redirect_false_with_api_gateway_serves_plain_http_on_the_gateway() -> None:
    conv = run(ingress(annotations={NGINX + "ssl-redirect": "false"}, tls=TLS), svc(),
               api="gateway")  # fmt: skip
    routes = [m for m in gateway_manifests(conv) if m["kind"] == "HTTPRoute"]
    (route,) = [r for r in routes if r["metadata"]["name"] == "web"]
    sections = [p["sectionName"] for p in route["spec"]["parentRefs"]]
    assert sections == ["http", "https-a.example.com"]
    assert not [r for r in routes if r["metadata"]["name"].endswith("-https-redirect")]


@pytest.mark.parametrize(
    ("path", "path_type", "annotations", "expected", "verdict_said"),
    [
        # nginx location /static: a character prefix ('/staticfiles' too).
        ("/static", "ImplementationSpecific", {}, ("^/static.*", "RegularExpression"), "converted"),
        ("/v1.0", "ImplementationSpecific", {}, ("^/v1\\.0.*", "RegularExpression"), "converted"),
        # Ending with '/', a character prefix and a whole-segment prefix take the same paths.
        ("/static/", "ImplementationSpecific", {}, ("/static/", "Prefix"), "converted"),
        # use-regex '~* ^/v1': the same prefix, but nginx ignored case and kexpose does not.
        ("/v1", "Prefix", {"use-regex": "true"}, ("^/v1.*", "RegularExpression"), "approximated"),
    ],
)
def test_character_prefix_paths_with_api_gateway(
    path: str,
    path_type: str,
    annotations: dict[str, str],
    expected: tuple[str, str],
    verdict_said: str,
) -> None:
    conv = run(
        ingress(path=path, path_type=path_type,
                annotations={NGINX + k: v for k, v in annotations.items()}),
        svc(),
        api="gateway",
    )  # fmt: skip
    (entry,) = app_ingress(conv)["rules"][0]["paths"]
    assert (entry["path"], entry["pathType"]) == expected
    topic = "spec.rules[0].http.paths[0].path"
    assert verdict(conv, topic) == verdict_said
    assert repr(path) in detail(conv, topic)
    assert [i.topic for i in conv.items if i.topic == topic] == [topic]  # one row, not two
    if expected[1] == "RegularExpression":
        pattern = re.compile(expected[0])
        assert pattern.fullmatch(path + "files/x")
        assert pattern.fullmatch(path)
        assert not pattern.fullmatch("/other" + path)
        routes = [m for m in gateway_manifests(conv) if m["kind"] == "HTTPRoute"]
        matches = [r["matches"][0]["path"] for m in routes for r in m["spec"]["rules"]]
        assert {"type": "RegularExpression", "value": expected[0]} in matches


def test_not_convertible_in_this_version_names_the_missing_model_feature() -> None:
    conv = run(ingress(annotations={NGINX + "force-ssl-redirect": "true"}), svc())
    text = detail(conv, NGINX + "force-ssl-redirect")
    assert text.startswith("not convertible in this version")
    assert "a redirect conditioned on the request scheme" in text


def test_catalogue_tables_are_disjoint_and_needs_model_rows_name_a_feature() -> None:
    tables = [set(CONVERTED), set(CONVERTED_NOW), set(NEEDS_MODEL), set(UNSUPPORTED)]
    for i, a in enumerate(tables):
        for b in tables[i + 1 :]:
            assert not a & b
    assert all(e.feature for e in NEEDS_MODEL.values())
    assert all(
        e.verdict == "not-convertible" for e in (*NEEDS_MODEL.values(), *UNSUPPORTED.values())
    )


@pytest.mark.parametrize(
    "annotation",
    [
        {"auth-type": "basic", "auth-secret": "users", "auth-secret-type": "auth-map"},
        {"auth-type": "basic", "auth-secret": "ops/users"},
        {"auth-type": "digest", "auth-secret": "users"},
        {"auth-url": "https://auth.example.com/check?u=$request_uri"},
        {"auth-url": "https://auth.example.com/check", "auth-type": "basic"},
        {"whitelist-source-range": "10.0.0.0/8,nonsense"},
        {"denylist-source-range": "0.0.0.0/0,::/0"},
        {"permanent-redirect": "/relative"},
        {"permanent-redirect": "https://a.example.com/x?y=1"},
        {"backend-protocol": "GRPC"},
        {"backend-protocol": "HTTPS"},
        {"ssl-passthrough": "true"},
    ],
    ids=lambda a: next(iter(a)) + "=" + next(iter(a.values())),
)
def test_protections_the_model_lacks_withhold_the_whole_ingress(annotation: dict[str, str]) -> None:
    conv = run(ingress(annotations={NGINX + k: v for k, v in annotation.items()}), svc())
    assert verdict(conv, "Ingress") == "not-convertible"
    assert detail(conv, "Ingress").startswith("withheld whole")
    assert conv.apps == ()


def test_regex_paths_are_refused_literal_ones_become_character_prefixes() -> None:
    regex = run(
        ingress(
            path="/api(/|$)(.*)",
            path_type="ImplementationSpecific",
            annotations={NGINX + "use-regex": "true"},
        ),
        svc(),
    )
    assert verdict(regex, "spec.rules[0].http.paths[0].path") == "not-convertible"
    assert regex.apps == ()
    literal = run(ingress(path="/api", annotations={NGINX + "use-regex": "true"}), svc())
    assert verdict(literal, "spec.rules[0].http.paths[0].path") == "approximated"
    assert app_ingress(literal)["rules"][0]["paths"][0]["pathType"] == "ImplementationSpecific"


def test_regex_on_one_ingress_is_reported_on_the_others_of_the_host() -> None:
    conv = run(
        ingress("docs", path="/v1", service="docs", annotations={NGINX + "use-regex": "true"}),
        ingress("web", path="/search"),
        svc("docs"),
        svc(),
    )
    assert verdict(conv, "spec.rules[0].http.paths[0].path") == "approximated"
    assert "shop/docs" in detail(conv, "spec.rules[0].http.paths[0].path")
    assert app_ingress(conv)["rules"][0]["paths"][0]["pathType"] == "Prefix"


def test_canary_with_api_ingress_is_left_out_and_the_main_one_imported() -> None:
    canary = ingress(
        "web-canary",
        service="web-v2",
        annotations={NGINX + "canary": "true", NGINX + "canary-weight": "10"},
    )
    conv = run(ingress(), canary, svc(), svc("web-v2"), api="ingress")
    assert verdict(conv, "Ingress", "Ingress/shop/web-canary") == "not-convertible"
    assert verdict(conv, NGINX + "canary-weight", "Ingress/shop/web-canary") == "not-convertible"
    assert [a.name for a in conv.apps] == ["web"]


@pytest.mark.parametrize(
    ("annotations", "paths"),
    [
        (
            {"canary-weight": "10"},
            [{"weight": 90, "backends": [{"port": 80, "service": "web-v2", "weight": 10}]}],
        ),
        (
            {"canary-weight": "1", "canary-weight-total": "4"},
            [{"weight": 3, "backends": [{"port": 80, "service": "web-v2", "weight": 1}]}],
        ),
        (
            {"canary-by-header": "X-Canary", "canary-by-header-value": "yes"},
            [{"headers": [{"name": "X-Canary", "value": "yes"}], "service": "web-v2"}, {}],
        ),
        (
            {"canary-by-header": "X-Canary"},
            [
                {"headers": [{"name": "X-Canary", "value": "always"}], "service": "web-v2"},
                {"headers": [{"name": "X-Canary", "value": "never"}]},
                {},
            ],
        ),
        (
            {"canary-by-header": "X-Canary", "canary-by-header-pattern": "^(a|b)$"},
            [
                {
                    "headers": [
                        {"name": "X-Canary", "value": "^(a|b)$", "type": "RegularExpression"}
                    ],
                    "service": "web-v2",
                },
                {},
            ],
        ),
    ],
)
def test_canary_becomes_weights_and_header_matches_with_api_gateway(
    annotations: dict[str, str], paths: list[dict[str, Any]]
) -> None:
    canary = ingress(
        "web-canary",
        service="web-v2",
        annotations={NGINX + "canary": "true"} | {NGINX + k: v for k, v in annotations.items()},
    )
    conv = run(ingress(), canary, svc(), svc("web-v2"))
    assert conv.controller["api"] == "gateway"
    got = app_ingress(conv)["rules"][0]["paths"]
    assert got == [{"path": "/", "pathType": "Prefix", "port": 80, **p} for p in paths]
    for key in annotations:
        assert verdict(conv, NGINX + key, "Ingress/shop/web-canary") in (
            "converted",
            "approximated",
        )


def test_a_canary_without_its_main_ingress_is_reported() -> None:
    canary = ingress(
        "web-canary",
        path="/other",
        service="web-v2",
        annotations={NGINX + "canary": "true", NGINX + "canary-weight": "10"},
    )
    conv = run(ingress(), canary, svc(), svc("web-v2"))
    topic = "spec.rules (host a.example.com, path /other)"
    assert verdict(conv, topic, "Ingress/shop/web-canary") == "not-convertible"


@pytest.mark.parametrize(
    ("annotations", "path", "expected"),
    [
        ({"rewrite-target": "/"}, "/testpath", {"rewrite": {"path": {"fullPath": "/"}}}),
        (
            {"rewrite-target": "/$2", "use-regex": "true"},
            "/api(/|$)(.*)",
            {"rewrite": {"path": {"prefix": "/"}}},
        ),
        (
            {"upstream-vhost": "web.internal", "x-forwarded-prefix": "/shop"},
            "/",
            {
                "requestHeaders": {"set": {"X-Forwarded-Prefix": "/shop"}},
                "rewrite": {"hostname": "web.internal"},
            },
        ),
        (
            {"permanent-redirect": "https://b.example.com/new"},
            "/",
            {
                "redirect": {
                    "scheme": "https",
                    "hostname": "b.example.com",
                    "statusCode": 301,
                    "path": {"fullPath": "/new"},
                }
            },
        ),
        (
            {"temporal-redirect": "http://b.example.com:8080", "temporal-redirect-code": "307"},
            "/",
            {
                "redirect": {
                    "scheme": "http",
                    "hostname": "b.example.com",
                    "statusCode": 302,
                    "path": {"fullPath": "/"},
                    "port": 8080,
                }
            },
        ),
    ],
)
def test_path_annotations_become_filters_with_api_gateway(
    annotations: dict[str, str], path: str, expected: dict[str, Any]
) -> None:
    conv = run(
        ingress(
            path=path,
            path_type="ImplementationSpecific",
            annotations={NGINX + k: v for k, v in annotations.items()},
        ),
        svc(),
    )
    assert conv.controller["api"] == "gateway"
    [got] = app_ingress(conv)["rules"][0]["paths"]
    assert got["filters"] == expected
    assert got["pathType"] == "Prefix"


def test_capture_groups_no_rewrite_expresses_leave_the_path_out() -> None:
    conv = run(
        ingress(path="/u/([0-9]+)", annotations={NGINX + "rewrite-target": "/users/$1"}), svc()
    )
    assert verdict(conv, NGINX + "rewrite-target") == "not-convertible"
    assert "capture groups" in detail(conv, NGINX + "rewrite-target")
    assert conv.apps == ()


def test_app_root_adds_an_exact_root_redirect_per_host() -> None:
    conv = run(ingress(annotations={NGINX + "app-root": "/dashboards"}), svc())
    paths = app_ingress(conv)["rules"][0]["paths"]
    assert paths[0] == {
        "path": "/",
        "pathType": "Exact",
        "filters": {"redirect": {"statusCode": 302, "path": {"fullPath": "/dashboards"}}},
        "port": 80,
    }
    assert paths[1] == {"path": "/", "pathType": "Prefix", "port": 80}


def test_path_annotations_with_api_ingress_say_they_need_the_gateway_api() -> None:
    conv = run(ingress(annotations={NGINX + "upstream-vhost": "x.internal"}), svc(), api="ingress")
    assert verdict(conv, NGINX + "upstream-vhost") == "not-convertible"
    assert "api: gateway" in detail(conv, NGINX + "upstream-vhost")
    assert conv.controller.get("api") is None


@pytest.mark.parametrize(
    ("annotations", "auth", "ranges"),
    [
        (
            {"auth-type": "basic", "auth-secret": "users", "auth-realm": "Admins"},
            {"type": "basic", "secret": "users", "realm": "Admins"},
            None,
        ),
        (
            {"auth-type": "basic", "auth-secret": "shop/users", "auth-secret-type": "auth-file"},
            {"type": "basic", "secret": "users"},
            None,
        ),
        (
            {
                "auth-url": "https://auth.example.com/check",
                "auth-response-headers": "X-User, X-Email",
                "auth-signin": "https://auth.example.com/start?rd=$escaped_request_uri",
            },
            {
                "type": "forward",
                "url": "https://auth.example.com/check",
                "responseHeaders": ["X-User", "X-Email"],
                "signin": "https://auth.example.com/start",
            },
            None,
        ),
        ({"whitelist-source-range": "10.0.0.0/8, 192.0.2.1"}, None, ["10.0.0.0/8", "192.0.2.1/32"]),
        (
            {"whitelist-source-range": "10.0.0.0/8", "denylist-source-range": "10.128.0.0/9"},
            None,
            ["10.0.0.0/9"],
        ),
    ],
)
@pytest.mark.parametrize("api", ["ingress", "gateway"])
def test_protection_becomes_the_apps_auth_with_either_api(
    annotations: dict[str, str], auth: dict[str, Any] | None, ranges: list[str] | None, api: Api
) -> None:
    conv = run(ingress(annotations={NGINX + k: v for k, v in annotations.items()}), svc(), api=api)
    assert conv.spec.api == api
    [app] = conv.apps
    assert app.raw().get("auth") == auth
    assert app.raw().get("allowSourceRanges") == ranges
    for key in annotations:
        assert verdict(conv, NGINX + key) == "converted"
    spec_app = conv.spec.apps[0]
    assert (spec_app.auth is not None) == (auth is not None)


def test_a_denylist_alone_is_every_address_but_the_denied() -> None:
    allowed = source_ranges(None, [ipaddress.ip_network("192.0.2.0/24")])
    assert "::/0" in allowed
    nets = [ipaddress.ip_network(n) for n in allowed if ":" not in n]
    assert sum(n.num_addresses for n in nets) == 2**32 - 256
    assert not any(n.overlaps(ipaddress.ip_network("192.0.2.0/24")) for n in nets)


def test_auto_api_chooses_gateway_with_protection_kept() -> None:
    """Auth and source ranges convert with api gateway too (an EdgeAuth object), so an
    annotation that needs the Gateway API no longer holds the stack on api ingress."""
    conv = run(
        ingress(annotations={NGINX + "whitelist-source-range": "10.0.0.0/8"}),
        ingress("b", host="b.example.com", service="b", annotations={NGINX + "app-root": "/x"}),
        svc(),
        svc("b"),
    )
    assert conv.controller.get("api") == "gateway"
    assert "CHOICE: api gateway" in conv.api_reason
    assert verdict(conv, NGINX + "app-root", "Ingress/shop/b") == "converted"
    assert verdict(conv, NGINX + "whitelist-source-range") == "converted"
    web = next(a for a in conv.spec.apps if a.name == "web")
    assert web.allow_source_ranges == ("10.0.0.0/8",)


def test_two_ingresses_of_one_service_merge_when_nothing_conflicts() -> None:
    tls_b = [{"hosts": ["b.example.com"], "secretName": "a-tls"}]
    conv = run(ingress(tls=TLS), ingress("www", host="b.example.com", tls=tls_b), svc())
    assert [r["host"] for r in app_ingress(conv)["rules"]] == ["a.example.com", "b.example.com"]
    assert verdict(conv, "metadata.name", "Ingress/shop/www") == "approximated"
    assert conv.spec.apps[0].tls.secret_name == "a-tls"


def test_two_ingresses_of_one_service_with_different_tls_do_not_merge() -> None:
    conv = run(ingress(tls=TLS), ingress("www", host="b.example.com"), svc())
    assert verdict(conv, "Ingress", "Ingress/shop/www") == "not-convertible"
    assert "TLS differs" in detail(conv, "Ingress", "Ingress/shop/www")


@pytest.mark.parametrize(
    ("tls", "annotations", "expected"),
    [
        (None, {}, {"mode": "none"}),
        (
            TLS,
            {"cert-manager.io/cluster-issuer": "le"},
            {
                "mode": "cert-manager",
                "issuer": "le",
                "issuerKind": "ClusterIssuer",
                "secretName": "a-tls",
            },
        ),
        (
            TLS,
            {"cert-manager.io/issuer": "local"},
            {
                "mode": "cert-manager",
                "issuer": "local",
                "issuerKind": "Issuer",
                "secretName": "a-tls",
            },
        ),
        ([{"hosts": ["a.example.com"]}], {}, {"mode": "self-signed"}),
        (
            TLS,
            {},
            {
                "mode": "secret",
                "secretName": "a-tls",
                "certificateConfig": "tls:shop-a-tls-crt",
                "privateKeyConfig": "tls:shop-a-tls-key",
            },
        ),
    ],
    ids=["none", "cluster-issuer", "issuer", "no-secret", "secret"],
)
def test_tls_modes_as_found(
    tls: list[dict[str, Any]] | None, annotations: dict[str, str], expected: dict[str, Any]
) -> None:
    conv = run(ingress(tls=tls, annotations=annotations), svc())
    assert next(a for a in conv.apps if a.name == "web").tls == expected


def test_cert_manager_with_api_gateway_says_a_new_certificate_is_issued() -> None:
    annotations = {"cert-manager.io/cluster-issuer": "le"}
    with_ingress = run(ingress(tls=TLS, annotations=annotations), svc(), api="ingress")
    assert not [i for i in with_ingress.items if i.topic == "spec.tls[0]"]
    conv = run(ingress(tls=TLS, annotations=annotations), svc(), api="gateway")
    assert next(a for a in conv.apps if a.name == "web").tls["mode"] == "cert-manager"
    assert verdict(conv, "spec.tls[0]") == "approximated"
    said = detail(conv, "spec.tls[0]")
    assert "gateway-shim" in said
    assert "kexpose-system/shop-a-tls" in said
    # The Secret named is the one the Gateway's listener references.
    gateway = next(m for m in gateway_manifests(conv) if m["kind"] == "Gateway")
    refs = [r for entry in gateway["spec"]["listeners"] for r in entry.get("tls", {}).get(
        "certificateRefs", [])]  # fmt: skip
    assert refs == [{"group": "", "kind": "Secret", "name": "shop-a-tls"}]
    assert gateway["metadata"]["namespace"] == "kexpose-system"


def test_a_second_certificate_is_reported() -> None:
    tls = [*TLS, {"hosts": ["a.example.com"], "secretName": "other"}]
    conv = run(ingress(tls=tls), svc())
    assert verdict(conv, "spec.tls[1]") == "not-convertible"


def test_a_service_missing_from_the_input_is_guessed_and_said_so() -> None:
    conv = run(ingress())
    assert verdict(conv, "selector", "Service/shop/web") == "approximated"
    app = conv.apps[0]
    assert app.selector == {"app.kubernetes.io/name": "web"}
    assert app.service["ports"] == [{"name": "port-80", "port": 80}]
    assert any(c.startswith("CHOICE: Service shop/web was not in the input") for c in app.comments)


def test_ingress_class_filter_skips_other_classes() -> None:
    conv = run(
        ingress(cls="traefik"), ingress("b", host="b.example.com", cls=None), svc(), cls="nginx"
    )
    assert verdict(conv, "class") == "skipped"
    assert [a.sources for a in conv.apps] == [["shop/b"]]


def test_policy_verdicts_for_the_environment() -> None:
    dev = assess(run(ingress(), svc()))
    prod = assess(run(ingress(), svc(), env="prod"))
    assert not dev.failed
    assert prod.failed
    assert "ing-require-tls" in {v.rule for v in prod.violations if v.enforcement == "mandatory"}
    managed = assess(
        run(
            ingress(tls=TLS, annotations={"cert-manager.io/cluster-issuer": "le"}),
            svc(),
            env="prod",
        )
    )
    assert not managed.failed, [v.message for v in managed.violations]


def test_the_stack_file_reads_back_to_the_same_stack() -> None:
    conv = run(
        ingress(tls=TLS, annotations={NGINX + "ssl-redirect": "false"}),
        ingress("other", host="b.example.com", service="api"),
        svc(),
        svc("api"),
    )
    text = stack_file_text(conv, sources=["in.yaml"])
    doc = load_one(text, source="stack.yaml")
    assert doc is not None
    config = {k.removeprefix("kexpose:"): v for k, v in doc.data["config"].items()}
    assert parse_stack(config, stack_file="stack.yaml") == conv.spec
    assert "# CHOICE: tls.mode secret keeps Secret shop/a-tls" in text


def test_to_ingress_renders_through_the_builders_without_nginx_or_secrets() -> None:
    conv = run(
        ingress(
            tls=TLS, annotations={NGINX + "ssl-redirect": "false", NGINX + "proxy-body-size": "1m"}
        ),
        svc(),
    )
    objs = ingress_manifests(conv)
    kinds = [o["kind"] for o in objs]
    assert "Secret" not in kinds
    (ing,) = [o for o in objs if o["kind"] == "Ingress"]
    assert ing["spec"]["ingressClassName"] == "kexpose"
    assert ing["metadata"]["annotations"] == {"kexpose.dev/ssl-redirect": "false"}
    assert ing["spec"]["tls"] == [{"hosts": ["a.example.com"], "secretName": "a-tls"}]


def test_tls_of_another_ingress_on_the_host_decides_the_redirect() -> None:
    """lua redirect_to_https: ssl-redirect applies when a certificate is configured for the
    host, whichever Ingress configured it."""
    conv = run(
        ingress(tls=TLS, service="web"),
        ingress(
            "plain", path="/plain", service="api", annotations={NGINX + "ssl-redirect": "false"}
        ),
        svc(),
        svc("api"),
    )
    assert app_ingress(conv, "api")["annotations"] == {"kexpose.dev/ssl-redirect": "false"}
    assert verdict(conv, "ssl-redirect", "Ingress/shop/plain") == "approximated"
    assert "disagree" in detail(conv, "ssl-redirect", "Ingress/shop/plain")


def test_no_annotation_of_the_mixed_folder_is_dropped_silently() -> None:
    """Every annotation of every Ingress (24, six namespaces) has a line in the report."""
    from pathlib import Path

    from kexpose.yamlio import load_documents

    folder = Path(__file__).resolve().parents[1] / "fixtures" / "import" / "mixed"
    objs = [
        (d.data, Origin(f.name, d.line))
        for f in sorted(folder.glob("*.yaml"))
        for d in load_documents(f.read_text(), source=f.name)
        if d.data is not None
    ]
    source = read_objects(objs)
    conv = convert(source, environment="dev")
    assert len(source.ingresses) == 24
    assert len({i.namespace for i in source.ingresses}) == 6
    topics = {(i.subject, i.topic) for i in conv.items}
    missing = [
        (ing.ref, key)
        for ing in source.ingresses
        for key in ing.annotations
        if (ing.ref, key) not in topics
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ({"type": "ExternalName", "externalName": "db.example.net"}, "has no selector"),
        ({"ports": [{"port": 80}]}, "has no selector"),
        ({"selector": {"app": "web"}, "ports": [{"port": 8080}]}, "is not a port of"),
    ],
    ids=["external-name", "no-selector", "wrong-port"],
)
def test_a_backend_that_cannot_be_an_app_is_reported_and_left_out(
    spec: dict[str, Any], why: str
) -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": spec,
    }
    conv = run(ingress(), service)
    field = "spec.rules[0].http.paths[0].backend"
    assert verdict(conv, field) == "not-convertible"
    assert why in detail(conv, field)
    assert verdict(conv, "Ingress") == "not-convertible"
    assert conv.apps == ()


def test_auto_api_falls_back_to_ingress_when_the_gateway_stack_is_invalid() -> None:
    """prod's Gateway serves plain HTTP only as a redirect, so a host without TLS makes the
    api gateway stack invalid; chosen (not asked for), the import keeps api ingress, where the
    missing TLS is a policy verdict, and says why."""
    conv = run(ingress(annotations={NGINX + "app-root": "/x"}), svc(), env="prod")
    assert conv.controller.get("api") is None
    assert "CHOICE: api ingress although app-root (shop/web)" in conv.api_reason
    assert "not valid for prod" in conv.api_reason
    assert verdict(conv, NGINX + "app-root") == "not-convertible"


def path0(conv: Conversion, name: str = "web") -> dict[str, Any]:
    p: dict[str, Any] = app_ingress(conv, name)["rules"][0]["paths"][0]
    return p


@pytest.mark.parametrize(
    ("annotations", "request_timeout", "silent"),
    [
        # 10 x the largest (ingress2gateway); a silent backend: min(that, kexpose-proxy's 60 s).
        ({"proxy-read-timeout": "3"}, "30s", "504 after 30 s (the route's timeout"),
        (
            {"proxy-connect-timeout": "2", "proxy-send-timeout": "4", "proxy-read-timeout": "1"},
            "40s",
            "after 1 s from ingress-nginx",
        ),
        ({"proxy-read-timeout": "120"}, "1200s", "504 after 60 s"),
        ({"proxy-read-timeout": "86400"}, "240h", "after 86400 s from ingress-nginx"),
    ],
)
def test_custom_timeouts_become_the_route_request_timeout(
    annotations: dict[str, str], request_timeout: str, silent: str
) -> None:
    conv = run(ingress(annotations={NGINX + k: v for k, v in annotations.items()}), svc())
    assert conv.spec.api == "gateway"
    assert path0(conv)["timeouts"] == {"request": request_timeout}
    for key in annotations:
        assert verdict(conv, NGINX + key) == "approximated"
        assert silent in detail(conv, NGINX + key)
    [spec_app] = conv.spec.apps
    rendered = spec_app.ingress.rules[0].paths[0].timeouts  # type: ignore[union-attr]
    assert rendered is not None
    assert rendered.request == request_timeout


def test_a_timeout_that_is_not_whole_seconds_keeps_the_default_as_nginx_does() -> None:
    conv = run(
        ingress(
            annotations={NGINX + "proxy-read-timeout": "30s", NGINX + "proxy-send-timeout": "5"}
        ),
        svc(),
    )
    assert "keeps its default (60 s)" in detail(conv, NGINX + "proxy-read-timeout")
    assert path0(conv)["timeouts"] == {"request": "50s"}


def test_timeouts_and_cors_with_api_ingress_say_they_need_the_gateway_api() -> None:
    conv = run(
        ingress(annotations={NGINX + "proxy-read-timeout": "5", NGINX + "enable-cors": "true"}),
        svc(),
        api="ingress",
    )
    for key in ("proxy-read-timeout", "enable-cors"):
        assert verdict(conv, NGINX + key) == "not-convertible"
        assert "api: gateway" in detail(conv, NGINX + key)
    assert "timeouts" not in path0(conv)
    assert "filters" not in path0(conv)


NGINX_CORS_DEFAULTS = {
    "allowOrigins": ["*"],
    "allowMethods": ["GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"],
    "allowHeaders": [
        "DNT",
        "Keep-Alive",
        "User-Agent",
        "X-Requested-With",
        "If-Modified-Since",
        "Cache-Control",
        "Content-Type",
        "Range",
        "Authorization",
    ],
    "allowCredentials": True,
    "maxAge": 1728000,
}


@pytest.mark.parametrize(
    ("annotations", "expected", "verdicts"),
    [
        # The user guide's defaults ("Enable CORS").
        ({}, NGINX_CORS_DEFAULTS, {}),
        (
            {
                "cors-allow-origin": "https://shop.example.com, http://*.shop.example.com:8080",
                "cors-allow-methods": "get, POST,OPTIONS",
                "cors-allow-headers": "X-Forwarded-For, X-app123-XPTO",
                "cors-expose-headers": "*, X-CustomResponseHeader",
                "cors-allow-credentials": "false",
                "cors-max-age": "600",
            },
            {
                "allowOrigins": ["https://shop.example.com", "http://*.shop.example.com:8080"],
                "allowMethods": ["GET", "POST", "OPTIONS"],
                "allowHeaders": ["X-Forwarded-For", "X-app123-XPTO"],
                "exposeHeaders": ["*", "X-CustomResponseHeader"],
                "allowCredentials": False,
                "maxAge": 600,
            },
            {"cors-allow-origin": "approximated", "cors-allow-methods": "converted"},
        ),
        # What ingress-nginx cannot parse falls back to its defaults; what the Gateway API
        # cannot say is left out and said.
        (
            {
                "cors-allow-origin": "myprotocol://example.org:1199, https://ok.example.com",
                "cors-allow-methods": "GET, PROPFIND",
                "cors-allow-headers": "X-$bad",
                "cors-max-age": "soon",
            },
            {
                **NGINX_CORS_DEFAULTS,
                "allowOrigins": ["https://ok.example.com"],
                "allowMethods": ["GET"],
            },
            {
                "cors-allow-origin": "approximated",
                "cors-allow-methods": "approximated",
                "cors-allow-headers": "converted",
                "cors-max-age": "converted",
            },
        ),
        (
            {"cors-max-age": "0"},
            {**NGINX_CORS_DEFAULTS, "maxAge": 1},
            {"cors-max-age": "approximated"},
        ),
    ],
    ids=["defaults", "all-given", "fallbacks", "max-age-0"],
)
def test_cors_annotations_become_the_cors_filter_with_nginx_defaults(
    annotations: dict[str, str], expected: dict[str, Any], verdicts: dict[str, str]
) -> None:
    given = {NGINX + "enable-cors": "true", **{NGINX + k: v for k, v in annotations.items()}}
    conv = run(ingress(annotations=given), svc())
    assert conv.spec.api == "gateway"
    assert path0(conv)["filters"]["cors"] == expected
    assert verdict(conv, NGINX + "enable-cors") == "approximated"
    assert "200 where ingress-nginx answers 204" in detail(conv, NGINX + "enable-cors")
    for key, want in verdicts.items():
        assert verdict(conv, NGINX + key) == want, detail(conv, NGINX + key)
    [spec_app] = conv.spec.apps
    filters = spec_app.ingress.rules[0].paths[0].filters  # type: ignore[union-attr]
    assert filters is not None
    assert filters.cors is not None


def test_cors_off_ignores_the_cors_annotations_as_nginx_does() -> None:
    conv = run(
        ingress(annotations={NGINX + "enable-cors": "false", NGINX + "cors-max-age": "60"}), svc()
    )
    assert verdict(conv, NGINX + "cors-max-age") == "converted"
    assert "CORS is off" in detail(conv, NGINX + "cors-max-age")
    assert conv.spec.api == "ingress"


def test_cors_with_auth_says_preflights_are_answered_before_auth() -> None:
    conv = run(
        ingress(
            annotations={
                NGINX + "enable-cors": "true",
                NGINX + "auth-url": "https://auth.example.com/check",
            }
        ),
        svc(),
    )
    said = detail(conv, NGINX + "enable-cors")
    assert "a preflight is answered before the Ingress's auth, as by ingress-nginx" in said
    assert "source ranges" not in said
    assert verdict(conv, NGINX + "enable-cors") == "approximated"
    assert path0(conv)["filters"]["cors"]["allowOrigins"] == ["*"]
    assert app_ingress(conv) is not None
    assert conv.apps[0].raw()["auth"]["type"] == "forward"


def test_cors_with_source_ranges_says_outsiders_get_403_on_preflights() -> None:
    conv = run(
        ingress(
            annotations={
                NGINX + "enable-cors": "true",
                NGINX + "whitelist-source-range": "10.0.0.0/8",
            }
        ),
        svc(),
    )
    said = detail(conv, NGINX + "enable-cors")
    assert "outside the source ranges gets 403 on its preflight" in said
    assert "before the Ingress's auth" not in said
    assert conv.apps[0].raw()["allowSourceRanges"] == ["10.0.0.0/8"]


def test_a_canary_keeps_the_main_paths_cors_and_timeouts() -> None:
    main = ingress(annotations={NGINX + "enable-cors": "true", NGINX + "proxy-read-timeout": "2"})
    canary = ingress(
        "web-canary",
        service="web-v2",
        annotations={NGINX + "canary": "true", NGINX + "canary-by-header": "X-Canary"},
    )
    conv = run(main, canary, svc(), svc("web-v2"))
    paths = app_ingress(conv)["rules"][0]["paths"]
    assert len(paths) == 3  # always -> canary, never -> main, the weighted main path
    for p in paths:
        assert p["timeouts"] == {"request": "20s"}
        assert p["filters"]["cors"]["allowOrigins"] == ["*"]
