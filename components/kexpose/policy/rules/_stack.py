"""The whole object set, indexed once for the stack-scope rules.

Stack rules ask "is there a Service named X in namespace N", "which workloads live in N"; each
index is built on first use, so a run that needs none of them (or only some) pays for no more.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any, Final

from kexpose.policy.rules._gatewayapi import in_group, is_gateway, is_route
from kexpose.policy.rules._kube import Obj, as_map, as_seq, as_str, labels, spec

__all__ = ["EDGE_AUTH_GROUP", "EDGE_AUTH_KIND", "WORKLOAD_KINDS", "Stack"]

#: kexpose's edge-auth resource for the Gateway API (edge-auth.md, "Gateway API").
EDGE_AUTH_GROUP: Final = "kexpose.dev"
EDGE_AUTH_KIND: Final = "EdgeAuth"

#: Kinds whose pod template the selector and controller-version rules read.
WORKLOAD_KINDS: Final = frozenset({"Deployment", "StatefulSet", "DaemonSet"})


class Stack:
    """Read-only indexes over the objects of one evaluation."""

    def __init__(self, objects: Sequence[Obj]) -> None:
        self.objects = objects
        by_kind: dict[str, list[Obj]] = defaultdict(list)
        for obj in objects:
            by_kind[obj.kind].append(obj)
        self._by_kind = by_kind

    def of_kind(self, kind: str) -> Sequence[Obj]:
        return self._by_kind.get(kind, ())

    @cached_property
    def ingresses(self) -> Sequence[Obj]:
        return self.of_kind("Ingress")

    @cached_property
    def services(self) -> dict[tuple[str, str], Obj]:
        """(namespace, name) -> Service; the first wins if the input repeats one."""
        found: dict[tuple[str, str], Obj] = {}
        for obj in self.of_kind("Service"):
            found.setdefault(obj.key, obj)
        return found

    @cached_property
    def secrets(self) -> dict[tuple[str, str], Obj]:
        found: dict[tuple[str, str], Obj] = {}
        for obj in self.of_kind("Secret"):
            found.setdefault(obj.key, obj)
        return found

    @cached_property
    def secret_names(self) -> dict[str, list[str]]:
        """name -> namespaces holding a Secret of that name (for "wrong namespace" hints)."""
        found: dict[str, list[str]] = defaultdict(list)
        for namespace, name in self.secrets:
            found[name].append(namespace)
        return found

    @cached_property
    def workloads(self) -> Sequence[Obj]:
        return [o for o in self.objects if o.kind in WORKLOAD_KINDS]

    @cached_property
    def template_labels(self) -> dict[int, Mapping[str, Any]]:
        """Object index -> the pod-template labels of each workload."""
        return {
            w.index: as_map(as_map(as_map(spec(w).get("template")).get("metadata")).get("labels"))
            for w in self.workloads
        }

    @cached_property
    def workloads_by_label(self) -> dict[tuple[str, str, str], list[Obj]]:
        """(namespace, label key, label value) -> workloads whose pod template carries it.

        Lets a selector start from its rarest label instead of scanning every workload of the
        namespace for every Service (quadratic on large stacks).
        """
        found: dict[tuple[str, str, str], list[Obj]] = defaultdict(list)
        for obj in self.workloads:
            for key, value in self.template_labels[obj.index].items():
                if isinstance(key, str) and isinstance(value, str):
                    found[(obj.namespace, key, value)].append(obj)
        return found

    def selected_workloads(self, namespace: str, selector: Mapping[str, Any]) -> list[Obj]:
        """Workloads in ``namespace`` whose pod-template labels include all of ``selector``."""
        pairs = list(selector.items())
        if not pairs or not all(isinstance(v, str) for _, v in pairs):
            return []
        index = self.workloads_by_label
        rarest = min((index.get((namespace, k, v), ()) for k, v in pairs), key=len)
        return [
            w for w in rarest if all(self.template_labels[w.index].get(k) == v for k, v in pairs)
        ]

    @cached_property
    def certificate_secrets(self) -> set[tuple[str, str]]:
        """(namespace, spec.secretName) of every cert-manager Certificate."""
        found: set[tuple[str, str]] = set()
        for obj in self.of_kind("Certificate"):
            if not obj.api_version.startswith("cert-manager.io/"):
                continue
            secret = as_str(spec(obj).get("secretName"))
            if secret:
                found.add((obj.namespace, secret))
        return found

    @cached_property
    def gateway_list(self) -> Sequence[Obj]:
        """Gateways of group gateway.networking.k8s.io, in input order."""
        return [o for o in self.of_kind("Gateway") if is_gateway(o)]

    @cached_property
    def gateways(self) -> dict[tuple[str, str], Obj]:
        """(namespace, name) -> Gateway; the first wins if the input repeats one."""
        found: dict[tuple[str, str], Obj] = {}
        for obj in self.gateway_list:
            found.setdefault(obj.key, obj)
        return found

    @cached_property
    def routes(self) -> Sequence[Obj]:
        """HTTPRoutes and GRPCRoutes of group gateway.networking.k8s.io, in input order."""
        return [o for o in self.objects if is_route(o)]

    @cached_property
    def edge_auths(self) -> dict[tuple[str, str], Obj]:
        """(namespace, name) -> kexpose ``EdgeAuth`` (group kexpose.dev, any version), the
        object an HTTPRoute rule's ``ExtensionRef`` filter names (edge-auth.md)."""
        found: dict[tuple[str, str], Obj] = {}
        for obj in self.of_kind(EDGE_AUTH_KIND):
            if obj.api_version.startswith(EDGE_AUTH_GROUP + "/"):
                found.setdefault(obj.key, obj)
        return found

    @cached_property
    def namespace_labels(self) -> dict[str, Mapping[str, Any]]:
        """Namespace name -> the labels of its Namespace object in the stack."""
        found: dict[str, Mapping[str, Any]] = {}
        for obj in self.of_kind("Namespace"):
            if obj.api_version == "v1":
                found.setdefault(obj.name, labels(obj.raw))
        return found

    @cached_property
    def reference_grants(self) -> dict[str, list[Obj]]:
        """namespace -> the ReferenceGrants in it (a grant only opens its own namespace)."""
        found: dict[str, list[Obj]] = defaultdict(list)
        for obj in self.of_kind("ReferenceGrant"):
            if in_group(obj):
                found[obj.namespace].append(obj)
        return found

    @cached_property
    def webhook_services(self) -> set[tuple[str, str]]:
        """(namespace, name) of Services a ValidatingWebhookConfiguration calls."""
        found: set[tuple[str, str]] = set()
        for obj in self.of_kind("ValidatingWebhookConfiguration"):
            for hook in as_seq(obj.raw.get("webhooks")):
                service = as_map(as_map(as_map(hook).get("clientConfig")).get("service"))
                name = as_str(service.get("name"))
                if name:
                    found.add((as_str(service.get("namespace")) or "default", name))
        return found
