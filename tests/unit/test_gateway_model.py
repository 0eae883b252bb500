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
        filters={"requestHeaders": {"add": {"X-A": "1"}}},
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
