"""Builders from the exposure model to Kubernetes manifests: pure functions, plain dicts."""

from __future__ import annotations

from kexpose.manifests.app import TlsMaterial, app_manifests, tls_hosts, tls_secret_name
from kexpose.manifests.common import Manifest
from kexpose.manifests.controller import KINDS, controller_manifests

__all__ = [
    "KINDS",
    "Manifest",
    "TlsMaterial",
    "app_manifests",
    "controller_manifests",
    "tls_hosts",
    "tls_secret_name",
]
