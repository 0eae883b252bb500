"""Ingress backends resolved to addresses: Service port -> EndpointSlice port -> ready endpoints.

Rules (Ingress API reference, IngressServiceBackend; EndpointSlice concept page and API
reference, https://kubernetes.io/docs/concepts/services-networking/endpoint-slices/):

- ``port.number`` / ``port.name`` in an Ingress backend name a *Service* port, never the
  targetPort.
- The pod port comes from the EndpointSlice port whose ``name`` equals the Service port's name
  (``""`` and unset are the same name). It may differ from slice to slice when the Service uses a
  named targetPort. A slice without such a port falls back to a numeric ``targetPort``, as
  ingress-nginx does; with a named targetPort it contributes nothing.
- Slices belong to a Service through the ``kubernetes.io/service-name`` label.
- ``conditions.ready: false`` endpoints are never used; ``ready`` unset means "unknown ...
  interpret as ready". Only an endpoint's first address counts. The same ``address:port`` in
  two slices counts once.
- ExternalName Services resolve to their DNS name at connect time.
- A missing Service, a port the Service does not have, or no ready endpoint all give a backend
  with no endpoints, which the data plane answers with 503 (what ingress-nginx does in all three
  cases). The ``problem`` says which, for the log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from kexpose.proxy.routes._kube import EndpointSlice, IngressServiceBackend, Service, ServicePort
from kexpose.proxy.routes._objects import Key, ObjectSet

__all__ = [
    "H2C_APP_PROTOCOL",
    "SERVICE_NAME_LABEL",
    "Backend",
    "BackendProtocol",
    "Endpoint",
    "index_slices",
    "resolve_backend",
]

SERVICE_NAME_LABEL: Final = "kubernetes.io/service-name"

#: ``(address, port)``: an IP literal (or a DNS name for ExternalName Services) and a TCP port.
Endpoint = tuple[str, int]

#: How the proxy speaks to a backend: HTTP/1.1, or HTTP/2 with prior knowledge when the Service
#: port's ``appProtocol`` is ``kubernetes.io/h2c`` (Service API reference, "Application
#: protocol"; Gateway API GEP-1911, the HTTPRoute ``HTTPRouteBackendProtocolH2C`` feature).
BackendProtocol = Literal["http/1.1", "h2c"]
H2C_APP_PROTOCOL: Final = "kubernetes.io/h2c"


@dataclass(frozen=True, slots=True)
class Backend:
    """A Service port, resolved. ``key`` identifies it across route tables."""

    key: str
    """``namespace/service:port``; balancer state and the ``service`` metrics label use it."""
    endpoints: tuple[Endpoint, ...]
    problem: str | None = None
    """Why there is no endpoint, for the log; None when there are endpoints."""
    protocol: BackendProtocol = "http/1.1"


def index_slices(objects: ObjectSet) -> dict[Key, list[EndpointSlice]]:
    """Slices by the ``(namespace, service)`` they belong to."""
    index: dict[Key, list[EndpointSlice]] = {}
    for (namespace, _), slice_ in objects.slices.items():
        labels = (slice_.get("metadata") or {}).get("labels") or {}
        service = labels.get(SERVICE_NAME_LABEL)
        if service:
            index.setdefault((namespace, service), []).append(slice_)
    return index


def resolve_backend(
    namespace: str,
    ref: IngressServiceBackend,
    *,
    services: Mapping[Key, Service],
    slices: Mapping[Key, list[EndpointSlice]],
) -> Backend:
    name = ref.get("name", "")
    port_ref = ref.get("port") or {}
    number, port_name = port_ref.get("number"), port_ref.get("name")
    label = f"{namespace}/{name}:{number if number is not None else port_name}"
    service = services.get((namespace, name))
    if service is None:
        return Backend(label, (), f"Service {namespace}/{name} not found")
    spec = service.get("spec") or {}
    port = _service_port(spec.get("ports") or [], number, port_name)
    protocol: BackendProtocol = (
        "h2c" if port is not None and port.get("appProtocol") == H2C_APP_PROTOCOL else "http/1.1"
    )
    if spec.get("type") == "ExternalName":
        target = spec.get("externalName")
        resolved = port.get("port") if port else number
        if not target or not isinstance(resolved, int):
            return Backend(label, (), f"ExternalName Service {namespace}/{name} has no usable port")
        return Backend(label, ((target, resolved),), protocol=protocol)
    if port is None:
        wanted = f"port {number}" if number is not None else f"port named {port_name!r}"
        return Backend(label, (), f"Service {namespace}/{name} has no {wanted}")
    endpoints = _ready_endpoints(port, slices.get((namespace, name), []))
    if not endpoints:
        return Backend(label, (), f"Service {namespace}/{name} has no ready endpoint")
    return Backend(label, endpoints, protocol=protocol)


def _service_port(
    ports: list[ServicePort], number: int | None, name: str | None
) -> ServicePort | None:
    for port in ports:
        if number is not None and port.get("port") == number:
            return port
        if number is None and name and port.get("name") == name:
            return port
    return None


def _ready_endpoints(port: ServicePort, slices: list[EndpointSlice]) -> tuple[Endpoint, ...]:
    port_name = port.get("name") or ""
    target = port.get("targetPort")
    found: set[Endpoint] = set()
    for slice_ in slices:
        if (slice_.get("addressType") or "IPv4") not in ("IPv4", "IPv6"):
            continue  # FQDN slices are not addresses we connect to
        pod_port: int | None = None
        for candidate in slice_.get("ports") or []:
            if (candidate.get("name") or "") == port_name:
                pod_port = candidate.get("port")
                break
        if pod_port is None and isinstance(target, int):
            pod_port = target
        if pod_port is None and target is None and isinstance(port.get("port"), int):
            pod_port = port.get("port")  # targetPort defaults to port (Service API reference)
        if not isinstance(pod_port, int):
            continue
        for endpoint in slice_.get("endpoints") or []:
            conditions = endpoint.get("conditions") or {}
            if conditions.get("ready") is False:
                continue
            addresses = endpoint.get("addresses") or []
            # "No semantics are defined for additional addresses beyond the first, and
            # kube-proxy does not look at them" (EndpointSlice API reference, addresses).
            if addresses:
                found.add((addresses[0], pod_port))
    # Sorted so that equal object sets give equal tables (and a stable round-robin order).
    return tuple(sorted(found))
