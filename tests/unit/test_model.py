"""The exposure model and its early validation: every bad input gets one clear error.

Each case mutates a valid stack config and asserts that the error names the stack file, the app,
the config field path, the value given and what is allowed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from kexpose.errors import ConfigError, PolicyViolationError
from kexpose.manifests import TlsMaterial
from kexpose.model import AppSpec, StackSpec
from kexpose.plan import plan_stack
from kexpose.validation import check_plan, parse_stack

STACK_FILE = "stacks/Pulumi.test.yaml"
Raw = dict[str, Any]


def valid(environment: str = "staging") -> Raw:
    return {
        "environment": environment,
        "controller": {"kind": "kexpose"},
        "apps": [
            {
                "name": "web",
                "namespace": "shop",
                "workload": {
                    "image": "nginx",
                    "replicas": 2,
                    "ports": [{"name": "http", "containerPort": 8080}],
                },
                "service": {"ports": [{"name": "http", "port": 80}]},
                "ingress": {
                    "rules": [
                        {
                            "host": "shop.example.com",
                            "paths": [
                                {"path": "/", "port": "http"},
                                {"path": "/api", "port": "api", "service": "api"},
                            ],
                        }
                    ]
                },
                "tls": {"mode": "self-signed"},
            },
            {
                "name": "api",
                "namespace": "shop",
                "workload": {
                    "image": "api",
                    "replicas": 2,
                    "ports": [{"name": "api", "containerPort": 9000}],
                },
                "service": {"ports": [{"name": "api", "port": 9000}]},
            },
        ],
    }


def web(raw: Raw) -> Raw:
    app: Raw = raw["apps"][0]
    return app


def _set(path: str, value: object) -> Callable[[Raw], None]:
    def mutate(raw: Raw) -> None:
        target: Any = raw
        parts = path.split(".")
        for part in parts[:-1]:
            target = target[int(part)] if part.isdigit() else target[part]
        last = parts[-1]
        if last.isdigit():
            target[int(last)] = value
        else:
            target[last] = value

    return mutate


# (case id, mutation, field path the error must name, fragments of the message)
BAD: list[tuple[str, Callable[[Raw], None], str, tuple[str, ...]]] = [
    (
        "host not RFC 1123",
        _set("apps.0.ingress.rules.0.host", "Shop.Example.com"),
        "kexpose:apps[0].ingress.rules[0].host",
        ("RFC 1123", "'Shop.Example.com'"),
    ),
    (
        "host with two wildcards",
        _set("apps.0.ingress.rules.0.host", "*.*.example.com"),
        "kexpose:apps[0].ingress.rules[0].host",
        ("first label",),
    ),
    (
        "host with a port",
        _set("apps.0.ingress.rules.0.host", "shop.example.com:443"),
        "kexpose:apps[0].ingress.rules[0].host",
        ("port",),
    ),
    (
        "path without slash",
        _set("apps.0.ingress.rules.0.paths.0.path", "api"),
        "kexpose:apps[0].ingress.rules[0].paths[0].path",
        ("must start with '/'", "'api'"),
    ),
    (
        "path with a dot segment",
        _set("apps.0.ingress.rules.0.paths.0.path", "/a/../b"),
        "kexpose:apps[0].ingress.rules[0].paths[0].path",
        ("'/../'",),
    ),
    (
        "port out of range",
        _set("apps.0.service.ports.0.port", 70000),
        "kexpose:apps[0].service.ports[0].port",
        ("65535", "70000"),
    ),
    (
        "node port out of range",
        lambda r: web(r)["service"].update(
            type="NodePort", ports=[{"name": "http", "port": 80, "nodePort": 80}]
        ),
        "kexpose:apps[0].service.ports[0].nodePort",
        ("30000", "80"),
    ),
    (
        "rule to a port the service lacks",
        _set("apps.0.ingress.rules.0.paths.0.port", "https"),
        "kexpose:apps[0].ingress.rules[0].paths[0].port",
        ("not a port of the app's Service", "http (80)", "'https'"),
    ),
    (
        "rule to a port number the service lacks",
        _set("apps.0.ingress.rules.0.paths.0.port", 8080),
        "kexpose:apps[0].ingress.rules[0].paths[0].port",
        ("http (80)", "8080"),
    ),
    (
        "rule to an app that does not exist",
        _set("apps.0.ingress.rules.0.paths.1.service", "cart"),
        "kexpose:apps[0].ingress.rules[0].paths[1].service",
        ("not an app in namespace 'shop'", "api, web", "'cart'"),
    ),
    (
        "rule to another app's missing port",
        _set("apps.0.ingress.rules.0.paths.1.port", "grpc"),
        "kexpose:apps[0].ingress.rules[0].paths[1].port",
        ("not a port of service 'api'", "api (9000)"),
    ),
    (
        "TLS host no rule uses",
        _set("apps.0.tls.hosts", ["shop.example.com", "admin.example.com"]),
        "kexpose:apps[0].tls.hosts[1]",
        ("not used by any ingress rule", "'admin.example.com'"),
    ),
    (
        "unknown service type",
        _set("apps.0.service.type", "Nodeport"),
        "kexpose:apps[0].service.type",
        ("'ClusterIP', 'NodePort' or 'LoadBalancer'", "'Nodeport'"),
    ),
    (
        "unknown path type",
        _set("apps.0.ingress.rules.0.paths.0.pathType", "Regex"),
        "kexpose:apps[0].ingress.rules[0].paths[0].pathType",
        ("'Exact', 'Prefix', 'ImplementationSpecific' or 'RegularExpression'",),
    ),
    (
        "misspelt field",
        _set("apps.0.servce", {}),
        "kexpose:apps[0].servce",
        ("unknown field 'servce'", "allowed fields:", "service"),
    ),
    (
        "named targetPort the workload lacks",
        _set("apps.0.service.ports.0.targetPort", "htp"),
        "kexpose:apps[0].service.ports[0].targetPort",
        ("container port name", "allowed: http", "'htp'"),
    ),
    (
        "service port with no matching container port",
        _set("apps.0.service.ports.0.name", "web"),
        "kexpose:apps[0].service.ports[0].port",
        ("container port 80", "http (8080)"),
    ),
    (
        "source ranges on a ClusterIP",
        _set("apps.0.service.loadBalancerSourceRanges", ["10.0.0.0/8"]),
        "kexpose:apps[0].service.loadBalancerSourceRanges",
        ("only with type LoadBalancer",),
    ),
    (
        "CIDR with host bits",
        lambda r: web(r)["service"].update(
            type="LoadBalancer", loadBalancerSourceRanges=["10.0.0.1/8"]
        ),
        "kexpose:apps[0].service.loadBalancerSourceRanges[0]",
        ("host bits",),
    ),
    (
        "secret TLS without material",
        _set("apps.0.tls", {"mode": "secret"}),
        "kexpose:apps[0].tls.certificateConfig",
        ("needs certificate",),
    ),
    (
        "cert-manager without issuer",
        _set("apps.0.tls", {"mode": "cert-manager"}),
        "kexpose:apps[0].tls.issuer",
        ("Issuer or ClusterIssuer",),
    ),
    (
        "duplicate app",
        lambda r: r["apps"].append(copy.deepcopy(r["apps"][1])),
        "kexpose:apps[2].name",
        ("repeats app shop/api",),
    ),
    (
        "app name not a label",
        _set("apps.1.name", "API_v2"),
        "kexpose:apps[1].name",
        ("RFC 1123",),
    ),
    (
        "workload and selector both",
        _set("apps.0.selector", {"app": "web"}),
        "kexpose:apps[0].workload",
        ("exactly one of 'workload'",),
    ),
    (
        "unknown environment",
        _set("environment", "qa"),
        "kexpose:environment",
        ("'dev', 'staging' or 'prod'", "'qa'"),
    ),
    (
        "controller NodePort outside dev",
        _set("controller.service", {"type": "NodePort"}),
        "kexpose:controller.service.type",
        ("NodePort only in dev",),
    ),
]


@pytest.mark.parametrize(
    ("mutate", "field", "fragments"),
    [pytest.param(m, f, fr, id=i) for i, m, f, fr in BAD],
)
def test_bad_input_names_file_field_value(
    mutate: Callable[[Raw], None], field: str, fragments: tuple[str, ...]
) -> None:
    raw = valid()
    mutate(raw)
    with pytest.raises(ConfigError) as caught:
        parse_stack(raw, stack_file=STACK_FILE)
    text = str(caught.value)
    assert text.startswith(STACK_FILE)
    assert f"{field}:" in text, text
    for fragment in fragments:
        assert fragment in text, text


def test_error_names_the_app() -> None:
    raw = valid()
    raw["apps"][1]["service"]["ports"][0]["port"] = 0
    with pytest.raises(ConfigError) as caught:
        parse_stack(raw, stack_file=STACK_FILE)
    assert caught.value.app == "api"
    assert caught.value.field == "kexpose:apps[1].service.ports[0].port"
    assert "app 'api'" in str(caught.value)


def test_all_problems_reported_at_once() -> None:
    raw = valid()
    raw["apps"][0]["ingress"]["rules"][0]["host"] = "BAD"
    raw["apps"][1]["service"]["ports"][0]["port"] = -1
    with pytest.raises(ConfigError) as caught:
        parse_stack(raw, stack_file=STACK_FILE)
    assert "(2 problems)" in str(caught.value)


def test_valid_stack_parses_and_resolves() -> None:
    spec = parse_stack(valid("prod"), stack_file=STACK_FILE)
    assert isinstance(spec, StackSpec)
    assert spec.controller is not None
    assert spec.controller.service.type == "LoadBalancer"
    assert spec.class_of(spec.apps[0]) == "kexpose"


def test_models_are_frozen() -> None:
    app = AppSpec.model_validate(valid()["apps"][1])
    with pytest.raises(Exception, match="frozen"):
        app.name = "other"  # type: ignore[misc]


def _plan(raw: Raw) -> None:
    spec = parse_stack(raw, stack_file=STACK_FILE)
    material = TlsMaterial("cert", "key")

    def tls(app: AppSpec) -> TlsMaterial | None:
        return material if app.tls.mode in ("self-signed", "secret") else None

    check_plan(plan_stack(spec, tls=tls), spec=spec, stack_file=STACK_FILE)


def test_nodeport_in_prod_is_refused_by_the_policy_rule() -> None:
    raw = valid("prod")
    raw["apps"][1]["service"].update(type="NodePort")
    with pytest.raises(PolicyViolationError) as caught:
        _plan(raw)
    text = str(caught.value)
    assert "kexpose:apps[1].service.type" in text
    assert "[svc-no-nodeport]" in text
    assert "given: 'NodePort'" in text
    assert caught.value.app == "api"


def test_nodeport_in_dev_is_allowed() -> None:
    raw = valid("dev")
    raw["apps"][1]["service"].update(type="NodePort")
    _plan(raw)


def test_missing_tls_in_staging_is_refused() -> None:
    raw = valid("staging")
    raw["apps"][0]["tls"] = {"mode": "none"}
    with pytest.raises(PolicyViolationError) as caught:
        _plan(raw)
    assert "[ing-require-tls]" in str(caught.value)
    assert "kexpose:apps[0].tls" in str(caught.value)


def test_app_loadbalancer_is_refused_unless_allowed_by_stack_policy() -> None:
    raw = valid("dev")
    raw["apps"][1]["service"].update(type="LoadBalancer")
    with pytest.raises(PolicyViolationError, match=r"\[svc-no-loadbalancer\]"):
        _plan(raw)
    raw["policy"] = {
        "allowed_loadbalancers": ["kexpose-system/kexpose-controller", "shop/api"],
    }
    _plan(raw)


def test_bad_stack_policy_override_is_a_config_error() -> None:
    raw = valid("dev")
    raw["policy"] = {"allowed_loadbalancers": ["no-slash"]}
    with pytest.raises(ConfigError, match=r"kexpose:policy\.allowed_loadbalancers"):
        _plan(raw)
