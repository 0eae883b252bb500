"""Pieces every builder shares: metadata, labels, the restricted security context, resources."""

from __future__ import annotations

from typing import Any, Final, Protocol

from kexpose.model import Deferred, Probe, Resources
from kexpose.model.workload import ResourceAmounts

__all__ = [
    "MANAGED_BY",
    "Manifest",
    "container_security",
    "exposure_fields",
    "metadata",
    "plain",
    "pod_security",
    "probe",
    "resources",
]

#: A Kubernetes object in manifest form (apiVersion, kind, metadata, spec, ...).
Manifest = dict[str, Any]

MANAGED_BY: Final = {"app.kubernetes.io/managed-by": "kexpose"}


def plain(value: object) -> object:
    """Unwrap a Deferred into what the engine resolves; plain values pass through."""
    return value.value if isinstance(value, Deferred) else value


def metadata(
    name: str,
    namespace: str | None = None,
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, Any] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = {**(labels or {}), **MANAGED_BY}
    if annotations:
        meta["annotations"] = {k: plain(v) for k, v in sorted(annotations.items())}
    return meta


def pod_security(run_as_user: int) -> dict[str, Any]:
    """Pod-level part of the restricted Pod Security Standard
    (https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted)."""
    return {
        "runAsNonRoot": True,
        "runAsUser": run_as_user,
        "runAsGroup": run_as_user,
        "fsGroup": run_as_user,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security() -> dict[str, Any]:
    """Container-level part of the restricted standard, plus a read-only root filesystem."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _amounts(a: ResourceAmounts) -> dict[str, str]:
    return {k: v for k, v in (("cpu", a.cpu), ("memory", a.memory)) if v is not None}


def resources(r: Resources) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if requests := _amounts(r.requests):
        out["requests"] = requests
    if limits := _amounts(r.limits):
        out["limits"] = limits
    return out


def probe(p: Probe) -> dict[str, Any]:
    action: dict[str, Any] = (
        {"httpGet": {"path": p.path, "port": p.port}}
        if p.path is not None
        else {"tcpSocket": {"port": p.port}}
    )
    return {
        **action,
        "initialDelaySeconds": p.initial_delay_seconds,
        "periodSeconds": p.period_seconds,
        "timeoutSeconds": p.timeout_seconds,
        "failureThreshold": p.failure_threshold,
    }


class _ExternalService(Protocol):
    """What an app's Service and the controller's Service share about outside traffic."""

    @property
    def load_balancer_source_ranges(self) -> tuple[str, ...]: ...
    @property
    def allocate_load_balancer_node_ports(self) -> bool | None: ...
    @property
    def external_traffic_policy(self) -> str | None: ...
    @property
    def load_balancer_class(self) -> str | None: ...


def exposure_fields(s: _ExternalService) -> dict[str, Any]:
    """The Service spec fields about outside traffic that are set (ServiceSpec API reference)."""
    out: dict[str, Any] = {}
    if s.load_balancer_source_ranges:
        out["loadBalancerSourceRanges"] = list(s.load_balancer_source_ranges)
    if s.allocate_load_balancer_node_ports is not None:
        out["allocateLoadBalancerNodePorts"] = s.allocate_load_balancer_node_ports
    if s.external_traffic_policy is not None:
        out["externalTrafficPolicy"] = s.external_traffic_policy
    if s.load_balancer_class is not None:
        out["loadBalancerClass"] = s.load_balancer_class
    return out
