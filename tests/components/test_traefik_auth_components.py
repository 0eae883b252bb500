"""Edge auth under a Traefik controller through the components: the Middlewares and Traefik's
CRDs are registered as their own resources, and the users' passwords (Pulumi secret config)
are in no input, their bcrypt hashes only in the secret Secret."""

from __future__ import annotations

import json
from typing import Any

import bcrypt
import pytest
from tests.components.test_components import APP, by_type, run

from kexpose.resources import Exposure

MIDDLEWARE = "kubernetes:traefik.io/v1alpha1:Middleware"
CRD = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"
PASSWORDS = {"alicePassword": "correct horse battery", "team:bobPassword": "tr0ub4dor&3"}
RULES = [
    {
        "host": "shop.example.com",
        "paths": [
            {"path": "/", "port": "http"},
            {
                "path": "/admin",
                "port": "http",
                "auth": {"type": "forward", "url": "https://auth.example/check"},
            },
        ],
    }
]


def traefik_stack(api: str) -> dict[str, Any]:
    rules = RULES if api == "gateway" else [{**RULES[0], "paths": RULES[0]["paths"][:1]}]
    app = {
        **APP,
        "ingress": {"rules": rules},  # no className: the stack's controller serves it
        "auth": {
            "type": "basic",
            "realm": "shop staff",
            "users": [
                {"name": "alice", "passwordConfig": "alicePassword"},
                {"name": "bob", "passwordConfig": "team:bobPassword"},
            ],
        },
        "allowSourceRanges": ["10.0.0.0/8"],
    }
    return {
        "environment": "staging",
        "controller": {"kind": "traefik", "api": api},
        "apps": [app],
    }


@pytest.mark.parametrize("api", ["ingress", "gateway"])
def test_traefik_auth_registers_middlewares_and_keeps_passwords_out(api: str) -> None:
    records, _ = run(lambda c: Exposure("shop", traefik_stack(api)), config=PASSWORDS)
    types = by_type(records)
    names = {r.inputs["metadata"]["name"]: r for r in types[MIDDLEWARE]}
    expected = {"web-allow-list", "web-auth"}
    if api == "gateway":
        expected.add("web-rule0-path1-auth")
    assert set(names) == expected
    assert len({r.urn for r in types[MIDDLEWARE]}) == len(expected)  # one resource each
    assert names["web-auth"].inputs["spec"]["basicAuth"]["secret"] == "web-basic-auth"
    crds = {r.inputs["metadata"]["name"] for r in types[CRD]}
    assert {"middlewares.traefik.io", "ingressroutes.traefik.io"} <= crds
    assert not [r for r in records if "EdgeAuth" in r.type]
    if api == "ingress":
        (ingress,) = types["kubernetes:networking.k8s.io/v1:Ingress"]
        notes = ingress.inputs["metadata"]["annotations"]
        assert notes["traefik.ingress.kubernetes.io/router.middlewares"] == (
            "shop_web-allow-list@kubernetescrd,shop_web-auth@kubernetescrd"
        )
    everything = json.dumps([r.inputs for r in records])
    for password in PASSWORDS.values():
        assert password not in everything
    hashed = [r for r in records if "$2b$" in json.dumps(r.inputs)]
    assert [r.inputs["metadata"]["name"] for r in hashed] == ["web-basic-auth"]
    (users,) = hashed
    assert "stringData" in users.secret_paths
    hashes = dict(line.split(":", 1) for line in users.inputs["stringData"]["auth"].splitlines())
    assert bcrypt.checkpw(b"correct horse battery", hashes["alice"].encode())
