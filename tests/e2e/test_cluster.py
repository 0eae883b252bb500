"""Smoke tests of the e2e foundation: the local cluster behaves like a cluster, and the built
Pulumi CLI drives the built kubernetes provider against it (CLI -> language host -> provider ->
apiserver)."""

from __future__ import annotations

import json
import subprocess
import textwrap
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from lightkube import ApiError, Client, codecs
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Namespace, Node, Pod, Service
from lightkube.resources.discovery_v1 import EndpointSlice

from .cluster import LocalCluster, wait_until
from .conftest import NODE_NAMES
from .toolchain import Toolchain

pytestmark = pytest.mark.e2e

# Scheduler binding plus kwok's pod-ready stage plus the ReplicaSet and Deployment controllers'
# resyncs; a few seconds normally, generous for a loaded 2-core CI machine.
ROLLOUT_TIMEOUT_S = 120.0
# The namespace controller deletes every object in the namespace, then removes the finalizer;
# it retries with back-off, so a slow pass can take a while.
NAMESPACE_DELETE_TIMEOUT_S = 180.0
# One `pulumi` command: starts the CLI, the Python language host and the provider (which parses
# its 7 MB schema), then talks to the apiserver; a cold run on 2 cores takes tens of seconds.
PULUMI_COMMAND_TIMEOUT_S = 600.0
# `pulumi version` / `pulumi plugin ls` only read local files.
PULUMI_QUICK_TIMEOUT_S = 60.0

APP_LABELS = {"app": "echo"}


def _deployment(namespace: str, replicas: int) -> Any:
    return codecs.from_dict(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "echo", "namespace": namespace},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": APP_LABELS},
                "template": {
                    "metadata": {"labels": APP_LABELS},
                    # kwok never pulls or runs the image; the pod only has to be schedulable.
                    "spec": {"containers": [{"name": "echo", "image": "example.invalid/echo:1"}]},
                },
            },
        }
    )


def _available(kube: Client, namespace: str, replicas: int) -> Any | None:
    deployment = kube.get(Deployment, "echo", namespace=namespace)
    status = deployment.status
    if status is None or status.availableReplicas != replicas:
        return None
    return deployment


def _pod_is_ready(pod: Any) -> bool:
    conditions = (pod.status.conditions if pod.status else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def test_api_reports_the_pinned_kubernetes_version(
    cluster: LocalCluster, toolchain: Toolchain
) -> None:
    version = cluster.get_json("/version")
    expected = toolchain.versions["kubernetes"]
    assert version["gitVersion"] == expected
    # pulumi-kubernetes reads major/minor; empty strings there make it refuse the cluster.
    assert version["major"] == "1"
    assert version["minor"] == expected.split(".")[1]


def test_fake_nodes_are_ready(kube: Client) -> None:
    nodes = {node.metadata.name: node for node in kube.list(Node) if node.metadata}
    assert set(nodes) == set(NODE_NAMES)
    for node in nodes.values():
        assert node.metadata is not None
        assert node.metadata.annotations is not None
        assert node.metadata.annotations["kwok.x-k8s.io/node"] == "fake"
        assert _pod_is_ready(node), node.status


def test_deployment_becomes_available_through_kwok(kube: Client, namespace: str) -> None:
    kube.create(_deployment(namespace, 2))
    deployment = wait_until(
        lambda: _available(kube, namespace, 2),
        timeout=ROLLOUT_TIMEOUT_S,
        what="deployment echo to have 2 available replicas",
    )
    assert deployment.status.readyReplicas == 2
    pods = list(kube.list(Pod, namespace=namespace, labels={**APP_LABELS}))
    assert len(pods) == 2
    for pod in pods:
        assert pod.spec is not None
        assert pod.spec.nodeName in NODE_NAMES
        assert pod.status is not None
        assert pod.status.phase == "Running"
        assert pod.status.podIP
        assert _pod_is_ready(pod)


def test_service_gets_ready_endpoint_slices(kube: Client, namespace: str) -> None:
    kube.create(_deployment(namespace, 2))
    kube.create(
        codecs.from_dict(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "echo", "namespace": namespace},
                "spec": {
                    "selector": APP_LABELS,
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
                },
            }
        )
    )
    wait_until(
        lambda: _available(kube, namespace, 2),
        timeout=ROLLOUT_TIMEOUT_S,
        what="deployment echo to have 2 available replicas",
    )
    pod_ips = {
        pod.status.podIP
        for pod in kube.list(Pod, namespace=namespace, labels={**APP_LABELS})
        if pod.status
    }

    def ready_addresses() -> set[str] | None:
        slices = kube.list(
            EndpointSlice,
            namespace=namespace,
            labels={"kubernetes.io/service-name": "echo"},
        )
        addresses = {
            address
            for endpoint_slice in slices
            for endpoint in endpoint_slice.endpoints or []
            if endpoint.conditions is not None and endpoint.conditions.ready
            for address in endpoint.addresses
        }
        return addresses if addresses == pod_ips else None

    wait_until(ready_addresses, timeout=ROLLOUT_TIMEOUT_S, what="ready endpoints for echo")
    service = kube.get(Service, "echo", namespace=namespace)
    assert service.spec is not None
    assert service.spec.clusterIP is not None
    assert service.spec.clusterIP.startswith("10.0.0.")


def test_namespace_deletion_is_finalized(kube: Client) -> None:
    name = "e2e-finalize"
    kube.create(Namespace(metadata=ObjectMeta(name=name)))
    kube.create(_deployment(name, 1))
    kube.create(
        codecs.from_dict(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "settings", "namespace": name},
                "data": {"k": "v"},
            }
        )
    )
    wait_until(
        lambda: _available(kube, name, 1), timeout=ROLLOUT_TIMEOUT_S, what="deployment in " + name
    )
    kube.delete(Namespace, name)

    def gone() -> bool | None:
        try:
            kube.get(Namespace, name)
        except ApiError as exc:
            if exc.status.code == 404:
                return True
            raise
        return None

    wait_until(gone, timeout=NAMESPACE_DELETE_TIMEOUT_S, what=f"namespace {name} to be deleted")


# ---- the Pulumi engine ---------------------------------------------------------------------------


def _pulumi(
    toolchain: Toolchain, args: list[str], *, env: dict[str, str], cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(toolchain.tool("pulumi")), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, (
        f"pulumi {' '.join(args)} exited {done.returncode}\n"
        f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    )
    return done


def _sdk_requested_provider_version() -> str:
    """The kubernetes plugin version the installed pulumi_kubernetes SDK asks the engine for."""
    plugin = resources.files("pulumi_kubernetes").joinpath("pulumi-plugin.json")
    return str(json.loads(plugin.read_text())["version"])


def test_pulumi_cli_reports_the_pinned_version(toolchain: Toolchain, tmp_path: Path) -> None:
    done = _pulumi(
        toolchain,
        ["version"],
        env=toolchain.pulumi_env(),
        cwd=tmp_path,
        timeout=PULUMI_QUICK_TIMEOUT_S,
    )
    assert done.stdout.strip() == "v" + toolchain.versions["pulumi"]


def test_plugin_cache_has_the_provider_the_sdk_requests(
    toolchain: Toolchain, tmp_path: Path
) -> None:
    done = _pulumi(
        toolchain,
        ["plugin", "ls", "--json"],
        env=toolchain.pulumi_env(),
        cwd=tmp_path,
        timeout=PULUMI_QUICK_TIMEOUT_S,
    )
    installed = {
        (plugin["name"], plugin["kind"], plugin["version"]) for plugin in json.loads(done.stdout)
    }
    built = toolchain.versions["kubernetes_provider"]
    assert ("kubernetes", "resource", built) in installed
    assert ("kubernetes", "resource", _sdk_requested_provider_version()) in installed


PROGRAM = textwrap.dedent(
    """\
    import pulumi
    import pulumi_kubernetes as k8s

    ns = k8s.core.v1.Namespace("ns", metadata={"name": "e2e-pulumi"})
    cm = k8s.core.v1.ConfigMap(
        "cm",
        metadata={"name": "greeting", "namespace": ns.metadata["name"]},
        data={"hello": "world"},
    )
    pulumi.export("configmap", cm.metadata["name"])
    """
)


def test_pulumi_up_and_destroy_against_the_cluster(
    toolchain: Toolchain, cluster: LocalCluster, kube: Client, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: e2e-smoke\nruntime: python\n")
    (project / "__main__.py").write_text(PROGRAM)
    state = tmp_path / "state"
    state.mkdir()
    # The program runs in this interpreter's environment (the project venv), which has pulumi
    # and pulumi_kubernetes.
    env = toolchain.pulumi_env()
    env.update(
        {
            "PULUMI_BACKEND_URL": state.as_uri(),
            "PULUMI_CONFIG_PASSPHRASE": "test",
            "KUBECONFIG": str(cluster.kubeconfig),
        }
    )

    def pulumi(*args: str) -> subprocess.CompletedProcess[str]:
        return _pulumi(
            toolchain,
            [*args, "--non-interactive"],
            env=env,
            cwd=project,
            timeout=PULUMI_COMMAND_TIMEOUT_S,
        )

    pulumi("stack", "init", "e2e")
    up = pulumi("up", "--yes", "--skip-preview")

    configmap = kube.get(ConfigMap, "greeting", namespace="e2e-pulumi")
    assert configmap.data == {"hello": "world"}
    assert "greeting" in up.stdout

    pulumi("destroy", "--yes", "--skip-preview")

    def namespace_gone() -> bool | None:
        try:
            kube.get(Namespace, "e2e-pulumi")
        except ApiError as exc:
            if exc.status.code == 404:
                return True
            raise
        return None

    # pulumi-kubernetes waits for the Namespace to be gone before reporting the delete done.
    assert namespace_gone()
    pulumi("stack", "rm", "e2e", "--yes")
