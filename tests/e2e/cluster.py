"""A throw-away Kubernetes control plane on loopback, built from the e2e toolchain.

The toolchain (scripts/toolchain.sh) provides etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok. `LocalCluster` generates a CA, serving and client certificates and a
service-account key, starts every component on 127.0.0.1 with ports chosen free at start, registers
fake nodes that kwok keeps Ready, and stops every process it started by PID.

Why each component is needed (the Pulumi journey depends on all of them):
- kube-controller-manager: Deployment -> ReplicaSet -> Pods, EndpointSlices for Services, the
  "default" ServiceAccounts, and namespace finalization (without it a Namespace never goes away);
- kube-scheduler: binds Pods to the kwok nodes;
- kwok: plays the kubelets, so Pods become Running/Ready and Nodes report Ready; its server is
  the nodes' kubelet endpoint, so `pods/log` works (see `POD_LOGS_CRD`).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar, cast

from lightkube import ApiError, Client, KubeConfig, codecs
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.core_v1 import Node, ServiceAccount

from .pki import Pki, write_kubeconfig, write_pki
from .toolchain import Toolchain

__all__ = ["ClusterStartError", "LocalCluster", "wait_until"]

# etcd answers /health within a second or two once its data dir is created.
ETCD_READY_TIMEOUT_S = 60.0
# kube-apiserver's first start runs every post-start hook (bootstrap RBAC, priority levels, ...)
# before /readyz turns 200: about 5 s here; the margin is for a loaded 2-core CI machine.
APISERVER_READY_TIMEOUT_S = 180.0
# kwok's node-initialize stage marks a node Ready right after it sees it; the controller manager
# then needs a sync or two to create the "default" ServiceAccount.
NODES_READY_TIMEOUT_S = 90.0
# How long each component gets to exit on SIGTERM before it is killed.
STOP_GRACE_S = 15.0
# How often readiness is polled; short, the checks are cheap loopback requests.
POLL_INTERVAL_S = 0.25
# A single loopback HTTP request to the apiserver or etcd.
REQUEST_TIMEOUT_S = 5.0
# The last lines of a component's log quoted when it fails to start.
LOG_TAIL_LINES = 40

SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
# The node address is only data in the API. Pod IPs come from the nodes' podCIDRs; the session
# runs in a private network namespace that has those CIDRs on its loopback (netns.py), so the
# echo backends of the journey can listen on exactly the pods' addresses.
NODE_ADDRESS = "127.0.0.1"
POD_CIDR_TEMPLATE = "10.244.{index}.0/24"
# A CRD is served a moment after it is created (the apiserver's `Established` condition).
CRD_ESTABLISH_TIMEOUT_S = 60.0

#: kwok's `Logs` resource (kwok.x-k8s.io/v1alpha1, kwok v0.8 `pkg/apis/v1alpha1/logs_types.go`):
#: per Pod (same name and namespace), the file in CRI log format that kwok's kubelet server
#: reads for `containerLogs`. With `--enable-crds=Logs` kwok watches these objects, so a test
#: can give a simulated Pod its log (echo_pods.py does, for the echo-basic stand-ins) and
#: `kubectl logs` (GET pods/log: apiserver -> the node's kubelet endpoint -> kwok) returns it.
#: A minimal definition of our own: kwok validates what it reads, the apiserver need not.
POD_LOGS_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "logs.kwok.x-k8s.io"},
    "spec": {
        "group": "kwok.x-k8s.io",
        "scope": "Namespaced",
        "names": {"kind": "Logs", "listKind": "LogsList", "plural": "logs", "singular": "logs"},
        "versions": [
            {
                "name": "v1alpha1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
                "subresources": {"status": {}},
            }
        ],
    },
}

_PR_SET_PDEATHSIG = 1

T = TypeVar("T")


class ClusterStartError(RuntimeError):
    """A control-plane component did not come up; the message quotes its log."""


def wait_until(check: Callable[[], T | None], *, timeout: float, what: str) -> T:
    """Poll `check` until it returns something other than None; fail after `timeout` seconds.

    The deadline is a safety net for a broken cluster, not a measurement: tests assert on what
    the API reports, never on how long it took.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(POLL_INTERVAL_S)


# ---- processes -----------------------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports that were free a moment ago (held open together)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def stop_process_group(process: subprocess.Popen[bytes] | None, grace: float) -> None:
    """Stop a process started in its own group (``start_new_session``) and its children:
    SIGTERM, then SIGKILL after ``grace`` seconds; a process already gone is left alone."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    # If pytest itself is killed (SIGKILL, OOM), the kernel kills the component too: no orphans.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


@dataclass(slots=True)
class _Component:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    def tail(self) -> str:
        self.log_file.flush()
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-LOG_TAIL_LINES:])


@dataclass
class LocalCluster:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok on loopback."""

    toolchain: Toolchain
    workdir: Path
    node_names: Sequence[str] = ("kwok-node-0",)
    kubeconfig: Path = field(init=False)
    server: str = field(init=False)
    pki: Pki = field(init=False)
    _components: list[_Component] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.kubeconfig = self.workdir / "admin.kubeconfig"
        self.server = ""

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start every component and wait until the nodes are Ready; stops all on failure."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        tc = self.toolchain
        self.pki = write_pki(self.workdir / "pki")
        etcd_client, etcd_peer, apiserver, kcm, scheduler, kwok = free_ports(6)
        etcd_url = f"http://127.0.0.1:{etcd_client}"
        self._spawn(
            "etcd",
            [
                str(tc.tool("etcd")),
                "--name=e2e",
                f"--data-dir={self.workdir / 'etcd-data'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-cluster=e2e=http://127.0.0.1:{etcd_peer}",
                # A test cluster's data may be lost on a crash; fsync only costs time here.
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        )
        self._wait("etcd", ETCD_READY_TIMEOUT_S, lambda: self._etcd_healthy(etcd_url))

        self.server = f"https://127.0.0.1:{apiserver}"
        pki = self.pki
        self._spawn(
            "kube-apiserver",
            [
                str(tc.tool("kube-apiserver")),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                # Required on a host without a default route: it cannot pick an address itself.
                "--advertise-address=127.0.0.1",
                f"--secure-port={apiserver}",
                f"--tls-cert-file={pki.serving_cert}",
                f"--tls-private-key-file={pki.serving_key}",
                f"--client-ca-file={pki.ca_cert}",
                f"--cert-dir={self.workdir / 'apiserver-certs'}",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-account-key-file={pki.service_account_pub}",
                f"--service-account-signing-key-file={pki.service_account_key}",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                "--authorization-mode=Node,RBAC",
                "--allow-privileged=true",
                # The loopback advertise address is not a valid endpoint IP; without this the
                # apiserver keeps logging its failure to reconcile the `kubernetes` endpoints.
                "--endpoint-reconciler-type=none",
                # kwok's nodes also carry their name as a Hostname address, which resolves to
                # nothing here; pods/log and exec go to the InternalIP (kwok's server).
                "--kubelet-preferred-address-types=InternalIP",
            ],
        )
        write_kubeconfig(self.kubeconfig, server=self.server, pki=pki)
        self._wait("kube-apiserver", APISERVER_READY_TIMEOUT_S, self._apiserver_ready)
        self._install_pod_logs_crd()

        self._spawn(
            "kube-controller-manager",
            [
                str(tc.tool("kube-controller-manager")),
                f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                f"--service-account-private-key-file={pki.service_account_key}",
                f"--root-ca-file={pki.ca_cert}",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={kcm}",
                "--use-service-account-credentials=true",
            ],
        )
        self._spawn(
            "kube-scheduler",
            [
                str(tc.tool("kube-scheduler")),
                f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={scheduler}",
            ],
        )
        self._spawn(
            "kwok",
            [
                str(tc.tool("kwok")),
                f"--kubeconfig={self.kubeconfig}",
                # Only nodes annotated as fake: a real node (none here) would never be touched.
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                f"--config={tc.kwok_stages}",
                f"--server-address=127.0.0.1:{kwok}",
                f"--node-ip={NODE_ADDRESS}",
                # The nodes' kubelet endpoint is kwok's server (the apiserver proxies pods/log
                # there; kwok serves TLS with a self-signed certificate when given none, which
                # the apiserver accepts without --kubelet-certificate-authority).
                f"--node-port={kwok}",
                "--enable-crds=Logs",
            ],
        )
        with self.client() as client:
            for index, name in enumerate(self.node_names):
                client.create(_fake_node(name, index))
        self._wait("kwok", NODES_READY_TIMEOUT_S, self._nodes_ready)
        self._wait(
            "kube-controller-manager", NODES_READY_TIMEOUT_S, self._default_service_account_exists
        )

    def stop(self) -> None:
        """Stop every started component, newest first: SIGTERM, then SIGKILL after a grace."""
        for component in reversed(self._components):
            stop_process_group(component.process, STOP_GRACE_S)
            component.log_file.close()
        self._components.clear()

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pids(self) -> dict[str, int]:
        """PIDs of the running components, by name."""
        return {c.name: c.process.pid for c in self._components}

    # -- clients -----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def client(self) -> Iterator[Client]:
        """A lightkube client authenticated as the admin."""
        config = KubeConfig.from_file(self.kubeconfig)
        with Client(config=config, field_manager="kexpose-e2e") as client:
            yield client

    def ssl_context(self) -> ssl.SSLContext:
        """TLS context trusting the cluster CA and presenting the admin certificate."""
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        context.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        return context

    def get_json(self, path: str) -> Any:
        """GET a raw API path (e.g. /version) as the admin and decode the JSON body."""
        request = urllib.request.Request(  # noqa: S310 - https URL built from our own server
            self.server + path, headers={"Accept": "application/json"}
        )
        with urllib.request.urlopen(  # noqa: S310 - https URL built from our own server
            request, context=self.ssl_context(), timeout=REQUEST_TIMEOUT_S
        ) as response:
            return json.load(response)

    # -- internals ---------------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str]) -> None:
        log_path = self.workdir / f"{name}.log"
        log_file = log_path.open("wb")
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            # Own process group, so stop() signals exactly this component and nothing else.
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self._components.append(_Component(name, process, log_path, log_file))

    def _component(self, name: str) -> _Component:
        return next(c for c in self._components if c.name == name)

    def _wait(self, name: str, timeout: float, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + timeout
        while True:
            for component in self._components:
                code = component.process.poll()
                if code is not None:
                    raise ClusterStartError(
                        f"{component.name} exited with {code} while waiting for {name}; "
                        f"its log ({component.log_path}) ends with:\n{component.tail()}"
                    )
            if ready():
                return
            if time.monotonic() > deadline:
                raise ClusterStartError(
                    f"{name} not ready after {timeout:.0f}s; its log "
                    f"({self._component(name).log_path}) ends with:\n{self._component(name).tail()}"
                )
            time.sleep(POLL_INTERVAL_S)

    @staticmethod
    def _etcd_healthy(url: str) -> bool:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=REQUEST_TIMEOUT_S) as response:  # noqa: S310
                return bool(json.load(response).get("health") == "true")
        except (OSError, ValueError):
            return False

    def _apiserver_ready(self) -> bool:
        request = urllib.request.Request(self.server + "/readyz")  # noqa: S310 - as above
        try:
            with urllib.request.urlopen(  # noqa: S310 - https URL built from our own server
                request, context=self.ssl_context(), timeout=REQUEST_TIMEOUT_S
            ) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def _install_pod_logs_crd(self) -> None:
        with self.client() as client:
            crd = cast(CustomResourceDefinition, CustomResourceDefinition.from_dict(POD_LOGS_CRD))
            client.apply(crd, field_manager="kexpose-e2e", force=True)

            def established() -> bool:
                found = client.get(CustomResourceDefinition, POD_LOGS_CRD["metadata"]["name"])
                conditions = (found.status.conditions if found.status else None) or []
                return any(c.type == "Established" and c.status == "True" for c in conditions)

            self._wait("kube-apiserver", CRD_ESTABLISH_TIMEOUT_S, established)

    def _nodes_ready(self) -> bool:
        with self.client() as client:
            ready = set()
            for node in client.list(Node):
                conditions = (node.status.conditions if node.status else None) or []
                if any(c.type == "Ready" and c.status == "True" for c in conditions):
                    ready.add(node.metadata.name if node.metadata else "")
        return ready >= set(self.node_names)

    def _default_service_account_exists(self) -> bool:
        with self.client() as client:
            try:
                client.get(ServiceAccount, "default", namespace="default")
            except ApiError:
                return False
        return True


def _fake_node(name: str, index: int) -> Any:
    """A Node that kwok manages (kwok's own node template, trimmed to what matters here)."""
    return codecs.from_dict(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {
                    "kubernetes.io/arch": "amd64",
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/role": "agent",
                    "node-role.kubernetes.io/agent": "",
                    "type": "kwok",
                },
            },
            "spec": {"podCIDR": POD_CIDR_TEMPLATE.format(index=index)},
        }
    )
