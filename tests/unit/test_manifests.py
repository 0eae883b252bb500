"""Builders from the model to manifests: pure, table-tested, no Pulumi."""

from __future__ import annotations

from typing import Any

import pytest

from kexpose.manifests import KINDS, TlsMaterial, app_manifests, controller_manifests
from kexpose.model import AppSpec, ControllerSpec, StackSpec
from kexpose.profile import PROFILES, resolve

Manifest = dict[str, Any]


def app(**over: Any) -> AppSpec:
    raw: dict[str, Any] = {
        "name": "web",
        "namespace": "shop",
        "labels": {"team": "a"},
        "workload": {
            "image": "nginx",
            "replicas": 2,
            "ports": [
                {"name": "http", "containerPort": 8080},
                {"name": "metrics", "containerPort": 9100},
            ],
            "readiness": {"port": "http", "path": "/ready"},
        },
        "service": {
            "ports": [
                {"name": "http", "port": 80},
                {"name": "metrics", "port": 9100},
                {"name": "alt", "port": 8081, "targetPort": 8080},
            ]
        },
        "ingress": {
            "rules": [
                {
                    "host": "shop.example.com",
                    "paths": [
                        {"path": "/", "port": "http"},
                        {"path": "/exact", "pathType": "Exact", "port": 8081},
                    ],
                }
            ]
        },
        "tls": {"mode": "self-signed"},
    }
    raw.update(over)
    return AppSpec.model_validate(raw)


def by_kind(objects: list[Manifest]) -> dict[str, Manifest]:
    return {o["kind"]: o for o in objects}


def test_service_selects_the_pods_of_the_deployment() -> None:
    objs = by_kind(app_manifests(app(), class_name="kexpose", tls=TlsMaterial("c", "k")))
    selector = objs["Service"]["spec"]["selector"]
    pod_labels = objs["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    assert objs["Deployment"]["spec"]["selector"]["matchLabels"] == selector
    assert pod_labels["team"] == "a"


@pytest.mark.parametrize(
    ("port", "target"),
    [("http", "http"), ("metrics", "metrics"), ("alt", 8080)],
)
def test_target_port_resolution(port: str, target: object) -> None:
    svc = by_kind(app_manifests(app(), class_name="k", tls=TlsMaterial("c", "k")))["Service"]
    ports = {p["name"]: p for p in svc["spec"]["ports"]}
    assert ports[port]["targetPort"] == target


def test_named_target_ports_exist_on_the_container() -> None:
    objs = by_kind(app_manifests(app(), class_name="k", tls=TlsMaterial("c", "k")))
    names = {
        p["name"] for p in objs["Deployment"]["spec"]["template"]["spec"]["containers"][0]["ports"]
    }
    for p in objs["Service"]["spec"]["ports"]:
        if isinstance(p["targetPort"], str):
            assert p["targetPort"] in names


def test_restricted_pod_security() -> None:
    dep = by_kind(app_manifests(app(), class_name="k", tls=TlsMaterial("c", "k")))["Deployment"]
    pod = dep["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["automountServiceAccountToken"] is False
    # the writable path is a private emptyDir mounted where the app writes
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/tmp"]] == {"name": mounts["/tmp"], "emptyDir": {}}


def test_ingress_backends_and_tls() -> None:
    ing = by_kind(app_manifests(app(), class_name="kexpose", tls=TlsMaterial("c", "k")))["Ingress"]
    spec = ing["spec"]
    assert spec["ingressClassName"] == "kexpose"
    paths = spec["rules"][0]["http"]["paths"]
    assert paths[0] == {
        "path": "/",
        "pathType": "Prefix",
        "backend": {"service": {"name": "web", "port": {"name": "http"}}},
    }
    assert paths[1]["backend"]["service"]["port"] == {"number": 8081}
    assert spec["tls"] == [{"hosts": ["shop.example.com"], "secretName": "web-tls"}]


@pytest.mark.parametrize(
    ("tls", "kinds", "annotation"),
    [
        ({"mode": "none"}, {"Deployment", "PodDisruptionBudget", "Service", "Ingress"}, None),
        (
            {"mode": "self-signed"},
            {"Deployment", "PodDisruptionBudget", "Service", "Secret", "Ingress"},
            None,
        ),
        (
            {"mode": "cert-manager", "issuer": "le"},
            {"Deployment", "PodDisruptionBudget", "Service", "Ingress"},
            ("cert-manager.io/cluster-issuer", "le"),
        ),
        (
            {"mode": "cert-manager", "issuer": "le", "issuerKind": "Issuer"},
            {"Deployment", "PodDisruptionBudget", "Service", "Ingress"},
            ("cert-manager.io/issuer", "le"),
        ),
        (
            {"mode": "cert-manager", "issuer": "le", "via": "certificate"},
            {"Deployment", "PodDisruptionBudget", "Service", "Certificate", "Ingress"},
            None,
        ),
    ],
)
def test_tls_modes(
    tls: dict[str, Any], kinds: set[str], annotation: tuple[str, str] | None
) -> None:
    a = app(tls=tls, disruptionBudget=True)
    objs = app_manifests(a, class_name="k", tls=TlsMaterial("c", "k"))
    assert {o["kind"] for o in objs} == kinds
    ing = by_kind(objs)["Ingress"]
    annotations = ing["metadata"].get("annotations", {})
    if annotation is not None:
        assert annotations[annotation[0]] == annotation[1]
    else:
        assert not any(k.startswith("cert-manager.io/") for k in annotations)
    if tls["mode"] == "none":
        assert "tls" not in ing["spec"]
    if "Secret" in kinds:
        secret = by_kind(objs)["Secret"]
        assert secret["type"] == "kubernetes.io/tls"
        assert set(secret["stringData"]) == {"tls.crt", "tls.key"}
    if "Certificate" in kinds:
        cert = by_kind(objs)["Certificate"]["spec"]
        assert cert["secretName"] == "web-tls"
        assert cert["dnsNames"] == ["shop.example.com"]
        assert cert["issuerRef"] == {
            "name": "le",
            "kind": "ClusterIssuer",
            "group": "cert-manager.io",
        }


def test_material_is_required_for_secret_modes() -> None:
    with pytest.raises(ValueError, match="needs its material"):
        app_manifests(app(), class_name="k", tls=None)


def test_existing_workload_by_selector() -> None:
    a = AppSpec.model_validate(
        {
            "name": "legacy",
            "selector": {"app": "legacy"},
            "service": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
        }
    )
    objs = app_manifests(a, class_name=None)
    assert [o["kind"] for o in objs] == ["Service"]
    assert objs[0]["spec"]["selector"] == {"app": "legacy"}
    assert objs[0]["metadata"]["namespace"] == "default"


def test_loadbalancer_fields_pass_through() -> None:
    a = app(
        service={
            "type": "LoadBalancer",
            "ports": [{"name": "http", "port": 80}],
            "loadBalancerSourceRanges": ["203.0.113.0/24"],
            "allocateLoadBalancerNodePorts": False,
            "externalTrafficPolicy": "Local",
            "annotations": {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"},
        },
        ingress=None,
        tls={"mode": "none"},
    )
    svc = by_kind(app_manifests(a, class_name=None))["Service"]
    assert svc["spec"]["loadBalancerSourceRanges"] == ["203.0.113.0/24"]
    assert svc["spec"]["allocateLoadBalancerNodePorts"] is False
    assert svc["spec"]["externalTrafficPolicy"] == "Local"
    assert svc["metadata"]["annotations"] == {
        "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"
    }


def controller(**over: Any) -> ControllerSpec:
    spec = resolve(StackSpec(environment="prod", controller=ControllerSpec.model_validate(over)))
    assert spec.controller is not None
    return spec.controller


@pytest.mark.parametrize("kind", ["kexpose", "traefik"])
def test_controller_objects(kind: str) -> None:
    objs = controller_manifests(controller(kind=kind))
    # Traefik's CRDs (its CRD provider reads the apps' Middlewares) come first, cluster-wide.
    kinds = [o["kind"] for o in objs if o["kind"] != "CustomResourceDefinition"]
    assert kinds[0] == "Namespace"
    assert len(objs) - len(kinds) == (10 if kind == "traefik" else 0)
    for needed in (
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Service",
        "IngressClass",
        "PodDisruptionBudget",
    ):
        assert needed in kinds
    ic = by_kind(objs)["IngressClass"]
    assert ic["spec"]["controller"] == KINDS[kind].controller_string  # type: ignore[index]
    svc = by_kind(objs)["Service"]
    assert svc["spec"]["type"] == "LoadBalancer"
    dep = by_kind(objs)["Deployment"]
    assert dep["spec"]["replicas"] == PROFILES["prod"].controller_replicas
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert dep["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    # the Service targets container ports that exist
    names = {p["name"] for p in container["ports"]}
    assert {p["targetPort"] for p in svc["spec"]["ports"]} <= names
    # probes hit the health port
    assert container["readinessProbe"]["httpGet"]["port"] == "health"


def _rules(objs: list[Manifest], kind: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = by_kind(objs)[kind]["rules"]
    return rules


def test_controller_rbac_is_least_privilege() -> None:
    objs = controller_manifests(controller(kind="kexpose"))
    granted = {
        (g, r, v)
        for rule in _rules(objs, "ClusterRole")
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    writes = {(g, r, v) for g, r, v in granted if v not in ("get", "list", "watch")}
    assert writes == {("networking.k8s.io", "ingresses/status", "patch")}
    reads = {(g, r) for g, r, _ in granted}
    assert reads == {
        ("", "services"),
        ("", "secrets"),
        ("discovery.k8s.io", "endpointslices"),
        ("networking.k8s.io", "ingresses"),
        ("networking.k8s.io", "ingressclasses"),
        ("networking.k8s.io", "ingresses/status"),
    }
    lease_rules = _rules(objs, "Role")
    assert all(r["apiGroups"] == ["coordination.k8s.io"] for r in lease_rules)
    assert by_kind(objs)["Role"]["metadata"]["namespace"] == "kexpose-system"


def test_controller_args_publish_its_service() -> None:
    c = controller(kind="kexpose", namespace="edge", name="front")
    dep = by_kind(controller_manifests(c))["Deployment"]
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--publish-service=edge/front" in args
    assert "--controller-name=kexpose.dev/ingress-controller" in args
    # the proxy's Lease is the one its Role may read and renew
    assert "--election-id=front" in args
    (rule,) = [r for r in _rules(controller_manifests(c), "Role") if "resourceNames" in r]
    assert rule["resourceNames"] == ["front"]


def test_default_ingress_class_annotation() -> None:
    ic = by_kind(controller_manifests(controller(defaultClass=True)))["IngressClass"]
    assert ic["metadata"]["annotations"] == {"ingressclass.kubernetes.io/is-default-class": "true"}
    ic = by_kind(controller_manifests(controller()))["IngressClass"]
    assert "annotations" not in ic["metadata"]
