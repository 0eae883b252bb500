"""The proxy's sans-IO core: Kubernetes objects in, an immutable route table out.

No sockets, no event loop, no Kubernetes client (an import-linter contract enforces it): the
control plane and static mode feed objects in, the data plane only reads the table. Every rule
is a pure function tested with case tables.
"""

from __future__ import annotations

from kexpose.proxy.routes._backends import Backend, Endpoint
from kexpose.proxy.routes._certificates import Certificate, CertificateMap
from kexpose.proxy.routes._frontend import ClientValidation
from kexpose.proxy.routes._gateway import (
    GATEWAY_GROUP,
    SUPPORTED_FEATURES,
    GatewayTable,
    build_gateway_table,
)
from kexpose.proxy.routes._gwstatus import (
    ClassStatus,
    Condition,
    GatewayStatus,
    ListenerSetStatus,
    ListenerStatus,
    ParentStatus,
    RouteStatus,
    class_status_body,
    gateway_status_body,
    listener_set_status_body,
    route_status_body,
)
from kexpose.proxy.routes._gwtable import (
    Cors,
    GatewayHost,
    GatewayListener,
    GatewayPort,
    GatewayRule,
    Mirror,
    Retry,
    WeightedBackend,
)
from kexpose.proxy.routes._kube import (
    EndpointSlice,
    ExtensionKind,
    GatewayKind,
    Ingress,
    IngressClass,
    Kind,
    LoadBalancerIngress,
    RawObject,
    Secret,
    Service,
)
from kexpose.proxy.routes._matches import RequestMatch, RequestView
from kexpose.proxy.routes._objects import (
    CLUSTER_SCOPED,
    EXTENSION_KINDS,
    GATEWAY_KINDS,
    KINDS,
    Key,
    ObjectSet,
    describe,
    key_of,
    usable_key,
)
from kexpose.proxy.routes._ownership import LEGACY_CLASS_ANNOTATION, Claim, is_owned
from kexpose.proxy.routes._paths import PATH_TYPES, PathMatcher, PathType, normalize_path
from kexpose.proxy.routes._shape import object_problems, shown
from kexpose.proxy.routes._status import parse_addresses, service_addresses, status_updates
from kexpose.proxy.routes._table import (
    SSL_REDIRECT_ANNOTATION,
    Route,
    RouteTable,
    VirtualHost,
    build_table,
)

__all__ = [
    "CLUSTER_SCOPED",
    "EXTENSION_KINDS",
    "GATEWAY_GROUP",
    "GATEWAY_KINDS",
    "KINDS",
    "LEGACY_CLASS_ANNOTATION",
    "PATH_TYPES",
    "SSL_REDIRECT_ANNOTATION",
    "SUPPORTED_FEATURES",
    "Backend",
    "Certificate",
    "CertificateMap",
    "Claim",
    "ClassStatus",
    "ClientValidation",
    "Condition",
    "Cors",
    "Endpoint",
    "EndpointSlice",
    "ExtensionKind",
    "GatewayHost",
    "GatewayKind",
    "GatewayListener",
    "GatewayPort",
    "GatewayRule",
    "GatewayStatus",
    "GatewayTable",
    "Ingress",
    "IngressClass",
    "Key",
    "Kind",
    "ListenerSetStatus",
    "ListenerStatus",
    "LoadBalancerIngress",
    "Mirror",
    "ObjectSet",
    "ParentStatus",
    "PathMatcher",
    "PathType",
    "RawObject",
    "RequestMatch",
    "RequestView",
    "Retry",
    "Route",
    "RouteStatus",
    "RouteTable",
    "Secret",
    "Service",
    "VirtualHost",
    "WeightedBackend",
    "build_gateway_table",
    "build_table",
    "class_status_body",
    "describe",
    "gateway_status_body",
    "is_owned",
    "key_of",
    "listener_set_status_body",
    "normalize_path",
    "object_problems",
    "parse_addresses",
    "route_status_body",
    "service_addresses",
    "shown",
    "status_updates",
    "usable_key",
]
