"""Builders for the controller side of the Gateway API (``api: gateway``): pure, plain dicts.

The controller gets a GatewayClass and one Gateway per stack (the CRDs too, unless the platform
owns them); each app rule becomes an HTTPRoute attached to it (``kexpose.manifests.httproute``).
Gateway API standard channel v1.6.3 (https://gateway-api.sigs.k8s.io/reference/spec/).

The Gateway's listeners, and so which listener a route attaches to, follow from the apps:
- one HTTPS listener per TLS host of the stack (``tls.hosts``, or every rule host), named
  ``https-<host>`` (``*`` written ``wildcard``), terminating TLS with the certificate of every
  app that covers that host. Where the certificate lives:
  - material the app brings (``self-signed``, ``secret``) stays in the app's namespace, as with
    Ingress; the Gateway reaches it through a ReferenceGrant the app makes (GatewayTLSConfig: a
    cross-namespace certificateRef needs one);
  - cert-manager certificates live in the Gateway's namespace as ``<app namespace>-<secret>``,
    because cert-manager's Gateway API support (its gateway-shim,
    https://cert-manager.io/docs/usage/gateway/) issues a Certificate per Secret a listener
    references *in the Gateway's namespace*, for the listeners' hostnames, when the Gateway
    carries the ``cert-manager.io/cluster-issuer`` (or ``issuer``) annotation. With ``via:
    annotation`` (the default) the Gateway carries it (one issuer per Gateway); with ``via:
    certificate`` the app makes the Certificate there itself;
- one HTTP listener ``http``. Where the environment asks for it (staging, prod) it only
  redirects: it admits routes from the Gateway's own namespace alone, and the one route there
  answers every plain request for a TLS host with a 308 to ``https``. Elsewhere apps without
  TLS attach to it, and so do the routes of an app that opts out of the redirect
  (``kexpose.dev/ssl-redirect: "false"``, as kexpose-proxy reads it on an Ingress): they name
  the HTTP listener beside their HTTPS ones, and the redirect route leaves their hosts out. A
  host that another app of the stack still redirects keeps the redirect (on the HTTP listener
  kexpose-proxy ranks the redirect's RegularExpression ``/.*`` before any PathPrefix, so where
  the apps of a host disagree HTTPS wins for all but the opting-out app's Exact paths);
- ``allowedRoutes`` admits the namespaces of the apps that use the listener, by their
  ``kubernetes.io/metadata.name`` label (set on every namespace by the API server), never All.
A route names the listeners it attaches to (``sectionName``), so that no route of a TLS host is
ever served on plain HTTP.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, cast

from kexpose.gatewayapi import crds
from kexpose.gatewayapi import types as gw
from kexpose.hosts import covers
from kexpose.manifests.common import MANAGED_BY, Manifest, metadata
from kexpose.model import AppSpec, ControllerSpec, IngressRule

__all__ = [
    "CERT_MANAGER_ANNOTATION",
    "GROUP",
    "HTTP_LISTENER",
    "NAMESPACE_NAME_LABEL",
    "GatewayRef",
    "Listener",
    "crd_manifests",
    "gateway_certificate",
    "gateway_manifests",
    "issuer_annotation",
    "listener_name",
    "listener_secret",
    "listeners",
    "secret_name_of",
    "sections",
    "tls_hosts_of",
]

GROUP: Final = gw.GROUP
HTTP_LISTENER: Final = "http"
#: Answers every plain-HTTP request on a TLS host. 308, as ingress-nginx's ``ssl-redirect`` and
#: kexpose-proxy's own for Ingress: unlike 301 it keeps the method and body (RFC 9110 §15.4.9),
#: so a POST is not replayed as a GET. HTTPRequestRedirectFilter.statusCode allows it (Gateway
#: API v1.6.3, extended support ``HTTPRoute308RedirectStatusCode``), which kexpose-proxy
#: implements and Traefik v3.7.13's Gateway provider declares (gateway/features.go) and passes
#: through to its RequestRedirect middleware (httproute.go ``createRequestRedirect``).
REDIRECT_STATUS: Final = 308
#: Annotations cert-manager's shims read (https://cert-manager.io/docs/usage/gateway/).
CERT_MANAGER_ANNOTATION: Final = {
    "ClusterIssuer": "cert-manager.io/cluster-issuer",
    "Issuer": "cert-manager.io/issuer",
}
#: The well-known label the API server sets on every Namespace to its name (Kubernetes 1.22+).
NAMESPACE_NAME_LABEL: Final = "kubernetes.io/metadata.name"


@dataclass(frozen=True, slots=True)
class GatewayRef:
    """The Gateway routes attach to."""

    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class Listener:
    name: str
    protocol: str
    port: int
    hostname: str | None
    #: (namespace, Secret name) of each certificate, for HTTPS.
    secrets: tuple[tuple[str, str], ...]
    #: Namespaces whose routes may attach; empty means the Gateway's own only.
    namespaces: tuple[str, ...]


def listener_name(tls_host: str) -> str:
    """The HTTPS listener of a TLS host (a SectionName: DNS subdomain characters)."""
    return "https-" + tls_host.replace("*", "wildcard")


def _has_tls(app: AppSpec) -> bool:
    return app.tls.mode not in (None, "none")


def tls_hosts_of(app: AppSpec) -> list[str]:
    if not _has_tls(app):
        return []
    if app.tls.hosts is not None:
        return list(app.tls.hosts)
    return list(app.ingress.hosts()) if app.ingress is not None else []


def secret_name_of(app: AppSpec) -> str:
    return app.tls.secret_name or f"{app.name}-tls"


def listener_secret(app: AppSpec, *, gateway_namespace: str) -> tuple[str, str]:
    """(namespace, name) of the Secret the Gateway's listeners use for the app (module doc)."""
    if app.tls.mode == "cert-manager":
        return gateway_namespace, f"{app.namespace}-{secret_name_of(app)}"
    return app.namespace, secret_name_of(app)


def issuer_annotation(apps: Sequence[AppSpec]) -> dict[str, str]:
    """The Gateway's cert-manager annotation: the issuer of its apps with ``via: annotation``
    (the model allows one per stack)."""
    wanted = sorted(
        {
            (CERT_MANAGER_ANNOTATION[a.tls.issuer_kind], a.tls.issuer)
            for a in apps
            if a.tls.mode == "cert-manager" and a.tls.via == "annotation" and a.tls.issuer
        }
    )
    if len(wanted) > 1:
        raise ValueError(f"one Gateway, several cert-manager issuers: {wanted}")
    return dict(wanted)


def gateway_certificate(app: AppSpec, *, gateway_namespace: str) -> Manifest:
    """An explicit cert-manager Certificate for the Gateway (``via: certificate``)."""
    namespace, name = listener_secret(app, gateway_namespace=gateway_namespace)
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": metadata(name, namespace, labels=app.labels),
        "spec": {
            "secretName": name,
            "dnsNames": tls_hosts_of(app),
            "issuerRef": {
                "name": app.tls.issuer,
                "kind": app.tls.issuer_kind,
                "group": "cert-manager.io",
            },
        },
    }


def sections(app: AppSpec, rule: IngressRule) -> list[str]:
    """The listeners a rule's route attaches to: the HTTPS listener of each TLS host covering
    its host (and the HTTP listener too where the app opts out of the redirect), else the HTTP
    listener."""
    if rule.host is not None:
        names = sorted({listener_name(t) for t in tls_hosts_of(app) if covers(t, rule.host)})
        if names:
            return [HTTP_LISTENER, *names] if _plain_http(app) else names
    return [HTTP_LISTENER]


def _plain_http(app: AppSpec) -> bool:
    return app.ingress is not None and app.ingress.plain_http()


def _redirected(app: AppSpec, rule: IngressRule) -> bool:
    """Whether plain HTTP for the rule's host is redirected: it has an HTTPS listener, and the
    app does not opt out (module doc)."""
    return rule.host is not None and sections(app, rule) != [HTTP_LISTENER] and not _plain_http(app)


def listeners(
    apps: Sequence[AppSpec],
    *,
    gateway_namespace: str,
    http_port: int,
    https_port: int,
    redirect_only: bool,
) -> list[Listener]:
    """The Gateway's listeners for these (resolved) apps; see the module doc."""
    hosts: dict[str, tuple[set[tuple[str, str]], set[str]]] = {}
    plain: set[str] = set()
    for app in apps:
        if app.ingress is None:
            continue
        for t in tls_hosts_of(app):
            secrets, namespaces = hosts.setdefault(t, (set(), set()))
            secrets.add(listener_secret(app, gateway_namespace=gateway_namespace))
            namespaces.add(app.namespace)
        if any(HTTP_LISTENER in sections(app, r) for r in app.ingress.rules):
            plain.add(app.namespace)
    if redirect_only or not (plain or hosts):
        http_namespaces: tuple[str, ...] = ()
    else:
        http_namespaces = tuple(sorted(plain | ({gateway_namespace} if hosts else set())))
    out = [Listener(HTTP_LISTENER, "HTTP", http_port, None, (), http_namespaces)]
    for host in sorted(hosts):
        secrets, namespaces = hosts[host]
        out.append(
            Listener(
                listener_name(host),
                "HTTPS",
                https_port,
                host,
                tuple(sorted(secrets)),
                tuple(sorted(namespaces)),
            )
        )
    return out


def _allowed(namespaces: tuple[str, ...]) -> gw.GatewaySpecListenersAllowedRoutes:
    if not namespaces:
        return {"namespaces": {"from": "Same"}}
    return {
        "namespaces": {
            "from": "Selector",
            "selector": {
                "matchExpressions": [
                    {"key": NAMESPACE_NAME_LABEL, "operator": "In", "values": list(namespaces)}
                ]
            },
        }
    }


def _listener(listener: Listener, gateway_namespace: str) -> gw.GatewaySpecListeners:
    out: gw.GatewaySpecListeners = {
        "name": listener.name,
        "protocol": listener.protocol,
        "port": listener.port,
        "allowedRoutes": _allowed(listener.namespaces),
    }
    if listener.hostname is not None:
        out["hostname"] = listener.hostname
    if listener.protocol == "HTTPS":
        refs: list[gw.GatewaySpecListenersTlsCertificateRefs] = []
        for namespace, name in listener.secrets:
            ref: gw.GatewaySpecListenersTlsCertificateRefs = {
                "group": "",
                "kind": "Secret",
                "name": name,
            }
            if namespace != gateway_namespace:
                ref["namespace"] = namespace
            refs.append(ref)
        out["tls"] = {"mode": "Terminate", "certificateRefs": refs}
    return out


def _redirect_route(
    c: ControllerSpec, gateway: GatewayRef, hosts: Iterable[str], labels: dict[str, str]
) -> Manifest:
    route: gw.HTTPRoute = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": metadata(f"{gateway.name}-https-redirect", gateway.namespace, labels=labels),
        "spec": {
            "parentRefs": [
                {
                    "group": GROUP,
                    "kind": "Gateway",
                    "name": gateway.name,
                    "sectionName": HTTP_LISTENER,
                }
            ],
            "hostnames": sorted(hosts),
            "rules": [
                {
                    # A catch-all written as a RegularExpression rather than PathPrefix "/":
                    # the same requests, on the HTTP listener only, and never the same match as
                    # an app's own PathPrefix "/" route on the HTTPS listeners (route-unique-match
                    # compares matches across listeners of a Gateway).
                    "matches": [{"path": {"type": "RegularExpression", "value": "/.*"}}],
                    "filters": [
                        {
                            "type": "RequestRedirect",
                            "requestRedirect": {"scheme": "https", "statusCode": REDIRECT_STATUS},
                        }
                    ],
                }
            ],
        },
    }
    return cast(Manifest, route)


def gateway_manifests(
    c: ControllerSpec,
    *,
    controller_name: str,
    labels: dict[str, str],
    apps: Sequence[AppSpec],
    http_port: int,
    https_port: int,
    redirect_only: bool,
) -> list[Manifest]:
    """GatewayClass, the stack's Gateway and (with TLS hosts) its HTTP-to-HTTPS redirect."""
    ref = GatewayRef(c.namespace, c.gateway.name)
    gateway_class: gw.GatewayClass = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GatewayClass",
        "metadata": metadata(c.class_name, labels=labels),
        "spec": {"controllerName": controller_name},
    }
    made = listeners(
        apps,
        gateway_namespace=c.namespace,
        http_port=http_port,
        https_port=https_port,
        redirect_only=redirect_only,
    )
    gateway: gw.Gateway = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": metadata(
            c.gateway.name, c.namespace, labels=labels, annotations=issuer_annotation(apps)
        ),
        "spec": {
            "gatewayClassName": c.class_name,
            "listeners": [_listener(listener, c.namespace) for listener in made],
        },
    }
    out: list[Manifest] = [cast(Manifest, gateway_class), cast(Manifest, gateway)]
    tls_route_hosts = sorted(
        {
            r.host
            for app in apps
            if app.ingress is not None
            for r in app.ingress.rules
            if r.host is not None and _redirected(app, r)
        }
    )
    if tls_route_hosts:
        out.append(_redirect_route(c, ref, tls_route_hosts, labels))
    return out


#: pulumi-kubernetes' annotation for a server-side apply that takes over fields another manager
#: set (its registry guide "managing resources with server-side apply", field conflicts).
PATCH_FORCE: Final = "pulumi.com/patchForce"


def crd_manifests() -> list[Manifest]:
    """The Gateway API CRDs (standard channel v1.6.3) the controller installs, labelled as
    kexpose's."""
    out = []
    for crd in crds():
        meta = crd.setdefault("metadata", {})
        meta["labels"] = {**meta.get("labels", {}), **MANAGED_BY}
        # CRDs are cluster-wide and often there already (another stack, a conformance run, a
        # platform that applied the same bundle): like Helm's crds/ handling, install or adopt
        # them rather than fail on the other field manager's server-side-apply conflict
        # (pulumi-kubernetes' patchForce); the component also never deletes them (retained on
        # delete, resources/ingress_controller.py), since deleting a CRD deletes every route
        # and Gateway of that kind in the cluster.
        meta["annotations"] = {**meta.get("annotations", {}), PATCH_FORCE: "true"}
        out.append(crd)
    return out
