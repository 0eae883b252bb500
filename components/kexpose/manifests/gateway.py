"""Builders for the Gateway API side of a stack (``api: gateway``): pure functions, plain dicts.

The controller side gets a GatewayClass and one Gateway per stack; each app rule becomes an
HTTPRoute attached to it; ReferenceGrants open exactly the cross-namespace references made.
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
  answers every plain request for a TLS host with a 301 to ``https``. Elsewhere apps without
  TLS attach to it;
- ``allowedRoutes`` admits the namespaces of the apps that use the listener, by their
  ``kubernetes.io/metadata.name`` label (set on every namespace by the API server), never All.
A route names the listeners it attaches to (``sectionName``), so that no route of a TLS host is
ever served on plain HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

from kexpose.gatewayapi import crds
from kexpose.gatewayapi import types as gw
from kexpose.hosts import covers
from kexpose.manifests.common import MANAGED_BY, Manifest, metadata
from kexpose.model import AppSpec, ControllerSpec, IngressPath, IngressRule, WeightedBackend
from kexpose.model.route import HeaderChanges, PathChange

__all__ = [
    "GatewayRef",
    "Listener",
    "PortLookup",
    "crd_manifests",
    "gateway_certificate",
    "gateway_manifests",
    "http_routes",
    "issuer_annotation",
    "listener_name",
    "listener_secret",
    "listeners",
    "route_grants",
    "route_names",
    "secret_grant",
    "sections",
]

GROUP: Final = gw.GROUP
HTTP_LISTENER: Final = "http"
#: Answers every plain-HTTP request on a TLS host; RequestRedirect allows 301 and 302.
REDIRECT_STATUS: Final = 301
#: Annotations cert-manager's shims read (https://cert-manager.io/docs/usage/gateway/).
CERT_MANAGER_ANNOTATION: Final = {
    "ClusterIssuer": "cert-manager.io/cluster-issuer",
    "Issuer": "cert-manager.io/issuer",
}
#: The well-known label the API server sets on every Namespace to its name (Kubernetes 1.22+).
NAMESPACE_NAME_LABEL: Final = "kubernetes.io/metadata.name"

#: (namespace, Service name, port name or number) -> the Service port number, or None.
PortLookup = Callable[[str, str, int | str], int | None]


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


def _tls_hosts(app: AppSpec) -> list[str]:
    if not _has_tls(app):
        return []
    if app.tls.hosts is not None:
        return list(app.tls.hosts)
    return list(app.ingress.hosts()) if app.ingress is not None else []


def _secret_name(app: AppSpec) -> str:
    return app.tls.secret_name or f"{app.name}-tls"


def listener_secret(app: AppSpec, *, gateway_namespace: str) -> tuple[str, str]:
    """(namespace, name) of the Secret the Gateway's listeners use for the app (module doc)."""
    if app.tls.mode == "cert-manager":
        return gateway_namespace, f"{app.namespace}-{_secret_name(app)}"
    return app.namespace, _secret_name(app)


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
            "dnsNames": _tls_hosts(app),
            "issuerRef": {
                "name": app.tls.issuer,
                "kind": app.tls.issuer_kind,
                "group": "cert-manager.io",
            },
        },
    }


def sections(app: AppSpec, rule: IngressRule) -> list[str]:
    """The listeners a rule's route attaches to: the HTTPS listener of each TLS host covering
    its host, else the HTTP listener."""
    if rule.host is not None:
        names = [listener_name(t) for t in _tls_hosts(app) if covers(t, rule.host)]
        if names:
            return sorted(set(names))
    return [HTTP_LISTENER]


def route_names(app: AppSpec) -> list[str]:
    """One HTTPRoute per rule (route hostnames apply to all its rules): the app's name for the
    first, ``<app>-<i>`` after."""
    rules = app.ingress.rules if app.ingress is not None else ()
    return [app.name if i == 0 else f"{app.name}-{i}" for i in range(len(rules))]


# ---- the controller side ------------------------------------------------------------------------


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
        for t in _tls_hosts(app):
            secrets, namespaces = hosts.setdefault(t, (set(), set()))
            secrets.add(listener_secret(app, gateway_namespace=gateway_namespace))
            namespaces.add(app.namespace)
        if any(sections(app, r) == [HTTP_LISTENER] for r in app.ingress.rules):
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
            if r.host is not None and sections(app, r) != [HTTP_LISTENER]
        }
    )
    if tls_route_hosts:
        out.append(_redirect_route(c, ref, tls_route_hosts, labels))
    return out


def crd_manifests() -> list[Manifest]:
    """The Gateway API CRDs (standard channel v1.6.3) the controller installs, labelled as
    kexpose's."""
    out = []
    for crd in crds():
        meta = crd.setdefault("metadata", {})
        meta["labels"] = {**meta.get("labels", {}), **MANAGED_BY}
        out.append(crd)
    return out


# ---- the app side -------------------------------------------------------------------------------


def _path_change(change: PathChange) -> dict[str, str]:
    if change.full_path is not None:
        return {"type": "ReplaceFullPath", "replaceFullPath": change.full_path}
    assert change.prefix is not None
    return {"type": "ReplacePrefixMatch", "replacePrefixMatch": change.prefix}


def _headers(changes: HeaderChanges) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if changes.set:
        out["set"] = [{"name": k, "value": v} for k, v in changes.set.items()]
    if changes.add:
        out["add"] = [{"name": k, "value": v} for k, v in changes.add.items()]
    if changes.remove:
        out["remove"] = list(changes.remove)
    return out


def _filters(p: IngressPath) -> list[gw.HTTPRouteSpecRulesFilters]:
    f = p.filters
    if f is None:
        return []
    out: list[gw.HTTPRouteSpecRulesFilters] = []
    if f.request_headers is not None:
        out.append(
            {
                "type": "RequestHeaderModifier",
                "requestHeaderModifier": cast(Any, _headers(f.request_headers)),
            }
        )
    if f.response_headers is not None:
        out.append(
            {
                "type": "ResponseHeaderModifier",
                "responseHeaderModifier": cast(Any, _headers(f.response_headers)),
            }
        )
    if f.redirect is not None:
        r = f.redirect
        redirect: gw.HTTPRouteSpecRulesFiltersRequestRedirect = {"statusCode": r.status_code}
        if r.scheme is not None:
            redirect["scheme"] = r.scheme
        if r.hostname is not None:
            redirect["hostname"] = r.hostname
        if r.port is not None:
            redirect["port"] = r.port
        if r.path is not None:
            redirect["path"] = cast(Any, _path_change(r.path))
        out.append({"type": "RequestRedirect", "requestRedirect": redirect})
    if f.rewrite is not None:
        rewrite: gw.HTTPRouteSpecRulesFiltersUrlRewrite = {}
        if f.rewrite.hostname is not None:
            rewrite["hostname"] = f.rewrite.hostname
        if f.rewrite.path is not None:
            rewrite["path"] = cast(Any, _path_change(f.rewrite.path))
        out.append({"type": "URLRewrite", "urlRewrite": rewrite})
    return out


def _match(p: IngressPath) -> gw.HTTPRouteSpecRulesMatches:
    match: gw.HTTPRouteSpecRulesMatches = {
        "path": {"type": "Exact" if p.path_type == "Exact" else "PathPrefix", "value": p.path}
    }
    if p.headers:
        match["headers"] = [{"type": h.type, "name": h.name, "value": h.value} for h in p.headers]
    if p.query_params:
        match["queryParams"] = [
            {"type": q.type, "name": q.name, "value": q.value} for q in p.query_params
        ]
    if p.method is not None:
        match["method"] = p.method
    return match


def _backend_refs(
    app: AppSpec, p: IngressPath, ports: PortLookup
) -> list[gw.HTTPRouteSpecRulesBackendRefs]:
    out: list[gw.HTTPRouteSpecRulesBackendRefs] = []
    for _, b in p.all_backends():
        namespace = b.namespace or app.namespace
        service = b.service or app.name
        number = ports(namespace, service, b.port)
        if number is None:
            raise ValueError(
                f"app {app.name}: port {b.port!r} of Service {namespace}/{service} is unknown; "
                "an HTTPRoute needs the port number"
            )
        ref: gw.HTTPRouteSpecRulesBackendRefs = {
            "group": "",
            "kind": "Service",
            "name": service,
            "port": number,
        }
        if namespace != app.namespace:
            ref["namespace"] = namespace
        weight = b.weight if isinstance(b, WeightedBackend) else p.weight
        if weight is not None:
            ref["weight"] = weight
        out.append(ref)
    if p.backends and p.weight is None:
        out[0]["weight"] = 1  # the default, written out so a split reads as one
    return out


def http_routes(app: AppSpec, *, gateway: GatewayRef, ports: PortLookup) -> list[Manifest]:
    """One HTTPRoute per ingress rule of the app, attached to ``gateway``."""
    if app.ingress is None:
        return []
    out: list[Manifest] = []
    for name, rule in zip(route_names(app), app.ingress.rules, strict=True):
        rules: list[gw.HTTPRouteSpecRules] = []
        for p in rule.paths:
            r: gw.HTTPRouteSpecRules = {"matches": [_match(p)]}
            filters = _filters(p)
            if filters:
                r["filters"] = filters
            if p.filters is None or p.filters.redirect is None:
                r["backendRefs"] = _backend_refs(app, p, ports)
            rules.append(r)
        parents: list[gw.HTTPRouteSpecParentRefs] = []
        for section in sections(app, rule):
            parent: gw.HTTPRouteSpecParentRefs = {
                "group": GROUP,
                "kind": "Gateway",
                "namespace": gateway.namespace,
                "name": gateway.name,
                "sectionName": section,
            }
            if gateway.namespace == app.namespace:
                del parent["namespace"]
            parents.append(parent)
        spec: gw.HTTPRouteSpec = {"parentRefs": parents, "rules": rules}
        if rule.host is not None:
            spec["hostnames"] = [rule.host]
        route: gw.HTTPRoute = {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": metadata(
                name, app.namespace, labels=app.labels, annotations=app.ingress.annotations
            ),
            "spec": spec,
        }
        out.append(cast(Manifest, route))
    return out


def _grant(
    name: str,
    namespace: str,
    *,
    referrer: str,
    from_namespace: str,
    kind: str,
    names: Iterable[str],
    labels: Mapping[str, str],
) -> Manifest:
    grant: gw.ReferenceGrant = {
        "apiVersion": "gateway.networking.k8s.io/v1beta1",
        "kind": "ReferenceGrant",
        "metadata": metadata(name, namespace, labels=dict(labels)),
        "spec": {
            "from": [{"group": GROUP, "kind": referrer, "namespace": from_namespace}],
            "to": [{"group": "", "kind": kind, "name": n} for n in sorted(set(names))],
        },
    }
    return cast(Manifest, grant)


def secret_grant(app: AppSpec, *, gateway: GatewayRef) -> Manifest | None:
    """The ReferenceGrant that lets the Gateway use the app's TLS Secret (its own only)."""
    namespace, _ = listener_secret(app, gateway_namespace=gateway.namespace)
    if not _tls_hosts(app) or namespace == gateway.namespace:
        return None
    return _grant(
        f"{_secret_name(app)}-to-gateways",
        app.namespace,
        referrer="Gateway",
        from_namespace=gateway.namespace,
        kind="Secret",
        names=[_secret_name(app)],
        labels=app.labels,
    )


def route_grants(apps: Sequence[AppSpec]) -> list[tuple[int, Manifest]]:
    """ReferenceGrants for routes whose backends are in another namespace: one per (target
    namespace, route namespace), naming exactly the Services reached, each with the index of an
    app it serves (the first target app, for error locations)."""
    by_key = {(a.namespace, a.name): i for i, a in enumerate(apps)}
    wanted: dict[tuple[str, str], set[str]] = {}
    for app in apps:
        if app.ingress is None:
            continue
        for _, b in app.ingress.backends():
            namespace = b.namespace or app.namespace
            if namespace != app.namespace:
                wanted.setdefault((namespace, app.namespace), set()).add(b.service or app.name)
    out: list[tuple[int, Manifest]] = []
    for (namespace, source), services in sorted(wanted.items()):
        index = min(by_key.get((namespace, s), 0) for s in services)
        out.append(
            (
                index,
                _grant(
                    f"httproutes-from-{source}",
                    namespace,
                    referrer="HTTPRoute",
                    from_namespace=source,
                    kind="Service",
                    names=services,
                    labels={},
                ),
            )
        )
    return out
