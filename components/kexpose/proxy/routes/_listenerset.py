"""ListenerSets: which attach to which Gateway, and how their listeners merge into its ports.

A ListenerSet (gateway-api v1.6.3 ``apis/v1/listenerset_types.go``, GEP-1713) adds listeners to
a parent Gateway that opts in. What this module decides, all pure:

- **Attachment.** ``spec.parentRef`` names a Gateway (group ``gateway.networking.k8s.io``, kind
  ``Gateway``, namespace defaulting to the ListenerSet's). A ListenerSet whose parent is not one
  of our Gateways gets no status from us (another controller owns it, or none). The Gateway's
  ``spec.allowedListeners.namespaces.from`` admits it: ``None`` (the default: "The default value
  is to allow no ListenerSets"), ``Same`` (the Gateway's namespace), ``Selector`` (namespaces
  whose labels match), ``All``. Not admitted: ``Accepted=False/NotAllowed``; the parent not
  accepted: ``Accepted=False/ParentNotAccepted``.
- **Precedence** (``ListenerSetSpec.listeners``): "1. 'parent' Gateway 2. ListenerSet ordered by
  creation time (oldest first) 3. ListenerSet ordered alphabetically by '{namespace}/{name}'".
- **Conflicts.** Merged in that order, a ListenerSet listener that shares a port with an earlier
  accepted listener of another protocol is ``Conflicted=True/ProtocolConflict``; one that shares
  port, protocol and hostname with one is ``Conflicted=True/HostnameConflict``. The earlier
  listener keeps serving (the conformance tests ``ListenerSetHostnameConflict`` and
  ``ListenerSetProtocolConflict`` expect exactly this); the later one is ``Accepted=False`` and
  ``Programmed=False`` with the conflict's reason and serves nothing. A Gateway's own listeners
  keep their own rule (``_gateway``: every one of a conflicting group is conflicted).
- **Status.** A ListenerSet is ``Accepted`` when at least one of its listeners is valid
  (``ListenersNotValid`` otherwise), ``Programmed`` when it is accepted and its parent has an
  address; the Gateway counts its accepted ListenerSets in ``status.attachedListenerSets``.

Listener names need only be unique within one object ("Each listener name does not need to be
unique across the Gateway and ListenerSets"): a route reaches a ListenerSet's listeners only
through a parentRef of kind ``ListenerSet``, never through the Gateway's (the conformance test
``ListenerSetGatewayParentSectionNameNotFound``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, Protocol

from kexpose.proxy.routes._gwstatus import Condition, condition
from kexpose.proxy.routes._objects import Key
from kexpose.proxy.routes._raw import mapping
from kexpose.proxy.routes._selectors import selector_matches

__all__ = [
    "LISTENER_SET_KIND",
    "Attachment",
    "MergedListener",
    "attachments",
    "claim_ports",
    "entry_programmed",
    "set_conditions",
]

LISTENER_SET_KIND: Final = "ListenerSet"
#: The group of ``ParentGatewayReference`` (its default); the same string as ``_gateway``'s.
_GROUP: Final = "gateway.networking.k8s.io"

Admission = Literal["Allowed", "NotAllowed"]


class MergedListener(Protocol):
    """What conflict resolution reads and writes of a listener (``_gateway._Listener``)."""

    port: int
    protocol: str
    hostname: str | None
    conditions: dict[str, Condition]


@dataclass(frozen=True, slots=True)
class Attachment:
    """One ListenerSet whose parentRef names one of our Gateways."""

    key: Key
    gateway: Key
    obj: Mapping[str, Any]
    admission: Admission


def _created(obj: Mapping[str, Any]) -> str:
    value = mapping(obj.get("metadata")).get("creationTimestamp")
    if isinstance(value, datetime):
        return value.isoformat()
    return value if isinstance(value, str) else ""


def parent_of(key: Key, obj: Mapping[str, Any]) -> Key | None:
    """The Gateway ``spec.parentRef`` names, or None when it names another kind or nothing."""
    ref = mapping(mapping(obj.get("spec")).get("parentRef"))
    group = ref.get("group", _GROUP)
    kind = ref.get("kind", "Gateway")
    name = ref.get("name")
    if (group, kind) != (_GROUP, "Gateway") or not isinstance(name, str) or not name:
        return None
    namespace = ref.get("namespace")
    return (namespace if isinstance(namespace, str) and namespace else key[0], name)


def admits(
    gateway: Key,
    spec: Mapping[str, Any],
    set_namespace: str,
    namespaces: Mapping[str, Mapping[str, str]],
) -> bool:
    """Whether the Gateway's ``spec.allowedListeners`` admits a ListenerSet of that namespace."""
    allowed = mapping(mapping(mapping(spec.get("spec")).get("allowedListeners")).get("namespaces"))
    source = allowed.get("from") or "None"
    if source == "All":
        return True
    if source == "Same":
        return set_namespace == gateway[0]
    if source == "Selector":
        return selector_matches(mapping(allowed.get("selector")), namespaces.get(set_namespace, {}))
    return False  # "None", and any value the CRD's enum would have refused


def attachments(
    gateways: Mapping[Key, Mapping[str, Any]],
    listener_sets: Mapping[Key, Mapping[str, Any]],
    namespaces: Mapping[str, Mapping[str, str]],
) -> list[Attachment]:
    """The ListenerSets whose parent is one of ``gateways``, in precedence order."""
    found = []
    for key, obj in listener_sets.items():
        parent = parent_of(key, obj)
        if parent is None or parent not in gateways:
            continue
        allowed = admits(parent, gateways[parent], key[0], namespaces)
        found.append(Attachment(key, parent, obj, "Allowed" if allowed else "NotAllowed"))
    return sorted(found, key=lambda a: (_created(a.obj), f"{a.key[0]}/{a.key[1]}"))


def _claims(listener: MergedListener) -> bool:
    """Whether a listener holds its port and hostname against later ones: it is accepted and
    not itself in conflict."""
    accepted = listener.conditions.get("Accepted")
    conflicted = listener.conditions.get("Conflicted")
    return (accepted is not None and accepted.status == "True") and (
        conflicted is None or conflicted.status == "False"
    )


def claim_ports(own: Sequence[MergedListener], sets: Sequence[Sequence[MergedListener]]) -> None:
    """Mark the ListenerSet listeners (``sets``, in precedence order) that conflict with the
    Gateway's own listeners or an earlier ListenerSet listener; the others ``NoConflicts``."""
    held = [lst for lst in own if _claims(lst)]
    for listeners in sets:
        for lst in listeners:
            # Checked whatever else is wrong with the listener: a TCP listener on an HTTP port
            # is a ProtocolConflict (ListenerSetProtocolConflict), not only unsupported.
            same_port = [o for o in held if o.port == lst.port]
            reason = ""
            if any(o.protocol != lst.protocol for o in same_port):
                reason = "ProtocolConflict"
                why = f"port {lst.port} is served with another protocol by an earlier listener"
            elif any(o.hostname == lst.hostname for o in same_port):
                reason = "HostnameConflict"
                why = (
                    f"port {lst.port} hostname {lst.hostname or '(any)'} is served by an "
                    "earlier listener"
                )
            if reason:
                lst.conditions["Accepted"] = condition("Accepted", False, reason, why)
                lst.conditions["Conflicted"] = condition("Conflicted", True, reason, why)
                continue
            lst.conditions["Conflicted"] = condition("Conflicted", False, "NoConflicts")
            if _claims(lst):
                held.append(lst)


def entry_programmed(
    conditions: Mapping[str, Condition], usable: bool, addressed: bool
) -> Condition:
    """A ListenerSet listener's ``Programmed``: a conflict's reason when it lost one (the
    conformance tests expect it), ``Invalid`` when otherwise not usable, ``Pending`` without an
    address."""
    conflicted = conditions.get("Conflicted")
    if conflicted is not None and conflicted.status == "True":
        return condition("Programmed", False, conflicted.reason, conflicted.message)
    if not usable:
        return condition("Programmed", False, "Invalid", "see the listener's other conditions")
    if not addressed:
        return condition("Programmed", False, "Pending", "the parent Gateway has no address yet")
    return condition("Programmed", True, "Programmed")


def set_conditions(
    attachment: Attachment,
    *,
    parent_accepted: bool,
    valid: int,
    total: int,
    addressed: bool,
) -> tuple[Condition, Condition]:
    """The ListenerSet's ``Accepted`` and ``Programmed`` (``ListenerSetConditionType``)."""
    if attachment.admission == "NotAllowed":
        why = (
            f"Gateway {attachment.gateway[0]}/{attachment.gateway[1]} does not allow "
            f"ListenerSets from namespace {attachment.key[0]} (spec.allowedListeners)"
        )
        return (
            condition("Accepted", False, "NotAllowed", why),
            condition("Programmed", False, "NotAllowed", why),
        )
    if not parent_accepted:
        why = f"Gateway {attachment.gateway[0]}/{attachment.gateway[1]} is not accepted"
        return (
            condition("Accepted", False, "ParentNotAccepted", why),
            condition("Programmed", False, "ParentNotAccepted", why),
        )
    if valid == 0:
        why = "no listener is valid; see the listener conditions"
        return (
            condition("Accepted", False, "ListenersNotValid", why),
            condition("Programmed", False, "ListenersNotValid", why),
        )
    if valid < total:
        accepted = condition(
            "Accepted", True, "ListenersNotValid", "some listeners are not valid; see them"
        )
    else:
        accepted = condition("Accepted", True, "Accepted")
    if not addressed:
        return accepted, condition(
            "Programmed", False, "Pending", "the parent Gateway has no address yet"
        )
    return accepted, condition("Programmed", True, "Programmed")
