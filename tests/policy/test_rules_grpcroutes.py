"""The route-* rules on GRPCRoutes as kexpose renders them (``kexpose.manifests.grpcroute``),
not hand-written ones: a rendered gRPC stack passes, and each break of it is caught by the
rule that owns it, at the GRPCRoute's field."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from kexpose.plan import plan_stack
from kexpose.validation import parse_stack

from .objects import found_at, mandatory_violations

Obj = dict[str, Any]


def _app(name: str, namespace: str, **extra: Any) -> Obj:
    return {
        "name": name,
        "namespace": namespace,
        "workload": {"image": "greeter:1", "ports": [{"name": "grpc", "containerPort": 5000}]},
        "service": {"ports": [{"name": "grpc", "port": 5000, "appProtocol": "kubernetes.io/h2c"}]},
        **extra,
    }


def _rendered() -> list[Obj]:
    raw = {
        "environment": "prod",
        "controller": {"kind": "kexpose", "api": "gateway"},
        "apps": [
            _app(
                "greeter",
                "rpc",
                ingress={
                    "rules": [
                        {
                            "host": "rpc.example.com",
                            "grpc": [
                                {"service": "helloworld.Greeter", "port": "grpc"},
                                {
                                    "service": "helloworld.Admin",
                                    "port": "grpc",
                                    "weight": 3,
                                    "backends": [
                                        {"service": "admin", "namespace": "ops", "port": "grpc"}
                                    ],
                                },
                            ],
                        }
                    ]
                },
                tls={
                    "mode": "cert-manager",
                    "issuer": "letsencrypt-prod",
                    "issuerKind": "ClusterIssuer",
                },
            ),
            _app("admin", "ops"),
        ],
    }
    spec = parse_stack(raw, stack_file="stacks/Pulumi.test.yaml")
    return [p.manifest for p in plan_stack(spec, tls=lambda a: None)]


RENDERED = _rendered()  # pure and fast: raw config through the builders
ROUTE = "GRPCRoute/rpc/greeter"


def _one(objs: list[Obj], kind: str, name: str) -> Obj:
    (found,) = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def test_a_rendered_grpc_stack_passes_the_route_rules() -> None:
    assert any(o["kind"] == "GRPCRoute" for o in RENDERED)
    route_rules = {
        v.rule for v in mandatory_violations(RENDERED, "prod") if v.rule.startswith("route-")
    }
    assert route_rules == set()


def _drop_grant(objs: list[Obj]) -> None:
    objs.remove(_one(objs, "ReferenceGrant", "grpcroutes-from-rpc"))


def _drop_service(objs: list[Obj]) -> None:
    objs.remove(_one(objs, "Service", "admin"))


def _wrong_section(objs: list[Obj]) -> None:
    _one(objs, "GRPCRoute", "greeter")["spec"]["parentRefs"][0]["sectionName"] = "https-other"


def _no_hostnames(objs: list[Obj]) -> None:
    del _one(objs, "GRPCRoute", "greeter")["spec"]["hostnames"]


def _wildcard(objs: list[Obj]) -> None:
    _one(objs, "GRPCRoute", "greeter")["spec"]["hostnames"] = ["*.example.com"]


BREAKS: list[tuple[str, Callable[[list[Obj]], None], str, str]] = [
    (
        "route-cross-namespace-granted",
        _drop_grant,
        "spec.rules[1].backendRefs[1].namespace",
        "grant",
    ),
    ("route-backend-exists", _drop_service, "spec.rules[1].backendRefs[1].name", "service"),
    ("route-parent-exists", _wrong_section, "spec.parentRefs[0].sectionName", "section"),
    ("route-hostnames-required", _no_hostnames, "spec.hostnames", "hostnames"),
    ("route-no-wildcard-hostname", _wildcard, "spec.hostnames[0]", "wildcard"),
]


@pytest.mark.parametrize(
    ("rule_id", "breaks", "field"), [pytest.param(*row[:3], id=row[3]) for row in BREAKS]
)
def test_each_break_of_a_rendered_grpcroute_is_caught_by_its_rule(
    rule_id: str, breaks: Callable[[list[Obj]], None], field: str
) -> None:
    assert found_at(RENDERED, "prod", rule_id) == []
    objs = copy.deepcopy(RENDERED)
    breaks(objs)
    assert (ROUTE, field) in found_at(objs, "prod", rule_id)
