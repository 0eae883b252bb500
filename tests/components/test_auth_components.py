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
