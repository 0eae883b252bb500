"""The object set a route table is built from, and how loose documents are sorted into it.

Both the control plane (a snapshot of its watch caches) and static mode (documents read from
YAML) produce an :class:`ObjectSet`; the route table never sees where the objects came from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, cast

from kexpose.proxy.routes._kube import (
    EndpointSlice,
    ExtensionKind,
    GatewayKind,
    Ingress,
    IngressClass,
    Kind,
    RawObject,
    Secret,
    Service,
)
from kexpose.proxy.routes._shape import object_problems, shown

__all__ = [
    "CLUSTER_SCOPED",
    "EXTENSION_KINDS",
    "GATEWAY_KINDS",
    "KINDS",
    "Key",
    "ObjectSet",
    "describe",
    "key_of",
    "usable_key",
]

#: ``(namespace, name)``; cluster-scoped objects (IngressClass) use ``""`` as the namespace.
Key = tuple[str, str]

#: Kind -> the API group/version the proxy reads it from. Older versions
#: (``extensions/v1beta1`` Ingress, ``v1beta1`` EndpointSlice) were removed from the API in
#: Kubernetes 1.22/1.25 and are ignored rather than half-understood.
KINDS: Final[Mapping[Kind, str]] = {
    "Ingress": "networking.k8s.io/v1",
    "IngressClass": "networking.k8s.io/v1",
    "Service": "v1",
    "EndpointSlice": "discovery.k8s.io/v1",
    "Secret": "v1",
}

#: Gateway API kind -> the versions read. The API server serves ReferenceGrant as v1 and
#: v1beta1 (the same schema), and manifests use both; the control plane watches the first.
GATEWAY_KINDS: Final[Mapping[GatewayKind, tuple[str, ...]]] = {
    "GatewayClass": ("gateway.networking.k8s.io/v1",),
    "Gateway": ("gateway.networking.k8s.io/v1",),
    "HTTPRoute": ("gateway.networking.k8s.io/v1",),
    "GRPCRoute": ("gateway.networking.k8s.io/v1",),
    "ReferenceGrant": ("gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1"),
    "Namespace": ("v1",),
    # CA bundles of Gateways' client certificate validation (``_frontend``).
    "ConfigMap": ("v1",),
    # Listeners added to Gateways that allow them (``_listenerset``; standard channel v1.6).
    "ListenerSet": ("gateway.networking.k8s.io/v1",),
}
#: kexpose's own kinds, read from manifests (static mode): ``EdgeAuth``, which an HTTPRoute's
#: ``ExtensionRef`` filter names for edge authentication (edge-auth.md, "Gateway API").
EXTENSION_KINDS: Final[Mapping[ExtensionKind, tuple[str, ...]]] = {
    "EdgeAuth": ("kexpose.dev/v1alpha1",)
}
_READ: Final[Mapping[str, tuple[str, ...]]] = {
    **{str(kind): (api,) for kind, api in KINDS.items()},
    **{str(kind): apis for kind, apis in GATEWAY_KINDS.items()},
    **{str(kind): apis for kind, apis in EXTENSION_KINDS.items()},
}
#: Cluster-scoped kinds: keyed ``("", name)``.
CLUSTER_SCOPED: Final = frozenset({"IngressClass", "GatewayClass", "Namespace"})

#: Namespace a manifest object lands in when it names none, as ``kubectl apply`` would do.
DEFAULT_NAMESPACE: Final = "default"


def usable_key(obj: object, kind: str) -> Key | None:
    """The key of an object however malformed, or None when its metadata names nothing."""
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    if not isinstance(meta, Mapping):
        return None
    name, namespace = meta.get("name"), meta.get("namespace")
    if not isinstance(name, str) or not name or len(name) > 253:
        return None
    if kind in CLUSTER_SCOPED:
        return ("", name)
    if not isinstance(namespace, str) or not namespace or len(namespace) > 63:
        namespace = DEFAULT_NAMESPACE
    return (namespace, name)


def describe(obj: object, kind: str) -> str:
    """``Ingress default/web`` for messages, however malformed ``obj`` is."""
    key = usable_key(obj, kind)
    if key is None:
        return f"{kind} (no usable metadata.name)"
    return f"{kind} {key[1]}" if kind in CLUSTER_SCOPED else f"{kind} {key[0]}/{key[1]}"


def key_of(obj: RawObject) -> Key:
    meta = obj.get("metadata") or {}
    if obj.get("kind") in CLUSTER_SCOPED:
        return ("", str(meta.get("name", "")))
    return (str(meta.get("namespace") or DEFAULT_NAMESPACE), str(meta.get("name", "")))


@dataclass(frozen=True, slots=True)
class ObjectSet:
    """Every object of the kinds the proxy can see, keyed by ``(namespace, name)`` (cluster-
    scoped kinds by name)."""

    ingresses: Mapping[Key, Ingress] = field(default_factory=dict)
    classes: Mapping[str, IngressClass] = field(default_factory=dict)
    services: Mapping[Key, Service] = field(default_factory=dict)
    slices: Mapping[Key, EndpointSlice] = field(default_factory=dict)
    secrets: Mapping[Key, Secret] = field(default_factory=dict)
    gateway_classes: Mapping[str, RawObject] = field(default_factory=dict)
    gateways: Mapping[Key, RawObject] = field(default_factory=dict)
    http_routes: Mapping[Key, RawObject] = field(default_factory=dict)
    grpc_routes: Mapping[Key, RawObject] = field(default_factory=dict)
    reference_grants: Mapping[Key, RawObject] = field(default_factory=dict)
    namespaces: Mapping[str, RawObject] = field(default_factory=dict)
    config_maps: Mapping[Key, RawObject] = field(default_factory=dict)
    edge_auths: Mapping[Key, RawObject] = field(default_factory=dict)
    listener_sets: Mapping[Key, RawObject] = field(default_factory=dict)

    @classmethod
    def from_documents(
        cls,
        documents: Iterable[Mapping[str, object]],
        *,
        origin: str = "",
        previous: ObjectSet | None = None,
    ) -> tuple[ObjectSet, tuple[str, ...]]:
        """Sort loose documents (static mode) into a set; returns it and what was skipped, why.

        Documents of other kinds (Deployments next to the Ingress, say) are skipped silently;
        a known kind with the wrong apiVersion, without a name, or with a field of the wrong
        shape (``_shape``) is reported, naming ``origin`` (the file) and the document. A
        malformed object whose ``(namespace, name)`` ``previous`` holds keeps that version in
        service, as the last good table would have; otherwise it is left out.
        """
        by_kind: dict[str, dict[Key, RawObject]] = {kind: {} for kind in _READ}
        problems: list[str] = []
        old = previous._by_kind() if previous is not None else {}
        where = f"{origin} " if origin else ""
        for index, doc in enumerate(documents):
            kind = doc.get("kind")
            if not isinstance(kind, str):
                problems.append(f"{where}document {index + 1}: no 'kind'")
                continue
            if kind not in _READ:
                if kind == "List" and isinstance(doc.get("items"), list):
                    items = [i for i in cast("list[object]", doc["items"]) if isinstance(i, dict)]
                    nested, more = cls.from_documents(
                        cast("list[Mapping[str, object]]", items),
                        origin=f"{where}document {index + 1} (List)",
                        previous=previous,
                    )
                    for sub_kind, objects in nested._by_kind().items():
                        by_kind[sub_kind].update(objects)
                    problems.extend(more)
                continue
            api = doc.get("apiVersion")
            if api not in _READ[kind]:
                problems.append(
                    f"{where}document {index + 1}: {kind} apiVersion {shown(api)} is not read; "
                    f"use {' or '.join(repr(v) for v in _READ[kind])}"
                )
                continue
            found = object_problems(doc, kind)
            if found:
                key = usable_key(doc, kind)
                kept = old.get(kind, {}).get(key) if key is not None else None
                fate = "its previous version stays in service" if kept else "left out"
                what = f"{where}document {index + 1}: {describe(doc, kind)}"
                problems.append(f"{what} rejected: {'; '.join(found)}; {fate}")
                if kept is not None and key is not None:
                    by_kind[kind][key] = kept
                continue
            obj = cast("RawObject", doc)
            by_kind[kind][key_of(obj)] = obj
        return cls._of(by_kind), tuple(problems)

    @classmethod
    def _of(cls, by_kind: Mapping[str, Mapping[Key, RawObject]]) -> ObjectSet:
        return cls(
            ingresses=cast("dict[Key, Ingress]", dict(by_kind["Ingress"])),
            classes={k[1]: cast("IngressClass", v) for k, v in by_kind["IngressClass"].items()},
            services=cast("dict[Key, Service]", dict(by_kind["Service"])),
            slices=cast("dict[Key, EndpointSlice]", dict(by_kind["EndpointSlice"])),
            secrets=cast("dict[Key, Secret]", dict(by_kind["Secret"])),
            gateway_classes={k[1]: v for k, v in by_kind.get("GatewayClass", {}).items()},
            gateways=dict(by_kind.get("Gateway", {})),
            http_routes=dict(by_kind.get("HTTPRoute", {})),
            grpc_routes=dict(by_kind.get("GRPCRoute", {})),
            reference_grants=dict(by_kind.get("ReferenceGrant", {})),
            namespaces={k[1]: v for k, v in by_kind.get("Namespace", {}).items()},
            config_maps=dict(by_kind.get("ConfigMap", {})),
            edge_auths=dict(by_kind.get("EdgeAuth", {})),
            listener_sets=dict(by_kind.get("ListenerSet", {})),
        )

    @classmethod
    def merged(cls, sets: Iterable[ObjectSet]) -> ObjectSet:
        """One set from several (one per file); a later set's object wins on the same key."""
        by_kind: dict[str, dict[Key, RawObject]] = {kind: {} for kind in _READ}
        for one in sets:
            for kind, objects in one._by_kind().items():
                by_kind[kind].update(objects)
        return cls._of(by_kind)

    @classmethod
    def of_kinds(
        cls, by_kind: Mapping[Kind | GatewayKind | ExtensionKind, Mapping[Key, RawObject]]
    ) -> ObjectSet:
        """A set from per-kind caches (the control plane's stores)."""
        full: dict[str, Mapping[Key, RawObject]] = {kind: {} for kind in _READ}
        for kind, objects in by_kind.items():
            full[kind] = objects
        return cls._of(full)

    def _by_kind(self) -> dict[str, dict[Key, RawObject]]:
        return {
            "Ingress": dict(self.ingresses),
            "IngressClass": {("", k): v for k, v in self.classes.items()},
            "Service": dict(self.services),
            "EndpointSlice": dict(self.slices),
            "Secret": dict(self.secrets),
            "GatewayClass": {("", k): v for k, v in self.gateway_classes.items()},
            "Gateway": dict(self.gateways),
            "HTTPRoute": dict(self.http_routes),
            "GRPCRoute": dict(self.grpc_routes),
            "ReferenceGrant": dict(self.reference_grants),
            "Namespace": {("", k): v for k, v in self.namespaces.items()},
            "ConfigMap": dict(self.config_maps),
            "EdgeAuth": dict(self.edge_auths),
            "ListenerSet": dict(self.listener_sets),
        }
