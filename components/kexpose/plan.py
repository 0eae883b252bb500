"""A stack's plan: every manifest a resolved StackSpec produces, each with where it came from.

The Exposure component registers these, ``kexpose preview``/``render`` show them and the early
validation checks them; all three work from this one list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kexpose.manifests import Manifest, TlsMaterial, app_manifests, controller_manifests
from kexpose.model import AppSpec, StackSpec

__all__ = ["SYSTEM_NAMESPACES", "Planned", "app_namespaces", "plan_stack"]

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
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "kexpose"}},
    }


def plan_stack(spec: StackSpec, *, tls: Callable[[AppSpec], TlsMaterial | None]) -> list[Planned]:
    """Every object of a resolved stack in apply order: namespaces, controller, apps."""
    out = [Planned(namespace_manifest(ns), ("apps",)) for ns in app_namespaces(spec)]
    if spec.controller is not None:
        out += [Planned(m, ("controller",)) for m in controller_manifests(spec.controller)]
    for i, app in enumerate(spec.apps):
        out += [
            Planned(m, ("apps", i))
            for m in app_manifests(app, class_name=spec.class_of(app), tls=tls(app))
        ]
    return out
