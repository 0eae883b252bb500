"""The components with ``api: gateway`` under the mock runtime: typed Gateway API resources
with the type tokens CrossGuard sees, parented and ordered, and the refusals."""

from __future__ import annotations

from typing import Any

import pytest

from kexpose.errors import ConfigError
from kexpose.preview import Recorded, run_program
from kexpose.resources import ExposedApp, Exposure, IngressController

from .test_components import APP, Captured, by_type, capture, run

GW = "kubernetes:gateway.networking.k8s.io"

GATEWAY_APP: dict[str, Any] = {
    **APP,
    "ingress": {
        "rules": [
            {
                "host": "shop.example.com",
                "paths": [
                    {
                        "path": "/",
                        "port": "http",
                        "weight": 9,
                        "backends": [{"service": "next", "port": 80, "weight": 1}],
                    },
                    {
                        "path": "/",
                        "port": "http",
                        "headers": [{"name": "X-Canary", "value": "always"}],
                        "service": "next",
                    },
                ],
            }
        ]
    },
}
NEXT: dict[str, Any] = {
    "name": "next",
    "namespace": "shop",
    "workload": {"image": "nginx:next", "ports": [{"name": "http", "containerPort": 8080}]},
    "service": {"ports": [{"name": "http", "port": 80}]},
}
STACK: dict[str, Any] = {
    "environment": "staging",
    "controller": {"kind": "kexpose", "api": "gateway"},
    "apps": [GATEWAY_APP, NEXT],
}


def test_exposure_registers_typed_gateway_api_resources() -> None:
    def program(c: Captured) -> None:
        exposure = Exposure("shop", STACK)
        capture(c, "urls", exposure.urls)

    records, captured = run(program)
    types = by_type(records)
    assert [r.name for r in types[f"{GW}/v1:GatewayClass"]] == [
        "shop-kexpose-controller-gatewayclass"
    ]
    assert [r.name for r in types[f"{GW}/v1:Gateway"]] == ["shop-kexpose-controller-gateway"]
    assert sorted(r.name for r in types[f"{GW}/v1:HTTPRoute"]) == [
        "shop-kexpose-controller-httproute-kexpose-https-redirect",
        "shop-shop-web-httproute-web",
    ]
    assert [r.name for r in types[f"{GW}/v1beta1:ReferenceGrant"]] == [
        "shop-shop-web-referencegrant-web-tls-to-gateways"
    ]
    assert len(types["kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"]) >= 5
    assert "kubernetes:networking.k8s.io/v1:Ingress" not in types
    assert captured["urls"] == {
        "shop/web": ["https://shop.example.com/", "https://shop.example.com/"],
        "shop/next": [],
    }
    # the typed resource carries the manifest as it was built
    (route,) = [r for r in types[f"{GW}/v1:HTTPRoute"] if r.name.endswith("-web")]
    rules = route.inputs["spec"]["rules"]
    assert [(b["name"], b["weight"]) for b in rules[0]["backendRefs"]] == [("web", 9), ("next", 1)]


def test_every_child_is_parented_to_a_kexpose_component() -> None:
    records, _ = run(lambda c: Exposure("shop", STACK))
    urns = {r.urn: r for r in records}
    for r in records:
        if r.type.startswith("kubernetes:"):
            assert r.parent in urns
            assert urns[r.parent].type.startswith("kexpose:index:")


ALONE: dict[str, Any] = {
    **APP,
    "ingress": {
        "rules": [
            {
                "host": "shop.example.com",
                "paths": [
                    {"path": "/", "port": "http"},
                    {
                        "path": "/",
                        "port": "http",
                        "method": "POST",
                        "filters": {"requestHeaders": {"set": {"X-Write": "yes"}}},
                    },
                ],
            }
        ]
    },
}


def test_an_app_alone_attaches_to_a_gateway_it_names() -> None:
    def program(c: Captured) -> None:
        app = ExposedApp("web", ALONE, environment="staging", gateway="edge/public")
        capture(c, "gateway", app.gateway)
        capture(c, "class", app.ingress_class)

    records, captured = run(program)
    types = by_type(records)
    (route,) = types[f"{GW}/v1:HTTPRoute"]
    assert route.inputs["spec"]["parentRefs"] == [
        {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "namespace": "edge",
            "name": "public",
            "sectionName": "https-shop.example.com",
        }
    ]
    assert route.inputs["spec"]["rules"][1]["matches"][0]["method"] == "POST"
    (grant,) = types[f"{GW}/v1beta1:ReferenceGrant"]
    assert grant.inputs["spec"]["from"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "edge"}
    ]
    assert captured == {"gateway": "edge/public", "class": None}


@pytest.mark.parametrize(
    ("gateway", "fragment"),
    [("public", "'namespace/name'"), ("a/b/c", "'namespace/name'")],
)
def test_an_app_refuses_a_gateway_it_cannot_place(gateway: str, fragment: str) -> None:
    registered: list[Recorded] = []
    with pytest.raises(ConfigError, match=fragment):
        run_program(
            lambda: ExposedApp("web", ALONE, environment="staging", gateway=gateway),
            stack="staging",
            config={},
            on_resource=registered.append,
        )
    assert registered == []


def test_an_app_on_ingress_refuses_a_header_match() -> None:
    registered: list[Recorded] = []
    with pytest.raises(ConfigError, match=r"a header match cannot be expressed with api 'ingress'"):
        run_program(
            lambda: ExposedApp(
                "web",
                ALONE
                | {
                    "ingress": {
                        "rules": [
                            {
                                "host": "shop.example.com",
                                "paths": [
                                    {
                                        "path": "/",
                                        "port": "http",
                                        "headers": [{"name": "X-A", "value": "1"}],
                                    }
                                ],
                            }
                        ]
                    }
                },
                environment="staging",
                ingress_class="kexpose",
            ),
            stack="staging",
            config={},
            on_resource=registered.append,
        )
    assert registered == []


def test_a_controller_alone_makes_listeners_for_the_apps_it_is_given() -> None:
    def program(c: Captured) -> None:
        ctrl = IngressController(
            "edge",
            {"kind": "traefik", "api": "gateway", "gateway": {"installCrds": False}},
            environment="prod",
            apps=[{**GATEWAY_APP, "tls": {"mode": "cert-manager", "issuer": "le"}}, NEXT],
        )
        capture(c, "gateway", ctrl.gateway)
        capture(c, "api", ctrl.api)

    records, captured = run(program, stack="prod")
    types = by_type(records)
    # The platform owns the Gateway API's CRDs; Traefik's own (its CRD provider reads the
    # apps' auth Middlewares) are still installed.
    crds = types["kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"]
    assert {r.inputs["spec"]["group"] for r in crds} == {"traefik.io"}
    (gateway,) = types[f"{GW}/v1:Gateway"]
    names = [entry["name"] for entry in gateway.inputs["spec"]["listeners"]]
    assert names == ["http", "https-shop.example.com"]
    assert captured == {"gateway": "kexpose-system/kexpose", "api": "gateway"}


def test_an_app_takes_an_ingress_class_or_a_gateway_not_both() -> None:
    with pytest.raises(
        ConfigError, match=r"give ingress_class \('kexpose': an Ingress\) or gateway"
    ):
        run(
            lambda c: ExposedApp(
                "web", ALONE, environment="staging", ingress_class="kexpose", gateway="edge/public"
            )
        )
