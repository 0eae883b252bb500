"""Which Ingresses are ours, and in which order they claim hosts and paths.

Ownership (Ingress API reference, IngressSpec.ingressClassName, and the IngressClass section of
https://kubernetes.io/docs/concepts/services-networking/ingress/#ingress-class):

- ``spec.ingressClassName`` names an IngressClass; the Ingress is ours when that class exists
  and its ``spec.controller`` is our controller string ("controller -> IngressClass -> Ingress").
- The deprecated ``kubernetes.io/ingress.class`` annotation: "ingress controllers should still
  honor that annotation if present". When it names an existing IngressClass, that class's
  controller decides; when no such class exists it is the direct binding the annotation always
  was, and it must equal our ``--ingress-class`` (as ingress-nginx does).
- The field wins over the annotation when both are set (the API server refuses that on create,
  but older objects may carry both).
- A class-less Ingress is not ours unless explicitly asked for (``watch_without_class``): the
  default-class admission plugin assigns a class only at creation, so an old class-less Ingress
  was never meant for a newly installed controller. The ``is-default-class`` annotation itself
  is not consulted, as in ingress-nginx.

Order: ingress-nginx sorts Ingresses by ``creationTimestamp``, oldest first, and on equal
timestamps puts the *greater* ``namespace/name`` first; the first Ingress to claim a host
creates its server and the first to claim a path keeps it. We keep exactly that order so the
same set of objects routes the same way under both controllers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from typing import Final

from kexpose.proxy.routes._kube import Ingress, IngressClass

__all__ = ["LEGACY_CLASS_ANNOTATION", "Claim", "is_owned", "precedence_order"]

LEGACY_CLASS_ANNOTATION: Final = "kubernetes.io/ingress.class"


@dataclass(frozen=True, slots=True)
class Claim:
    """What makes an Ingress ours."""

    controller: str
    """Our IngressClass ``spec.controller`` string."""
    ingress_class: str = ""
    """The legacy annotation value that binds an Ingress to us when no IngressClass has it."""
    watch_without_class: bool = False
    """Also serve Ingresses with neither the field nor the annotation."""
    gateway_controller: str | None = None
    """Our GatewayClass ``spec.controllerName``; None: the Gateway API is not served."""
    gateway_pool: IPv4Network | IPv6Network | None = None
    """Where our Gateways get their addresses (``routes._addresses``): with the controller name,
    what a Gateway of ours needs to be served."""


def is_owned(ingress: Ingress, classes: Mapping[str, IngressClass], claim: Claim) -> bool:
    spec = ingress.get("spec") or {}
    name = spec.get("ingressClassName")
    if name:
        return _controller_of(classes.get(name)) == claim.controller
    annotations = (ingress.get("metadata") or {}).get("annotations") or {}
    legacy = annotations.get(LEGACY_CLASS_ANNOTATION)
    if legacy:
        if legacy in classes:
            return _controller_of(classes[legacy]) == claim.controller
        return bool(claim.ingress_class) and legacy == claim.ingress_class
    return claim.watch_without_class


def _controller_of(cls: IngressClass | None) -> str | None:
    if cls is None:
        return None
    return (cls.get("spec") or {}).get("controller")


def precedence_order(ingresses: Iterable[Ingress]) -> list[Ingress]:
    """Oldest first; equal timestamps: greater ``namespace/name`` first (ingress-nginx)."""

    def ident(ing: Ingress) -> str:
        meta = ing.get("metadata") or {}
        return f"{meta.get('namespace', '')}/{meta.get('name', '')}"

    def created(ing: Ingress) -> str:
        # RFC 3339 UTC timestamps with second precision ("2024-05-01T10:00:00Z"), which is what
        # the API server writes, sort correctly as strings. Hand-written manifests carry none
        # and tie, falling back to the name order.
        return str((ing.get("metadata") or {}).get("creationTimestamp") or "")

    by_name = sorted(ingresses, key=ident, reverse=True)
    return sorted(by_name, key=created)  # stable: keeps the name order within a timestamp
