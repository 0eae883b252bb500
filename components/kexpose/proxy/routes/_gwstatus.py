"""Gateway API status values as the core computes them: conditions, listener and route-parent
status. Plain data; the control plane adds timestamps and writes them (``status`` subresource).

Condition types and reasons are the spec's constants (gateway-api v1.6.3 ``apis/v1``:
``GatewayClassConditionType``, ``GatewayConditionType``, ``ListenerConditionType``,
``RouteConditionType`` and their ``...Reason`` values).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "ClassStatus",
    "Condition",
    "GatewayStatus",
    "ListenerStatus",
    "ParentStatus",
    "RouteStatus",
    "condition",
]

ConditionStatus = Literal["True", "False", "Unknown"]


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: ConditionStatus
    reason: str
    message: str = ""

    def as_dict(self, generation: int) -> dict[str, Any]:
        """The condition as the API wants it, without ``lastTransitionTime`` (the writer keeps
        the old time when the status did not change, as ``meta.SetStatusCondition`` does)."""
        return {
            "type": self.type,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "observedGeneration": generation,
        }


def condition(type_: str, ok: bool, reason: str, message: str = "") -> Condition:
    return Condition(type_, "True" if ok else "False", reason, message)


@dataclass(frozen=True, slots=True)
class ClassStatus:
    name: str
    generation: int
    conditions: tuple[Condition, ...]
    supported_features: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ListenerStatus:
    name: str
    supported_kinds: tuple[tuple[str, str], ...]
    """(group, kind) pairs."""
    attached_routes: int
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    namespace: str
    name: str
    generation: int
    addresses: tuple[str, ...]
    conditions: tuple[Condition, ...]
    listeners: tuple[ListenerStatus, ...]


@dataclass(frozen=True, slots=True)
class ParentStatus:
    parent_ref: Mapping[str, Any]
    """The parentRef as written in the route (the spec: "corresponds with a ParentRef")."""
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class RouteStatus:
    kind: str
    namespace: str
    name: str
    generation: int
    parents: tuple[ParentStatus, ...] = field(default_factory=tuple)
