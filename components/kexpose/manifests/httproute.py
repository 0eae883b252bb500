"""Builders for the app side of the Gateway API: HTTPRoutes and the ReferenceGrants they need.

One HTTPRoute per rule of an app (route hostnames apply to all its rules), attached to the
listeners ``kexpose.manifests.gateway`` gives the rule's host; each path becomes a rule with
its match (path, headers, query parameters, method), its filters, its timeouts and its weighted
backendRefs
(HTTPRoute, standard channel v1.6.3: https://gateway-api.sigs.k8s.io/reference/spec/#httproute).
A ReferenceGrant opens exactly the cross-namespace references made: the app's own TLS Secret to
the Gateway, and the Services its routes reach in other namespaces.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, Literal, Protocol, cast

from kexpose.gatewayapi import types as gw
from kexpose.manifests.auth import auth_filters
from kexpose.manifests.common import Manifest, metadata
from kexpose.manifests.gateway import (
    GROUP,
    GatewayRef,
    listener_secret,
    secret_name_of,
    sections,
    tls_hosts_of,
)
from kexpose.model import AppSpec, Backend, IngressPath, WeightedBackend
from kexpose.model.route import Cors, HeaderChanges, PathChange, RouteTimeouts

__all__ = ["PortLookup", "http_routes", "route_grants", "route_names", "secret_grant"]

#: (namespace, Service name, port name or number) -> the Service port number, or None.
PortLookup = Callable[[str, str, int | str], int | None]


def route_names(app: AppSpec) -> list[str]:
    """One HTTPRoute per rule (route hostnames apply to all its rules): the app's name for the
    first, ``<app>-<i>`` after."""
    rules = app.ingress.rules if app.ingress is not None else ()
    return [app.name if i == 0 else f"{app.name}-{i}" for i in range(len(rules))]


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


def _cors(cors: Cors) -> gw.HTTPRouteSpecRulesFiltersCors:
    out: gw.HTTPRouteSpecRulesFiltersCors = {"allowOrigins": list(cors.allow_origins)}
    if cors.allow_methods:
        out["allowMethods"] = list(cors.allow_methods)
    if cors.allow_headers:
        out["allowHeaders"] = list(cors.allow_headers)
    if cors.expose_headers:
        out["exposeHeaders"] = list(cors.expose_headers)
    if cors.allow_credentials:
        out["allowCredentials"] = True
    # Written out although 5 is the CRD default, so the object reads the same after the API
    # server defaulted it (no diff on the next update).
    out["maxAge"] = cors.max_age
    return out


def _timeouts(t: RouteTimeouts) -> gw.HTTPRouteSpecRulesTimeouts:
    out: gw.HTTPRouteSpecRulesTimeouts = {}
    if t.request is not None:
        out["request"] = t.request
    if t.backend_request is not None:
        out["backendRequest"] = t.backend_request
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
    if f.cors is not None:
        out.append({"type": "CORS", "cors": _cors(f.cors)})
    return out


#: The model's path types as HTTPPathMatch types; Prefix is PathPrefix.
_PATH_MATCH: Final[dict[str, Literal["Exact", "RegularExpression"]]] = {
    "Exact": "Exact",
    "RegularExpression": "RegularExpression",
}


def _match(p: IngressPath) -> gw.HTTPRouteSpecRulesMatches:
    match: gw.HTTPRouteSpecRulesMatches = {
        "path": {"type": _PATH_MATCH.get(p.path_type, "PathPrefix"), "value": p.path}
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


class Routed(Protocol):
    """A route entry with its backends: an HTTP path (``IngressPath``) or a gRPC entry
    (``GrpcPath``); both render their backendRefs the same way."""

    @property
    def weight(self) -> int | None: ...
    @property
    def backends(self) -> tuple[WeightedBackend, ...] | None: ...

    def all_backends(self) -> list[tuple[tuple[int | str, ...], Backend]]: ...


def backend_refs(
    app: AppSpec, p: Routed, ports: PortLookup, *, kind: str = "HTTPRoute"
) -> list[gw.HTTPRouteSpecRulesBackendRefs]:
    """The backendRefs of one route entry of ``app`` (HTTPRoute and GRPCRoute share their
    shape): port names resolved to numbers, weights written out for a split."""
    out: list[gw.HTTPRouteSpecRulesBackendRefs] = []
    for _, b in p.all_backends():
        namespace = b.namespace or app.namespace
        service = b.service or app.name
        number = ports(namespace, service, b.port)
        if number is None:
            raise ValueError(
                f"app {app.name}: port {b.port!r} of Service {namespace}/{service} is unknown; "
                f"a {kind} needs the port number"
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


def http_routes(
    app: AppSpec, *, gateway: GatewayRef, ports: PortLookup, traefik: bool = False
) -> list[Manifest]:
    """One HTTPRoute per ingress rule of the app, attached to ``gateway`` (Traefik's with
    ``traefik``: the auth filters name its Middlewares)."""
    if app.ingress is None:
        return []
    out: list[Manifest] = []
    for i, (name, rule) in enumerate(zip(route_names(app), app.ingress.rules, strict=True)):
        if not rule.paths:
            continue  # a gRPC-only rule: a GRPCRoute (kexpose.manifests.grpcroute)
        rules: list[gw.HTTPRouteSpecRules] = []
        for j, p in enumerate(rule.paths):
            r: gw.HTTPRouteSpecRules = {"matches": [_match(p)]}
            # The auth first, on every rule: the app's covers every path, as its annotations
            # would cover every path of its Ingress (edge-auth.md, "Where it applies", "Gateway
            # API"); a path's own replaces it.
            auth = [
                cast(gw.HTTPRouteSpecRulesFilters, f)
                for f in auth_filters(app, i, j, traefik=traefik)
            ]
            filters = [*auth, *_filters(p)]
            if filters:
                r["filters"] = filters
            if p.timeouts is not None:
                r["timeouts"] = _timeouts(p.timeouts)
            if p.filters is None or p.filters.redirect is None:
                r["backendRefs"] = backend_refs(app, p, ports)
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
    if not tls_hosts_of(app) or namespace == gateway.namespace:
        return None
    return _grant(
        f"{secret_name_of(app)}-to-gateways",
        app.namespace,
        referrer="Gateway",
        from_namespace=gateway.namespace,
        kind="Secret",
        names=[secret_name_of(app)],
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
