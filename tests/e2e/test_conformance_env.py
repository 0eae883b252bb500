"""The conformance suite's environment without a Gateway controller: its base manifests apply to
the real apiserver, kwok makes their echo-basic Pods Ready, and every pod IP that would run
echo-basic's HTTP server answers, over real HTTP inside the private network namespace, exactly
as echo-basic does (echo_basic.py, echo_pods.py). The Gateways of the manifests stay unaccepted:
the suite itself runs against kexpose-proxy elsewhere (conformance.py, scripts/conformance).
"""

from __future__ import annotations

import http.client
import json
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import Client, codecs
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Namespace, Pod
from lightkube.types import PatchType

from .cluster import LocalCluster, wait_until
from .conformance import (
    CONTROLLER_NAME,
    SUITE_NAMESPACES,
    GatewayClass,
    SuiteOptions,
    accepted_features,
    create_gateway_class,
    install_crds,
    run_suite,
    suite_base_manifests,
)
from .echo_pods import ECHO_BASIC_IMAGE, EchoBasicPods, echo_basic_address
from .toolchain import Toolchain

pytestmark = pytest.mark.e2e

# kwok's fast stages make a Pod Ready about a second after the scheduler binds it; 19 Deployments
# at once on a loaded 2-core machine take longer.
PODS_READY_TIMEOUT_S = 120.0
# From a Pod's Ready to its stand-in listening: one watch event and one bind.
SERVING_TIMEOUT_S = 30.0
# Namespace finalization: the controller manager deletes every object, kwok each Pod.
NAMESPACE_GONE_TIMEOUT_S = 180.0
# One request to a stand-in on `lo`.
REQUEST_TIMEOUT_S = 10.0

#: The HTTP echo-basic backends of base/manifests.yaml: Deployment → (namespace, replicas). The
#: grpc-infra-backend-* (GRPC_ECHO_SERVER), tcp-backend (TCP_ECHO_SERVER) and coredns Pods are
#: not served: they run other servers.
HTTP_BACKENDS = {
    ("gateway-conformance-infra", "infra-backend-v1"): 2,
    ("gateway-conformance-infra", "infra-backend-v2"): 2,
    ("gateway-conformance-infra", "infra-backend-v3"): 1,
    ("gateway-conformance-infra", "tls-backend"): 1,
    ("gateway-conformance-infra", "tls-backend-2"): 1,
    ("gateway-conformance-app-backend", "tls-backend"): 1,
    ("gateway-conformance-app-backend", "app-backend-v1"): 2,
    ("gateway-conformance-app-backend", "app-backend-v2"): 2,
    ("gateway-conformance-web-backend", "web-backend"): 2,
}
NOT_SERVED = {"grpc-infra-backend-v1", "grpc-infra-backend-v2", "grpc-infra-backend-v3"}
NOT_SERVED |= {"tcp-backend", "coredns"}


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def json(self) -> Any:
        return json.loads(self.body)


def request(ip: str, path: str, *, headers: dict[str, str] | None = None) -> Answer:
    """One GET as the suite's net/http client sends it (no keep-alive), to `ip`:3000."""
    conn = http.client.HTTPConnection(ip, 3000, timeout=REQUEST_TIMEOUT_S)
    try:
        conn.request("GET", path, headers={"Connection": "close", **(headers or {})})
        response = conn.getresponse()
        return Answer(response.status, response.getheaders(), response.read())
    finally:
        conn.close()


def _ready_pods(
    kube: Client, namespaces: tuple[str, ...], count: int
) -> list[dict[str, Any]] | None:
    """All `count` Pods of the namespaces, once they exist and are Ready."""
    pods = [p.to_dict() for ns in namespaces for p in kube.list(Pod, namespace=ns)]
    ready = [p for p in pods if _ready(p)]
    return pods if len(pods) == len(ready) == count else None


def _ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _delete_namespaces(kube: Client, names: tuple[str, ...]) -> None:
    for name in names:
        kube.delete(Namespace, name)

    def gone() -> bool | None:
        left = {n.metadata.name for n in kube.list(Namespace) if n.metadata} & set(names)
        return True if not left else None

    wait_until(gone, timeout=NAMESPACE_GONE_TIMEOUT_S, what=f"namespaces {names} deleted")


@pytest.fixture(scope="module")
def echo_basic_pods(
    cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EchoBasicPods]:
    """echo-basic stand-ins on the IPs of the cluster's echo-basic Pods (echo_pods.py), their
    logs served through pods/log."""
    log_dir = tmp_path_factory.mktemp("pod-logs")
    with EchoBasicPods(cluster.kubeconfig, log_dir=log_dir).running() as pods:
        yield pods
    assert not [e for e in pods.errors if "cannot serve" in e], pods.errors


@pytest.fixture(scope="module")
def suite_base(cluster: LocalCluster, toolchain: Toolchain) -> Iterator[list[dict[str, Any]]]:
    """The suite's base manifests applied (after the CRDs their Gateways need); their Pods, all
    Ready. Deleted afterwards, namespaces gone, so the suite itself can apply them again."""
    with cluster.client() as kube:
        install_crds(kube, toolchain)
        # The Gateway kind is a CRD: lightkube decodes it once it knows the resource.
        create_namespaced_resource("gateway.networking.k8s.io", "v1", "Gateway", "gateways")
        objects = codecs.load_all_yaml(suite_base_manifests(toolchain).read_text())
        replicas = sum(
            (o.spec.replicas or 1) if o.spec else 1 for o in objects if isinstance(o, Deployment)
        )
        try:
            for obj in objects:
                kube.apply(obj, field_manager="kexpose-e2e", force=True)
            pods = wait_until(
                lambda: _ready_pods(kube, SUITE_NAMESPACES, replicas),
                timeout=PODS_READY_TIMEOUT_S,
                what="every Pod of the suite's base manifests Ready",
            )
            yield pods
        finally:
            _delete_namespaces(kube, SUITE_NAMESPACES)


def _app(pod: dict[str, Any]) -> str:
    return str(pod["metadata"]["labels"].get("app", ""))


def test_the_base_manifests_echo_backends_answer_as_echo_basic(
    suite_base: list[dict[str, Any]], echo_basic_pods: EchoBasicPods
) -> None:
    pods = suite_base
    by_deployment: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for pod in pods:
        by_deployment.setdefault((pod["metadata"]["namespace"], _app(pod)), []).append(pod)
    assert {k: len(v) for k, v in by_deployment.items() if k in HTTP_BACKENDS} == HTTP_BACKENDS
    served = [p for key in HTTP_BACKENDS for p in by_deployment[key]]
    expected = {
        (p["status"]["podIP"], 3000): (p["metadata"]["namespace"], p["metadata"]["name"])
        for p in served
    }
    wait_until(
        lambda: True if set(echo_basic_pods.serving()) == set(expected) else None,
        timeout=SERVING_TIMEOUT_S,
        what=f"stand-ins on exactly {sorted(expected)}",
    )
    assert {
        address: (c.namespace, c.pod) for address, c in echo_basic_pods.serving().items()
    } == expected

    for (ip, _), (namespace, name) in sorted(expected.items()):
        app = name.rsplit("-", 2)[0]  # Deployment pods: <deployment>-<rs hash>-<suffix>
        answer = request(
            ip,
            "/conformance//env?x=1&y=a%20b",
            headers={
                "Host": "echo.example.com",
                "X-Echo-Set-Header": "X-Foo: bar,x-multi:a,x-multi:b",
                "x-request-id": "r1",
            },
        )
        assert answer.status == 200, (name, answer)
        assert answer.header("Content-Type") == ["application/json"]
        assert answer.header("X-Content-Type-Options") == ["nosniff"]
        assert answer.header("X-Foo") == ["bar"]
        assert answer.header("X-Multi") == ["a,b"]
        assert ("x-multi", "a,b") in answer.headers  # the name's casing as given
        echoed = answer.json()
        assert echoed["namespace"] == namespace
        assert echoed["pod"] == name
        assert name.startswith(app)
        assert echoed["path"] == "/conformance//env?x=1&y=a%20b"
        assert echoed["host"] == "echo.example.com"
        assert (echoed["method"], echoed["proto"], echoed["httpPort"]) == (
            "GET",
            "HTTP/1.1",
            "3000",
        )
        assert echoed["headers"]["X-Request-Id"] == ["r1"]
        assert echoed["headers"]["Connection"] == ["close"]
        assert "Host" not in echoed["headers"]
        assert "tls" not in echoed
        assert (echoed["ingress"], echoed["service"]) == ("", "")
        assert request(ip, "/status/418").status == 418
        assert request(ip, "/status/418?x=1").status == 400
        assert request(ip, "/health").body == b"OK"

    # Pods running echo-basic's other servers (gRPC, TCP) or another image: nothing on 3000.
    for pod in pods:
        if _app(pod) in NOT_SERVED:
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((pod["status"]["podIP"], 3000), REQUEST_TIMEOUT_S).close()


def test_the_retry_and_delay_endpoints_behave_as_echo_basics(
    suite_base: list[dict[str, Any]], echo_basic_pods: EchoBasicPods
) -> None:
    # HTTPRouteRetry sends its requests to infra-backend-v3 (one replica: one attempt counter).
    (pod,) = [p for p in suite_base if _app(p) == "infra-backend-v3"]
    ip = pod["status"]["podIP"]
    wait_until(
        lambda: True if (ip, 3000) in echo_basic_pods.serving() else None,
        timeout=SERVING_TIMEOUT_S,
        what="infra-backend-v3 served",
    )
    key = uuid.uuid4().hex
    path = f"/retry/code-500-attempts-3?responseCode=503&succeedAfter=2&uuid={key}"
    assert [request(ip, path).status for _ in range(3)] == [503, 503, 200]
    assert request(ip, path).json()["path"] == path
    reset = f"/retry/x?succeedAfter=1&uuid={uuid.uuid4().hex}"
    with pytest.raises(ConnectionResetError):
        request(ip, reset)
    assert request(ip, reset).status == 200
    assert request(ip, "/retry/x?succeedAfter=1").body == b"uuid is required"

    start = time.monotonic()
    assert request(ip, "/timeout?delay=300ms").status == 200
    assert time.monotonic() - start >= 0.3
    broken = request(ip, "/timeout?delay=soon")
    assert (broken.status, broken.json()) == (500, {"message": 'time: invalid duration "soon"'})
    log = echo_basic_pods.logs(pod["metadata"]["namespace"], pod["metadata"]["name"])
    assert any(f"Echoing back request made to {path} to client" in line for line in log)


def test_an_echo_pods_log_is_read_through_the_api_as_the_mirror_tests_read_it(
    suite_base: list[dict[str, Any]], echo_basic_pods: EchoBasicPods, kube: Client
) -> None:
    # The suite's mirror tests (utils/kubernetes DumpEchoLogs) list the mirror backend's Pods
    # and GET each one's pods/log (apiserver -> kwok's kubelet server -> the stand-in's file).
    v2 = [p for p in suite_base if _app(p) == "infra-backend-v2"]
    v1 = [p for p in suite_base if _app(p) == "infra-backend-v1"]
    addresses = {(pod["status"]["podIP"], 3000) for pod in v1 + v2}
    wait_until(
        lambda: True if addresses <= set(echo_basic_pods.serving()) else None,
        timeout=SERVING_TIMEOUT_S,
        what="infra-backend-v1 and -v2 served",
    )
    target, other = v2[0], v1[0]
    path = f"/mirror?X-Request-Id={uuid.uuid4()}"
    assert request(target["status"]["podIP"], path).status == 200
    expected = f"Echoing back request made to {path} to client"

    def pod_log(pod: dict[str, Any]) -> list[str]:
        meta = pod["metadata"]
        return list(kube.log(meta["name"], namespace=meta["namespace"], container=_app(pod)))

    wait_until(
        lambda: True if any(expected in line for line in pod_log(target)) else None,
        timeout=SERVING_TIMEOUT_S,
        what=f"{expected!r} in the pods/log of {target['metadata']['name']}",
    )
    assert not any(expected in line for line in pod_log(other))  # each Pod its own log


def test_pods_of_a_new_namespace_are_followed_through_replacement(
    cluster: LocalCluster, kube: Client, namespace: str, echo_basic_pods: EchoBasicPods
) -> None:
    kube.create(
        codecs.from_dict(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "echo", "namespace": namespace},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": "echo"}},
                    "template": {
                        "metadata": {"labels": {"app": "echo"}},
                        "spec": {
                            "containers": [
                                {
                                    "name": "echo",
                                    "image": f"{ECHO_BASIC_IMAGE}:v1.5.1",
                                    "env": [
                                        {
                                            "name": "POD_NAME",
                                            "valueFrom": {
                                                "fieldRef": {"fieldPath": "metadata.name"}
                                            },
                                        },
                                        {"name": "NAMESPACE", "value": "from-a-literal"},
                                        {"name": "SERVICE_NAME", "value": "echo-svc"},
                                    ],
                                }
                            ]
                        },
                    },
                },
            }
        )
    )

    def served_pod() -> tuple[str, str] | None:
        pods = [p.to_dict() for p in kube.list(Pod, namespace=namespace)]
        found = [echo_basic_address(p) for p in pods]
        live = [(f[0][0], p["metadata"]["name"]) for p, f in zip(pods, found, strict=True) if f]
        if len(live) == 1 and live[0][0] and (live[0][0], 3000) in echo_basic_pods.serving():
            return live[0]
        return None

    ip, first = wait_until(served_pod, timeout=PODS_READY_TIMEOUT_S, what="the echo pod served")
    echoed = request(ip, "/").json()
    assert (echoed["pod"], echoed["namespace"], echoed["service"]) == (
        first,
        "from-a-literal",
        "echo-svc",
    )

    kube.delete(Pod, first, namespace=namespace)

    def replaced() -> tuple[str, str] | None:
        now = served_pod()
        return now if now is not None and now[1] != first else None

    ip, second = wait_until(replaced, timeout=PODS_READY_TIMEOUT_S, what="the replacement served")
    assert request(ip, "/").json()["pod"] == second
    assert first not in {c.pod for c in echo_basic_pods.serving().values()}
    kube.delete(Deployment, "echo", namespace=namespace)


def test_the_base_manifests_are_the_suites_own(toolchain: Toolchain) -> None:
    docs = list(yaml.safe_load_all(suite_base_manifests(toolchain).read_text()))
    namespaces = {d["metadata"]["name"] for d in docs if d and d["kind"] == "Namespace"}
    assert namespaces == set(SUITE_NAMESPACES)
    images = {
        c["image"].rsplit(":", 1)[0]
        for d in docs
        if d and d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert ECHO_BASIC_IMAGE in images
    assert Path(suite_base_manifests(toolchain)).parent.parent.name.endswith(
        "@" + toolchain.versions["gateway_api"]
    )


def test_the_harness_waits_for_a_gateway_class_accepted_with_features(
    cluster: LocalCluster, toolchain: Toolchain, kube: Client
) -> None:
    """What the suite reads at its start, written as a controller would (status subresource)."""
    install_crds(kube, toolchain)
    name = f"e2e-harness-{uuid.uuid4().hex[:6]}"
    create_gateway_class(kube, name=name)
    try:
        created = kube.get(GatewayClass, name)
        assert created["spec"]["controllerName"] == CONTROLLER_NAME
        assert accepted_features(kube, name) is None  # nothing accepted it
        generation = created.metadata.generation if created.metadata else None

        def write_status(observed: int | None, features: list[str]) -> None:
            condition = {
                "type": "Accepted",
                "status": "True",
                "reason": "Accepted",
                "message": "",
                "observedGeneration": observed,
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
            kube.patch(
                GatewayClass.Status,
                name,
                {
                    "status": {
                        "conditions": [condition],
                        "supportedFeatures": [{"name": f} for f in features],
                    }
                },
                patch_type=PatchType.MERGE,  # custom resources take no strategic merge patch
            )

        write_status(generation, [])
        assert accepted_features(kube, name) is None  # the suite refuses an empty list
        write_status((generation or 0) + 1, ["Gateway", "HTTPRoute"])
        assert accepted_features(kube, name) is None  # a condition of another generation is stale
        write_status(generation, ["Gateway", "HTTPRoute"])
        assert accepted_features(kube, name) == ("Gateway", "HTTPRoute")
    finally:
        kube.delete(GatewayClass, name)


def test_the_suite_binary_runs_against_the_cluster_and_stops_on_an_unaccepted_class(
    cluster: LocalCluster, toolchain: Toolchain, kube: Client, tmp_path: Path
) -> None:
    """run_suite for real, up to where the suite needs a controller: it reaches the apiserver
    (KUBECONFIG), honours -gateway-class, and fails on the class's empty supportedFeatures
    without a report; the same stop `scripts/conformance` reports until kexpose-proxy accepts."""
    install_crds(kube, toolchain)
    name = f"e2e-unaccepted-{uuid.uuid4().hex[:6]}"
    create_gateway_class(kube, name=name, controller="example.invalid/nobody")
    try:
        options = SuiteOptions(report_output=tmp_path / "report.yaml", gateway_class=name)
        outcome = run_suite(toolchain, cluster.kubeconfig, options, log=tmp_path / "suite.log")
    finally:
        kube.delete(GatewayClass, name)
    log = outcome.log.read_text()
    assert outcome.returncode == 1, outcome.tail()
    assert outcome.report is None
    assert f"-gateway-class={name}" in log.splitlines()[0]
    assert f"Supported features for GatewayClass {name}: []" in log
    assert "no supported features were determined for test suite" in log
