"""Where a route's matching requests go: a port of a Service, optionally weighted.

Shared by HTTP paths (``kexpose.model.ingress``) and gRPC services (``kexpose.model.grpc``).
"""

from __future__ import annotations

from pydantic import Field

from kexpose.model.base import DNSLabel, Frozen, PortName, PortNumber

__all__ = ["Backend", "WeightedBackend"]


class Backend(Frozen):
    """Where matching requests go: a port of the app's own Service, or of another app's Service
    (``service``), in the app's namespace or, with ``api: gateway`` only, in ``namespace`` (a
    ReferenceGrant is made there). ``port`` is a Service port name or number, never the
    targetPort (Ingress API: ServiceBackendPort)."""

    port: PortNumber | PortName
    service: DNSLabel | None = None
    namespace: DNSLabel | None = None


class WeightedBackend(Backend):
    """Another Service sharing a path's traffic in proportion to ``weight`` (a canary); the
    path's own backend has the path's ``weight`` (``api: gateway`` only)."""

    weight: int = Field(default=1, ge=0, le=1_000_000)
