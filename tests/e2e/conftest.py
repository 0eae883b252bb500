"""Fixtures for the end-to-end tests: the built toolchain and one local cluster.

A missing toolchain is a failure, never a skip: CI must not pass without running these tests.
The fixtures are package-scoped: the cluster, the proxy and the private network namespace end
with the last e2e test, so the rest of a whole-suite run is neither slowed nor confined by them.
Developers who do not want them deselect the marker: `pytest -m 'not e2e'`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from lightkube import Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace

from .cluster import POD_CIDR_TEMPLATE, ClusterStartError, LocalCluster
from .loadbalancer import LoadBalancerStandIn
from .netns import NetnsError, PrivateNetwork
from .proxy import ProxyProcess
from .toolchain import Toolchain, ToolchainMissingError, find_toolchain

# Two nodes, so the scheduler has a choice and replicas spread as they would in a real cluster.
NODE_NAMES = ("kwok-node-0", "kwok-node-1")
#: The nodes' spec.podCIDR, from which kwok gives pods their addresses.
POD_CIDRS = tuple(POD_CIDR_TEMPLATE.format(index=i) for i in range(len(NODE_NAMES)))


@pytest.fixture(scope="package")
def toolchain() -> Toolchain:
    """The toolchain built by scripts/toolchain.sh; fails the test when it is missing."""
    try:
        return find_toolchain()
    except ToolchainMissingError as exc:
        message = str(exc)
    # Outside the except block, so the report is the message alone, without a chained traceback.
    pytest.fail(f"e2e toolchain missing: {message}", pytrace=False)


@pytest.fixture(scope="package")
def private_network() -> Iterator[PrivateNetwork]:
    """The session's own network namespace (netns.py): loopback only, the pod CIDRs on `lo`."""
    network = PrivateNetwork(POD_CIDRS)
    failure = None
    try:
        network.enter()
    except NetnsError as exc:
        failure = str(exc)
    if failure is not None:
        pytest.fail(f"private network namespace: {failure}", pytrace=False)
    try:
        yield network
    finally:
        network.leave()


@pytest.fixture(scope="package")
def cluster(
    toolchain: Toolchain,
    tmp_path_factory: pytest.TempPathFactory,
    private_network: PrivateNetwork,
) -> Iterator[LocalCluster]:
    """One control plane for the e2e tests, stopped by PID at the end (also on failure)."""
    local = LocalCluster(toolchain, tmp_path_factory.mktemp("cluster"), node_names=NODE_NAMES)
    failure = None
    try:
        local.start()
    except ClusterStartError as exc:
        failure = str(exc)
    if failure is not None:
        pytest.fail(f"local cluster did not start: {failure}", pytrace=False)
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture
def kube(cluster: LocalCluster) -> Iterator[Client]:
    """A lightkube client for the local cluster, as the admin."""
    with cluster.client() as client:
        yield client


@pytest.fixture
def namespace(kube: Client) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (without waiting for finalization)."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    kube.create(Namespace(metadata=ObjectMeta(name=name)))
    yield name
    kube.delete(Namespace, name)


@pytest.fixture(scope="package")
def load_balancers(cluster: LocalCluster) -> Iterator[LoadBalancerStandIn]:
    """The stand-in for a cloud load-balancer controller (loadbalancer.py)."""
    with cluster.client() as client, LoadBalancerStandIn(client).running() as stand_in:
        yield stand_in


@pytest.fixture(scope="package")
def ingress_proxy(
    cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    """kexpose-proxy out of cluster as the stacks' Ingress controller (proxy.py)."""
    proxy = ProxyProcess(cluster.kubeconfig, tmp_path_factory.mktemp("proxy"))
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
