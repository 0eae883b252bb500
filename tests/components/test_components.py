"""The Pulumi components under the mock runtime: what they register, how, and what they refuse.

The runs go through ``kexpose.preview.run_program``, which records every registration with its
parent and secret fields as the engine receives them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pytest

from kexpose.errors import ConfigError, PolicyViolationError
from kexpose.preview import Recorded, run_program
from kexpose.resources import ExposedApp, Exposure, IngressController

Captured = dict[str, Any]


def run(
    program: Callable[[Captured], object],
    *,
    stack: str = "staging",
    config: dict[str, Any] | None = None,
) -> tuple[list[Recorded], Captured]:
    captured: Captured = {}
    records = run_program(lambda: program(captured), stack=stack, config=config or {})
    return records, captured


def capture(captured: Captured, key: str, output: pulumi.Output[Any]) -> None:
    output.apply(lambda value: captured.__setitem__(key, value))


APP: dict[str, Any] = {
    "name": "web",
    "namespace": "shop",
    "workload": {"image": "nginx", "ports": [{"name": "http", "containerPort": 8080}]},
    "service": {"ports": [{"name": "http", "port": 80}]},
    "ingress": {
        "className": "kexpose",
        "rules": [{"host": "shop.example.com", "paths": [{"path": "/", "port": "http"}]}],
    },
    "tls": {"mode": "self-signed"},
}


def by_type(records: list[Recorded]) -> dict[str, list[Recorded]]:
    out: dict[str, list[Recorded]] = {}
    for r in records:
        out.setdefault(r.type, []).append(r)
    return out


def test_exposed_app_registers_typed_children_all_parented() -> None:
    def program(c: Captured) -> None:
        app = ExposedApp("web", APP, environment="staging")
        capture(c, "urls", app.urls)
        capture(c, "hosts", app.hosts)
        capture(c, "tls", app.tls_secret_name)
        capture(c, "cluster_ip", app.cluster_ip)

    records, captured = run(program)
    types = by_type(records)
    (component,) = types["kexpose:index:ExposedApp"]
    assert set(types) == {
        "kexpose:index:ExposedApp",
        "pulumi-python:dynamic:Resource",
        "kubernetes:apps/v1:Deployment",
        "kubernetes:core/v1:Service",
        "kubernetes:core/v1:Secret",
        "kubernetes:networking.k8s.io/v1:Ingress",
    }
    for r in records:
        if r is not component:
            assert r.parent == component.urn, r.type
    assert captured["urls"] == ["https://shop.example.com/"]
    assert captured["hosts"] == ["shop.example.com"]
    assert captured["tls"] == "web-tls"
    assert captured["cluster_ip"].startswith("10.")


def test_tls_key_is_a_secret_everywhere() -> None:
    records, _ = run(lambda c: ExposedApp("web", APP, environment="staging"))
    types = by_type(records)
    (secret,) = types["kubernetes:core/v1:Secret"]
    assert "stringData" in secret.secret_paths
    assert "BEGIN PRIVATE KEY" in secret.inputs["stringData"]["tls.key"]
    (cert,) = types["pulumi-python:dynamic:Resource"]
    assert "key_pem" in cert.secret_paths
    # the certificate really covers the host the Ingress serves
    from kexpose.certs import read_certificate

    info = read_certificate(secret.inputs["stringData"]["tls.crt"])
    assert info.dns_names == ("shop.example.com",)


def test_invalid_app_registers_nothing() -> None:
    bad = {**APP, "service": {"ports": [{"name": "http", "port": 80}], "type": "NodePort"}}
    registered: list[Recorded] = []
    with pytest.raises(PolicyViolationError, match=r"svc-no-nodeport"):
        run_program(
            lambda: ExposedApp("web", bad, environment="prod"),
            stack="prod",
            config={},
            on_resource=registered.append,  # sees each registration as it happens
        )
    assert registered == []


def test_invalid_shape_names_the_component_and_field() -> None:
    bad = {**APP, "ingress": {"rules": [{"host": "Bad_Host", "paths": [{"port": "http"}]}]}}
    with pytest.raises(ConfigError) as caught:
        run(lambda c: ExposedApp("web", bad, environment="dev"))
    text = str(caught.value)
    assert text.startswith("stack 'staging', ExposedApp 'web': invalid exposure config")
    assert "app 'web', ingress.rules[0].host:" in text
    assert "given: 'Bad_Host'" in text


def test_output_allowed_for_image_refused_for_service_type() -> None:
    def ok(c: Captured) -> None:
        ExposedApp(
            "web",
            {**APP, "workload": {**APP["workload"], "image": pulumi.Output.from_input("nginx:1")}},
            environment="staging",
        )

    records, _ = run(ok)
    (dep,) = by_type(records)["kubernetes:apps/v1:Deployment"]
    assert dep.inputs["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1"

    def refused(c: Captured) -> None:
        service = {
            "ports": [{"name": "http", "port": 80}],
            "type": pulumi.Output.from_input("NodePort"),
        }
        ExposedApp("web", {**APP, "service": service}, environment="staging")

    with pytest.raises(
        ConfigError, match=r"service\.type: must be a plain value, not a computed Output"
    ):
        run(refused)


def test_secret_mode_reads_secret_config() -> None:
    from kexpose.certs import self_signed

    pair = self_signed(["shop.example.com"])
    tls = {"mode": "secret", "certificateConfig": "webCert", "privateKeyConfig": "webKey"}
    records, _ = run(
        lambda c: ExposedApp("web", {**APP, "tls": tls}, environment="staging"),
        config={"webCert": pair.cert_pem, "webKey": pair.key_pem},
    )
    (secret,) = by_type(records)["kubernetes:core/v1:Secret"]
    assert secret.inputs["stringData"]["tls.key"] == pair.key_pem
    assert "stringData" in secret.secret_paths


def test_secret_mode_pem_piped_into_config_keeps_its_final_line_break() -> None:
    """`kubectl get secret ... | base64 -d | pulumi config set --secret KEY` (what `kexpose
    import` tells users to run) stores the PEM without its final newline; the Secret gets it
    back, so that it equals the Secret it takes over (a one-byte difference is a field
    conflict for the API server's server-side apply)."""
    from kexpose.certs import self_signed

    pair = self_signed(["shop.example.com"])
    tls = {"mode": "secret", "certificateConfig": "webCert", "privateKeyConfig": "webKey"}
    records, _ = run(
        lambda c: ExposedApp("web", {**APP, "tls": tls}, environment="staging"),
        config={"webCert": pair.cert_pem.rstrip("\n"), "webKey": pair.key_pem.rstrip("\n")},
    )
    (secret,) = by_type(records)["kubernetes:core/v1:Secret"]
    assert pair.cert_pem.endswith("-----\n")
    assert secret.inputs["stringData"] == {"tls.crt": pair.cert_pem, "tls.key": pair.key_pem}


def test_exposure_never_deletes_the_namespace_of_an_existing_workload(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A `selector:` app's workload is already in its namespace (an imported stack's apps
    all are): the namespace is registered with retainOnDelete, so `pulumi destroy` leaves it
    and its workloads; a namespace of apps the stack creates is deleted with them."""
    from kexpose.resources import exposure, kube

    retained: dict[str, bool] = {}
    register = kube.register

    def recording(manifest: Any, *, name: str, opts: pulumi.ResourceOptions) -> Any:
        if manifest["kind"] == "Namespace":
            retained[manifest["metadata"]["name"]] = bool(opts.retain_on_delete)
        return register(manifest, name=name, opts=opts)

    monkeypatch.setattr(exposure, "register", recording)
    existing = {key: value for key, value in APP.items() if key != "workload"}
    without_ingress = {key: value for key, value in APP.items() if key != "ingress"}
    stack = {
        "environment": "dev",
        "apps": [
            {**existing, "selector": {"app": "web"}, "tls": {"mode": "none"}},
            {**without_ingress, "namespace": "tools", "tls": {"mode": "none"}},
        ],
    }
    records, _ = run(lambda c: Exposure("kexpose", stack), stack="dev")
    assert retained == {"shop": True, "tools": False}
    namespaces = [r for r in records if r.type == "kubernetes:core/v1:Namespace"]
    assert sorted(r.inputs["metadata"]["name"] for r in namespaces) == ["shop", "tools"]


def test_ingress_controller_children_and_outputs() -> None:
    def program(c: Captured) -> None:
        ctrl = IngressController(
            "edge", {"kind": "traefik", "className": "edge"}, environment="prod"
        )
        capture(c, "class", ctrl.class_name)
        capture(c, "controller", ctrl.controller_name)

    records, captured = run(program, stack="prod")
    types = by_type(records)
    (component,) = types["kexpose:index:IngressController"]
    assert all(r.parent == component.urn for r in records if r is not component)
    (ic,) = types["kubernetes:networking.k8s.io/v1:IngressClass"]
    assert ic.inputs["spec"]["controller"] == "traefik.io/ingress-controller"
    assert captured == {"class": "edge", "controller": "traefik.io/ingress-controller"}
    (svc,) = types["kubernetes:core/v1:Service"]
    assert svc.inputs["spec"]["type"] == "LoadBalancer"


def test_exposure_tree_and_cross_references() -> None:
    stack = {
        "environment": "dev",
        "controller": {},
        "apps": [
            {
                **APP,
                "tls": {"mode": "none"},
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
            },
            {
                "name": "api",
                "namespace": "shop",
                "workload": {"image": "api", "ports": [{"name": "api", "containerPort": 9000}]},
                "service": {"ports": [{"name": "api", "port": 9000}]},
            },
        ],
    }
    records, _ = run(lambda c: Exposure("kexpose", stack), stack="dev")
    urns = {r.urn: r for r in records}
    (root,) = [r for r in records if r.type == "kexpose:index:Exposure"]
    for r in records:
        if r is root:
            continue
        assert r.parent in urns, f"{r.type} {r.name} is not parented"
        # every resource hangs under the Exposure
        p = r
        while p.parent is not None and p.parent in urns:
            p = urns[p.parent]
        assert p is root
    manifests = [r.inputs for r in records if r.type.startswith("kubernetes:")]
    services = {
        (m["metadata"]["namespace"], m["metadata"]["name"]): m
        for m in manifests
        if m["kind"] == "Service"
    }
    deployments = [m for m in manifests if m["kind"] == "Deployment"]
    for (ns, name), svc in services.items():
        selector = svc["spec"]["selector"].items()
        assert any(
            d["metadata"]["namespace"] == ns
            and selector <= d["spec"]["template"]["metadata"]["labels"].items()
            for d in deployments
        ), f"Service {ns}/{name} selects no pods"
    (ing,) = [m for m in manifests if m["kind"] == "Ingress"]
    for path in ing["spec"]["rules"][0]["http"]["paths"]:
        backend = path["backend"]["service"]
        svc = services[("shop", backend["name"])]
        assert backend["port"]["name"] in {p["name"] for p in svc["spec"]["ports"]}
    namespaces = [m["metadata"]["name"] for m in manifests if m["kind"] == "Namespace"]
    assert sorted(namespaces) == ["kexpose-system", "shop"]


def test_controller_nodeport_outside_dev_is_refused_before_registering() -> None:
    with pytest.raises(ConfigError) as caught:
        run(
            lambda c: IngressController(
                "edge", {"service": {"type": "NodePort"}}, environment="prod"
            ),
            stack="prod",
        )
    text = str(caught.value)
    assert text.startswith("stack 'prod', IngressController 'edge'")
    assert "controller.service.type" in text
    assert "NodePort only in dev" in text


def test_controller_bad_field_is_named() -> None:
    with pytest.raises(ConfigError) as caught:
        run(lambda c: IngressController("edge", {"kind": "nginx"}, environment="dev"), stack="dev")
    assert "kind: Input should be 'kexpose' or 'traefik'; given: 'nginx'" in str(caught.value)
