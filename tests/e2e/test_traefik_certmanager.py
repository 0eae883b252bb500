"""The toolchain's Traefik and cert-manager work against the e2e cluster (building blocks of the
issue-9 journey, where a stack with `kind: traefik` and prod's cert-manager certificates carry
real traffic).

- Traefik, out of cluster with its Gateway API provider, programs a Gateway and carries requests
  to echo backends by an HTTPRoute's hostname, path and header match; it writes the route's and
  the Gateway's status as the spec says. With its Ingress provider it serves an Ingress.
- cert-manager's controllers issue a CA from a SelfSigned ClusterIssuer, then a leaf from a CA
  ClusterIssuer into a Secret; a TLS server with that Secret's key pair completes a handshake that
  verifies against the issued chain (`ca.crt`) and the hostname, and fails for another hostname.
  Its Gateway API support issues the certificate of an annotated Gateway's HTTPS listener.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client
from lightkube.generic_resource import create_global_resource, create_namespaced_resource
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace, Service
from lightkube.resources.discovery_v1 import EndpointSlice
from lightkube.resources.networking_v1 import Ingress, IngressClass

from . import certmanager, conformance
from .cluster import LocalCluster, wait_until
from .echo import EchoServers
from .toolchain import Toolchain
from .traefik import GATEWAY_CONTROLLER, INGRESS_CLASS_CONTROLLER, TraefikProcess

pytestmark = pytest.mark.e2e

GW = "gateway.networking.k8s.io"
Gateway = create_namespaced_resource(GW, "v1", "Gateway", "gateways")
HTTPRoute = create_namespaced_resource(GW, "v1", "HTTPRoute", "httproutes")
GatewayClass = create_global_resource(GW, "v1", "GatewayClass", "gatewayclasses")
#: Addresses on `lo` of the private network namespace (the second node's pod CIDR, far above
#: what kwok hands out to the few pods of a test run), so the API server accepts them in
#: EndpointSlices and the proxies reach them.
BACKEND_IPS = ("10.244.1.201", "10.244.1.202")
BACKEND_PORT = 8080
# Traefik programs a route within a provider event or two; the wait only guards a broken setup.
ROUTE_TIMEOUT_S = 60.0
FIELD_MANAGER = "kexpose-e2e"


def _apply(kube: Client, obj: Any) -> None:
    kube.apply(obj, field_manager=FIELD_MANAGER, force=True)


def _backend(kube: Client, namespace: str, name: str, ip: str) -> None:
    """A Service with no selector and a hand-written EndpointSlice to `ip:BACKEND_PORT`."""
    _apply(
        kube,
        Service.from_dict(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"ports": [{"name": "http", "port": 80, "targetPort": BACKEND_PORT}]},
            }
        ),
    )
    _apply(
        kube,
        EndpointSlice.from_dict(
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": f"{name}-1",
                    "namespace": namespace,
                    "labels": {"kubernetes.io/service-name": name},
                },
                "addressType": "IPv4",
                "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
                "ports": [{"name": "http", "port": BACKEND_PORT, "protocol": "TCP"}],
            }
        ),
    )


def _get(port: int, host: str, path: str = "/", headers: dict[str, str] | None = None) -> Any:
    """(status, JSON body or None) of one plain-HTTP request to 127.0.0.1:port."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host, **(headers or {})})
        answer = conn.getresponse()
        body = answer.read()
        if answer.getheader("Content-Type") == "application/json":
            return answer.status, json.loads(body)
        return answer.status, None
    finally:
        conn.close()


def _answers(port: int, host: str, app: str, path: str = "/") -> bool | None:
    try:
        status, body = _get(port, host, path)
    except OSError:
        return None
    return True if status == 200 and body and body["app"] == app else None


def _condition(obj: Any, kind: str) -> str | None:
    """The status of condition `kind` of an object (its status) or of a route's parent entry."""
    conditions = (
        obj["conditions"] if "conditions" in obj else (obj.get("status") or {}).get("conditions")
    )
    for c in conditions or []:
        if c.get("type") == kind:
            return str(c.get("status"))
    return None


@pytest.fixture
def echo(cluster: LocalCluster) -> Iterator[EchoServers]:
    with EchoServers().running() as servers:
        yield servers


@pytest.fixture
def traefik_binary(toolchain: Toolchain) -> Path:
    return toolchain.tool("traefik")


def test_traefik_routes_an_httproute_by_host_path_and_header(
    toolchain: Toolchain,
    cluster: LocalCluster,
    kube: Client,
    namespace: str,
    echo: EchoServers,
    traefik_binary: Path,
    tmp_path: Path,
) -> None:
    conformance.install_crds(kube, toolchain)
    traefik = TraefikProcess(traefik_binary, tmp_path / "traefik", cluster.kubeconfig)
    traefik.start()
    try:
        for app, ip in zip(("stable", "canary"), BACKEND_IPS, strict=True):
            echo.serve(app, ip, BACKEND_PORT)
            _backend(kube, namespace, app, ip)
        gateway_class = f"traefik-{namespace}"
        _apply(
            kube,
            GatewayClass.from_dict(
                {
                    "apiVersion": f"{GW}/v1",
                    "kind": "GatewayClass",
                    "metadata": {"name": gateway_class},
                    "spec": {"controllerName": GATEWAY_CONTROLLER},
                }
            ),
        )
        _apply(
            kube,
            Gateway.from_dict(
                {
                    "apiVersion": f"{GW}/v1",
                    "kind": "Gateway",
                    "metadata": {"name": "edge", "namespace": namespace},
                    "spec": {
                        "gatewayClassName": gateway_class,
                        "listeners": [
                            {"name": "web", "port": traefik.web_port, "protocol": "HTTP"}
                        ],
                    },
                }
            ),
        )
        _apply(
            kube,
            HTTPRoute.from_dict(
                {
                    "apiVersion": f"{GW}/v1",
                    "kind": "HTTPRoute",
                    "metadata": {"name": "shop", "namespace": namespace},
                    "spec": {
                        "parentRefs": [{"name": "edge"}],
                        "hostnames": ["shop.example.test"],
                        "rules": [
                            {
                                "matches": [
                                    {
                                        "path": {"type": "PathPrefix", "value": "/"},
                                        "headers": [{"name": "X-Canary", "value": "yes"}],
                                    }
                                ],
                                "backendRefs": [{"name": "canary", "port": 80}],
                            },
                            {
                                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                                "backendRefs": [{"name": "stable", "port": 80}],
                            },
                        ],
                    },
                }
            ),
        )
        port = traefik.web_port
        wait_until(
            lambda: _answers(port, "shop.example.test", "stable"),
            timeout=ROUTE_TIMEOUT_S,
            what=f"traefik routing shop.example.test to stable\n{traefik.tail()}",
        )
        status, body = _get(port, "shop.example.test", "/cart?id=1")
        assert (status, body["app"], body["path"]) == (200, "stable", "/cart?id=1")
        assert body["address"] == f"{BACKEND_IPS[0]}:{BACKEND_PORT}"
        canary = _get(port, "shop.example.test", "/", {"X-Canary": "yes"})
        assert (canary[0], canary[1]["app"]) == (200, "canary")
        assert _get(port, "other.example.test")[0] == 404  # no route for this hostname

        # Traefik reports what it did in the objects' status, as a Gateway API controller must.
        # (Status writes may trail the routing table by a moment.)
        def route_status() -> list[Any] | None:
            route = kube.get(HTTPRoute, "shop", namespace=namespace)
            parents = (route.get("status") or {}).get("parents") or []
            return list(parents) if parents and _condition(parents[0], "Accepted") else None

        def gateway_status() -> Any:
            gateway = kube.get(Gateway, "edge", namespace=namespace)
            return gateway if _condition(gateway, "Programmed") == "True" else None

        [parent] = wait_until(route_status, timeout=ROUTE_TIMEOUT_S, what="HTTPRoute status")
        assert parent["controllerName"] == GATEWAY_CONTROLLER
        assert _condition(parent, "Accepted") == "True"
        assert _condition(parent, "ResolvedRefs") == "True"
        gateway = wait_until(gateway_status, timeout=ROUTE_TIMEOUT_S, what="Gateway Programmed")
        assert gateway["status"]["addresses"][0]["value"] == traefik.status_address
    finally:
        traefik.stop()
        kube.delete(GatewayClass, f"traefik-{namespace}")


def test_traefik_serves_an_ingress(
    cluster: LocalCluster,
    kube: Client,
    namespace: str,
    echo: EchoServers,
    traefik_binary: Path,
    tmp_path: Path,
) -> None:
    traefik = TraefikProcess(
        traefik_binary, tmp_path / "traefik", cluster.kubeconfig, providers=("kubernetesIngress",)
    )
    traefik.start()
    ingress_class = f"traefik-{namespace}"
    try:
        echo.serve("web", BACKEND_IPS[0], BACKEND_PORT)
        _backend(kube, namespace, "web", BACKEND_IPS[0])
        _apply(
            kube,
            IngressClass.from_dict(
                {
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "IngressClass",
                    "metadata": {"name": ingress_class},
                    "spec": {"controller": INGRESS_CLASS_CONTROLLER},
                }
            ),
        )
        backend = {"service": {"name": "web", "port": {"number": 80}}}
        _apply(
            kube,
            Ingress.from_dict(
                {
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "Ingress",
                    "metadata": {"name": "web", "namespace": namespace},
                    "spec": {
                        "ingressClassName": ingress_class,
                        "rules": [
                            {
                                "host": "web.example.test",
                                "http": {
                                    "paths": [
                                        {"path": "/app", "pathType": "Prefix", "backend": backend}
                                    ]
                                },
                            }
                        ],
                    },
                }
            ),
        )
        wait_until(
            lambda: _answers(traefik.web_port, "web.example.test", "web", "/app/x"),
            timeout=ROUTE_TIMEOUT_S,
            what=f"traefik serving the Ingress\n{traefik.tail()}",
        )
        assert _get(traefik.web_port, "web.example.test", "/app/x")[0] == 200
        assert _get(traefik.web_port, "web.example.test", "/application")[0] == 404  # Prefix
        assert _get(traefik.web_port, "web.example.test", "/other")[0] == 404
    finally:
        traefik.stop()
        kube.delete(IngressClass, ingress_class)


def _serve_tls_once(context: ssl.SSLContext, handshakes: int = 3) -> tuple[int, threading.Thread]:
    """A TLS server on a free loopback port that takes `handshakes` connections, then closes."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = int(listener.getsockname()[1])

    def serve() -> None:
        with listener:
            for _ in range(handshakes):
                conn, _ = listener.accept()
                with conn:
                    try:
                        with context.wrap_socket(conn, server_side=True) as tls:
                            tls.sendall(b"ok")
                    except (ssl.SSLError, OSError):
                        pass  # the client refused our certificate: its side asserts that

    thread = threading.Thread(target=serve, name="tls-once", daemon=True)
    thread.start()
    return port, thread


def test_cert_manager_issues_a_certificate_that_verifies(
    toolchain: Toolchain, cluster: LocalCluster, kube: Client, namespace: str, tmp_path: Path
) -> None:
    certmanager.install_crds(kube, toolchain)
    resources = f"cm-{uuid.uuid4().hex[:6]}"
    kube.create(Namespace(metadata=ObjectMeta(name=resources)))
    controller = certmanager.CertManagerProcess(
        toolchain.tool("cert-manager-controller"),
        tmp_path / "cert-manager",
        cluster.kubeconfig,
        cluster_resource_namespace=resources,
    )
    controller.start()
    try:
        ca = certmanager.ca_chain(kube, prefix=resources, cluster_resource_namespace=resources)
        _apply(
            kube,
            certmanager.certificate(
                "shop",
                namespace,
                secret_name="shop-tls",
                issuer=ca,
                dns_names=["shop.example.test"],
            ),
        )
        issued = certmanager.wait_for_certificate(kube, "shop", namespace)
    finally:
        controller.stop()
        kube.delete(Namespace, resources)
    # The Secret's key pair serves TLS; the issued chain and the name verify, another name fails.
    (tmp_path / "tls.crt").write_text(issued.cert_pem)
    (tmp_path / "tls.key").write_text(issued.key_pem)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    client = ssl.create_default_context(cadata=issued.ca_pem)
    port, thread = _serve_tls_once(server)  # the verified handshake, then two refused ones
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        client.wrap_socket(raw, server_hostname="shop.example.test") as tls,
    ):
        assert tls.recv(2) == b"ok"
        peer = tls.getpeercert()
        assert peer is not None
        assert ("DNS", "shop.example.test") in peer["subjectAltName"]
    with (
        pytest.raises(ssl.SSLCertVerificationError, match="match"),
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
    ):
        client.wrap_socket(raw, server_hostname="other.example.test")
    # Without the issued CA (the system's trust store only) the chain does not verify.
    with (
        pytest.raises(ssl.SSLCertVerificationError, match="issuer"),
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
    ):
        ssl.create_default_context().wrap_socket(raw, server_hostname="shop.example.test")
    thread.join(timeout=10)
    assert issued.ca_pem.strip() != issued.cert_pem.strip()  # a CA of its own, not the leaf


def test_cert_manager_issues_the_certificate_of_an_annotated_gateway_listener(
    toolchain: Toolchain, cluster: LocalCluster, kube: Client, namespace: str, tmp_path: Path
) -> None:
    """cert-manager's Gateway API support (the gateway-shim): a Gateway annotated with a
    ClusterIssuer gets a Certificate per HTTPS listener, named after the listener's
    certificateRef and covering its hostname; no Gateway controller needs to run."""
    conformance.install_crds(kube, toolchain)
    certmanager.install_crds(kube, toolchain)
    resources = f"cm-{uuid.uuid4().hex[:6]}"
    kube.create(Namespace(metadata=ObjectMeta(name=resources)))
    controller = certmanager.CertManagerProcess(
        toolchain.tool("cert-manager-controller"),
        tmp_path / "cert-manager",
        cluster.kubeconfig,
        cluster_resource_namespace=resources,
        gateway_shim=True,
    )
    controller.start()
    try:
        ca = certmanager.ca_chain(kube, prefix=resources, cluster_resource_namespace=resources)
        _apply(
            kube,
            Gateway.from_dict(
                {
                    "apiVersion": f"{GW}/v1",
                    "kind": "Gateway",
                    "metadata": {
                        "name": "edge",
                        "namespace": namespace,
                        "annotations": {"cert-manager.io/cluster-issuer": ca},
                    },
                    "spec": {
                        "gatewayClassName": "unclaimed",
                        "listeners": [
                            {
                                "name": "shop",
                                "port": 443,
                                "protocol": "HTTPS",
                                "hostname": "shop.example.test",
                                "tls": {
                                    "mode": "Terminate",
                                    "certificateRefs": [{"name": "shop-gw-tls"}],
                                },
                            }
                        ],
                    },
                }
            ),
        )
        issued = certmanager.wait_for_certificate(kube, "shop-gw-tls", namespace)
        cert = kube.get(certmanager.Certificate, "shop-gw-tls", namespace=namespace)
    finally:
        controller.stop()
        kube.delete(Namespace, resources)
    assert cert["spec"]["dnsNames"] == ["shop.example.test"]
    assert cert["spec"]["issuerRef"]["name"] == ca
    owner = cert["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("Gateway", "edge")
    (tmp_path / "tls.crt").write_text(issued.cert_pem)
    (tmp_path / "tls.key").write_text(issued.key_pem)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    port, thread = _serve_tls_once(server, handshakes=1)
    client = ssl.create_default_context(cadata=issued.ca_pem)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        client.wrap_socket(raw, server_hostname="shop.example.test") as tls,
    ):
        assert tls.recv(2) == b"ok"
    thread.join(timeout=10)
