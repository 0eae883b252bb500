"""``--to ingress`` and ``--to gateway``: the objects the kexpose components would create for
an imported stack, for teams not on Pulumi yet.

Everything but TLS Secrets of mode ``secret``: those exist in the cluster already (the import
keeps their names) and their keys are never read. A ``self-signed`` app's Secret is left out
too, since its material is made at deployment. The controller (kexpose-proxy, its IngressClass
and RBAC) and the app namespaces come first, as ``kexpose render`` orders them.
"""

from __future__ import annotations

from kexpose.importer.conversion import Conversion
from kexpose.importer.migration import planned_manifests
from kexpose.manifests import Manifest, controller_manifests
from kexpose.manifests.app import certificate, ingress, service
from kexpose.plan import app_namespaces, namespace_manifest
from kexpose.yamlio import dump_document

__all__ = ["gateway_manifests", "ingress_manifests", "manifests_text"]


def ingress_manifests(conversion: Conversion) -> list[Manifest]:
    spec = conversion.spec
    out = [namespace_manifest(ns) for ns in app_namespaces(spec)]
    if spec.controller is not None:
        out += controller_manifests(spec.controller)
    for app in spec.apps:
        out.append(service(app))
        if app.tls.mode == "cert-manager" and app.tls.via == "certificate":
            out.append(certificate(app))
        class_name = spec.class_of(app)
        if app.ingress is not None and class_name is not None:
            out.append(ingress(app, class_name=class_name))
    return out


def gateway_manifests(conversion: Conversion) -> list[Manifest]:
    """The stack's objects with ``api: gateway``: the controller with its GatewayClass and
    Gateway, each app's Service and HTTPRoutes, and the ReferenceGrants, as ``kexpose render``
    orders them. Secrets are left out for the same reasons as with ``--to ingress``."""
    return [m for m in planned_manifests(conversion) if m["kind"] != "Secret"]


def manifests_text(manifests: list[Manifest]) -> str:
    return "".join(dump_document(m) for m in manifests)
