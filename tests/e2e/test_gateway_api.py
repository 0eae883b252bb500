"""The Gateway API foundation of the e2e environment: the standard-channel CRDs the toolchain
ships install on the real apiserver, carry the bundle version the conformance suite checks, and
the suite itself is built and runnable. (The conformance run against kexpose-proxy builds on
this; see tests/e2e/README.md.)"""

from __future__ import annotations

import subprocess
from typing import Any, cast

import pytest
import yaml
from lightkube import Client
from lightkube.generic_resource import create_global_resource
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition

from .cluster import LocalCluster, wait_until
from .toolchain import Toolchain

pytestmark = pytest.mark.e2e

#: The annotation every CRD of a Gateway API release carries; the suite refuses a cluster whose
#: CRDs come from another release or channel (conformance/utils/suite).
BUNDLE_VERSION = "gateway.networking.k8s.io/bundle-version"
CHANNEL = "gateway.networking.k8s.io/channel"
#: The kinds of the standard channel that kexpose-proxy implements or the suite creates.
KINDS = {"GatewayClass", "Gateway", "HTTPRoute", "GRPCRoute", "ReferenceGrant"}
# Establishing a CRD is one controller pass of the apiserver; generous for a loaded CI machine.
ESTABLISH_TIMEOUT_S = 60.0


def _crd_documents(toolchain: Toolchain) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(toolchain.gateway_api_crds.glob("*.yaml")):
        docs += [
            d
            for d in yaml.safe_load_all(path.read_text())
            if d and d.get("kind") == "CustomResourceDefinition"
        ]
    return docs


def _established(kube: Client, name: str) -> bool:
    crd = kube.get(CustomResourceDefinition, name)
    conditions = (crd.status.conditions if crd.status else None) or []
    return any(c.type == "Established" and c.status == "True" for c in conditions)


def test_the_standard_gateway_api_crds_install_and_serve(
    toolchain: Toolchain, cluster: LocalCluster, kube: Client
) -> None:
    version = toolchain.versions["gateway_api"]
    docs = _crd_documents(toolchain)
    kinds = {d["spec"]["names"]["kind"] for d in docs}
    assert kinds >= KINDS
    for doc in docs:
        annotations = doc["metadata"]["annotations"]
        assert annotations[BUNDLE_VERSION] == version
        assert annotations[CHANNEL] == "standard"
        crd = cast(CustomResourceDefinition, CustomResourceDefinition.from_dict(doc))
        kube.apply(crd, field_manager="kexpose-e2e", force=True)
    for doc in docs:
        name: str = doc["metadata"]["name"]

        def established(n: str = name) -> bool | None:
            return True if _established(kube, n) else None

        wait_until(
            established,
            timeout=ESTABLISH_TIMEOUT_S,
            what=f"CRD {name} Established",
        )
    # The API serves the kinds: a GatewayClass round-trips through the apiserver's validation.
    gateway_class = create_global_resource(
        "gateway.networking.k8s.io", "v1", "GatewayClass", "gatewayclasses"
    )
    kube.create(
        gateway_class.from_dict(
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "GatewayClass",
                "metadata": {"name": "e2e-foundation"},
                "spec": {"controllerName": "kexpose.dev/gateway-controller"},
            }
        )
    )
    got = kube.get(gateway_class, "e2e-foundation")
    assert got["spec"]["controllerName"] == "kexpose.dev/gateway-controller"
    kube.delete(gateway_class, "e2e-foundation")


def test_the_conformance_suite_is_built(toolchain: Toolchain) -> None:
    suite = toolchain.tool("gateway-conformance.test")
    listed = subprocess.run(
        [str(suite), "-test.list", ".*"], capture_output=True, text=True, timeout=60, check=True
    )
    assert "TestConformance" in listed.stdout.split()
