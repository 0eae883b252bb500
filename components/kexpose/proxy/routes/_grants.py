"""ReferenceGrant: whether an object may refer to one in another namespace.

Rules (``ReferenceGrant``, gateway-api v1.6.3 ``apis/v1/referencegrant_types.go``): a reference
from a ``from`` object to a ``to`` object in *another* namespace is allowed only when a
ReferenceGrant in the ``to`` namespace lists the referring (group, kind, namespace) in
``spec.from`` and the target (group, kind, and ``name`` when set) in ``spec.to``. References
within one namespace need no grant. The core group is ``""``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kexpose.proxy.routes._raw import entries

__all__ = ["Grants"]


@dataclass(frozen=True, slots=True)
class _Grant:
    from_: tuple[tuple[str, str, str], ...]
    """(group, kind, namespace)."""
    to: tuple[tuple[str, str, str | None], ...]
    """(group, kind, name or None for every name)."""


class Grants:
    """The ReferenceGrants of the cluster, indexed by the namespace they grant access to."""

    __slots__ = ("_by_namespace",)

    def __init__(self, grants: Iterable[Mapping[str, Any]]) -> None:
        by_namespace: dict[str, list[_Grant]] = {}
        for grant in grants:
            meta = grant.get("metadata")
            spec = grant.get("spec")
            if not isinstance(meta, Mapping) or not isinstance(spec, Mapping):
                continue
            namespace = meta.get("namespace") or "default"
            froms = tuple(
                (str(f.get("group") or ""), str(f.get("kind") or ""), str(f.get("namespace") or ""))
                for f in entries(spec.get("from"))
            )
            tos = tuple(
                (
                    str(t.get("group") or ""),
                    str(t.get("kind") or ""),
                    str(t["name"]) if isinstance(t.get("name"), str) and t["name"] else None,
                )
                for t in entries(spec.get("to"))
            )
            by_namespace.setdefault(str(namespace), []).append(_Grant(froms, tos))
        self._by_namespace = by_namespace

    def allows(
        self,
        *,
        from_group: str,
        from_kind: str,
        from_namespace: str,
        to_group: str,
        to_kind: str,
        to_namespace: str,
        to_name: str,
    ) -> bool:
        if from_namespace == to_namespace:
            return True
        source = (from_group, from_kind, from_namespace)
        for grant in self._by_namespace.get(to_namespace, ()):
            if source not in grant.from_:
                continue
            for group, kind, name in grant.to:
                if group == to_group and kind == to_kind and (name is None or name == to_name):
                    return True
        return False
