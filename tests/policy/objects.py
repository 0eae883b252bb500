"""Builders for the Kubernetes objects the policy tests feed the rules, and a realistic stack.

The realistic stack mirrors what the project's components render: an app (Deployment, ClusterIP
Service, Ingress with TLS, a kubernetes.io/tls Secret with a certificate generated for this test
run), the controller's LoadBalancer Service ``kexpose-system/kexpose-controller`` and Deployment,
and the IngressClass ``kexpose``. Certificates are generated per run, never committed.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from kexpose.certs import KeyPair, self_signed
from kexpose.environment import Environment
from kexpose.policy import PolicyConfig, Violation, evaluate

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
NS = "shop"


def service(
    name: str = "web",
    ns: str = NS,
    *,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if annotations is not None:
        meta["annotations"] = annotations
    if labels is not None:
        meta["labels"] = labels
    spec.setdefault("ports", [{"name": "http", "port": 80, "targetPort": "http"}])
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}


def lb(name: str = "web", ns: str = NS, **spec: Any) -> dict[str, Any]:
    return service(name, ns, type="LoadBalancer", **spec)


def ingress(
    name: str = "web",
    ns: str = NS,
    *,
    annotations: dict[str, str] | None = None,
    api_version: str = "networking.k8s.io/v1",
    **spec: Any,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if annotations is not None:
        meta["annotations"] = annotations
    return {"apiVersion": api_version, "kind": "Ingress", "metadata": meta, "spec": spec}


def backend(service_name: str = "web", port: int | str = 80) -> dict[str, Any]:
    key = "number" if isinstance(port, int) else "name"
    return {"service": {"name": service_name, "port": {key: port}}}


def http(
    *paths: tuple[str, str], service_name: str = "web", port: int | str = 80
) -> dict[str, Any]:
    return {
        "paths": [
            {"path": p, "pathType": t, "backend": backend(service_name, port)} for p, t in paths
        ]
    }


def rule(host: str | None, *paths: tuple[str, str], **kw: Any) -> dict[str, Any]:
    r: dict[str, Any] = {"http": http(*(paths or (("/", "Prefix"),)), **kw)}
    if host is not None:
        r["host"] = host
    return r


def good_ingress(
    name: str = "web",
    ns: str = NS,
    host: str = "shop.example.com",
    tls_name: str = "web-tls",
    klass: str = "kexpose",
    **kw: Any,
) -> dict[str, Any]:
    return ingress(
        name,
        ns,
        ingressClassName=klass,
        tls=[{"hosts": [host], "secretName": tls_name}],
        rules=[rule(host)],
        **kw,
    )


@lru_cache(maxsize=32)
def key_pair(hosts: tuple[str, ...], days: int = 365, start: dt.datetime = NOW) -> KeyPair:
    """Generated per run: no key material lives in the repository."""
    return self_signed(hosts, days=days, now=start)


def cert_pem(hosts: tuple[str, ...], days: int = 365, start: dt.datetime = NOW) -> str:
    return key_pair(hosts, days, start).cert_pem


def tls_secret(
    name: str = "web-tls",
    ns: str = NS,
    hosts: Sequence[str] = ("shop.example.com",),
    *,
    days: int = 365,
    pem: str | None = None,
    kind: str = "kubernetes.io/tls",
    string_data: bool = False,
) -> dict[str, Any]:
    text = pem if pem is not None else cert_pem(tuple(hosts), days)
    key = key_pair(tuple(hosts), days).key_pem
    if string_data:
        payload: dict[str, Any] = {"stringData": {"tls.crt": text, "tls.key": key}}
    else:
        payload = {
            "data": {
                "tls.crt": base64.b64encode(text.encode()).decode(),
                "tls.key": base64.b64encode(key.encode()).decode(),
            }
        }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns},
        "type": kind,
        **payload,
    }


def deployment(
    name: str = "web",
    ns: str = NS,
    *,
    labels: dict[str, str] | None = None,
    ports: Sequence[dict[str, Any]] = ({"name": "http", "containerPort": 8080},),
    image: str = "registry.example.com/shop/web:1.4.2",
    kind: str = "Deployment",
) -> dict[str, Any]:
    pod_labels = labels if labels is not None else {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "selector": {"matchLabels": pod_labels},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {"containers": [{"name": name, "image": image, "ports": list(ports)}]},
            },
        },
    }


def configmap(name: str, ns: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": data,
    }


def app(name: str = "web", ns: str = NS, host: str = "shop.example.com") -> list[dict[str, Any]]:
    """One exposed app as the components render it: Deployment, Service, Ingress, TLS Secret."""
    return [
        deployment(name, ns),
        service(name, ns, selector={"app": name}),
        good_ingress(name, ns, host=host, tls_name=f"{name}-tls"),
        tls_secret(f"{name}-tls", ns, (host,)),
    ]


def controller() -> list[dict[str, Any]]:
    """The project's ingress controller: LoadBalancer Service, Deployment, IngressClass."""
    ns = "kexpose-system"
    selector = {"app.kubernetes.io/name": "kexpose-controller"}
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IngressClass",
            "metadata": {"name": "kexpose"},
            "spec": {"controller": "kexpose.dev/ingress-controller"},
        },
        deployment(
            "kexpose-controller",
            ns,
            labels=selector,
            ports=(
                {"name": "http", "containerPort": 8080},
                {"name": "https", "containerPort": 8443},
            ),
            image="ghcr.io/kexpose/kexpose-proxy:0.1.0",
        ),
        service(
            "kexpose-controller",
            ns,
            type="LoadBalancer",
            selector=selector,
            allocateLoadBalancerNodePorts=False,
            ports=[
                {"name": "http", "port": 80, "targetPort": "http"},
                {"name": "https", "port": 443, "targetPort": "https"},
            ],
        ),
    ]


def realistic_stack() -> list[dict[str, Any]]:
    return [
        *controller(),
        *app("web", "shop", "shop.example.com"),
        *app("api", "shop", "api.shop.example.com"),
    ]


def check(
    objects: Sequence[dict[str, Any]],
    env: Environment = "prod",
    *,
    rule_id: str | None = None,
    config: PolicyConfig | None = None,
    **overrides: Any,
) -> list[Violation]:
    """Evaluate (spec defaults plus ``overrides``, clock at NOW), optionally one rule's results."""
    base = config if config is not None else PolicyConfig()
    cfg = PolicyConfig.model_validate({**base.model_dump(), "now": NOW, **overrides})
    found = evaluate(objects, environment=env, config=cfg)
    return [v for v in found if rule_id is None or v.rule == rule_id]


def fields(violations: Sequence[Violation]) -> list[str]:
    return [v.field for v in violations]


def mandatory_violations(
    objects: Sequence[dict[str, Any]], environment: Environment
) -> list[Violation]:
    """What keeps a rendered stack from passing its own environment: call this on the shipped
    stacks' rendered objects (project defaults, the real clock)."""
    found = evaluate(objects, environment=environment, config=PolicyConfig.project())
    return [v for v in found if v.enforcement == "mandatory"]
