"""Builders for an app's gRPC routes with the Gateway API: GRPCRoutes and their ReferenceGrants.

One GRPCRoute per rule with ``grpc`` entries, named like the rule's HTTPRoute would be (a rule
has one or the other with ``api: gateway``: they may not share a hostname on a listener), with
the rule's host and the same listeners (``kexpose.manifests.gateway.sections``); each entry
becomes a rule matching its service (and method, ``Exact``) and headers, with weighted
backendRefs (GRPCRoute, standard channel v1.6.3:
https://gateway-api.sigs.k8s.io/reference/spec/#grpcroute). The backends' Service ports carry
``appProtocol: kubernetes.io/h2c`` (``kexpose.manifests.app.service``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from kexpose.gatewayapi import types as gw
from kexpose.manifests.auth import edge_auth_filter, grpc_edge_auth
from kexpose.manifests.common import Manifest, metadata
from kexpose.manifests.gateway import GROUP, GatewayRef, sections
from kexpose.manifests.httproute import PortLookup, backend_refs, route_names
from kexpose.manifests.middleware import grpc_middleware_filters
from kexpose.model import AppSpec, GrpcPath

__all__ = ["grpc_route_grants", "grpc_routes"]


def _match(g: GrpcPath) -> gw.GRPCRouteSpecRulesMatches:
    method: gw.GRPCRouteSpecRulesMatchesMethod = {"type": "Exact", "service": g.service}
    if g.method is not None:
        method["method"] = g.method
    match: gw.GRPCRouteSpecRulesMatches = {"method": method}
    if g.headers:
        match["headers"] = [{"type": h.type, "name": h.name, "value": h.value} for h in g.headers]
    return match


def grpc_routes(
    app: AppSpec, *, gateway: GatewayRef, ports: PortLookup, traefik: bool = False
) -> list[Manifest]:
    """One GRPCRoute per ingress rule of the app that has gRPC entries, attached to
    ``gateway``. ``ports`` resolves port names to numbers (the app's own included). With
    ``traefik`` (Traefik's Gateway) every rule names the app's auth Middlewares first, else
    the app's ``EdgeAuth`` (kexpose-proxy), when it has auth or source ranges."""
    if app.ingress is None:
        return []
    if traefik:
        filters = grpc_middleware_filters(app)
    else:
        edge = grpc_edge_auth(app)
        filters = [edge_auth_filter(edge)] if edge is not None else []
    guard: dict[str, Any] = {"filters": filters} if filters else {}
    out: list[Manifest] = []
    for name, rule in zip(route_names(app), app.ingress.rules, strict=True):
        if not rule.grpc:
            continue
        rules: list[gw.GRPCRouteSpecRules] = [
            {
                "matches": [_match(g)],
                **cast("gw.GRPCRouteSpecRules", guard),
                # Only the keys the two kinds' backendRefs share are written.
                "backendRefs": cast(
                    "list[gw.GRPCRouteSpecRulesBackendRefs]",
                    backend_refs(app, g, ports, kind="GRPCRoute"),
                ),
            }
            for g in rule.grpc
        ]
        parents: list[gw.GRPCRouteSpecParentRefs] = []
        for section in sections(app, rule):
            parent: gw.GRPCRouteSpecParentRefs = {
                "group": GROUP,
                "kind": "Gateway",
                "name": gateway.name,
                "sectionName": section,
            }
            if gateway.namespace != app.namespace:
                parent["namespace"] = gateway.namespace
            parents.append(parent)
        spec: gw.GRPCRouteSpec = {"parentRefs": parents, "rules": rules}
        if rule.host is not None:
            spec["hostnames"] = [rule.host]
        route: gw.GRPCRoute = {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "GRPCRoute",
            "metadata": metadata(
                name, app.namespace, labels=app.labels, annotations=app.ingress.annotations
            ),
            "spec": spec,
        }
        out.append(cast(Manifest, route))
    return out


def grpc_route_grants(apps: Sequence[AppSpec]) -> list[tuple[int, Manifest]]:
    """ReferenceGrants for GRPCRoutes whose backends are in another namespace: one per (target
    namespace, route namespace), naming exactly the Services reached, with the index of the
    first target app (for error locations)."""
    by_key = {(a.namespace, a.name): i for i, a in enumerate(apps)}
    wanted: dict[tuple[str, str], set[str]] = {}
    for app in apps:
        for rule in app.ingress.rules if app.ingress is not None else ():
            for g in rule.grpc:
                for _, b in g.all_backends():
                    namespace = b.namespace or app.namespace
                    if namespace != app.namespace:
                        key = (namespace, app.namespace)
                        wanted.setdefault(key, set()).add(b.service or app.name)
    out: list[tuple[int, Manifest]] = []
    for (namespace, source), services in sorted(wanted.items()):
        grant: gw.ReferenceGrant = {
            "apiVersion": "gateway.networking.k8s.io/v1beta1",
            "kind": "ReferenceGrant",
            "metadata": metadata(f"grpcroutes-from-{source}", namespace, labels={}),
            "spec": {
                "from": [{"group": GROUP, "kind": "GRPCRoute", "namespace": source}],
                "to": [{"group": "", "kind": "Service", "name": n} for n in sorted(services)],
            },
        }
        index = min(by_key.get((namespace, s), 0) for s in services)
        out.append((index, cast(Manifest, grant)))
    return out
