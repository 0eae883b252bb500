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
    "ListenerSetStatus",
    "ListenerStatus",
    "ParentStatus",
    "RouteStatus",
    "class_status_body",
    "condition",
    "gateway_status_body",
    "listener_set_status_body",
    "route_status_body",
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
    attached_listener_sets: int = 0
    """Accepted ListenerSets attached to this Gateway (``_listenerset``)."""


@dataclass(frozen=True, slots=True)
class ListenerSetStatus:
    namespace: str
    name: str
    generation: int
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


# --- status bodies --------------------------------------------------------------------------------
# The control plane patches these into the status subresource. Each function returns None when the
# object already says all of it, so a steady state writes nothing. lastTransitionTime changes
# only with a condition's status (``meta.SetStatusCondition``); the rest is compared whole.


def _conditions(
    wanted: tuple[Condition, ...], generation: int, current: object, now: str
) -> list[dict[str, Any]]:
    before: dict[str, Mapping[str, Any]] = {}
    if isinstance(current, list):
        for c in current:
            if isinstance(c, Mapping) and isinstance(c.get("type"), str):
                before[c["type"]] = c
    out = []
    for cond in wanted:
        body = cond.as_dict(generation)
        old = before.get(cond.type)
        same = old is not None and old.get("status") == cond.status
        stamp = old.get("lastTransitionTime") if same and old is not None else None
        body["lastTransitionTime"] = stamp if isinstance(stamp, str) and stamp else now
        out.append(body)
    return out


def _status_of(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    status = obj.get("status") if obj is not None else None
    return status if isinstance(status, Mapping) else {}


def class_status_body(
    wanted: ClassStatus, current: Mapping[str, Any] | None, now: str
) -> dict[str, Any] | None:
    status = _status_of(current)
    body: dict[str, Any] = {
        "conditions": _conditions(
            wanted.conditions, wanted.generation, status.get("conditions"), now
        ),
        # "MUST be sorted in ascending alphabetical order by the Name key" (GatewayClassStatus).
        "supportedFeatures": [{"name": f} for f in sorted(wanted.supported_features)],
    }
    return None if _same(status, body) else body


def gateway_status_body(
    wanted: GatewayStatus, current: Mapping[str, Any] | None, now: str
) -> dict[str, Any] | None:
    status = _status_of(current)
    body: dict[str, Any] = {
        "addresses": [{"type": "IPAddress", "value": a} for a in wanted.addresses],
        "conditions": _conditions(
            wanted.conditions, wanted.generation, status.get("conditions"), now
        ),
        "listeners": _listener_bodies(wanted.listeners, wanted.generation, status, now),
        "attachedListenerSets": wanted.attached_listener_sets,
    }
    return None if _same(status, body) else body


def listener_set_status_body(
    wanted: ListenerSetStatus, current: Mapping[str, Any] | None, now: str
) -> dict[str, Any] | None:
    """A ListenerSet's ``status`` (``ListenerSetStatus``: conditions, and one
    ``ListenerEntryStatus`` per listener, shaped as a Gateway's ``ListenerStatus``)."""
    status = _status_of(current)
    body: dict[str, Any] = {
        "conditions": _conditions(
            wanted.conditions, wanted.generation, status.get("conditions"), now
        ),
        "listeners": _listener_bodies(wanted.listeners, wanted.generation, status, now),
    }
    return None if _same(status, body) else body


def _listener_bodies(
    wanted: tuple[ListenerStatus, ...], generation: int, status: Mapping[str, Any], now: str
) -> list[dict[str, Any]]:
    old_listeners = {
        entry.get("name"): entry
        for entry in status.get("listeners") or []
        if isinstance(entry, Mapping)
    }
    listeners = []
    for lst in wanted:
        old = old_listeners.get(lst.name) or {}
        listeners.append(
            {
                "name": lst.name,
                "supportedKinds": [{"group": g, "kind": k} for g, k in lst.supported_kinds],
                "attachedRoutes": lst.attached_routes,
                "conditions": _conditions(lst.conditions, generation, old.get("conditions"), now),
            }
        )
    return listeners


def route_status_body(
    wanted: RouteStatus, current: Mapping[str, Any] | None, controller: str, now: str
) -> dict[str, Any] | None:
    """Our entries of ``status.parents``; other controllers' entries are kept as they are."""
    status = _status_of(current)
    old = [p for p in status.get("parents") or [] if isinstance(p, Mapping)]
    theirs = [p for p in old if p.get("controllerName") != controller]
    ours_before = {
        _ref_key(p.get("parentRef")): p for p in old if p.get("controllerName") == controller
    }
    ours = []
    for parent in wanted.parents:
        before = ours_before.get(_ref_key(parent.parent_ref)) or {}
        ours.append(
            {
                "parentRef": dict(parent.parent_ref),
                "controllerName": controller,
                "conditions": _conditions(
                    parent.conditions, wanted.generation, before.get("conditions"), now
                ),
            }
        )
    body = {"parents": [*theirs, *ours]}
    return None if _same(status, body) else body


def _ref_key(ref: object) -> tuple[str, ...]:
    if not isinstance(ref, Mapping):
        return ()
    return tuple(
        str(ref.get(k, "")) for k in ("group", "kind", "namespace", "name", "sectionName", "port")
    )


def _same(status: Mapping[str, Any], body: Mapping[str, Any]) -> bool:
    return all(status.get(key) == value for key, value in body.items())
