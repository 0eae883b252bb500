"""Register plain manifests as typed pulumi-kubernetes resources.

The builders produce manifests; this module is the one place that knows which SDK class takes
which kind, so that every object appears in previews and policies as its own typed resource.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

import pulumi
import pulumi_kubernetes as k8s

from kexpose.manifests import Manifest
from kexpose.resources import gatewayapi

__all__ = ["register", "resource_name"]

_Factory = Callable[..., pulumi.CustomResource]

_CLASSES: Final[dict[tuple[str, str], _Factory]] = {
    ("v1", "Namespace"): k8s.core.v1.Namespace,
    ("v1", "ServiceAccount"): k8s.core.v1.ServiceAccount,
    ("v1", "Service"): k8s.core.v1.Service,
    ("v1", "Secret"): k8s.core.v1.Secret,
    ("v1", "ConfigMap"): k8s.core.v1.ConfigMap,
    ("apps/v1", "Deployment"): k8s.apps.v1.Deployment,
    ("policy/v1", "PodDisruptionBudget"): k8s.policy.v1.PodDisruptionBudget,
    ("networking.k8s.io/v1", "Ingress"): k8s.networking.v1.Ingress,
    ("networking.k8s.io/v1", "IngressClass"): k8s.networking.v1.IngressClass,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): k8s.rbac.v1.ClusterRole,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): k8s.rbac.v1.ClusterRoleBinding,
    ("rbac.authorization.k8s.io/v1", "Role"): k8s.rbac.v1.Role,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): k8s.rbac.v1.RoleBinding,
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): (
        k8s.apiextensions.v1.CustomResourceDefinition
    ),
}

#: Kinds a component may make several of: their Pulumi names carry the object's name.
_MANY: Final = frozenset(
    {"CustomResourceDefinition", "HTTPRoute", "GRPCRoute", "ReferenceGrant", "Middleware"}
)

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def _snake(key: str) -> str:
    return _CAMEL.sub("_", key).lower()


def resource_name(prefix: str, manifest: Manifest) -> str:
    """The Pulumi name of a component's child: ``<prefix>-<kind>``, plus the object's name for
    the kinds a component makes several of."""
    kind = str(manifest["kind"]).lower()
    if manifest["kind"] in _MANY:
        return f"{prefix}-{kind}-{manifest['metadata']['name']}"
    return f"{prefix}-{kind}"


def register(
    manifest: Manifest, *, name: str, opts: pulumi.ResourceOptions
) -> pulumi.CustomResource:
    """Create the pulumi-kubernetes resource for ``manifest`` (its fields passed as they are).

    Secret data is always a Pulumi secret, whoever built the manifest.
    """
    api_version, kind = manifest["apiVersion"], manifest["kind"]
    body: dict[str, Any] = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind")}
    typed = gatewayapi.CLASSES.get((api_version, kind))
    if typed is not None:
        # Gateway API kinds: typed resources whose token names the kind (kexpose.gatewayapi).
        return typed(name, opts=opts, **body)
    factory = _CLASSES.get((api_version, kind))
    if factory is None:
        # CRDs (a cert-manager Certificate): the generic CustomResource keeps every field.
        return k8s.apiextensions.CustomResource(
            name, api_version=api_version, kind=kind, opts=opts, **body
        )
    if kind == "Secret":
        for key in ("data", "stringData"):
            if key in body:
                body[key] = pulumi.Output.secret(body[key])
        opts = pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=["data", "stringData"])
        )
    return factory(name, opts=opts, **{_snake(k): v for k, v in body.items()})
