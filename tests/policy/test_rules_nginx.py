"""ingress-nginx rules: snippets, annotation injection, version floor, admission webhook."""

from __future__ import annotations

from typing import Any

import pytest

from kexpose.environment import ENVIRONMENTS

from .objects import check, configmap, deployment, fields, good_ingress, ingress, rule, service

ALL_ENVS = ENVIRONMENTS
NGX = "nginx.ingress.kubernetes.io/"


@pytest.mark.parametrize(
    ("key", "bad"),
    [
        (f"{NGX}configuration-snippet", True),
        (f"{NGX}server-snippet", True),
        (f"{NGX}auth-snippet", True),
        ("nginx.org/server-snippets", True),  # NGINX Inc. plural form (Kyverno misses it)
        ("nginx.org/location-snippets", True),
        ("nginx.org/server-snippet", True),
        (f"{NGX}snippet-thing", False),
        (f"{NGX}rewrite-target", False),
        ("example.com/server-snippet", False),  # other controllers' keys
    ],
)
def test_nginx_no_snippets_annotations(key: str, bad: bool) -> None:
    obj = good_ingress(annotations={key: "proxy_set_header X-Foo bar"})
    for env in ALL_ENVS:
        found = check([obj], env, rule_id="nginx-no-snippets")
        assert fields(found) == ([f'metadata.annotations["{key}"]'] if bad else [])
        assert all(v.severity == "critical" and v.enforcement == "mandatory" for v in found)


@pytest.mark.parametrize(
    ("value", "bad"),
    [("true", True), ("True", True), ("1", True), ("false", False), ("", False)],
)
def test_nginx_no_snippets_configmap(value: str, bad: bool) -> None:
    obj = configmap(
        "ingress-nginx-controller", "ingress-nginx", {"allow-snippet-annotations": value}
    )
    found = check([obj], "dev", rule_id="nginx-no-snippets")
    assert fields(found) == (['data["allow-snippet-annotations"]'] if bad else [])
    assert (
        check([configmap("other", "x", {"foo": "true"})], "dev", rule_id="nginx-no-snippets") == []
    )


@pytest.mark.parametrize(
    ("value", "bad"),
    [
        ("/$2", False),
        ("https://auth.example.com/oauth2/auth", False),
        ("10.0.0.0/8,192.168.0.0/16", False),
        ("true", False),
        ("Basic realm", False),
        ("/ ; proxy_pass http://evil", True),
        ("x { }", True),
        ("a\nb", True),
        ("content_by_lua_block", True),
        ("/var/run/secrets/kubernetes.io/serviceaccount/token", True),
        ("/etc/passwd", True),
        ("/etc/shadow", True),
        ("/etc/nginx/nginx.conf", True),
        ("/etc/ingress-controller/ssl", True),
        ("/etc/hosts", False),
        ("alias /", True),
        ("root /", True),
        ("x root /tmp", True),
        ("grassroots", False),
    ],
)
def test_nginx_annotation_injection(value: str, bad: bool) -> None:
    key = f"{NGX}auth-url"
    obj = good_ingress(annotations={key: value})
    for env in ALL_ENVS:
        found = check([obj], env, rule_id="nginx-annotation-injection")
        assert fields(found) == ([f'metadata.annotations["{key}"]'] if bad else [])


def test_nginx_annotation_injection_ignores_snippets_and_other_prefixes() -> None:
    notes = {
        f"{NGX}configuration-snippet": "more_set_headers x;",
        "example.com/anything": "a; b {",
        "nginx.org/rewrites": "a;b",
    }
    assert (
        check([good_ingress(annotations=notes)], "dev", rule_id="nginx-annotation-injection") == []
    )


def test_nginx_annotation_injection_reads_non_string_values() -> None:
    obj = good_ingress(annotations={f"{NGX}proxy-body-size": 8})
    assert check([obj], "dev", rule_id="nginx-annotation-injection") == []


def _controller(image: str, kind: str = "Deployment") -> dict[str, Any]:
    return deployment("ingress-nginx-controller", "ingress-nginx", image=image, kind=kind)


@pytest.mark.parametrize(
    ("image", "overrides", "bad"),
    [
        ("registry.k8s.io/ingress-nginx/controller:v1.11.4", {}, True),
        ("registry.k8s.io/ingress-nginx/controller:v1.11.5", {}, False),
        ("registry.k8s.io/ingress-nginx/controller:v1.12.0", {}, True),
        ("registry.k8s.io/ingress-nginx/controller:v1.12.1@sha256:abc", {}, False),
        ("registry.k8s.io/ingress-nginx/controller:v1.10.6", {}, True),  # below 1.11.0
        ("k8s.gcr.io/ingress-nginx/controller:v0.49.3", {}, True),
        ("registry.k8s.io/ingress-nginx/controller:v1.13.0", {}, False),  # no entry: newer line
        (
            "registry.k8s.io/ingress-nginx/controller:v1.13.0",
            {"nginx_fixed_versions": {"1.13": "1.13.7"}},
            True,
        ),
        (
            "registry.k8s.io/ingress-nginx/controller:v1.12.1",
            {"nginx_fixed_versions": {"1.12": "1.12.5"}},
            True,
        ),
        ("localhost:5000/ingress-nginx/controller:v1.9.0", {}, True),  # registry with a port
        ("ingress-nginx/controller:v1.9.0", {}, True),
        ("registry.k8s.io/ingress-nginx/controller-chroot:v1.11.0", {}, True),
        ("registry.k8s.io/ingress-nginx/controller:latest", {}, False),  # cannot judge
        ("registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.1.1", {}, False),
        ("example.com/my-ingress-nginx/controller:v1.0.0", {}, False),
    ],
)
def test_nginx_controller_patched(image: str, overrides: dict[str, Any], bad: bool) -> None:
    for kind in ("Deployment", "DaemonSet", "StatefulSet"):
        found = check(
            [_controller(image, kind)], "dev", rule_id="nginx-controller-patched", **overrides
        )
        assert fields(found) == (["spec.template.spec.containers[0].image"] if bad else [])
        assert all(v.resource == f"{kind}/ingress-nginx/ingress-nginx-controller" for v in found)


def test_nginx_controller_patched_message_and_init_containers() -> None:
    obj = _controller("registry.k8s.io/ingress-nginx/controller:v1.12.0")
    obj["spec"]["template"]["spec"]["initContainers"] = [
        {"name": "x", "image": "registry.k8s.io/ingress-nginx/controller:v1.8.0"}
    ]
    found = check([obj], "prod", rule_id="nginx-controller-patched")
    assert fields(found) == [
        "spec.template.spec.initContainers[0].image",
        "spec.template.spec.containers[0].image",
    ]
    assert "v1.12.0" in found[1].message
    assert "1.12.1" in found[1].fix
    assert "1.11.5" in found[0].fix  # a line without an entry goes to the oldest fixed release


def _admission(**spec: Any) -> dict[str, Any]:
    return service(
        "ingress-nginx-controller-admission",
        "ingress-nginx",
        labels={"app.kubernetes.io/name": "ingress-nginx"},
        ports=[{"name": "https-webhook", "port": 443, "targetPort": "webhook"}],
        **spec,
    )


WEBHOOK = {
    "apiVersion": "admissionregistration.k8s.io/v1",
    "kind": "ValidatingWebhookConfiguration",
    "metadata": {"name": "custom-admission"},
    "webhooks": [
        {
            "name": "validate.example.com",
            "clientConfig": {"service": {"namespace": "ingress-nginx", "name": "hook"}},
        }
    ],
}


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        ([_admission()], []),
        ([_admission(type="ClusterIP")], []),
        ([_admission(type="NodePort")], [("Service", "spec.type")]),
        ([_admission(type="LoadBalancer")], [("Service", "spec.type")]),
        ([_admission(externalIPs=["203.0.113.1"])], [("Service", "spec.externalIPs")]),
        # Name alone, or label alone, does not make a webhook Service.
        ([service("x-admission", "ingress-nginx", type="NodePort")], []),
        (
            [
                service(
                    "hook",
                    "ingress-nginx",
                    type="NodePort",
                    labels={"app.kubernetes.io/name": "ingress-nginx"},
                )
            ],
            [],
        ),
        # Referenced by a ValidatingWebhookConfiguration: any name counts.
        (
            [WEBHOOK, service("hook", "ingress-nginx", type="LoadBalancer")],
            [("Service", "spec.type")],
        ),
        (
            [
                _admission(),
                ingress(
                    "leak",
                    "ingress-nginx",
                    rules=[
                        rule(
                            "a.example.com",
                            service_name="ingress-nginx-controller-admission",
                            port=443,
                        )
                    ],
                ),
            ],
            [("Ingress", "spec.rules[0].http.paths[0].backend.service.name")],
        ),
        (
            [
                _admission(),
                ingress(
                    "other-ns",
                    "default",
                    rules=[
                        rule("a.example.com", service_name="ingress-nginx-controller-admission")
                    ],
                ),
            ],
            [],
        ),
    ],
    ids=[
        "default",
        "clusterip",
        "nodeport",
        "lb",
        "external-ips",
        "name-only",
        "label-only",
        "webhook-config",
        "ingress-routes",
        "ingress-other-namespace",
    ],
)
def test_nginx_admission_not_exposed(
    objects: list[dict[str, Any]], expected: list[tuple[str, str]]
) -> None:
    for env in ALL_ENVS:
        found = check(objects, env, rule_id="nginx-admission-not-exposed")
        assert [(v.resource.split("/")[0], v.field) for v in found] == expected
