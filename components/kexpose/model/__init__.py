"""The exposure model: what users write in stack config or in Python, validated and frozen.

Pure data and validation; nothing here talks to Pulumi or a cluster.
"""

from __future__ import annotations

from kexpose.model.app import AppSpec
from kexpose.model.base import Deferred
from kexpose.model.controller import ControllerKind, ControllerService, ControllerSpec
from kexpose.model.gateway import ApiKind, GatewaySettings
from kexpose.model.grpc import GrpcPath
from kexpose.model.ingress import (
    PLAIN_HTTP_ANNOTATION,
    Backend,
    IngressPath,
    IngressRule,
    IngressSpec,
    PathType,
    WeightedBackend,
)
from kexpose.model.problems import config_error, format_path
from kexpose.model.route import (
    Cors,
    HeaderChanges,
    HeaderMatch,
    PathChange,
    QueryParamMatch,
    Redirect,
    Rewrite,
    RouteFilters,
    RouteTimeouts,
)
from kexpose.model.service import ServicePort, ServiceSpec, ServiceType
from kexpose.model.stack import StackSpec
from kexpose.model.tls import TlsMode, TlsSpec
from kexpose.model.workload import ContainerPort, Probe, ResourceAmounts, Resources, Workload

__all__ = [
    "PLAIN_HTTP_ANNOTATION",
    "ApiKind",
    "AppSpec",
    "Backend",
    "ContainerPort",
    "ControllerKind",
    "ControllerService",
    "ControllerSpec",
    "Cors",
    "Deferred",
    "GatewaySettings",
    "GrpcPath",
    "HeaderChanges",
    "HeaderMatch",
    "IngressPath",
    "IngressRule",
    "IngressSpec",
    "PathChange",
    "PathType",
    "Probe",
    "QueryParamMatch",
    "Redirect",
    "ResourceAmounts",
    "Resources",
    "Rewrite",
    "RouteFilters",
    "RouteTimeouts",
    "ServicePort",
    "ServiceSpec",
    "ServiceType",
    "StackSpec",
    "TlsMode",
    "TlsSpec",
    "WeightedBackend",
    "Workload",
    "config_error",
    "format_path",
]
