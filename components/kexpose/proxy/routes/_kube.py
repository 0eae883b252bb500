"""Raw Kubernetes JSON, as the API server (or a manifest file) hands it over.

Only the fields the proxy reads are declared. Everything is ``total=False`` because the API
omits empty fields and hand-written manifests omit more; readers use ``.get`` and treat a
missing field as the API default. Field names follow the v1 API references:
https://kubernetes.io/docs/reference/kubernetes-api/service-resources/ingress-v1/,
.../ingress-class-v1/, .../service-v1/, .../endpoint-slice-v1/ and
https://kubernetes.io/docs/reference/kubernetes-api/config-and-storage-resources/secret-v1/.
"""

from __future__ import annotations

from typing import Literal, TypedDict

__all__ = [
    "Endpoint",
    "EndpointConditions",
    "EndpointPort",
    "EndpointSlice",
    "ExtensionKind",
    "GatewayKind",
    "Ingress",
    "IngressBackend",
    "IngressClass",
    "IngressClassSpec",
    "IngressRule",
    "IngressServiceBackend",
    "IngressSpec",
    "IngressStatus",
    "IngressTLS",
    "Kind",
    "LoadBalancerIngress",
    "LoadBalancerStatus",
    "ObjectMeta",
    "PathRule",
    "RawObject",
    "Secret",
    "Service",
    "ServiceBackendPort",
    "ServicePort",
    "ServiceSpec",
    "ServiceStatus",
]

#: The kinds the route table is built from.
Kind = Literal["Ingress", "IngressClass", "Service", "EndpointSlice", "Secret"]
#: The Gateway API kinds (and Namespaces, whose labels ``allowedRoutes`` selectors read), read
#: when the proxy also serves the Gateway API.
GatewayKind = Literal[
    "GatewayClass",
    "Gateway",
    "HTTPRoute",
    "GRPCRoute",
    "ReferenceGrant",
    "Namespace",
    "ConfigMap",
    "ListenerSet",
]
#: kexpose's own kinds, read with the Gateway API: ``EdgeAuth`` (edge-auth.md, "Gateway API").
ExtensionKind = Literal["EdgeAuth"]


class ObjectMeta(TypedDict, total=False):
    name: str
    namespace: str
    uid: str
    resourceVersion: str
    creationTimestamp: str
    labels: dict[str, str]
    annotations: dict[str, str]


class ServiceBackendPort(TypedDict, total=False):
    name: str
    number: int


class IngressServiceBackend(TypedDict, total=False):
    name: str
    port: ServiceBackendPort


class TypedLocalObjectReference(TypedDict, total=False):
    apiGroup: str
    kind: str
    name: str


class IngressBackend(TypedDict, total=False):
    service: IngressServiceBackend
    resource: TypedLocalObjectReference


class PathRule(TypedDict, total=False):
    """``HTTPIngressPath``."""

    path: str
    pathType: str
    backend: IngressBackend


class HTTPIngressRuleValue(TypedDict, total=False):
    paths: list[PathRule]


class IngressRule(TypedDict, total=False):
    host: str
    http: HTTPIngressRuleValue


class IngressTLS(TypedDict, total=False):
    hosts: list[str]
    secretName: str


class IngressSpec(TypedDict, total=False):
    ingressClassName: str
    defaultBackend: IngressBackend
    rules: list[IngressRule]
    tls: list[IngressTLS]


class LoadBalancerIngress(TypedDict, total=False):
    ip: str
    hostname: str


class LoadBalancerStatus(TypedDict, total=False):
    ingress: list[LoadBalancerIngress]


class IngressStatus(TypedDict, total=False):
    loadBalancer: LoadBalancerStatus


class Ingress(TypedDict, total=False):
    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: IngressSpec
    status: IngressStatus


class IngressClassSpec(TypedDict, total=False):
    controller: str


class IngressClass(TypedDict, total=False):
    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: IngressClassSpec


class ServicePort(TypedDict, total=False):
    name: str
    port: int
    targetPort: int | str
    protocol: str


class ServiceSpec(TypedDict, total=False):
    type: str
    clusterIP: str
    externalName: str
    externalIPs: list[str]
    ports: list[ServicePort]


class ServiceStatus(TypedDict, total=False):
    loadBalancer: LoadBalancerStatus


class Service(TypedDict, total=False):
    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: ServiceSpec
    status: ServiceStatus


class EndpointConditions(TypedDict, total=False):
    ready: bool | None
    serving: bool | None
    terminating: bool | None


class Endpoint(TypedDict, total=False):
    addresses: list[str]
    conditions: EndpointConditions


class EndpointPort(TypedDict, total=False):
    name: str | None
    port: int | None
    protocol: str


class EndpointSlice(TypedDict, total=False):
    apiVersion: str
    kind: str
    metadata: ObjectMeta
    addressType: str
    endpoints: list[Endpoint] | None
    ports: list[EndpointPort] | None


class Secret(TypedDict, total=False):
    apiVersion: str
    kind: str
    metadata: ObjectMeta
    type: str
    data: dict[str, str]
    stringData: dict[str, str]


#: Any object the proxy reads; ``kind`` tells which.
RawObject = Ingress | IngressClass | Service | EndpointSlice | Secret
