"""``auth:`` and ``allowSourceRanges`` of an app: validation, annotations, the htpasswd Secret
offline (no password, no hash), and hashes the proxy accepts."""

from __future__ import annotations

from typing import Any

import bcrypt
import pytest
from pydantic import ValidationError

from kexpose.errors import ConfigError
from kexpose.manifests import app_manifests
from kexpose.manifests.auth import edge_auth_crd
from kexpose.model import AppSpec
from kexpose.model.auth import AuthSpec, auth_annotations, htpasswd_line
from kexpose.plan import plan_stack
from kexpose.proxy.filters import parse_htpasswd, password_matches
from kexpose.proxy.routes import Secret
from kexpose.proxy.routes._auth import _FIELDS as PROXY_FIELDS
from kexpose.proxy.routes._auth import auth_from_annotations, extension_resolver
from kexpose.validation import parse_stack

APP: dict[str, Any] = {
    "name": "web",
    "workload": {"image": "nginx", "ports": [{"name": "http", "containerPort": 8080}]},
    "service": {"ports": [{"name": "http", "port": 80}]},
    "ingress": {"rules": [{"host": "shop.example.com", "paths": [{"port": "http"}]}]},
}


@pytest.mark.parametrize(
    ("auth", "field"),
    [
        ({"type": "basic"}, "users"),
        (
            {"type": "basic", "users": [{"name": "a", "passwordConfig": "p"}], "secret": "s"},
            "users",
        ),
        ({"type": "basic", "users": [{"name": "a:b", "passwordConfig": "p"}]}, "name"),
        ({"type": "basic", "secret": "s", "url": "http://auth/"}, "url"),
        ({"type": "forward"}, "url"),
        ({"type": "forward", "url": "/relative"}, "url"),
        ({"type": "forward", "url": "http://a/", "timeout": 0}, "timeout"),
        ({"type": "jwt"}, "jwksUrl"),
        ({"type": "jwt", "jwksUrl": "https://idp/keys", "jwksSecret": "k"}, "jwksUrl"),
        ({"type": "oauth"}, "type"),
        ({"type": "basic", "secret": "s", "realm": "a\nb"}, "realm"),
        ({"type": "basic", "secret": "s", "exemptPaths": ["healthz"]}, "exemptPaths"),
    ],
)
def test_invalid_auth_is_refused_at_its_field(auth: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        AppSpec.model_validate({**APP, "auth": auth})
    assert field in str(caught.value)


def test_source_ranges_and_auth_need_an_ingress() -> None:
    with pytest.raises(ValidationError, match="does not appear to be an IPv4 or IPv6 network"):
        AppSpec.model_validate({**APP, "allowSourceRanges": ["10.0.0.0/33"]})
    bare = {k: v for k, v in APP.items() if k != "ingress"}
    with pytest.raises(ValidationError, match="need an ingress"):
        AppSpec.model_validate({**bare, "auth": {"type": "basic", "secret": "s"}})


@pytest.mark.parametrize(
    "auth",
    [
        {
            "type": "basic",
            "secret": "users",
            "realm": "r",
            "exemptPaths": ["/healthz", "/.well-known/"],
        },
        {
            "type": "forward",
            "url": "https://auth.example/check",
            "responseHeaders": ["X-User"],
            "signin": "https://auth.example/start",
            "timeout": 2,
            "cacheSeconds": 30,
        },
        {
            "type": "jwt",
            "jwksUrl": "https://idp.example/keys",
            "issuer": "https://idp.example",
            "audiences": ["shop"],
            "claimHeaders": {"sub": "X-User", "email": "X-Email"},
        },
    ],
)
def test_annotations_are_what_the_proxy_reads(auth: dict[str, Any]) -> None:
    """The annotations the components write parse in the proxy's route core without a problem."""
    spec = AuthSpec.model_validate(auth)
    notes = auth_annotations("web", spec, ("10.0.0.0/8",))
    users: dict[tuple[str, str], Secret] = {
        ("default", "users"): {"metadata": {"name": "users"}, "stringData": {"auth": ""}}
    }
    found: list[str] = []
    made = auth_from_annotations(
        notes,
        namespace="default",
        source="Ingress default/web",
        secrets=users,
        notes=found,
    )
    assert made is not None
    assert made.problem == "", made.problem
    assert found == []
    assert made.mechanism is not None
    assert type(made.mechanism).__name__.lower().startswith(spec.type[:3])


def test_offline_manifests_hold_no_password_and_no_hash() -> None:
    app = AppSpec.model_validate(
        {**APP, "auth": {"type": "basic", "users": [{"name": "alice", "passwordConfig": "pw"}]}}
    )
    manifests = app_manifests(app, class_name="kexpose")
    (secret,) = [m for m in manifests if m["kind"] == "Secret"]
    assert secret["metadata"]["name"] == "web-basic-auth"
    text = secret["stringData"]["auth"]
    assert text.startswith("#")
    assert "$2" not in text
    assert [m["kind"] for m in manifests][-2:] == ["Secret", "Ingress"]  # before the Ingress


def test_htpasswd_lines_verify_in_the_proxy_and_are_stable() -> None:
    line = htpasswd_line("alice", "pw:with:colons", scope="ns/web", cost=4)
    assert line == htpasswd_line("alice", "pw:with:colons", scope="ns/web", cost=4)
    assert line != htpasswd_line("alice", "pw:with:colons", scope="ns/other", cost=4)
    users, skipped = parse_htpasswd(line)
    assert not skipped
    assert password_matches(users["alice"], b"pw:with:colons")
    assert not password_matches(users["alice"], b"pw")
    assert bcrypt.checkpw(b"pw:with:colons", line.split(":", 1)[1].encode())


GATEWAY_AUTH: list[dict[str, Any]] = [
    {
        "auth": {
            "type": "basic",
            "users": [{"name": "alice", "passwordConfig": "alicePassword"}],
            "realm": "staff",
            "exemptPaths": ["/healthz"],
        },
        "allowSourceRanges": ["10.0.0.0/8", "2001:db8::/32"],
    },
    {"allowSourceRanges": ["10.0.0.0/8"]},
    {
        "auth": {
            "type": "jwt",
            "jwksUrl": "https://idp.example/keys",
            "issuer": "https://idp.example/",
            "audiences": ["shop", "admin"],
            "claimHeaders": {"sub": "X-User"},
        }
    },
    {
        "auth": {
            "type": "forward",
            "url": "https://auth.example/check",
            "responseHeaders": ["X-User"],
            "timeout": 2,
        }
    },
]


@pytest.mark.parametrize("extra", GATEWAY_AUTH)
def test_auth_with_the_gateway_api_is_an_edge_auth_every_route_rule_names(
    extra: dict[str, Any],
) -> None:
    """api: gateway emits the app's EdgeAuth (the annotations' settings under the names of
    edge-auth.md, "Gateway API"), an ExtensionRef to it first on every HTTPRoute rule, and the
    EdgeAuth CRD with the controller; the proxy reads the object as it reads the annotations."""
    app = {
        **APP,
        **extra,
        "ingress": {
            "rules": [
                {
                    "host": "shop.example.com",
                    "paths": [
                        {"path": "/", "port": "http"},
                        {
                            "path": "/old",
                            "port": "http",
                            "filters": {"redirect": {"path": {"fullPath": "/"}}},
                        },
                    ],
                },
                {"host": "admin.example.com", "paths": [{"port": "http"}]},
            ]
        },
    }
    raw = {
        "environment": "dev",
        "controller": {"kind": "kexpose", "api": "gateway"},
        "apps": [app],
    }
    spec = parse_stack(raw, stack_file="Pulumi.dev.yaml")
    made = [p.manifest for p in plan_stack(spec, tls=lambda _: None)]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for m in made:
        by_kind.setdefault(m["kind"], []).append(m)
    (obj,) = by_kind["EdgeAuth"]
    assert obj["apiVersion"] == "kexpose.dev/v1alpha1"
    assert obj["metadata"]["namespace"] == "default"
    resolved = spec.apps[0]
    annotations = auth_annotations(resolved.name, resolved.auth, resolved.allow_source_ranges)
    assert len(obj["spec"]) == len(annotations) > 0
    wanted = {"group": "kexpose.dev", "kind": "EdgeAuth", "name": obj["metadata"]["name"]}
    routes = by_kind["HTTPRoute"]
    assert len(routes) == 2
    rules = [r for route in routes for r in route["spec"]["rules"]]
    assert len(rules) == 3
    for rule in rules:
        assert rule["filters"][0] == {"type": "ExtensionRef", "extensionRef": wanted}
    # The EdgeAuth is applied before the routes that name it; its CRD comes with the controller.
    kinds = [m["kind"] for m in made]
    assert kinds.index("CustomResourceDefinition") < kinds.index("EdgeAuth")
    assert kinds.index("EdgeAuth") < kinds.index("HTTPRoute")
    crd = next(m for m in made if m["metadata"]["name"] == "edgeauths.kexpose.dev")
    assert crd["metadata"]["annotations"] == {"pulumi.com/patchForce": "true"}
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert set(obj["spec"]) <= set(schema["properties"]["spec"]["properties"])

    secrets: dict[tuple[str, str], Secret] = {
        ("default", "web-basic-auth"): {"data": {}, "stringData": {"auth": "# none\n"}}
    }
    notes: list[str] = []
    resolve = extension_resolver(
        "default", {("default", obj["metadata"]["name"]): obj}, secrets=secrets, notes=notes
    )
    from_object = resolve(wanted)
    from_annotations = auth_from_annotations(
        annotations, namespace="default", source="x", secrets=secrets, notes=notes
    )
    assert from_object is not None
    assert from_annotations is not None
    assert not from_object.problem, from_object.problem
    assert from_object.ranges == from_annotations.ranges
    assert from_object.exempt == from_annotations.exempt
    assert type(from_object.mechanism) is type(from_annotations.mechanism)


def test_the_edge_auth_crd_names_every_setting_the_proxy_reads() -> None:
    """A setting the CRD left out would be pruned or refused by the API server."""
    spec = edge_auth_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert set(spec["properties"]) == set(PROXY_FIELDS)
    # Unknown fields reach the proxy, which fails closed on them, instead of being pruned.
    assert spec["x-kubernetes-preserve-unknown-fields"] is True


def test_auth_on_a_platform_owned_gateway_api_still_gets_the_edge_auth_crd() -> None:
    raw = {
        "environment": "dev",
        "controller": {"kind": "kexpose", "api": "gateway", "gateway": {"installCrds": False}},
        "apps": [{**APP, "allowSourceRanges": ["10.0.0.0/8"]}],
    }
    spec = parse_stack(raw, stack_file="Pulumi.dev.yaml")
    crds = [
        p.manifest["metadata"]["name"]
        for p in plan_stack(spec, tls=lambda _: None)
        if p.manifest["kind"] == "CustomResourceDefinition"
    ]
    assert crds == ["edgeauths.kexpose.dev"]


def _gateway_stack(app: dict[str, Any], api: str = "gateway") -> dict[str, Any]:
    return {"environment": "dev", "controller": {"kind": "kexpose", "api": api}, "apps": [app]}


JWT_ADMIN: dict[str, Any] = {
    "type": "jwt",
    "jwksUrl": "https://idp.example/keys",
    "issuer": "https://idp.example/",
    "audiences": ["admin"],
}


def test_a_path_with_its_own_auth_names_its_own_edge_auth() -> None:
    """An admin path behind JWT while the rest of the app is public; with app-wide auth too,
    the path's replaces it there and the app's source ranges still apply."""
    paths = [{"path": "/", "port": "http"}, {"path": "/admin", "port": "http", "auth": JWT_ADMIN}]
    public = {**APP, "ingress": {"rules": [{"host": "shop.example.com", "paths": paths}]}}
    spec = parse_stack(_gateway_stack(public), stack_file="Pulumi.dev.yaml")
    made = [p.manifest for p in plan_stack(spec, tls=lambda _: None)]
    (obj,) = [m for m in made if m["kind"] == "EdgeAuth"]
    assert obj["metadata"]["name"] == "web-rule0-path1"
    assert obj["spec"] == {
        "type": "jwt",
        "jwks-url": "https://idp.example/keys",
        "jwt-issuer": "https://idp.example/",
        "jwt-audiences": "admin",
    }
    (route,) = [m for m in made if m["kind"] == "HTTPRoute"]
    root, admin = route["spec"]["rules"]
    assert "filters" not in root
    assert admin["filters"] == [
        {
            "type": "ExtensionRef",
            "extensionRef": {"group": "kexpose.dev", "kind": "EdgeAuth", "name": "web-rule0-path1"},
        }
    ]

    guarded = {
        **public,
        "auth": {"type": "basic", "secret": "staff"},
        "allowSourceRanges": ["10.0.0.0/8"],
    }
    spec = parse_stack(_gateway_stack(guarded), stack_file="Pulumi.dev.yaml")
    made = [p.manifest for p in plan_stack(spec, tls=lambda _: None)]
    objs = {m["metadata"]["name"]: m["spec"] for m in made if m["kind"] == "EdgeAuth"}
    assert objs["web"]["type"] == "basic"
    assert objs["web-rule0-path1"]["type"] == "jwt"
    assert objs["web-rule0-path1"]["allow-source-ranges"] == "10.0.0.0/8"
    (route,) = [m for m in made if m["kind"] == "HTTPRoute"]
    names = [r["filters"][0]["extensionRef"]["name"] for r in route["spec"]["rules"]]
    assert names == ["web", "web-rule0-path1"]


@pytest.mark.parametrize(
    ("api", "auth", "refused"),
    [
        ("ingress", JWT_ADMIN, "api 'ingress'"),
        ("gateway", {"type": "basic", "users": [{"name": "a", "passwordConfig": "p"}]}, "secret"),
    ],
)
def test_a_path_auth_that_cannot_be_emitted_is_refused_at_its_field(
    api: str, auth: dict[str, Any], refused: str
) -> None:
    paths = [{"path": "/admin", "port": "http", "auth": auth}]
    app = {**APP, "ingress": {"rules": [{"host": "shop.example.com", "paths": paths}]}}
    with pytest.raises(ConfigError, match=refused) as caught:
        parse_stack(_gateway_stack(app, api), stack_file="Pulumi.dev.yaml")
    assert "apps[0].ingress.rules[0].paths[0].auth" in str(caught.value)
