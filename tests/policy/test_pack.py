"""kexpose.policy.pack in-process: type tokens, environment, config, proxies and unknowns."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from kexpose.environment import ENVIRONMENTS
from kexpose.errors import ConfigError
from kexpose.policy import PolicyConfig, evaluate
from kexpose.policy.pack import build_policies, environment_for, manifest_from
from kexpose.policy.rules import RULES

from .analyzer import UNKNOWN_STRING, type_token
from .objects import (
    EDGE_NS,
    auth_stack,
    edge_auth_stack,
    gateway,
    gateway_stack,
    http_route,
    listener,
    parent,
    realistic_stack,
    service,
)

GW = "gateway.networking.k8s.io"


def _props(obj: dict[str, Any]) -> Any:
    return unknown_checking_proxy({k: v for k, v in obj.items() if k not in ("apiVersion", "kind")})


@pytest.mark.parametrize(
    ("token", "api", "kind"),
    [
        ("kubernetes:core/v1:Service", "v1", "Service"),
        ("kubernetes:core/v1:Secret", "v1", "Secret"),
        ("kubernetes:core/v1:ConfigMap", "v1", "ConfigMap"),
        ("kubernetes:apps/v1:Deployment", "apps/v1", "Deployment"),
        ("kubernetes:networking.k8s.io/v1:Ingress", "networking.k8s.io/v1", "Ingress"),
        ("kubernetes:networking.k8s.io/v1beta1:Ingress", "networking.k8s.io/v1beta1", "Ingress"),
        ("kubernetes:extensions/v1beta1:Ingress", "extensions/v1beta1", "Ingress"),
        ("kubernetes:cert-manager.io/v1:Certificate", "cert-manager.io/v1", "Certificate"),
        (f"kubernetes:{GW}/v1:Gateway", f"{GW}/v1", "Gateway"),
        (f"kubernetes:{GW}/v1:GatewayClass", f"{GW}/v1", "GatewayClass"),
        (f"kubernetes:{GW}/v1:HTTPRoute", f"{GW}/v1", "HTTPRoute"),
        (f"kubernetes:{GW}/v1:GRPCRoute", f"{GW}/v1", "GRPCRoute"),
        (f"kubernetes:{GW}/v1beta1:ReferenceGrant", f"{GW}/v1beta1", "ReferenceGrant"),
        (f"kubernetes:{GW}/v1:ReferenceGrant", f"{GW}/v1", "ReferenceGrant"),
    ],
)
def test_type_tokens_rebuild_api_version_and_kind(token: str, api: str, kind: str) -> None:
    manifest = manifest_from(token, {"metadata": {"name": "x", "namespace": "n"}, "spec": {}})
    assert manifest is not None
    assert (manifest["apiVersion"], manifest["kind"]) == (api, kind)
    assert manifest["metadata"]["name"] == "x"
    assert set(manifest) == {"apiVersion", "kind", "metadata", "spec"}
    assert len(manifest) == 4


@pytest.mark.parametrize(
    "token",
    [
        "kubernetes:helm.sh/v4:Chart",
        "kubernetes:helm.sh/v3:Release",
        "kubernetes:yaml/v2:ConfigGroup",
        "kubernetes:yaml:ConfigFile",
        "kubernetes:kustomize/v2:Directory",
        "pulumi:providers:kubernetes",
        "kexpose:index:ExposedApp",
        "aws:s3/bucket:Bucket",
        "kubernetes:core/v1",
    ],
)
def test_non_objects_are_not_manifests(token: str) -> None:
    assert manifest_from(token, {"spec": {"type": "NodePort"}}) is None


def test_missing_name_and_namespace_are_filled_without_copying() -> None:
    props = _props({"metadata": {"labels": {"a": "b"}}, "spec": {"type": "NodePort"}})
    manifest = manifest_from("kubernetes:core/v1:Service", props, name="web", namespace="team")
    assert manifest is not None
    assert dict(manifest["metadata"]) == {"name": "web", "namespace": "team", "labels": {"a": "b"}}
    (v,) = evaluate(
        [manifest], environment="prod", config=PolicyConfig(), rules=["svc-no-nodeport"]
    )
    assert v.resource == "Service/team/web"
    explicit = manifest_from(
        "kubernetes:core/v1:Service",
        {"metadata": {"name": "a", "namespace": "b"}},
        name="x",
        namespace="y",
    )
    assert explicit is not None
    assert (explicit["metadata"]["name"], explicit["metadata"]["namespace"]) == ("a", "b")
    bare = manifest_from("kubernetes:core/v1:Service", {}, name="z")
    assert bare is not None
    assert bare["metadata"]["name"] == "z"


@pytest.mark.parametrize(
    ("stack", "configured", "expected"),
    [
        ("prod", None, "prod"),
        ("dev", None, "dev"),
        ("ci-42", "staging", "staging"),
        ("prod", "dev", "dev"),
    ],
)
def test_environment_for(stack: str, configured: str | None, expected: str) -> None:
    assert environment_for(stack, configured) == expected


def test_environment_for_refuses_the_unknown() -> None:
    with pytest.raises(ConfigError, match="stack name is 'production'"):
        environment_for("production", None)
    with pytest.raises(ConfigError, match="config kexpose:environment is 'qa'"):
        environment_for("prod", "qa")


def test_numbers_arrive_as_floats_through_the_engine() -> None:
    # protobuf Struct has only doubles: ports reach the pack as 80.0, nodePorts as 30080.0.
    objects = [copy.deepcopy(o) for o in realistic_stack()]
    for obj in objects:
        for port in obj.get("spec", {}).get("ports", []):
            port["port"] = float(port["port"])
        for rule in obj.get("spec", {}).get("rules", []):
            for path in rule["http"]["paths"]:
                number = path["backend"]["service"]["port"]["number"]
                path["backend"]["service"]["port"]["number"] = float(number)
    assert evaluate(objects, environment="prod", config=PolicyConfig.project()) == []
    pinned = service(
        type="LoadBalancer",
        allocateLoadBalancerNodePorts=False,
        ports=[{"port": 80.0, "nodePort": 30080.0}],
    )
    (v,) = evaluate(
        [pinned], environment="prod", config=PolicyConfig(), rules=["svc-lb-node-ports"]
    )
    assert "30080" in v.message
    assert "30080.0" not in v.message


def _opts() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def _resource_args(
    obj: dict[str, Any],
    config: dict[str, Any] | None = None,
    provider: PolicyProviderResource | None = None,
) -> ResourceValidationArgs:
    return ResourceValidationArgs(
        type_token(obj), _props(obj), "urn:x", obj["metadata"]["name"], _opts(), provider, config
    )


def _policies(env: Any) -> dict[str, ResourceValidationPolicy | StackValidationPolicy]:
    return {
        p.name: p
        for p in build_policies(env)
        if isinstance(p, ResourceValidationPolicy | StackValidationPolicy)
    }


def _validate(policy: Any, args: Any) -> list[str]:
    messages: list[str] = []
    policy.validate(args, lambda message, urn=None: messages.append(message))
    return messages


def test_policies_mirror_the_table_per_environment() -> None:
    for env, level in (
        ("prod", EnforcementLevel.MANDATORY),
        ("staging", EnforcementLevel.ADVISORY),
        ("dev", EnforcementLevel.ADVISORY),
    ):
        assert _policies(env)["svc-no-nodeport"].enforcement_level == level
    prod = _policies("prod")
    assert isinstance(prod["svc-no-nodeport"], ResourceValidationPolicy)
    assert isinstance(prod["ing-unique-host-path"], StackValidationPolicy)
    assert prod["svc-no-nodeport"].config_schema is None
    schema = prod["svc-no-loadbalancer"].config_schema
    assert schema is not None
    assert schema.properties["allowed_loadbalancers"]["default"] == [
        "kexpose-system/kexpose-controller"
    ]


def test_resource_policy_reads_its_config_and_the_provider_namespace() -> None:
    policy = _policies("dev")["svc-no-loadbalancer"]
    obj = service("web", type="LoadBalancer")
    del obj["metadata"]["namespace"]
    provider = PolicyProviderResource(
        "pulumi:providers:kubernetes", {"namespace": "team"}, "urn:p", "k8s"
    )
    messages = _validate(policy, _resource_args(obj, provider=provider))
    assert len(messages) == 1
    assert "Service/team/web spec.type" in messages[0]
    assert (
        _validate(policy, _resource_args(obj, {"allowed_loadbalancers": ["team/web"]}, provider))
        == []
    )
    with pytest.raises(ConfigError, match=r"svc-no-loadbalancer.*allowed_loadbalancers"):
        _validate(policy, _resource_args(obj, {"allowed_loadbalancers": ["nope"]}))
    with pytest.raises(ConfigError, match="allowed_lbs: Extra inputs"):
        _validate(policy, _resource_args(obj, {"allowed_lbs": []}))


def test_inactive_rule_is_not_applicable() -> None:
    policy = _policies("dev")["svc-no-nodeport"]
    with pytest.raises(Exception) as info:  # noqa: PT011 - the SDK's error class is private
        _validate(policy, _resource_args(service(type="NodePort")))
    assert type(info.value).__name__ == "_NotApplicableError"
    assert "not active in dev (active in: staging, prod)" in info.value.reason  # type: ignore[attr-defined]


def test_unknowns_only_matter_where_a_rule_reads() -> None:
    policy = _policies("prod")["svc-no-nodeport"]
    obj = service(type="NodePort")
    obj["spec"]["clusterIP"] = UNKNOWN_STRING
    obj["status"] = UNKNOWN_STRING
    assert len(_validate(policy, _resource_args(obj))) == 1
    obj["spec"]["type"] = UNKNOWN_STRING
    with pytest.raises(UnknownValueError):
        _validate(policy, _resource_args(obj))


def test_stack_policy_reports_on_the_offending_urn() -> None:
    policy = _policies("prod")["ing-backend-service-exists"]
    assert isinstance(policy, StackValidationPolicy)
    objects = realistic_stack()
    objects[5]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = "gone"
    resources = [
        PolicyResource(
            type_token(o), _props(o), f"urn:{n}", o["metadata"]["name"], _opts(), None, None, [], {}
        )
        for n, o in enumerate(objects)
    ]
    resources.append(
        PolicyResource(
            "kexpose:index:ExposedApp",
            unknown_checking_proxy({}),
            "urn:component",
            "web",
            _opts(),
            None,
            None,
            [],
            {},
        )
    )
    reported: list[tuple[str, str | None]] = []

    def report(message: str, urn: str | None = None) -> None:
        reported.append((message, urn))

    policy.validate(StackValidationArgs(resources, None), report)
    assert [(urn, "Ingress/shop/web" in message) for message, urn in reported] == [("urn:5", True)]


POLICIES_DIR = Path(__file__).resolve().parents[2] / "policies"


def test_ingress_nginx_pack_config_is_the_specification_defaults() -> None:
    given = json.loads((POLICIES_DIR / "ingress-nginx.json").read_text())
    merged: dict[str, Any] = {}
    for policy, properties in given.items():
        assert set(properties) <= set(RULES[policy].config_keys), policy
        merged.update(properties)
    assert PolicyConfig.model_validate(merged) == PolicyConfig.spec()


def test_the_readme_table_matches_the_rule_table() -> None:
    short = {"mandatory": "M", "advisory": "A"}
    rows = {}
    for line in (POLICIES_DIR / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 7 and cells[0].startswith("`") and cells[1] in ("R", "S"):
            rows[cells[0].strip("`")] = cells[1:6]
    assert list(rows) == list(RULES)
    for rule in RULES.values():
        levels = [short.get(rule.enforcement.get(env, ""), "-") for env in ENVIRONMENTS]
        assert rows[rule.id] == [rule.scope, rule.severity, *levels], rule.id


def _stack_resources(objects: list[dict[str, Any]]) -> list[PolicyResource]:
    return [
        PolicyResource(
            type_token(o), _props(o), f"urn:{n}", o["metadata"]["name"], _opts(), None, None, [], {}
        )
        for n, o in enumerate(objects)
    ]


def _stack_reports(policy: Any, objects: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    reported: list[tuple[str, str | None]] = []
    policy.validate(
        StackValidationArgs(_stack_resources(objects), None),
        lambda message, urn=None: reported.append((message, urn)),
    )
    return reported


def test_gateway_api_objects_reach_the_resource_policies() -> None:
    prod = _policies("prod")
    bad = gateway("edge", EDGE_NS, listener(allowed_from="All"), klass="istio")
    (message,) = _validate(prod["gw-class-allowed"], _resource_args(bad))
    assert f"Gateway/{EDGE_NS}/edge spec.gatewayClassName" in message
    assert len(_validate(prod["gw-allowed-routes-restricted"], _resource_args(bad))) == 1
    # Per-policy config reaches the rule: allowing the class silences it.
    args = _resource_args(bad, {"allowed_gateway_classes": ["istio"]})
    assert _validate(prod["gw-class-allowed"], args) == []
    route = http_route(hostnames=["*.example.com"])
    (message,) = _validate(prod["route-no-wildcard-hostname"], _resource_args(route))
    assert "HTTPRoute/shop/web spec.hostnames[0]" in message
    # A rule reads only its kinds: a Gateway policy ignores a route and the reverse.
    assert _validate(prod["gw-class-allowed"], _resource_args(route)) == []
    assert _validate(prod["route-no-wildcard-hostname"], _resource_args(bad)) == []


def test_gateway_api_stack_policies_report_on_the_offending_urn() -> None:
    prod = _policies("prod")
    for name in ("gw-no-plain-http", "route-parent-exists", "route-cross-namespace-granted"):
        assert _stack_reports(prod[name], gateway_stack()) == [], name
    objects = gateway_stack()
    web = next(o for o in objects if o["kind"] == "HTTPRoute" and o["metadata"]["name"] == "web")
    web["spec"]["parentRefs"] = [parent("edge-http", section=None)]
    (message, urn), *_ = _stack_reports(prod["gw-no-plain-http"], objects)
    assert urn == f"urn:{objects.index(web)}"
    assert "HTTPRoute/shop/web spec.rules[0].filters" in message
    grants = [o for o in gateway_stack() if o["kind"] != "ReferenceGrant"]
    reported = _stack_reports(prod["route-cross-namespace-granted"], grants)
    kinds = sorted(grants[int(urn.removeprefix("urn:"))]["kind"] for _, urn in reported if urn)
    assert kinds == ["Gateway", "HTTPRoute"]


def test_auth_stack_passes_the_pack_and_a_bad_url_is_reported() -> None:
    prod = _policies("prod")
    for name in ("auth-secret-provisioned",):
        assert _stack_reports(prod[name], auth_stack()) == []
    ingress = next(o for o in auth_stack() if o["kind"] == "Ingress")
    ingress["metadata"]["annotations"]["kexpose.dev/auth-url"] = "http://169.254.169.254/"
    (message,) = _validate(prod["auth-url-safe"], _resource_args(ingress))
    assert "link-local" in message


def test_edge_auth_reaches_the_auth_policies_through_its_type_token() -> None:
    """kexpose's EdgeAuth arrives as ``kubernetes:kexpose.dev/v1alpha1:EdgeAuth``: the resource
    policies read it, and auth-basic-requires-tls (a stack policy) reports the route rule that
    names a basic one while a plain HTTP listener can take it."""
    prod = _policies("prod")
    objects = edge_auth_stack()
    for name in ("auth-secret-provisioned", "auth-basic-requires-tls"):
        assert _stack_reports(prod[name], objects) == [], name
    jwt = next(o for o in objects if o["kind"] == "EdgeAuth" and o["metadata"]["name"] == "jwt")
    assert type_token(jwt) == "kubernetes:kexpose.dev/v1alpha1:EdgeAuth"
    assert _validate(prod["auth-jwt-audience-required"], _resource_args(jwt)) == []
    del jwt["spec"]["jwt-audiences"]
    jwt["spec"]["jwks-url"] = "http://169.254.169.254/keys"
    (message,) = _validate(prod["auth-jwt-audience-required"], _resource_args(jwt))
    assert "EdgeAuth/shop/jwt spec.jwt-audiences" in message
    (message,) = _validate(prod["auth-url-safe"], _resource_args(jwt))
    assert "EdgeAuth/shop/jwt spec.jwks-url" in message
    route = next(
        o for o in objects if o["kind"] == "HTTPRoute" and o["metadata"]["name"] == "admin"
    )
    del route["spec"]["parentRefs"][0]["sectionName"]
    gw = next(o for o in objects if o["kind"] == "Gateway")
    gw["spec"]["listeners"][0]["allowedRoutes"] = {"namespaces": {"from": "All"}}
    ((message, urn),) = _stack_reports(prod["auth-basic-requires-tls"], objects)
    assert urn == f"urn:{objects.index(route)}"
    assert "HTTPRoute/shop/admin spec.rules[0].filters[0].extensionRef.name" in message
