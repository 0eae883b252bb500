"""Builders from the exposure model to Kubernetes manifests: pure functions, plain dicts."""

from __future__ import annotations

from kexpose.manifests.app import TlsMaterial, app_manifests, tls_hosts, tls_secret_name
from kexpose.manifests.common import Manifest
from kexpose.manifests.controller import KINDS, controller_manifests
from kexpose.manifests.gateway import GatewayRef
from kexpose.manifests.httproute import PortLookup, route_grants

__all__ = [
    "KINDS",
    "GatewayRef",
    "Manifest",
    "PortLookup",
    "TlsMaterial",
    "app_manifests",
    "controller_manifests",
    "route_grants",
    "tls_hosts",
    "tls_secret_name",
]
