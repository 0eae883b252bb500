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
    Ingress,
    IngressClass,
    Kind,
    RawObject,
    Secret,
    Service,
)

__all__ = ["KINDS", "Key", "ObjectSet", "key_of"]

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

#: Namespace a manifest object lands in when it names none, as ``kubectl apply`` would do.
DEFAULT_NAMESPACE: Final = "default"


def key_of(obj: RawObject) -> Key:
    meta = obj.get("metadata") or {}
    if obj.get("kind") == "IngressClass":
        return ("", str(meta.get("name", "")))
    return (str(meta.get("namespace") or DEFAULT_NAMESPACE), str(meta.get("name", "")))


@dataclass(frozen=True, slots=True)
class ObjectSet:
    """Every object of the five kinds the proxy can see, keyed by ``(namespace, name)``."""

    ingresses: Mapping[Key, Ingress] = field(default_factory=dict)
    classes: Mapping[str, IngressClass] = field(default_factory=dict)
    services: Mapping[Key, Service] = field(default_factory=dict)
    slices: Mapping[Key, EndpointSlice] = field(default_factory=dict)
    secrets: Mapping[Key, Secret] = field(default_factory=dict)

    @classmethod
    def from_documents(
        cls, documents: Iterable[Mapping[str, object]]
    ) -> tuple[ObjectSet, tuple[str, ...]]:
        """Sort loose documents (static mode) into a set; returns it and what was skipped, why.

        Documents of other kinds (Deployments next to the Ingress, say) are skipped silently;
        a known kind with the wrong apiVersion or without a name is reported.
        """
        by_kind: dict[str, dict[Key, RawObject]] = {kind: {} for kind in KINDS}
        problems: list[str] = []
        for index, doc in enumerate(documents):
            kind = doc.get("kind")
            if not isinstance(kind, str):
                problems.append(f"document {index + 1}: no 'kind'")
                continue
            if kind not in KINDS:
                if kind == "List" and isinstance(doc.get("items"), list):
                    items = cast("list[Mapping[str, object]]", doc["items"])
                    nested, more = cls.from_documents(items)
                    for sub_kind, objects in nested._by_kind().items():
                        by_kind[sub_kind].update(objects)
                    problems.extend(more)
                continue
            api = doc.get("apiVersion")
            if api != KINDS[cast("Kind", kind)]:
                problems.append(
                    f"{kind} (document {index + 1}): apiVersion {api!r} is not read; "
                    f"use {KINDS[cast('Kind', kind)]!r}"
                )
                continue
            meta = doc.get("metadata")
            if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
                problems.append(f"{kind} (document {index + 1}): metadata.name is missing")
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
        )

    @classmethod
    def of_kinds(cls, by_kind: Mapping[Kind, Mapping[Key, RawObject]]) -> ObjectSet:
        """A set from per-kind caches (the control plane's stores)."""
        full: dict[str, Mapping[Key, RawObject]] = {kind: {} for kind in KINDS}
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
        }
