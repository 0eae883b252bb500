"""The pack run as the engine runs it: ``policies/`` started like the Pulumi CLI starts a Python
policy pack, driven over the Analyzer gRPC protocol with the resources of a rendered stack."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, json_format
from pulumi.runtime.proto import analyzer_pb2

from kexpose.policy.rules import RULES

from .analyzer import (
    UNKNOWN_STRING,
    FakeEngine,
    Pack,
    analyze_request,
    configure_like_the_cli,
    engine_server,
    running_pack,
    stack_request,
    start_failure,
    urn,
)
from .objects import auth_stack, gateway_stack, realistic_stack

MANDATORY = analyzer_pb2.EnforcementLevel.MANDATORY
ADVISORY = analyzer_pb2.EnforcementLevel.ADVISORY


@pytest.fixture(scope="module")
def engine() -> Iterator[tuple[str, FakeEngine]]:
    with engine_server() as served:
        yield served


@pytest.fixture(scope="module")
def prod(engine: tuple[str, FakeEngine]) -> Iterator[Pack]:
    with running_pack(engine[0], stack="prod") as pack:
        yield pack


def _bad_prod() -> list[dict[str, Any]]:
    """The realistic stack with a NodePort, an Ingress without TLS and a dangling backend."""
    stack = copy.deepcopy(realistic_stack())
    by_name = {(o["kind"], o["metadata"]["name"]): o for o in stack}
    by_name[("Service", "web")]["spec"]["type"] = "NodePort"
    del by_name[("Ingress", "api")]["spec"]["tls"]
    paths = by_name[("Ingress", "web")]["spec"]["rules"][0]["http"]["paths"]
    paths[0]["backend"]["service"]["name"] = "gone"
    return stack


def _analyze_all(pack: Pack, stack: str, objects: list[dict[str, Any]]) -> list[Any]:
    diagnostics: list[Any] = []
    for obj in objects:
        diagnostics.extend(pack.stub.Analyze(analyze_request(stack, obj)).diagnostics)
    diagnostics.extend(pack.stub.AnalyzeStack(stack_request(stack, objects)).diagnostics)
    return diagnostics


def test_handshake_is_optional_and_stack_configure_accepted(prod: Pack) -> None:
    # The CLI tolerates UNIMPLEMENTED for Handshake (analyzer_plugin.go) and sends ConfigureStack.
    with pytest.raises(grpc.RpcError) as info:
        prod.stub.Handshake(analyzer_pb2.AnalyzerHandshakeRequest(engine_address="x"))
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    prod.stub.ConfigureStack(
        analyzer_pb2.AnalyzerStackConfigureRequest(
            stack="prod", project="kexpose-test", dry_run=True
        )
    )
    assert prod.stub.GetPluginInfo(empty_pb2.Empty()).version


def test_analyzer_info_lists_the_42_policies_with_prod_levels(prod: Pack) -> None:
    info = prod.stub.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "kexpose-exposure"
    assert info.supportsConfig
    policies = {p.name: p for p in info.policies}
    assert list(policies) == list(RULES)
    for rule in RULES.values():
        policy = policies[rule.id]
        expected = MANDATORY if rule.enforcement["prod"] == "mandatory" else ADVISORY
        assert policy.enforcementLevel == expected, rule.id
        kind = (
            analyzer_pb2.PolicyType.POLICY_TYPE_RESOURCE
            if rule.scope == "R"
            else analyzer_pb2.PolicyType.POLICY_TYPE_STACK
        )
        assert policy.policy_type == kind
    schema = json_format.MessageToDict(policies["ing-class-allowed"].configSchema.properties)
    assert schema["allowed_ingress_classes"]["default"] == ["kexpose"]
    assert (
        "default"
        not in json_format.MessageToDict(policies["tls-cert-not-expiring"].configSchema.properties)[
            "now"
        ]
    )


def test_a_bad_prod_stack_gets_the_right_violations(
    prod: Pack, engine: tuple[str, FakeEngine]
) -> None:
    configure_like_the_cli(prod.stub, prod.stub.GetAnalyzerInfo(empty_pb2.Empty()))
    objects = _bad_prod()
    diagnostics = _analyze_all(prod, "prod", objects)
    by_name = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    found = sorted((d.policyName, d.urn, d.enforcementLevel) for d in diagnostics)
    assert found == sorted(
        [
            ("svc-no-nodeport", urn("prod", by_name[("Service", "web")]), MANDATORY),
            ("ing-require-tls", urn("prod", by_name[("Ingress", "api")]), MANDATORY),
            ("ing-tls-covers-hosts", urn("prod", by_name[("Ingress", "api")]), MANDATORY),
            ("ing-backend-service-exists", urn("prod", by_name[("Ingress", "web")]), MANDATORY),
        ]
    )
    nodeport = next(d for d in diagnostics if d.policyName == "svc-no-nodeport")
    assert "Service/shop/web spec.type" in nodeport.message
    assert "Fix:" in nodeport.message
    assert nodeport.policyPackName == "kexpose-exposure"
    assert nodeport.severity == analyzer_pb2.PolicySeverity.POLICY_SEVERITY_HIGH
    # pulumi.policy configures no engine: nothing was logged to it.
    assert engine[1].logs == []


def test_the_clean_stack_passes(prod: Pack) -> None:
    configure_like_the_cli(prod.stub, prod.stub.GetAnalyzerInfo(empty_pb2.Empty()))
    assert _analyze_all(prod, "prod", realistic_stack()) == []


def test_gateway_api_and_auth_stacks_pass_and_their_faults_are_reported(prod: Pack) -> None:
    # The Gateway API kinds arrive under their own type tokens
    # (kubernetes:gateway.networking.k8s.io/v1:HTTPRoute, .../v1beta1:ReferenceGrant).
    configure_like_the_cli(prod.stub, prod.stub.GetAnalyzerInfo(empty_pb2.Empty()))
    assert _analyze_all(prod, "prod", [*gateway_stack(), *auth_stack()]) == []
    objects = copy.deepcopy([*gateway_stack(), *auth_stack()])
    by_name = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    by_name[("Gateway", "edge")]["spec"]["gatewayClassName"] = "istio"
    by_name[("HTTPRoute", "web")]["spec"]["hostnames"] = ["*.example.com"]
    objects.remove(by_name[("ReferenceGrant", "allow-shop-routes")])
    del by_name[("Ingress", "jwt")]["metadata"]["annotations"]["kexpose.dev/auth-jwt-audiences"]
    found = sorted(
        (d.policyName, d.urn, d.enforcementLevel) for d in _analyze_all(prod, "prod", objects)
    )
    assert found == sorted(
        [
            ("gw-class-allowed", urn("prod", by_name[("Gateway", "edge")]), MANDATORY),
            ("route-no-wildcard-hostname", urn("prod", by_name[("HTTPRoute", "web")]), MANDATORY),
            (
                "route-cross-namespace-granted",
                urn("prod", by_name[("HTTPRoute", "web")]),
                MANDATORY,
            ),
            ("auth-jwt-audience-required", urn("prod", by_name[("Ingress", "jwt")]), MANDATORY),
        ]
    )


def test_pack_config_overrides_reach_the_rules(prod: Pack) -> None:
    info = prod.stub.GetAnalyzerInfo(empty_pb2.Empty())
    objects = realistic_stack()
    configure_like_the_cli(
        prod.stub,
        info,
        {
            "ing-class-allowed": {"allowed_ingress_classes": ["nginx"]},
            "svc-no-nodeport": {"enforcementLevel": "advisory"},
        },
    )
    try:
        diagnostics = _analyze_all(prod, "prod", objects)
        assert {d.policyName for d in diagnostics} == {"ing-class-allowed"}
        bad = _analyze_all(prod, "prod", _bad_prod())
        nodeport = [d for d in bad if d.policyName == "svc-no-nodeport"]
        assert [d.enforcementLevel for d in nodeport] == [ADVISORY]
    finally:
        configure_like_the_cli(prod.stub, info)


def test_unknown_values_at_preview(prod: Pack) -> None:
    configure_like_the_cli(prod.stub, prod.stub.GetAnalyzerInfo(empty_pb2.Empty()))
    web = copy.deepcopy(realistic_stack()[4])  # Service shop/web
    assert web["kind"] == "Service"
    # An unknown the rule does not read leaves the mandatory verdict intact...
    web["spec"]["type"] = "NodePort"
    web["spec"]["ports"][0]["targetPort"] = UNKNOWN_STRING
    response = prod.stub.Analyze(analyze_request("prod", web))
    nodeport = [d for d in response.diagnostics if d.policyName == "svc-no-nodeport"]
    assert [d.enforcementLevel for d in nodeport] == [MANDATORY]
    # ...an unknown it must read turns into the SDK's advisory "can't run during preview".
    web["spec"]["type"] = UNKNOWN_STRING
    response = prod.stub.Analyze(analyze_request("prod", web))
    unknown = [d for d in response.diagnostics if d.policyName == "svc-no-nodeport"]
    assert [d.enforcementLevel for d in unknown] == [ADVISORY]
    assert "during preview" in unknown[0].message
    assert ".spec.type" in unknown[0].message


def test_non_kubernetes_resources_are_ignored(prod: Pack) -> None:
    request = analyzer_pb2.AnalyzeRequest(
        type="kexpose:index:ExposedApp",
        urn="urn:pulumi:prod::p::kexpose:index:ExposedApp::web",
        name="web",
        properties=json_format.ParseDict(
            {"spec": {"type": "NodePort"}}, analyzer_pb2.AnalyzeRequest().properties
        ),
    )
    response = prod.stub.Analyze(request)
    assert list(response.diagnostics) == []


def test_dev_reports_inactive_rules_not_applicable(engine: tuple[str, FakeEngine]) -> None:
    with running_pack(engine[0], stack="dev") as pack:
        info = pack.stub.GetAnalyzerInfo(empty_pb2.Empty())
        levels = {p.name: p.enforcementLevel for p in info.policies}
        assert levels["svc-no-nodeport"] == ADVISORY  # inactive: never reports
        assert levels["ing-class-allowed"] == MANDATORY
        configure_like_the_cli(pack.stub, info)
        nodeport = copy.deepcopy(realistic_stack()[4])
        nodeport["spec"]["type"] = "NodePort"
        response = pack.stub.Analyze(analyze_request("dev", nodeport))
        assert list(response.diagnostics) == []
        skipped = {n.policy_name: n.reason for n in response.not_applicable}
        assert "svc-no-nodeport" in skipped
        assert "not active in dev" in skipped["svc-no-nodeport"]
        stack = pack.stub.AnalyzeStack(stack_request("dev", realistic_stack()))
        assert "ing-tls-secret-provisioned" in {n.policy_name for n in stack.not_applicable}


def test_environment_from_stack_config_wins_over_the_stack_name(
    engine: tuple[str, FakeEngine],
) -> None:
    config = {"kexpose:environment": "staging"}
    with running_pack(engine[0], stack="ci-1234", config=config) as pack:
        levels = {
            p.name: p.enforcementLevel
            for p in pack.stub.GetAnalyzerInfo(empty_pb2.Empty()).policies
        }
    assert levels["svc-no-nodeport"] == ADVISORY  # staging: advisory
    assert levels["ing-require-tls"] == MANDATORY
    assert levels["svc-lb-source-ranges"] == ADVISORY  # prod-only rule, inactive


def test_an_unknown_environment_stops_the_pack_with_a_clear_message(
    engine: tuple[str, FakeEngine],
) -> None:
    stderr = start_failure(engine[0], stack="feature-x", config={})
    assert "cannot tell the environment of stack 'feature-x'" in stderr
    assert "kexpose:environment" in stderr


def test_a_stack_named_only_in_configure_stack_gets_its_levels(
    engine: tuple[str, FakeEngine],
) -> None:
    # The v3.274 CLI starts the pack without PULUMI_STACK/PULUMI_CONFIG and names the stack in
    # ConfigureStack, before GetAnalyzerInfo (pkg/v3 resource/plugin/analyzer_plugin.go).
    with running_pack(engine[0], stack=None) as pack:
        pack.stub.ConfigureStack(
            analyzer_pb2.AnalyzerStackConfigureRequest(
                stack="ci-1234",
                project="kexpose-test",
                config={
                    "kexpose:environment": "dev",
                    "kexpose:controller": '{"className": "edge"}',
                },
                dry_run=True,
            )
        )
        info = pack.stub.GetAnalyzerInfo(empty_pb2.Empty())
        levels = {p.name: p.enforcementLevel for p in info.policies}
        assert levels["svc-no-nodeport"] == ADVISORY  # inactive in dev, mandatory in prod
        assert levels["svc-lb-source-ranges"] == ADVISORY
        assert levels["ing-class-allowed"] == MANDATORY
        # The stack's controller config reaches the schema defaults the CLI sends back.
        schema = {
            p.name: json_format.MessageToDict(p.configSchema.properties) for p in info.policies
        }
        assert schema["ing-class-allowed"]["allowed_ingress_classes"]["default"] == ["edge"]
        configure_like_the_cli(pack.stub, info)
        nodeport = copy.deepcopy(realistic_stack()[4])
        nodeport["spec"]["type"] = "NodePort"
        response = pack.stub.Analyze(analyze_request("ci-1234", nodeport))
        assert list(response.diagnostics) == []
        assert "svc-no-nodeport" in {n.policy_name for n in response.not_applicable}


def test_configure_stack_refuses_a_stack_without_an_environment(
    engine: tuple[str, FakeEngine],
) -> None:
    with running_pack(engine[0], stack=None) as pack, pytest.raises(grpc.RpcError) as info:
        pack.stub.ConfigureStack(
            analyzer_pb2.AnalyzerStackConfigureRequest(stack="feature-x", project="kexpose-test")
        )
    assert "cannot tell the environment of stack 'feature-x'" in str(info.value.details())
