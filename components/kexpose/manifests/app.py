"""Builders from one app's model to its manifests: Deployment, Service, PDB, Ingress, TLS.

Pure functions: the same model always gives the same objects, so the Pulumi component, the
offline preview and the tests all see identical manifests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kexpose.manifests.auth import basic_auth_secret, edge_auths
from kexpose.manifests.common import (
    Manifest,
    container_security,
    exposure_fields,
    metadata,
    plain,
    pod_security,
    probe,
    resources,
)
from kexpose.manifests.gateway import GatewayRef, gateway_certificate
from kexpose.manifests.grpcroute import grpc_routes
from kexpose.manifests.httproute import PortLookup, http_routes, secret_grant
from kexpose.manifests.middleware import TraefikRef, ingress_middleware_annotations, middlewares
from kexpose.model import AppSpec, Backend, Deferred
from kexpose.model.auth import auth_annotations
from kexpose.model.grpc import TRAEFIK_SERVERS_SCHEME, h2c_ports
from kexpose.model.protocol import APP_PROTOCOL_H2C

__all__ = [
    "TlsMaterial",
    "app_manifests",
    "deployment",
    "disruption_budget",
    "ingress",
    "selector_labels",
    "service",
    "tls_hosts",
    "tls_secret",
    "tls_secret_name",
]

#: Annotations cert-manager's ingress-shim reads to make a Certificate for an Ingress
#: (https://cert-manager.io/docs/usage/ingress/).
CERT_MANAGER_ANNOTATION = {
    "ClusterIssuer": "cert-manager.io/cluster-issuer",
    "Issuer": "cert-manager.io/issuer",
}


@dataclass(frozen=True, slots=True)
class TlsMaterial:
    """A PEM certificate and key for a ``kubernetes.io/tls`` Secret; often Deferred."""

    certificate: str | Deferred
    private_key: str | Deferred

    def __repr__(self) -> str:
        return "TlsMaterial(<redacted>)"


def selector_labels(app: AppSpec) -> dict[str, str]:
    if app.selector is not None:
        return dict(app.selector)
    return {"app.kubernetes.io/name": app.name, "app.kubernetes.io/instance": app.name}


def _labels(app: AppSpec) -> dict[str, str]:
    return {**app.labels, **selector_labels(app)} if app.workload else dict(app.labels)


def deployment(app: AppSpec) -> Manifest:
    w = app.workload
    if w is None:
        raise ValueError(f"app {app.name} references an existing workload; nothing to build")
    volumes = [{"name": f"writable-{i}", "emptyDir": {}} for i, _ in enumerate(w.writable_paths)]
    container: dict[str, Any] = {
        "name": app.name,
        "image": plain(w.image),
        "ports": [
            {"name": p.name, "containerPort": p.container_port, "protocol": p.protocol}
            for p in w.ports
        ],
        "resources": resources(w.resources),
        "securityContext": container_security(),
    }
    if w.command:
        container["command"] = list(w.command)
    if w.args:
        container["args"] = list(w.args)
    if w.env:
        container["env"] = [{"name": k, "value": plain(v)} for k, v in sorted(w.env.items())]
    if w.readiness is not None:
        container["readinessProbe"] = probe(w.readiness)
    if w.liveness is not None:
        container["livenessProbe"] = probe(w.liveness)
    if volumes:
        container["volumeMounts"] = [
            {"name": v["name"], "mountPath": path}
            for v, path in zip(volumes, w.writable_paths, strict=True)
        ]
    pod: dict[str, Any] = {
        # Apps do not talk to the API server; not mounting a token removes a credential an
        # attacker could use from a compromised pod.
        "automountServiceAccountToken": False,
        "securityContext": pod_security(w.run_as_user),
        "containers": [container],
    }
    if volumes:
        pod["volumes"] = volumes
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(app.name, app.namespace, labels=_labels(app)),
        "spec": {
            "replicas": w.replicas if w.replicas is not None else 1,
            "selector": {"matchLabels": selector_labels(app)},
            "template": {"metadata": {"labels": _labels(app)}, "spec": pod},
        },
    }


def service(app: AppSpec, *, traefik_h2c: bool = False) -> Manifest:
    """The app's Service. A port its gRPC routes reach gets ``appProtocol: kubernetes.io/h2c``
    unless it declares one; ``traefik_h2c`` (Traefik with Ingress) adds Traefik's server-scheme
    annotation, which it reads per Service, when the Service has h2c ports."""
    s = app.service
    h2c = h2c_ports(app)
    ports = []
    for p in s.ports:
        port: dict[str, Any] = {
            "name": p.name,
            "port": p.port,
            "targetPort": app.target_port(p),
            "protocol": p.protocol,
        }
        if p.node_port is not None:
            port["nodePort"] = p.node_port
        app_protocol = p.app_protocol or (APP_PROTOCOL_H2C if p.name in h2c else None)
        if app_protocol is not None:
            port["appProtocol"] = app_protocol
        ports.append(port)
    annotations: dict[str, Any] = dict(s.annotations)
    if traefik_h2c and h2c:
        annotations[TRAEFIK_SERVERS_SCHEME] = "h2c"
    spec: dict[str, Any] = {
        "type": s.type,
        "selector": selector_labels(app),
        "ports": ports,
        **exposure_fields(s),
    }
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(app.name, app.namespace, labels=app.labels, annotations=annotations),
        "spec": spec,
    }


def disruption_budget(app: AppSpec) -> Manifest:
    # maxUnavailable (not minAvailable) keeps working when the Deployment is scaled and never
    # blocks a node drain of a single-replica app outright.
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(app.name, app.namespace, labels=app.labels),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(app)}},
    }


def tls_secret_name(app: AppSpec) -> str:
    return app.tls.secret_name or f"{app.name}-tls"


def tls_hosts(app: AppSpec) -> list[str]:
    if app.tls.hosts is not None:
        return list(app.tls.hosts)
    return list(app.ingress.hosts()) if app.ingress is not None else []


def _backend(app: AppSpec, b: Backend) -> dict[str, Any]:
    port = {"number": b.port} if isinstance(b.port, int) else {"name": b.port}
    return {"service": {"name": b.service or app.name, "port": port}}


def ingress(app: AppSpec, *, class_name: str, traefik: bool = False) -> Manifest:
    """The app's Ingress. Its edge auth is asked of kexpose-proxy in ``kexpose.dev``
    annotations, or with ``traefik`` (the stack's Traefik serves the class) of Traefik's
    Middlewares, named in its router annotation (``kexpose.manifests.middleware``)."""
    ing = app.ingress
    if ing is None:
        raise ValueError(f"app {app.name} has no ingress")
    annotations: dict[str, Any] = dict(ing.annotations)
    if traefik:
        annotations.update(ingress_middleware_annotations(app))
    else:
        annotations.update(auth_annotations(app.name, app.auth, app.allow_source_ranges))
    spec: dict[str, Any] = {"ingressClassName": class_name}
    mode = app.tls.mode
    if mode not in (None, "none"):
        if mode == "cert-manager" and app.tls.via == "annotation" and app.tls.issuer:
            annotations[CERT_MANAGER_ANNOTATION[app.tls.issuer_kind]] = app.tls.issuer
        spec["tls"] = [{"hosts": tls_hosts(app), "secretName": tls_secret_name(app)}]
    if ing.default_backend is not None:
        spec["defaultBackend"] = _backend(app, ing.default_backend)
    rules = []
    for r in ing.rules:
        paths = [
            {"path": p.path, "pathType": p.path_type, "backend": _backend(app, p)} for p in r.paths
        ]
        for g in r.grpc:
            # A gRPC call is a POST to /<service>/<method> (kexpose.model.grpc); the controller
            # speaks h2c to the port by its appProtocol (or Traefik's Service annotation).
            path_type, path = g.ingress_path()
            paths.append({"path": path, "pathType": path_type, "backend": _backend(app, g.own())})
        rule: dict[str, Any] = {"http": {"paths": paths}}
        if r.host is not None:
            rule = {"host": r.host, **rule}
        rules.append(rule)
    if rules:
        spec["rules"] = rules
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata(app.name, app.namespace, labels=app.labels, annotations=annotations),
        "spec": spec,
    }


def _own_ports(app: AppSpec, others: PortLookup | None) -> PortLookup:
    def lookup(namespace: str, service: str, ref: int | str) -> int | None:
        if (namespace, service) == (app.namespace, app.name):
            own = app.service.port_ref(ref)
            return own.port if own is not None else None
        if others is not None:
            return others(namespace, service, ref)
        return ref if isinstance(ref, int) else None

    return lookup


def tls_secret(app: AppSpec, material: TlsMaterial) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(tls_secret_name(app), app.namespace, labels=app.labels),
        "type": "kubernetes.io/tls",
        "stringData": {
            "tls.crt": plain(material.certificate),
            "tls.key": plain(material.private_key),
        },
    }


def certificate(app: AppSpec) -> Manifest:
    """A cert-manager Certificate (https://cert-manager.io/docs/usage/certificate/)."""
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": metadata(tls_secret_name(app), app.namespace, labels=app.labels),
        "spec": {
            "secretName": tls_secret_name(app),
            "dnsNames": tls_hosts(app),
            "issuerRef": {
                "name": app.tls.issuer,
                "kind": app.tls.issuer_kind,
                "group": "cert-manager.io",
            },
        },
    }


def app_manifests(
    app: AppSpec,
    *,
    class_name: str | None,
    tls: TlsMaterial | None = None,
    htpasswd: str | Deferred | None = None,
    gateway: GatewayRef | None = None,
    ports: PortLookup | None = None,
    traefik_h2c: bool = False,
    traefik: TraefikRef | None = None,
) -> list[Manifest]:
    """Every object of one resolved app, in apply order.

    ``tls`` is required for the ``self-signed`` and ``secret`` modes: the caller makes or
    reads the material (it is deployment-time data, never part of the model's validation).
    With ``gateway`` (``api: gateway``) the app's routes become HTTPRoutes attached to it
    instead of an Ingress, a ReferenceGrant lets the Gateway use the app's own TLS Secret, and
    cert-manager certificates are the Gateway's (``kexpose.manifests.gateway``). ``ports``
    resolves port names of other apps' Services (an HTTPRoute needs numbers); the app's own are
    resolved here. Rules with gRPC entries become GRPCRoutes with ``gateway``, Ingress paths
    otherwise; ``traefik_h2c`` is for the Service (``service``). ``traefik`` (the stack's
    Traefik serves the app) turns its edge auth into Traefik Middlewares that its Ingress or
    HTTPRoute rules name, in place of kexpose's annotations or ``EdgeAuth`` objects.
    """
    out: list[Manifest] = []
    if app.workload is not None:
        out.append(deployment(app))
        if app.disruption_budget:
            out.append(disruption_budget(app))
    out.append(service(app, traefik_h2c=traefik_h2c))
    mode = app.tls.mode
    if mode in ("self-signed", "secret"):
        if tls is None:
            raise ValueError(f"app {app.name}: TLS mode {mode!r} needs its material")
        out.append(tls_secret(app, tls))
    elif mode == "cert-manager" and app.tls.via == "certificate":
        # With the Gateway API the Certificate goes where the Gateway reads its Secrets.
        out.append(
            certificate(app)
            if gateway is None
            else gateway_certificate(app, gateway_namespace=gateway.namespace)
        )
    if app.auth is not None and app.auth.users:
        # ``htpasswd``: hashed at deployment from secret config; offline, a placeholder.
        out.append(basic_auth_secret(app, htpasswd))
    if gateway is not None:
        grant = secret_grant(app, gateway=gateway)
        if grant is not None:
            out.append(grant)
        # Before the routes that name them.
        out += edge_auths(app) if traefik is None else middlewares(app, traefik, gateway=True)
        out += http_routes(
            app, gateway=gateway, ports=_own_ports(app, ports), traefik=traefik is not None
        )
        out += grpc_routes(
            app, gateway=gateway, ports=_own_ports(app, ports), traefik=traefik is not None
        )
        return out
    if app.ingress is not None:
        if class_name is None:
            raise ValueError(f"app {app.name}: no ingress class")
        if traefik is not None:
            out += middlewares(app, traefik, gateway=False)
        out.append(ingress(app, class_name=class_name, traefik=traefik is not None))
    return out
