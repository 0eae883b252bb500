"""Traefik enforces an app's auth on an Ingress (`api: ingress`) through the Middlewares kexpose
builds and the `router.middlewares` annotation that names them.

The journey's Traefik stack covers the Gateway API (ExtensionRef filters); this covers the other
form of reference, `<namespace>_<name>@kubernetescrd` under the CRD provider's `safeNaming`,
with the toolchain's Traefik out of cluster and its Ingress and CRD providers set up as the
stack's Deployment sets them up. The objects are kexpose's own builders' output (the plan of a
`kind: traefik` stack); only the users' Secret is written here, with the deployment-time bcrypt
hashing (`model.auth.htpasswd_line`), as the component does from Pulumi secret config.
"""

from __future__ import annotations

import base64
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.core_v1 import Secret, Service
from lightkube.resources.discovery_v1 import EndpointSlice
from lightkube.resources.networking_v1 import Ingress, IngressClass

from kexpose.manifests import TlsMaterial
from kexpose.manifests.controller import traefik_crd_manifests
from kexpose.model.auth import auth_secret_name, htpasswd_line
from kexpose.plan import plan_stack
from kexpose.validation import parse_stack

from .cluster import LocalCluster, wait_until
from .echo import EchoServers
from .toolchain import Toolchain
from .traefik import INGRESS_CLASS_CONTROLLER, TraefikProcess, crd_settings_of
from .traffic import get

pytestmark = pytest.mark.e2e

Middleware = create_namespaced_resource("traefik.io", "v1alpha1", "Middleware", "middlewares")
#: On `lo` of the private network namespace (a pod CIDR), apart from the other tests' backends.
BACKEND_IP = "10.244.1.211"
BACKEND_PORT = 8080
HOST = "web.auth.example.test"
USER = "tester"
#: The app admits 127.0.0.1 only (allowSourceRanges); a client bound to this address is outside.
OUTSIDE_SOURCE = "127.0.13.8"
ROUTE_TIMEOUT_S = 60.0
FIELD_MANAGER = "kexpose-e2e"


BASIC: dict[str, Any] = {
    "allowSourceRanges": ["127.0.0.1/32"],
    "auth": {
        "type": "basic",
        "realm": "web",
        "users": [{"name": USER, "passwordConfig": "web:testerPassword"}],
    },
}


def _plan(namespace: str, ingress_class: str, auth: dict[str, Any] = BASIC) -> list[dict[str, Any]]:
    app = {
        "name": "web",
        "namespace": namespace,
        "selector": {"app": "web"},
        "service": {"ports": [{"name": "http", "port": 80, "targetPort": BACKEND_PORT}]},
        "ingress": {"rules": [{"host": HOST, "paths": [{"path": "/", "port": "http"}]}]},
        **auth,
    }
    raw = {
        "environment": "dev",
        "controller": {"kind": "traefik", "className": ingress_class},
        "apps": [app],
    }
    spec = parse_stack(raw, stack_file="tests/e2e/test_traefik_ingress_auth.py")
    return [p.manifest for p in plan_stack(spec, tls=lambda _: TlsMaterial("", ""))]


def _apply(kube: Client, obj: Any) -> None:
    kube.apply(obj, field_manager=FIELD_MANAGER, force=True)


def _apply_when_served(kube: Client, obj: Any) -> None:
    """Apply `obj`, waiting for its kind to be served (a CRD applied a moment ago)."""

    def applied() -> bool | None:
        try:
            _apply(kube, obj)
        except ApiError as exc:
            if exc.status.code == 404:
                return None
            raise
        return True

    wait_until(applied, timeout=ROUTE_TIMEOUT_S, what=f"{obj.kind} served")


@pytest.fixture
def ingress_class(kube: Client, namespace: str) -> Iterator[str]:
    name = f"traefik-{namespace}"
    _apply(
        kube,
        IngressClass.from_dict(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "IngressClass",
                "metadata": {"name": name},
                "spec": {"controller": INGRESS_CLASS_CONTROLLER},
            }
        ),
    )
    yield name
    kube.delete(IngressClass, name)


def _install_crds(kube: Client) -> None:
    for crd in traefik_crd_manifests():
        _apply(kube, CustomResourceDefinition.from_dict(crd))


def _backend(kube: Client, planned: list[dict[str, Any]], namespace: str) -> None:
    """The app's Service as planned, without its selector, and an EndpointSlice to the echo
    server standing where the pods would be."""
    (service,) = [m for m in planned if m["kind"] == "Service" and m["metadata"]["name"] == "web"]
    del service["spec"]["selector"]
    _apply(kube, Service.from_dict(service))
    _apply(
        kube,
        EndpointSlice.from_dict(
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": "web-1",
                    "namespace": namespace,
                    "labels": {"kubernetes.io/service-name": "web"},
                },
                "addressType": "IPv4",
                "endpoints": [{"addresses": [BACKEND_IP], "conditions": {"ready": True}}],
                "ports": [{"name": "http", "port": BACKEND_PORT, "protocol": "TCP"}],
            }
        ),
    )


def _traefik(
    toolchain: Toolchain, cluster: LocalCluster, tmp_path: Path, planned: list[dict[str, Any]]
) -> TraefikProcess:
    """Traefik with its Ingress and CRD providers, the latter set up as the planned controller
    Deployment sets it up."""
    (deployment,) = [m for m in planned if m["kind"] == "Deployment"]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return TraefikProcess(
        toolchain.tool("traefik"),
        tmp_path / "traefik",
        cluster.kubeconfig,
        providers=("kubernetesIngress", "kubernetesCRD"),
        crd_settings=crd_settings_of(args),
    )


def test_traefik_enforces_an_ingress_s_middlewares(
    cluster: LocalCluster,
    kube: Client,
    namespace: str,
    ingress_class: str,
    toolchain: Toolchain,
    tmp_path: Path,
) -> None:
    planned = _plan(namespace, ingress_class)
    _install_crds(kube)
    password = secrets.token_urlsafe(18)
    scope = f"{namespace}/web"
    htpasswd = htpasswd_line(USER, password, scope=scope) + "\n"
    _apply(
        kube,
        Secret.from_dict(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": auth_secret_name("web"), "namespace": namespace},
                "type": "Opaque",
                "data": {"auth": base64.b64encode(htpasswd.encode()).decode()},
            }
        ),
    )
    _backend(kube, planned, namespace)
    middlewares = [m for m in planned if m["kind"] == "Middleware"]
    assert [m["metadata"]["name"] for m in middlewares] == ["web-allow-list", "web-auth"]
    for m in middlewares:
        _apply_when_served(kube, Middleware.from_dict(m))
    (ingress,) = [m for m in planned if m["kind"] == "Ingress"]
    assert ingress["metadata"]["annotations"][
        "traefik.ingress.kubernetes.io/router.middlewares"
    ] == (f"{namespace}_web-allow-list@kubernetescrd,{namespace}_web-auth@kubernetescrd")
    _apply(kube, Ingress.from_dict(ingress))

    traefik = _traefik(toolchain, cluster, tmp_path, planned)
    assert traefik.crd_settings["namespaces"] == [namespace]
    with EchoServers().running() as echo:
        echo.serve("web", BACKEND_IP, BACKEND_PORT)
        traefik.start()
        try:
            port = traefik.web_port

            def ask(headers: dict[str, str], source: str | None = None) -> Any:
                return get(port, host=HOST, path="/x", headers=headers, source=source)

            def served() -> Any:
                try:
                    reply = ask(_basic(USER, password))
                except OSError:
                    return None
                return reply if reply.status == 200 else None

            wait_until(
                served, timeout=ROUTE_TIMEOUT_S, what=f"traefik: a 200 for {HOST}\n{traefik.tail()}"
            )
            ok = ask({**_basic(USER, password), "X-Forwarded-User": "admin"}).json()
            assert ok["app"] == "web"
            assert ok["x-forwarded-user"] == USER
            for headers in (
                {},
                _basic(USER, password + "x"),
                _basic("someone", password),
                {"X-Forwarded-User": USER},
            ):
                reply = ask(headers)
                assert reply.status == 401, (headers.keys(), reply.status)
                assert reply.headers["www-authenticate"] == 'Basic realm="web"'
                assert b'"app"' not in reply.body
            for headers in (_basic(USER, password), {"X-Forwarded-For": "127.0.0.1"}):
                reply = ask(headers, source=OUTSIDE_SOURCE)
                assert reply.status == 403, (headers.keys(), reply.status)
            # Without its Middlewares the route is not served open: Traefik drops a router whose
            # middleware it cannot find (fail closed).
            kube.delete(Middleware, "web-auth", namespace=namespace)

            def dropped() -> bool | None:
                return True if ask(_basic(USER, password)).status == 404 else None

            wait_until(dropped, timeout=ROUTE_TIMEOUT_S, what="traefik dropping the route")
            assert ask({}).status == 404
            assert password not in traefik.log_path.read_text(errors="replace")
        finally:
            traefik.stop()


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


#: The scripted auth service of the forward-auth test, on another address of the pod CIDR.
AUTH_IP = "10.244.1.212"
AUTH_PORT = 8081


class _AuthService(BaseHTTPRequestHandler):
    """`Bearer good`: 200 naming the user in X-Forwarded-User; `Bearer anon`: 200 naming no
    one; anything else: 401 with its own challenge and body."""

    def do_GET(self) -> None:
        token = self.headers.get("Authorization", "")
        if token in ("Bearer good", "Bearer anon"):
            self.send_response(200)
            if token == "Bearer good":
                self.send_header("X-Forwarded-User", "alice")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"denied by the auth service"
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Bearer realm="auth"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_traefik_enforces_an_ingress_s_forward_auth(
    cluster: LocalCluster,
    kube: Client,
    namespace: str,
    ingress_class: str,
    toolchain: Toolchain,
    tmp_path: Path,
) -> None:
    """forwardAuth as kexpose builds it: the auth service decides, its 401 (challenge and body)
    goes to the client, and on 2xx the listed response header replaces the client's, also when
    the answer lacks it (edge-auth.md, "Forward auth")."""
    forward = {
        "auth": {
            "type": "forward",
            "url": f"http://{AUTH_IP}:{AUTH_PORT}/check",
            "responseHeaders": ["X-Forwarded-User"],
        }
    }
    planned = _plan(namespace, ingress_class, forward)
    _install_crds(kube)
    _backend(kube, planned, namespace)
    (middleware,) = [m for m in planned if m["kind"] == "Middleware"]
    _apply_when_served(kube, Middleware.from_dict(middleware))
    (ingress,) = [m for m in planned if m["kind"] == "Ingress"]
    _apply(kube, Ingress.from_dict(ingress))
    auth = ThreadingHTTPServer((AUTH_IP, AUTH_PORT), _AuthService)
    threading.Thread(target=auth.serve_forever, name="auth-service", daemon=True).start()
    traefik = _traefik(toolchain, cluster, tmp_path, planned)
    try:
        with EchoServers().running() as echo:
            echo.serve("web", BACKEND_IP, BACKEND_PORT)
            traefik.start()
            try:

                def ask(headers: dict[str, str]) -> Any:
                    return get(traefik.web_port, host=HOST, path="/x", headers=headers)

                def served() -> Any:
                    try:
                        reply = ask({"Authorization": "Bearer good"})
                    except OSError:
                        return None
                    return reply if reply.status == 200 else None

                wait_until(
                    served,
                    timeout=ROUTE_TIMEOUT_S,
                    what=f"traefik: a 200 for {HOST}\n{traefik.tail()}",
                )
                spoofed = {"X-Forwarded-User": "mallory"}
                ok = ask({"Authorization": "Bearer good", **spoofed}).json()
                assert (ok["app"], ok["x-forwarded-user"]) == ("web", "alice")
                anon = ask({"Authorization": "Bearer anon", **spoofed}).json()
                assert (anon["app"], anon["x-forwarded-user"]) == ("web", None)
                for headers in ({}, {"Authorization": "Bearer bad"}, spoofed):
                    reply = ask(headers)
                    assert reply.status == 401, (headers.keys(), reply.status)
                    assert reply.headers["www-authenticate"] == 'Bearer realm="auth"'
                    assert reply.body == b"denied by the auth service"
            finally:
                traefik.stop()
    finally:
        auth.shutdown()
        auth.server_close()
