"""Routes beyond Ingress in the model: what each API can express, and the clear refusals.

Each case starts from a valid two-app stack, picks the API and mutates one field; the error
must name the stack file, the config field, the value given (when there is one) and the fix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from tests.unit.test_model import STACK_FILE, Raw, valid

from kexpose.errors import ConfigError
from kexpose.model import StackSpec
from kexpose.validation import parse_stack

Mutation = Callable[[Raw], None]


def stack(api: str, environment: str = "staging") -> Raw:
    raw = valid(environment)
    raw["controller"]["api"] = api
    return raw


def path0(raw: Raw) -> dict[str, Any]:
    p: dict[str, Any] = raw["apps"][0]["ingress"]["rules"][0]["paths"][0]
    return p


def upd(**fields: object) -> Mutation:
    return lambda raw: path0(raw).update(fields)


P0 = "kexpose:apps[0].ingress.rules[0].paths[0]"
HEADER = {"name": "X-Canary", "value": "always"}

# (case id, mutation, field path the error names, fragments of the message)
NOT_WITH_INGRESS: list[tuple[str, Mutation, str, tuple[str, ...]]] = [
    ("header match", upd(headers=[HEADER]), f"{P0}.headers", ("a header match",)),
    (
        "query match",
        upd(queryParams=[{"name": "v", "value": "2"}]),
        f"{P0}.queryParams",
        ("a query parameter match",),
    ),
    ("method match", upd(method="POST"), f"{P0}.method", ("a method match", "'POST'")),
    (
        "filters",
        upd(filters={"requestHeaders": {"set": {"X-Env": "staging"}}}),
        f"{P0}.filters",
        ("header changes, redirects, rewrites",),
    ),
    (
        "a weighted split",
        upd(backends=[{"service": "api", "port": "api", "weight": 10}]),
        f"{P0}.backends",
        ("traffic split by weight",),
    ),
    ("a weight", upd(weight=90), f"{P0}.weight", ("traffic split by weight", "90")),
    (
        "a backend in another namespace",
        upd(namespace="tools"),
        f"{P0}.namespace",
        ("another namespace", "'tools'"),
    ),
    (
        "route timeouts",
        upd(timeouts={"request": "10s"}),
        f"{P0}.timeouts",
        ("route timeouts (request '10s')",),
    ),
    (
        "CORS",
        upd(filters={"cors": {"allowOrigins": ["https://app.example.com"]}}),
        f"{P0}.filters",
        ("CORS",),
    ),
    (
        "a regular expression path",
        upd(pathType="RegularExpression", path="^/static.*"),
        f"{P0}.pathType",
        ("a regular expression path", "'RegularExpression'"),
    ),
]


@pytest.mark.parametrize(
    ("mutate", "field", "fragments"),
    [pytest.param(m, f, fr, id=i) for i, m, f, fr in NOT_WITH_INGRESS],
)
def test_ingress_refuses_what_only_the_gateway_api_can_say(
    mutate: Mutation, field: str, fragments: tuple[str, ...]
) -> None:
    raw = stack("ingress")
    mutate(raw)
    with pytest.raises(ConfigError) as caught:
        parse_stack(raw, stack_file=STACK_FILE)
    text = str(caught.value)
    assert text.startswith(STACK_FILE)
    assert f"{field}:" in text, text
    assert "cannot be expressed with api 'ingress'" in text
    assert "set kexpose:controller.api to 'gateway'" in text
    for fragment in fragments:
        assert fragment in text, text


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(m, id=i)
        for i, m, _, _ in NOT_WITH_INGRESS
        if i != "a backend in another namespace"
    ],
)
def test_the_gateway_api_accepts_them(mutate: Mutation) -> None:
    raw = stack("gateway")
    mutate(raw)
    spec = parse_stack(raw, stack_file=STACK_FILE)
    assert spec.api == "gateway"


def _two_issuers(raw: Raw) -> None:
    raw["apps"][0]["tls"] = {"mode": "cert-manager", "issuer": "le"}
    raw["apps"][1]["ingress"] = {"rules": [{"host": "api.example.com", "paths": [{"port": "api"}]}]}
    raw["apps"][1]["tls"] = {"issuer": "internal-ca", "issuerKind": "Issuer"}


NOT_WITH_GATEWAY: list[tuple[str, Mutation, str, tuple[str, ...]]] = [
    (
        "a default backend",
        lambda raw: raw["apps"][0]["ingress"].update(defaultBackend={"port": "http"}),
        "kexpose:apps[0].ingress.defaultBackend",
        ("no default backend",),
    ),
    (
        "an IngressClass",
        lambda raw: raw["apps"][0]["ingress"].update(className="nginx"),
        "kexpose:apps[0].ingress.className",
        ("IngressClass", "'nginx'"),
    ),
    (
        "an implementation-specific path",
        upd(pathType="ImplementationSpecific"),
        f"{P0}.pathType",
        ("no HTTPRoute equivalent", "Exact, Prefix", "'ImplementationSpecific'"),
    ),
    (
        "a prefix rewrite after an exact path",
        upd(pathType="Exact", filters={"rewrite": {"path": {"prefix": "/v2"}}}),
        f"{P0}.filters.rewrite.path.prefix",
        ("pathType Prefix", "fullPath", "'/v2'"),
    ),
    (
        "two issuers for the one Gateway",
        lambda raw: _two_issuers(raw),
        "kexpose:apps[1].tls.issuer",
        ("annotated with apps[0]'s ClusterIssuer 'le'", "tls.via 'certificate'", "'internal-ca'"),
    ),
    (
        "a host without TLS in staging",
        lambda raw: raw["apps"][0].update(tls={"mode": "none"}),
        "kexpose:apps[0].tls.mode",
        ("only as a redirect to HTTPS", "'none'"),
    ),
    (
        "a backend app that is not in the other namespace",
        upd(namespace="tools", service="api"),
        f"{P0}.service",
        ("not an app in namespace 'tools'", "'api'"),
    ),
]


@pytest.mark.parametrize(
    ("mutate", "field", "fragments"),
    [pytest.param(m, f, fr, id=i) for i, m, f, fr in NOT_WITH_GATEWAY],
)
def test_gateway_refuses_what_it_cannot_express(
    mutate: Mutation, field: str, fragments: tuple[str, ...]
) -> None:
    raw = stack("gateway")
    mutate(raw)
    with pytest.raises(ConfigError) as caught:
        parse_stack(raw, stack_file=STACK_FILE)
    text = str(caught.value)
    assert f"{field}:" in text, text
    for fragment in fragments:
        assert fragment in text, text


@pytest.mark.parametrize("mutate", [pytest.param(m, id=i) for i, m, _, _ in NOT_WITH_GATEWAY[:3]])
def test_ingress_still_takes_them(mutate: Mutation) -> None:
    raw = stack("ingress")
    mutate(raw)
    if path0(raw).get("pathType") == "ImplementationSpecific":
        raw["apps"][0]["ingress"].setdefault("annotations", {})
    assert parse_stack(raw, stack_file=STACK_FILE).api == "ingress"


def test_dev_lets_a_gateway_app_go_without_tls() -> None:
    raw = stack("gateway", "dev")
    raw["apps"][0]["tls"] = {"mode": "none"}
    assert parse_stack(raw, stack_file=STACK_FILE).apps[0].tls.mode == "none"


@pytest.mark.parametrize("environment", ["staging", "prod"])
@pytest.mark.parametrize(
    ("rule", "tls_hosts", "fragments"),
    [
        pytest.param(
            {"host": "admin.example.com", "paths": [{"port": "http"}]},
            ["shop.example.com"],
            ("'admin.example.com'", "not covered by the app's TLS hosts (shop.example.com)"),
            id="host outside tls.hosts",
        ),
        pytest.param(
            {"paths": [{"port": "http"}]},
            None,
            ("is unset", "a rule without a host would never be served"),
            id="rule without host",
        ),
    ],
)
def test_a_gateway_rule_no_https_listener_serves_is_refused(
    environment: str, rule: dict[str, Any], tls_hosts: list[str] | None, fragments: tuple[str, ...]
) -> None:
    """Where the Gateway's HTTP listener only redirects, a rule's route that no HTTPS listener
    takes would be accepted by no listener and silently never served."""
    raw = stack("gateway", environment)
    raw["apps"][0]["workload"]["replicas"] = 2
    raw["apps"][0]["ingress"]["rules"].append(rule)
    if tls_hosts is not None:
        raw["apps"][0]["tls"]["hosts"] = tls_hosts
    with pytest.raises(ConfigError) as caught:
        parse_stack(raw, stack_file=STACK_FILE)
    text = str(caught.value)
    assert "kexpose:apps[0].ingress.rules[1].host:" in text, text
    assert f"{environment}'s Gateway serves plain HTTP only as a redirect" in text, text
    for fragment in fragments:
        assert fragment in text, text
    # The same rule is served in dev (the HTTP listener takes routes there) and with Ingress.
    raw["environment"] = "dev"
    parse_stack(raw, stack_file=STACK_FILE)
    raw["environment"], raw["controller"]["api"] = environment, "ingress"
    if tls_hosts is None:
        parse_stack(raw, stack_file=STACK_FILE)


def test_two_issuers_are_fine_when_one_app_makes_its_certificate() -> None:
    raw = stack("gateway", "prod")
    raw["apps"][0]["tls"] = {"mode": "cert-manager", "issuer": "le"}
    raw["apps"][1]["ingress"] = {"rules": [{"host": "api.example.com", "paths": [{"port": "api"}]}]}
    raw["apps"][1]["tls"] = {"issuer": "internal-ca", "via": "certificate"}
    spec = parse_stack(raw, stack_file=STACK_FILE)
    assert [a.tls.issuer for a in spec.apps] == ["le", "internal-ca"]


def test_paths_differing_only_in_matches_are_different_routes() -> None:
    raw = stack("gateway")
    extra = {"path": "/", "port": "http", "headers": [HEADER]}
    raw["apps"][0]["ingress"]["rules"][0]["paths"].append(extra)
    assert len(parse_stack(raw, stack_file=STACK_FILE).apps[0].ingress.rules[0].paths) == 3  # type: ignore[union-attr]
    # the same matches twice are one route claimed twice
    raw["apps"][0]["ingress"]["rules"][0]["paths"].append(
        {**extra, "headers": [{**HEADER, "name": "x-canary"}]}
    )
    with pytest.raises(ConfigError, match=r"paths\[3\]\.path: Prefix path repeats paths\[2\]"):
        parse_stack(raw, stack_file=STACK_FILE)


FILTER_SHAPES: list[tuple[str, dict[str, Any], str]] = [
    (
        "redirect and rewrite",
        {"redirect": {"scheme": "https"}, "rewrite": {"hostname": "a.example.com"}},
        "redirect or rewrite, not both",
    ),
    ("no header change", {"requestHeaders": {}}, "at least one of set, add, remove"),
    (
        "a header twice",
        {"responseHeaders": {"set": {"X-A": "1"}, "remove": ["x-a"]}},
        "appears twice",
    ),
    ("both path changes", {"rewrite": {"path": {"fullPath": "/a", "prefix": "/b"}}}, "exactly one"),
    ("an empty rewrite", {"rewrite": {}}, "give hostname or path"),
    ("a bad header name", {"requestHeaders": {"remove": ["X Bad"]}}, "RFC 7230 token"),
    ("a wildcard redirect host", {"redirect": {"hostname": "*.example.com"}}, "wildcard"),
    ("a status code", {"redirect": {"statusCode": 307}}, "301"),
    ("CORS without origins", {"cors": {"allowOrigins": []}}, "at least 1 item"),
    (
        "a CORS origin with a path",
        {"cors": {"allowOrigins": ["https://app.example.com/x"]}},
        "'https://app.example.com/x' is not a CORS origin",
    ),
    (
        "a CORS origin of another scheme",
        {"cors": {"allowOrigins": ["ftp://app.example.com"]}},
        "http:// or https://",
    ),
    (
        "a CORS origin port out of range",
        {"cors": {"allowOrigins": ["https://app.example.com:70000"]}},
        "port 1-65535",
    ),
    (
        "a wildcard origin beside another",
        {"cors": {"allowOrigins": ["*", "https://app.example.com"]}},
        "allowOrigins: '*' allows every value and must be the only one",
    ),
    (
        "a wildcard method beside another",
        {"cors": {"allowOrigins": ["*"], "allowMethods": ["*", "GET"]}},
        "allowMethods: '*'",
    ),
    (
        "an unknown CORS method",
        {"cors": {"allowOrigins": ["*"], "allowMethods": ["PROPFIND"]}},
        "'GET'",
    ),
    (
        "a CORS header twice",
        {"cors": {"allowOrigins": ["*"], "allowHeaders": ["X-A", "x-a"]}},
        "allowHeaders: 'X-A' appears twice",
    ),
    ("a CORS max age of 0", {"cors": {"allowOrigins": ["*"], "maxAge": 0}}, "greater than or"),
]


@pytest.mark.parametrize(
    ("filters", "fragment"), [pytest.param(f, m, id=i) for i, f, m in FILTER_SHAPES]
)
def test_filter_shapes(filters: dict[str, Any], fragment: str) -> None:
    raw = stack("gateway")
    path0(raw)["filters"] = filters
    with pytest.raises(ConfigError) as caught:
        parse_stack(raw, stack_file=STACK_FILE)
    assert f"{P0}.filters" in str(caught.value)
    assert fragment in str(caught.value)


def test_the_model_round_trips_the_new_fields() -> None:
    raw = stack("gateway")
    path0(raw).update(
        headers=[HEADER],
        queryParams=[{"name": "v", "value": "2", "type": "RegularExpression"}],
        method="GET",
        weight=90,
        backends=[{"service": "api", "port": "api", "weight": 10}],
        filters={
            "requestHeaders": {"add": {"X-A": "1"}},
            "cors": {"allowOrigins": ["https://*.example.com"], "allowCredentials": True},
        },
        timeouts={"request": "30s", "backendRequest": "10s"},
    )
    spec = parse_stack(raw, stack_file=STACK_FILE)
    again = StackSpec.model_validate(spec.model_dump(by_alias=True, exclude_unset=True))
    assert again.apps[0] == spec.apps[0]


def test_gateway_settings_need_the_gateway_api() -> None:
    raw = stack("ingress")
    raw["controller"]["gateway"] = {"installCrds": False}
    with pytest.raises(ConfigError) as caught:
        parse_stack(raw, stack_file=STACK_FILE)
    assert "kexpose:controller" in str(caught.value)
    assert "gateway settings apply only with api 'gateway'" in str(caught.value)


TIMEOUT_SHAPES: list[tuple[str, dict[str, Any], str, str]] = [
    ("nothing", {}, "give request or backendRequest", ""),
    ("no unit", {"request": "10"}, "'10' is not a Gateway API duration", "'10'"),
    ("six digits", {"request": "100000s"}, "at most 5 digits", "'100000s'"),
    ("a fraction", {"backendRequest": "1.5s"}, "e.g. 10s, 500ms, 1m30s", "'1.5s'"),
    (
        "a try longer than the request",
        {"request": "10s", "backendRequest": "1m"},
        "backendRequest '1m' is longer than request '10s'",
        "",
    ),
]


@pytest.mark.parametrize(
    ("timeouts", "fragment", "given"),
    [pytest.param(t, m, g, id=i) for i, t, m, g in TIMEOUT_SHAPES],
)
def test_timeout_shapes(timeouts: dict[str, Any], fragment: str, given: str) -> None:
    raw = stack("gateway")
    path0(raw)["timeouts"] = timeouts
    with pytest.raises(ConfigError) as caught:
        parse_stack(raw, stack_file=STACK_FILE)
    text = str(caught.value)
    assert f"app 'web', {P0}.timeouts" in text, text
    assert fragment in text, text
    assert given in text, text


@pytest.mark.parametrize(
    "timeouts",
    [
        {"request": "1m30s", "backendRequest": "90s"},
        {"request": "0s", "backendRequest": "1h"},  # request 0s: no limit (GEP-1742)
        {"backendRequest": "500ms"},
        {"request": "1h2m3s4ms"},
    ],
)
def test_timeouts_the_gateway_api_takes(timeouts: dict[str, str]) -> None:
    raw = stack("gateway")
    path0(raw)["timeouts"] = timeouts
    spec = parse_stack(raw, stack_file=STACK_FILE)
    got = spec.apps[0].ingress.rules[0].paths[0].timeouts  # type: ignore[union-attr]
    assert got is not None
    assert got.model_dump(by_alias=True, exclude_none=True) == timeouts


@pytest.mark.parametrize(
    ("mutate", "field", "fragment"),
    [
        (upd(timeouts={"request": "5s"}), f"{P0}.timeouts", "ignores HTTPRoute timeouts"),
        (
            upd(filters={"cors": {"allowOrigins": ["*"]}}),
            f"{P0}.filters.cors",
            "no CORS filter and answers the whole rule with 500",
        ),
    ],
    ids=["timeouts", "cors"],
)
def test_a_traefik_gateway_refuses_what_it_would_not_do(
    mutate: Mutation, field: str, fragment: str
) -> None:
    raw = stack("gateway")
    raw["controller"]["kind"] = "traefik"
    mutate(raw)
    with pytest.raises(ConfigError) as caught:
        parse_stack(raw, stack_file=STACK_FILE)
    text = str(caught.value)
    assert f"app 'web', {field}:" in text, text
    assert fragment in text, text
    assert "kind: kexpose" in text, text
    raw["controller"]["kind"] = "kexpose"
    assert parse_stack(raw, stack_file=STACK_FILE).api == "gateway"


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("^/static(", "is not a valid regular expression (Python re)"),
        ("^/" + "a" * 1024, "at most 1024 characters"),
    ],
)
def test_a_regular_expression_path_must_compile(path: str, fragment: str) -> None:
    raw = stack("gateway")
    upd(pathType="RegularExpression", path=path)(raw)
    with pytest.raises(ConfigError) as caught:
        parse_stack(raw, stack_file=STACK_FILE)
    text = str(caught.value)
    assert f"{P0}.path:" in text, text
    assert fragment in text, text
