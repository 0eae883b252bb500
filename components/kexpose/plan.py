"""A stack's plan: every manifest a resolved StackSpec produces, each with where it came from.

The Exposure component registers these, ``kexpose preview``/``render`` show them and the early
validation checks them; all three work from this one list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kexpose.manifests import (
    GatewayRef,
    Manifest,
    PortLookup,
    TlsMaterial,
    app_manifests,
    controller_manifests,
    grpc_route_grants,
    route_grants,
)
from kexpose.manifests.gateway import NAMESPACE_NAME_LABEL
from kexpose.manifests.middleware import TraefikRef, traefik_ref
from kexpose.model import AppSpec, StackSpec
from kexpose.profile import PROFILES

__all__ = [
    "SYSTEM_NAMESPACES",
    "Planned",
    "app_namespaces",
    "app_plan",
    "controller_plan",
    "gateway_of",
    "plan_stack",
    "port_lookup",
    "traefik_h2c",
    "traefik_of",
]

#: Namespaces every cluster has; kexpose never creates or deletes them.
SYSTEM_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})


@dataclass(frozen=True, slots=True)
class Planned:
    """One object and the config path of the model part it was built from."""

    manifest: Manifest
    origin: tuple[int | str, ...]

    @property
    def key(self) -> str:
        """``Kind/namespace/name`` as policy violations name it (``default`` when unset)."""
        meta = self.manifest["metadata"]
        return f"{self.manifest['kind']}/{meta.get('namespace') or 'default'}/{meta['name']}"


def app_namespaces(spec: StackSpec) -> list[str]:
    """Namespaces the stack creates for its apps (not the controller's, not system ones)."""
    taken = set(SYSTEM_NAMESPACES)
    if spec.controller is not None:
        taken.add(spec.controller.namespace)
    out: list[str] = []
    for app in spec.apps:
        if app.namespace not in taken:
            taken.add(app.namespace)
            out.append(app.namespace)
    return out


def namespace_manifest(name: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            # The API server sets this label on every Namespace; written out so that offline
            # readers (kexpose-proxy --manifests, kexpose check) select namespaces by it as a
            # cluster does (a Gateway's allowedRoutes selector).
            "labels": {NAMESPACE_NAME_LABEL: name, "app.kubernetes.io/managed-by": "kexpose"},
        },
    }


def gateway_of(spec: StackSpec) -> GatewayRef | None:
    """The Gateway the stack's routes attach to (``api: gateway``), else None."""
    c = spec.controller
    if c is None or c.api != "gateway":
        return None
    return GatewayRef(c.namespace, c.gateway.name)


def port_lookup(spec: StackSpec) -> PortLookup:
    """Port numbers of the stack's app Services, by name or number (HTTPRoutes need numbers)."""
    services = {(a.namespace, a.name): a.service for a in spec.apps}

    def lookup(namespace: str, service: str, ref: int | str) -> int | None:
        svc = services.get((namespace, service))
        port = svc.port_ref(ref) if svc is not None else None
        return port.port if port is not None else None

    return lookup


def controller_plan(spec: StackSpec) -> list[Manifest]:
    """The controller's objects, with its Gateway's listeners from the stack's apps."""
    if spec.controller is None:
        return []
    return controller_manifests(
        spec.controller,
        apps=spec.apps,
        redirect_only=PROFILES[spec.environment].http_redirect_only,
    )


def traefik_h2c(spec: StackSpec) -> bool:
    """Whether the stack's controller is Traefik serving Ingresses, which reads the scheme it
    speaks to a Service from an annotation rather than from appProtocol."""
    c = spec.controller
    return c is not None and c.kind == "traefik" and c.api == "ingress"


def traefik_of(spec: StackSpec, app: AppSpec) -> TraefikRef | None:
    """The stack's Traefik when it serves the app, whose edge auth its Middlewares then carry
    (the apps ``StackSpec`` checks with ``traefik_auth_problems``)."""
    c = spec.controller
    if c is None or c.kind != "traefik" or app.ingress is None:
        return None
    return traefik_ref(c) if spec.class_of(app) == c.class_name else None


def app_plan(spec: StackSpec, app: AppSpec, tls: TlsMaterial | None) -> list[Manifest]:
    """One app's objects, as the stack places them (its class or its Gateway)."""
    return app_manifests(
        app,
        class_name=spec.class_of(app),
        tls=tls,
        gateway=gateway_of(spec),
        ports=port_lookup(spec),
        traefik_h2c=traefik_h2c(spec),
        traefik=traefik_of(spec, app),
    )


def plan_stack(spec: StackSpec, *, tls: Callable[[AppSpec], TlsMaterial | None]) -> list[Planned]:
    """Every object of a resolved stack in apply order: namespaces, controller, apps, and the
    ReferenceGrants of routes that reach into other namespaces."""
    out = [Planned(namespace_manifest(ns), ("apps",)) for ns in app_namespaces(spec)]
    out += [Planned(m, ("controller",)) for m in controller_plan(spec)]
    for i, app in enumerate(spec.apps):
        out += [Planned(m, ("apps", i)) for m in app_plan(spec, app, tls(app))]
    if gateway_of(spec) is not None:
        grants = [*route_grants(spec.apps), *grpc_route_grants(spec.apps)]
        out += [Planned(m, ("apps", i)) for i, m in grants]
    return out
