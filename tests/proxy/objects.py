"""Terse builders for the raw Kubernetes objects the proxy reads (test data, not fixtures)."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kexpose.certs import KeyPair
from kexpose.defaults import CONTROLLER_NAME

CLASS = "kexpose"
T0 = "2024-01-01T00:00:00Z"

Obj = dict[str, Any]


def ingress_class(name: str = CLASS, controller: str = CONTROLLER_NAME) -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": name},
        "spec": {"controller": controller},
    }


def backend(service: str, port: int | str = 80) -> Obj:
    ref = {"number": port} if isinstance(port, int) else {"name": port}
    return {"service": {"name": service, "port": ref}}


def path(p: str, service: str, port: int | str = 80, path_type: str = "Prefix") -> Obj:
    return {"path": p, "pathType": path_type, "backend": backend(service, port)}


def rule(host: str | None, *paths: Obj) -> Obj:
    r: Obj = {"http": {"paths": list(paths)}}
    if host is not None:
        r["host"] = host
    return r


def ingress(
    name: str,
    *rules: Obj,
    namespace: str = "default",
    cls: str | None = CLASS,
    annotation: str | None = None,
    created: str = T0,
    default: Obj | None = None,
    tls: Sequence[Obj] = (),
    annotations: Mapping[str, str] | None = None,
) -> Obj:
    meta: Obj = {"name": name, "namespace": namespace, "creationTimestamp": created}
    notes = dict(annotations or {})
    if annotation is not None:
        notes["kubernetes.io/ingress.class"] = annotation
    if notes:
        meta["annotations"] = notes
    spec: Obj = {}
    if cls is not None:
        spec["ingressClassName"] = cls
    if rules:
        spec["rules"] = list(rules)
    if default is not None:
        spec["defaultBackend"] = default
    if tls:
        spec["tls"] = list(tls)
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta, "spec": spec}


def tls(secret: str | None, *hosts: str) -> Obj:
    entry: Obj = {}
    if hosts:
        entry["hosts"] = list(hosts)
    if secret is not None:
        entry["secretName"] = secret
    return entry


def service(
    name: str,
    *ports: Obj,
    namespace: str = "default",
    type_: str = "ClusterIP",
    **spec: Any,
) -> Obj:
    body: Obj = {"type": type_, "ports": list(ports) or [{"port": 80, "targetPort": 8080}], **spec}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


def sport(
    port: int,
    target: int | str | None = None,
    name: str | None = None,
    *,
    app_protocol: str | None = None,
) -> Obj:
    p: Obj = {"port": port}
    if app_protocol is not None:
        p["appProtocol"] = app_protocol
    if target is not None:
        p["targetPort"] = target
    if name is not None:
        p["name"] = name
    return p


def endpoint(address: str, ready: bool | None = True) -> Obj:
    e: Obj = {"addresses": [address]}
    if ready is not None:
        e["conditions"] = {"ready": ready}
    return e


def endpoint_slice(
    service_name: str,
    endpoints: Iterable[Obj],
    ports: Iterable[tuple[str | None, int]] = ((None, 8080),),
    *,
    name: str | None = None,
    namespace: str = "default",
    address_type: str = "IPv4",
) -> Obj:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name or f"{service_name}-abc",
            "namespace": namespace,
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "addressType": address_type,
        "endpoints": list(endpoints),
        "ports": [{"name": n, "port": p, "protocol": "TCP"} for n, p in ports],
    }


def tls_secret(name: str, pair: KeyPair, namespace: str = "default") -> Obj:
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"tls.crt": b64(pair.cert_pem), "tls.key": b64(pair.key_pem)},
    }


def app(
    name: str, *addresses: str, port: int = 80, target: int = 8080, namespace: str = "default"
) -> list[Obj]:
    """A Service with one port and a slice of ready endpoints."""
    return [
        service(name, sport(port, target), namespace=namespace),
        endpoint_slice(
            name, [endpoint(a) for a in addresses], [(None, target)], namespace=namespace
        ),
    ]
