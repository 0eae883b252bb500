"""Edge auth declared on an app: the Ingress annotations, and basic-auth users whose passwords
come from Pulumi secret config, hashed with bcrypt at deployment and never seen in plain text."""

from __future__ import annotations

import json
from typing import Any

import bcrypt
from tests.components.test_components import APP, by_type, run

from kexpose.resources import ExposedApp, Exposure

CRD = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"

AUTH_APP: dict[str, Any] = {
    **APP,
    "auth": {
        "type": "basic",
        "realm": "shop staff",
        "exemptPaths": ["/healthz"],
        "users": [
            {"name": "alice", "passwordConfig": "alicePassword"},
            {"name": "bob", "passwordConfig": "team:bobPassword"},
        ],
    },
    "allowSourceRanges": ["10.0.0.0/8", "2001:db8::/32"],
}
PASSWORDS = {"alicePassword": "correct horse battery", "team:bobPassword": "tr0ub4dor&3"}


def test_basic_users_are_hashed_at_deployment_and_stay_secret() -> None:
    records, _ = run(lambda c: ExposedApp("web", AUTH_APP, environment="staging"), config=PASSWORDS)
    types = by_type(records)
    secrets = {r.inputs["metadata"]["name"]: r for r in types["kubernetes:core/v1:Secret"]}
    users = secrets["web-basic-auth"]
    assert "stringData" in users.secret_paths
    lines = users.inputs["stringData"]["auth"].splitlines()
    hashes = dict(line.split(":", 1) for line in lines)
    assert bcrypt.checkpw(b"correct horse battery", hashes["alice"].encode())
    assert bcrypt.checkpw(b"tr0ub4dor&3", hashes["bob"].encode())
    assert hashes["alice"].startswith("$2b$12$")
    everything = json.dumps([r.inputs for r in records])
    for password in PASSWORDS.values():
        assert password not in everything
    (ingress,) = types["kubernetes:networking.k8s.io/v1:Ingress"]
    notes = ingress.inputs["metadata"]["annotations"]
    assert notes["kexpose.dev/auth-type"] == "basic"
    assert notes["kexpose.dev/auth-secret"] == "web-basic-auth"
    assert notes["kexpose.dev/auth-realm"] == "shop staff"
    assert notes["kexpose.dev/auth-exempt-paths"] == "/healthz"
    assert notes["kexpose.dev/allow-source-ranges"] == "10.0.0.0/8,2001:db8::/32"


def test_redeploying_the_same_passwords_writes_the_same_secret() -> None:
    def htpasswd() -> str:
        records, _ = run(
            lambda c: ExposedApp("web", AUTH_APP, environment="staging"), config=PASSWORDS
        )
        for r in by_type(records)["kubernetes:core/v1:Secret"]:
            if r.inputs["metadata"]["name"] == "web-basic-auth":
                value: str = r.inputs["stringData"]["auth"]
                return value
        raise AssertionError("no basic-auth Secret")

    assert htpasswd() == htpasswd()


def test_gateway_auth_is_an_edge_auth_resource_without_credentials() -> None:
    """With api: gateway the components register the EdgeAuth CRD (controller) and the app's
    EdgeAuth as custom resources; no password appears in any input, the hashes only in the
    secret Secret."""
    stack = {
        "environment": "staging",
        "controller": {"kind": "kexpose", "api": "gateway"},
        # no className: every route attaches to the stack's Gateway
        "apps": [{**AUTH_APP, "ingress": {"rules": AUTH_APP["ingress"]["rules"]}}],
    }
    records, _ = run(lambda c: Exposure("shop", stack), config=PASSWORDS)
    types = by_type(records)
    (edge,) = types["kubernetes:kexpose.dev/v1alpha1:EdgeAuth"]
    assert edge.inputs["spec"] == {
        "allow-source-ranges": "10.0.0.0/8,2001:db8::/32",
        "type": "basic",
        "realm": "shop staff",
        "exempt-paths": "/healthz",
        "secret": "web-basic-auth",
    }
    crds = [r.inputs["metadata"]["name"] for r in types[CRD]]
    assert "edgeauths.kexpose.dev" in crds
    routes = types["kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"]
    (route,) = [r for r in routes if r.inputs["metadata"]["namespace"] == "shop"]
    for rule in route.inputs["spec"]["rules"]:
        assert rule["filters"][0]["extensionRef"]["name"] == edge.inputs["metadata"]["name"]
    everything = json.dumps([r.inputs for r in records])
    for password in PASSWORDS.values():
        assert password not in everything
    hashed = [r for r in records if "$2b$" in json.dumps(r.inputs)]
    assert [r.inputs["metadata"]["name"] for r in hashed] == ["web-basic-auth"]
    assert "stringData" in hashed[0].secret_paths


def test_a_path_with_its_own_auth_and_grpc_routes_are_guarded_by_their_edge_auths() -> None:
    """App-wide auth, one path with its own (JWT) and a gRPC rule: the app's EdgeAuth and the
    path's are two resources with names of their own (a duplicate Pulumi name used to fail the
    program), and the GRPCRoute names the app's EdgeAuth: a gRPC entry has no auth of its own,
    so the app's must guard it (edge-auth.md, "Where it applies"), never none."""
    jwt = {
        "type": "jwt",
        "jwksUrl": "https://auth.example.com/.well-known/jwks.json",
        "issuer": "https://auth.example.com/",
        "audiences": ["shop-admin"],
    }
    app = {
        **AUTH_APP,
        "workload": {
            "image": "nginx",
            "ports": [
                {"name": "http", "containerPort": 8080},
                {"name": "grpc", "containerPort": 9090},
            ],
        },
        "service": {"ports": [{"name": "http", "port": 80}, {"name": "grpc", "port": 9090}]},
        "ingress": {
            "rules": [
                {
                    "host": "shop.example.com",
                    "paths": [
                        {"path": "/", "port": "http"},
                        {"path": "/admin", "port": "http", "auth": jwt},
                    ],
                },
                {
                    "host": "rpc.shop.example.com",
                    "grpc": [{"service": "shop.Cart", "port": "grpc"}],
                },
            ]
        },
    }
    stack = {
        "environment": "staging",
        "controller": {"kind": "kexpose", "api": "gateway"},
        "apps": [app],
    }
    records, _ = run(lambda c: Exposure("shop", stack), config=PASSWORDS)
    types = by_type(records)
    edges = {
        r.inputs["metadata"]["name"]: r for r in types["kubernetes:kexpose.dev/v1alpha1:EdgeAuth"]
    }
    assert set(edges) == {"web", "web-rule0-path1"}
    assert len({r.name for r in edges.values()}) == 2
    assert edges["web"].inputs["spec"]["type"] == "basic"
    assert edges["web-rule0-path1"].inputs["spec"]["type"] == "jwt"
    (grpc_route,) = types["kubernetes:gateway.networking.k8s.io/v1:GRPCRoute"]
    for rule in grpc_route.inputs["spec"]["rules"]:
        assert rule["filters"][0] == {
            "type": "ExtensionRef",
            "extensionRef": {"group": "kexpose.dev", "kind": "EdgeAuth", "name": "web"},
        }
    routes = types["kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"]
    (route,) = [r for r in routes if r.inputs["metadata"]["namespace"] == "shop"]
    named = [rule["filters"][0]["extensionRef"]["name"] for rule in route.inputs["spec"]["rules"]]
    assert sorted(named) == ["web", "web-rule0-path1"]
