"""The user journey of issue 5, on the real tools: the built Pulumi CLI, its Python language host,
pulumi-kubernetes (with its await logic), a real kube-apiserver with kwok nodes, kexpose-proxy and
the CrossGuard pack.

Stand-ins, and why each is needed (nothing else is replaced):
- `load_balancers` plays the cloud's load-balancer controller (as MetalLB does in
  pulumi-kubernetes' own CI): it writes 127.0.0.1 into `status.loadBalancer` of LoadBalancer
  Services, which the staging and prod controller Services wait for (loadbalancer.py).
- `ingress_proxy` is the real kexpose-proxy, run out of cluster against the same API server as
  the stacks' controller; the controller Deployment's pods are kwok fakes that never run
  (proxy.py). It writes the Ingress status that pulumi-kubernetes waits for. `gateway_proxy` is
  a second one serving the Gateway API (`--gateway-addresses`) for the stacks with `api:
  gateway` (staging, prod): it binds their Gateway's listeners on an address of its pool and
  writes the Gateway API status.
- `prod_certificate` runs the real cert-manager controllers out of cluster (certmanager.py) with
  their Gateway API support: a SelfSigned ClusterIssuer signs a CA that backs a CA ClusterIssuer
  named as prod's Gateway annotation asks (`letsencrypt-prod`, whose ACME server this cluster
  cannot reach), and the gateway-shim issues the HTTPS listener's Secret from it; prod's HTTPS
  traffic is verified against that CA alone.
- `traefik` is the real Traefik (traefik.py) with its Gateway API provider, and its CRD provider
  set up as the stack's Deployment sets it up (the apps' auth Middlewares), out of cluster like
  the proxy, for the Traefik test stack (tests/e2e/stacks/Pulumi.traefik.yaml, `kind: traefik`).
- Echo servers stand where the pods are: on the pod IPs and container ports the endpointslice
  controller published, inside the session's private network namespace (echo.py, netns.py).
- `pulumi preview --policy-pack` is pointed at an executable launcher of the real pack, the CLI's
  route for executable packs; its route for a pack directory needs a newer language host than
  the one the module proxy serves (project.py, tests/e2e/README.md).

The three shipped stacks and the Traefik test stack share namespaces and cluster-scoped names, so
they run one after another (pytest groups the class's tests by stack), each destroyed before the
next.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import secrets
import ssl
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import Client
from lightkube.models.core_v1 import ContainerPort
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import (
    ConfigMap,
    Namespace,
    Secret,
    Service,
    ServiceAccount,
)
from lightkube.resources.networking_v1 import Ingress, IngressClass
from lightkube.resources.policy_v1 import PodDisruptionBudget
from lightkube.resources.rbac_authorization_v1 import (
    ClusterRole,
    ClusterRoleBinding,
    Role,
    RoleBinding,
)

from . import certmanager
from .cluster import LocalCluster, wait_until
from .compare import (
    api_path,
    certificate_names,
    identity,
    load_rendered,
    mismatches,
    tls_pair,
    without_secret_data,
)
from .echo import EchoServers
from .loadbalancer import LB_ADDRESS, LoadBalancerStandIn
from .project import (
    PolicyPackCopy,
    PulumiError,
    PulumiProject,
    copy_of_repo,
    write_program,
    write_yaml_program,
)
from .proxy import PUBLISH_ADDRESS, ProxyProcess
from .toolchain import REPO_ROOT, Toolchain
from .traefik import GATEWAY_CONTROLLER as TRAEFIK_GATEWAY_CONTROLLER
from .traefik import TraefikProcess, crd_settings_of
from .traffic import get, peer_certificate, serve_service, trusting

pytestmark = pytest.mark.e2e

STACKS = ("dev", "staging", "prod")
#: The shipped stacks exposed through the Gateway API (stacks/Pulumi.*.yaml, `api: gateway`).
GATEWAY_STACKS = frozenset({"staging", "prod"})
#: The pool `gateway_proxy` binds Gateways on: local on `lo` in the private network namespace,
#: apart from the conformance suite's (conformance.GATEWAY_ADDRESSES).
GATEWAY_ADDRESSES = "127.0.11.0/24"
GATEWAY_CONTROLLER = "kexpose.dev/gateway-controller"
MANAGED_BY: dict[str, Any] = {"app.kubernetes.io/managed-by": "kexpose"}
# The proxy sees a new EndpointSlice or Secret through its watch a moment after the API has it.
ROUTE_TIMEOUT_S = 60.0
# `kexpose render` runs the stack program under Pulumi's mocks: a few seconds.
RENDER_TIMEOUT_S = 120.0

# Every namespaced kind the builders make (kexpose.resources.kube), looked up by the label they
# all carry; untyped because lightkube's list() is typed per resource class.
NAMESPACED_KINDS: tuple[Any, ...] = (
    Deployment,
    Service,
    Secret,
    ConfigMap,
    ServiceAccount,
    Role,
    RoleBinding,
    PodDisruptionBudget,
    Ingress,
)
CLUSTER_KINDS = (Namespace, ClusterRole, ClusterRoleBinding, IngressClass)


@dataclass
class Journey:
    """What the whole module shares: the project copy, the pack copy, the cluster's baseline."""

    toolchain: Toolchain
    cluster: LocalCluster
    project: PulumiProject
    pack: PolicyPackCopy
    workdir: Path
    baseline_namespaces: frozenset[str]

    def program(self, name: str, source: str) -> PulumiProject:
        return write_program(
            self.toolchain,
            self.workdir / name,
            name=name,
            program=source,
            state=self.project.state,
            kubeconfig=self.cluster.kubeconfig,
        )


@pytest.fixture(scope="class")
def gateway_proxy(
    deployed: Deployed, cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess | None]:
    """kexpose-proxy serving a deployed stack's Gateway (None for an Ingress stack): it claims
    no IngressClass (another controller name, so `ingress_proxy` keeps the Ingresses) and elects
    its own status writer. Started after `pulumi up` installed the Gateway API CRDs, stopped
    before the stack's destroy removes them."""
    if deployed.stack not in GATEWAY_STACKS:
        yield None
        return
    proxy = ProxyProcess(
        cluster.kubeconfig,
        tmp_path_factory.mktemp("gateway-proxy"),
        extra_args=(
            "--controller-name=kexpose.dev/e2e-no-ingress",
            "--election-id=kexpose-e2e-gateway",
            f"--gateway-controller-name={GATEWAY_CONTROLLER}",
            f"--gateway-addresses={GATEWAY_ADDRESSES}",
        ),
    )
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


#: Where cert-manager keeps the Secrets of ClusterIssuers (the CA's key pair): a namespace that
#: exists before any stack and outlives them all, so no stack's destroy or leftovers see it.
CERT_MANAGER_RESOURCES = "kube-system"
#: The CA bootstrap's objects (certmanager.ca_chain): `<prefix>-selfsigned` and `<prefix>-ca`.
CERT_MANAGER_PREFIX = "e2e-journey"
ISSUER_ANNOTATION = "cert-manager.io/cluster-issuer"


@pytest.fixture(scope="class")
def prod_certificate(
    deployed: Deployed,
    toolchain: Toolchain,
    cluster: LocalCluster,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[certmanager.IssuedCertificate | None]:
    """prod's certificate, from the real cert-manager (None for the other stacks).

    cert-manager's controllers run out of cluster with its Gateway API support (the
    gateway-shim), after `pulumi up` installed the Gateway API CRDs it watches. A SelfSigned
    ClusterIssuer signs a CA whose key backs a CA ClusterIssuer under the name prod's Gateway
    asks for in its `cert-manager.io/cluster-issuer` annotation (the stack's `letsencrypt-prod`,
    which this cluster cannot reach). The shim then makes one Certificate per HTTPS listener,
    named after the listener's certificateRef, and cert-manager writes that Secret.
    """
    if deployed.stack != "prod":
        yield None
        return
    [gateway] = [m for m in deployed.rendered if m["kind"] == "Gateway"]
    namespace = gateway["metadata"]["namespace"]
    issuer = gateway["metadata"]["annotations"][ISSUER_ANNOTATION]
    # One HTTPS listener per host (shop.example.com and the gRPC host), each with its Secret.
    hosts_of: dict[str, list[str]] = {}
    for listener in gateway["spec"]["listeners"]:
        for ref in (listener.get("tls") or {}).get("certificateRefs") or []:
            hosts_of.setdefault(ref["name"], []).append(listener["hostname"])
    assert len(hosts_of) >= 1, gateway["spec"]["listeners"]
    [shop_ref] = [name for name, hosts in hosts_of.items() if "shop.example.com" in hosts]
    with cluster.client() as kube:
        certmanager.install_crds(kube, toolchain)
        controller = certmanager.CertManagerProcess(
            toolchain.tool("cert-manager-controller"),
            tmp_path_factory.mktemp("cert-manager"),
            cluster.kubeconfig,
            cluster_resource_namespace=CERT_MANAGER_RESOURCES,
            gateway_shim=True,
        )
        controller.start()
        try:
            ca = certmanager.ca_chain(
                kube, prefix=CERT_MANAGER_PREFIX, cluster_resource_namespace=CERT_MANAGER_RESOURCES
            )
            kube.apply(
                certmanager.ClusterIssuer.from_dict(
                    {
                        "apiVersion": "cert-manager.io/v1",
                        "kind": "ClusterIssuer",
                        "metadata": {"name": issuer},
                        "spec": {"ca": {"secretName": ca}},
                    }
                ),
                field_manager=certmanager.FIELD_MANAGER,
                force=True,
            )
            issued = {}
            for ref, hosts in hosts_of.items():
                issued[ref] = certmanager.wait_for_certificate(kube, ref, namespace)
                made = kube.get(certmanager.Certificate, ref, namespace=namespace)
                assert made["spec"]["issuerRef"]["name"] == issuer
                assert sorted(made["spec"]["dnsNames"]) == sorted(hosts)
                owner = made["metadata"]["ownerReferences"][0]
                assert (owner["kind"], owner["name"]) == ("Gateway", gateway["metadata"]["name"])
            yield issued[shop_ref]
        finally:
            controller.stop()
            for name in (issuer, ca, f"{CERT_MANAGER_PREFIX}-selfsigned"):
                kube.delete(certmanager.ClusterIssuer, name)
            kube.delete(certmanager.Certificate, ca, namespace=CERT_MANAGER_RESOURCES)
            kube.delete(Secret, ca, namespace=CERT_MANAGER_RESOURCES)


@pytest.fixture(scope="module")
def journey(
    toolchain: Toolchain,
    cluster: LocalCluster,
    load_balancers: LoadBalancerStandIn,
    ingress_proxy: ProxyProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Journey:
    workdir = tmp_path_factory.mktemp("journey")
    state = workdir / "state"
    state.mkdir()
    project = copy_of_repo(
        toolchain, workdir / "kexpose", state=state, kubeconfig=cluster.kubeconfig
    )
    return Journey(
        toolchain=toolchain,
        cluster=cluster,
        project=project,
        pack=PolicyPackCopy.of_repo(workdir / "policies"),
        workdir=workdir,
        baseline_namespaces=frozenset(_namespaces(cluster)),
    )


def _namespaces(cluster: LocalCluster) -> list[str]:
    with cluster.client() as client:
        return _names(client.list(Namespace))


def _names(objects: Any) -> list[str]:
    return [obj.metadata.name for obj in objects]


def leftovers(kube: Client, baseline: frozenset[str]) -> list[str]:
    """Everything a stack may have left behind: namespaces, and kexpose-managed objects."""
    found = [f"Namespace/{n}" for n in _names(kube.list(Namespace)) if n not in baseline]
    for cluster_kind in CLUSTER_KINDS:
        for name in _names(kube.list(cluster_kind, labels=MANAGED_BY)):
            found.append(f"{cluster_kind.__name__}/{name}")
    for kind in NAMESPACED_KINDS:
        for obj in kube.list(kind, namespace="*", labels=MANAGED_BY):
            found.append(f"{kind.__name__}/{obj.metadata.namespace}/{obj.metadata.name}")
    return found


def render(project: PulumiProject, stack: str, out: Path) -> list[dict[str, Any]]:
    """`kexpose render` of the same stack config, as a user would run it."""
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "kexpose"),
            "render",
            "--stack",
            stack,
            "--out",
            str(out),
            "--project-dir",
            str(project.directory),
        ],
        capture_output=True,
        text=True,
        timeout=RENDER_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return load_rendered(out)


def secret_pem(kube: Client, namespace: str, name: str, key: str) -> bytes:
    secret = kube.get(Secret, name, namespace=namespace)
    assert secret.data is not None
    return base64.b64decode(secret.data[key])


# ---- 1, 2, 3, 4 (pass) and 6: the shipped stacks ---------------------------------------------


@dataclass
class Deployed:
    stack: str
    up: subprocess.CompletedProcess[str]
    rendered: list[dict[str, Any]]
    destroyed: bool = False


@pytest.fixture(scope="class", params=STACKS)
def deployed(request: pytest.FixtureRequest, journey: Journey) -> Iterator[Deployed]:
    """`pulumi up` of one shipped stack; destroyed at the end of its tests whatever happened."""
    stack = str(request.param)
    project = journey.project
    project.init(stack)
    deployment: Deployed | None = None
    try:
        up = project.up(stack)
        rendered = render(project, stack, journey.workdir / f"render-{stack}")
        deployment = Deployed(stack, up, rendered)
        yield deployment
    finally:
        if deployment is None or not deployment.destroyed:
            project.run("destroy", "--stack", stack, "--yes", "--skip-preview", check=False)
        project.run("stack", "rm", stack, "--yes", "--force", check=False)


class TestShippedStack:
    def test_up_waits_for_rollouts_endpoints_and_addresses(
        self,
        deployed: Deployed,
        journey: Journey,
        kube: Client,
        gateway_proxy: ProxyProcess | None,
    ) -> None:
        stack = deployed.stack
        outputs = journey.project.outputs(stack)
        assert outputs["environment"] == stack
        assert outputs["ingressClass"] == "kexpose"
        # Returned only once pulumi-kubernetes' await logic saw every object ready:
        for deployment in kube.list(Deployment, namespace="*", labels=MANAGED_BY):
            assert deployment.spec is not None
            assert deployment.status is not None
            assert deployment.status.availableReplicas == deployment.spec.replicas
        if stack in GATEWAY_STACKS:
            # pulumi-kubernetes does not await Gateway API objects; their controller accepts them.
            address = _gateway_address(journey.cluster)
            assert ipaddress.ip_address(address) in ipaddress.ip_network(GATEWAY_ADDRESSES)
            _route_accepted(journey.cluster, "shop", "shop-web")
            _route_accepted(journey.cluster, "kexpose-system", "kexpose-https-redirect")
        else:
            ingress = kube.get(Ingress, "shop-web", namespace="shop")
            assert ingress.status is not None
            assert ingress.status.loadBalancer is not None
            assert [i.ip for i in ingress.status.loadBalancer.ingress or []] == [PUBLISH_ADDRESS]
        controller = kube.get(Service, "kexpose-controller", namespace="kexpose-system")
        assert controller.spec is not None
        if stack == "dev":
            assert controller.spec.type == "NodePort"
            assert "controllerAddress" not in outputs  # None: Pulumi drops the output
        else:
            assert controller.spec.type == "LoadBalancer"
            assert outputs["controllerAddress"] == LB_ADDRESS

    def test_objects_in_the_api_match_kexpose_render(
        self, deployed: Deployed, journey: Journey, kube: Client
    ) -> None:
        # The same objects: those in Pulumi's state are those kexpose render lists.
        state = journey.project.export(deployed.stack)
        managed = {
            identity(r["outputs"])
            for r in state["deployment"]["resources"]
            if r["type"].startswith("kubernetes:")
        }
        assert managed == {identity(m) for m in deployed.rendered}
        problems: dict[str, list[str]] = {}
        for manifest in deployed.rendered:
            live = journey.cluster.get_json(api_path(manifest))
            found = mismatches(without_secret_data(manifest), live)
            if found:
                problems["/".join(identity(manifest)[1:])] = found
        assert problems == {}
        # TLS Secrets: the rendered key is redacted and the certificate made at render time, so
        # compare what they mean. Computed first, so that no assertion can print key material.
        state_text = json.dumps(state)
        tls_secrets = (m for m in deployed.rendered if m.get("type") == "kubernetes.io/tls")
        for manifest in tls_secrets:
            namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
            cert = secret_pem(kube, namespace, name, "tls.crt")
            key = secret_pem(kube, namespace, name, "tls.key")
            paired = tls_pair(cert, key)
            plain = state_text.replace("\\n", "\n")
            leaked = key.decode().strip() in plain or base64.b64encode(key).decode() in plain
            del key
            assert paired, f"{namespace}/{name}: tls.key is not the key of tls.crt"
            assert not leaked, f"{namespace}/{name}: the key is in Pulumi's state in plain text"
            rendered_cert = manifest["stringData"]["tls.crt"].encode()
            assert certificate_names(cert) == certificate_names(rendered_cert)

    def test_a_second_update_changes_nothing(
        self, deployed: Deployed, journey: Journey, kube: Client
    ) -> None:
        tls = [m for m in deployed.rendered if m.get("type") == "kubernetes.io/tls"]
        before = [
            secret_pem(kube, m["metadata"]["namespace"], m["metadata"]["name"], "tls.crt")
            for m in tls
        ]
        again = journey.project.up(deployed.stack, "--expect-no-changes")
        assert "unchanged" in again.stdout
        after = [
            secret_pem(kube, m["metadata"]["namespace"], m["metadata"]["name"], "tls.crt")
            for m in tls
        ]
        assert after == before

    def test_the_policy_pack_passes(self, deployed: Deployed, journey: Journey) -> None:
        done = journey.project.preview(
            deployed.stack, "--policy-pack", str(journey.pack.launcher), "--expect-no-changes"
        )
        # It ran (the CLI lists every pack it loaded) and found nothing mandatory.
        assert f"kexpose-exposure@v0.1.0 (local: {journey.pack.launcher})" in done.stdout
        assert "[mandatory]" not in done.stdout

    def test_real_traffic_by_host_and_path(
        self,
        deployed: Deployed,
        journey: Journey,
        kube: Client,
        ingress_proxy: ProxyProcess,
        gateway_proxy: ProxyProcess | None,
        prod_certificate: certmanager.IssuedCertificate | None,
    ) -> None:
        host = f"shop.{'' if deployed.stack == 'prod' else deployed.stack + '.'}example.com"
        with EchoServers().running() as echo:
            web = serve_service(kube, echo, namespace="shop", service="shop-web")
            api = serve_service(kube, echo, namespace="shop", service="shop-api")
            assert web
            assert api
            if deployed.stack == "dev":
                _plain_http_traffic(ingress_proxy, host, web, api)
            elif deployed.stack == "staging":
                canary = serve_service(kube, echo, namespace="shop", service="shop-web-canary")
                assert canary
                address = _gateway_address(journey.cluster)
                auth = _basic(*_staging_tester(journey.project))  # staging: testers only
                _gateway_https_traffic(address, kube, host, web, canary, api, auth)
            else:
                assert prod_certificate is not None
                address = _gateway_address(journey.cluster)
                _prod_gateway_https_traffic(address, prod_certificate, host, web, api)

    def test_staging_is_behind_basic_auth(
        self,
        deployed: Deployed,
        journey: Journey,
        kube: Client,
        gateway_proxy: ProxyProcess | None,
    ) -> None:
        """Staging's HTTPRoutes name an EdgeAuth (basic, the tester's password from Pulumi
        secret config, bcrypt-hashed at deployment): real requests with and without
        credentials through the Gateway (edge-auth.md, "Basic")."""
        if deployed.stack != "staging":
            pytest.skip("only staging is behind basic auth")
        user, password = _staging_tester(journey.project)
        # What is deployed holds a bcrypt hash, never the password.
        htpasswd = secret_pem(kube, "shop", "shop-web-basic-auth", "auth").decode()
        assert htpasswd.startswith(f"{user}:$2b$12$")
        leaked = password in htpasswd or password in json.dumps(journey.project.export("staging"))
        assert not leaked, "the tester's password is in the Secret or Pulumi's state"
        host = "shop.staging.example.com"
        context = trusting(secret_pem(kube, "shop", "shop-web-tls", "tls.crt").decode())
        address = _gateway_address(journey.cluster)
        with EchoServers().running() as echo:
            assert serve_service(kube, echo, namespace="shop", service="shop-web")
            assert serve_service(kube, echo, namespace="shop", service="shop-web-canary")
            assert serve_service(kube, echo, namespace="shop", service="shop-api")

            def ask(path: str, headers: dict[str, str]) -> Any:
                return get(443, host=host, path=path, tls=context, address=address, headers=headers)

            def served() -> Any:
                reply = ask("/", _basic(user, password))
                return reply if reply.status == 200 else None

            wait_until(served, timeout=ROUTE_TIMEOUT_S, what=f"a 200 for https://{host}/")
            refused = [
                {},
                _basic(user, password + "x"),
                _basic("someone", password),
                {"Authorization": "Bearer " + password},
                {"X-Forwarded-User": user},  # a spoofed identity is no credential
            ]
            for path in ("/", "/api/v1"):
                for headers in refused:
                    reply = ask(path, headers)
                    assert reply.status == 401, (path, reply.status)
                    assert reply.headers["www-authenticate"] == 'Basic realm="shop staging"'
                    assert b"shop-" not in reply.body  # never reached a backend
                ok = ask(path, {**_basic(user, password), "X-Forwarded-User": "admin"}).json()
                apps = {"shop-api"} if path == "/api/v1" else {"shop-web", "shop-web-canary"}
                assert ok["app"] in apps
                assert ok["x-forwarded-user"] == user

    def test_destroy_leaves_nothing(
        self, deployed: Deployed, journey: Journey, kube: Client
    ) -> None:
        journey.project.destroy(deployed.stack)
        deployed.destroyed = True
        assert leftovers(kube, journey.baseline_namespaces) == []
        if deployed.stack != "dev":
            # The Gateway API CRDs are retained on purpose (deleting one deletes every object
            # of its kind in the cluster): still there, and still labelled as kexpose's.
            crd = kube.get(CustomResourceDefinition, "httproutes.gateway.networking.k8s.io")
            assert crd.metadata is not None
            assert crd.metadata.annotations is not None
            assert crd.metadata.annotations.get("pulumi.com/patchForce") == "true"
        state = journey.project.export(deployed.stack)
        assert [
            r["type"]
            for r in state["deployment"].get("resources") or []
            if r["type"].startswith("kubernetes:") or r["type"].startswith("kexpose:")
        ] == []


def _first_answer(port: int, host: str, path: str, **kwargs: Any) -> Any:
    """The first echo answer: the proxy learns new endpoints through its watch."""

    def answered() -> Any:
        reply = get(port, host=host, path=path, **kwargs)
        return reply if reply.status == 200 else None

    return wait_until(answered, timeout=ROUTE_TIMEOUT_S, what=f"a 200 for {host}{path}")


def _plain_http_traffic(proxy: ProxyProcess, host: str, web: set[str], api: set[str]) -> None:
    assert _first_answer(proxy.http_port, host, "/").json()["app"] == "shop-web"
    served: dict[str, set[str]] = {"/": set(), "/api": set(), "/api/items?id=7": set()}
    for _ in range(4):
        for path in served:
            body = get(proxy.http_port, host=host, path=path).json()
            assert body["host"] == host
            assert body["path"] == path
            served[path].add(body["address"])
    assert served["/"] <= web
    assert served["/api"] <= api
    assert served["/api/items?id=7"] <= api  # Prefix /api
    assert get(proxy.http_port, host="other.example.com", path="/").status == 404


def _https_traffic(
    proxy: ProxyProcess, kube: Client, host: str, web: set[str], api: set[str]
) -> None:
    cert = secret_pem(kube, "shop", "shop-web-tls", "tls.crt").decode()
    context = trusting(cert)
    first = _first_answer(proxy.https_port, host, "/", tls=context)
    assert first.json()["app"] == "shop-web"
    # The handshake verified against the stack's certificate only, with SNI; and it is that one.
    served = peer_certificate(proxy.https_port, server_name=host, context=context)
    assert served == _der(cert)
    seen_web: set[str] = set()
    for _ in range(2 * len(web)):
        body = get(proxy.https_port, host=host, path="/", tls=context).json()
        assert body["app"] == "shop-web"
        assert body["x-forwarded-proto"] == "https"
        seen_web.add(body["address"])
    assert seen_web == web  # both replicas get requests (round robin)
    body = get(proxy.https_port, host=host, path="/api/v1", tls=context).json()
    assert body["app"] == "shop-api"
    assert body["address"] in api
    # Plain HTTP for a TLS host is redirected to HTTPS, not proxied.
    redirect = get(proxy.http_port, host=host, path="/api?q=1")
    assert redirect.status == 308
    assert redirect.headers["location"] == f"https://{host}:{proxy.https_port}/api?q=1"


def _prod_without_cert_manager(proxy: ProxyProcess, host: str) -> None:
    # prod's certificate comes from cert-manager, which this cluster does not run: the Secret
    # never appears, so plain HTTP is still redirected and the handshake gets the proxy's
    # default certificate, not some other one. Nothing reaches a backend.
    redirect = get(proxy.http_port, host=host, path="/")
    assert redirect.status == 308
    assert redirect.headers["location"] == f"https://{host}:{proxy.https_port}/"
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    der = peer_certificate(proxy.https_port, server_name=host, context=context)
    assert certificate_names(ssl.DER_cert_to_PEM_cert(der).encode()) == ["kexpose-proxy.invalid"]


def _gateway_address(cluster: LocalCluster) -> str:
    """The address the Gateway controller bound the stack's Gateway on (its status)."""

    def bound() -> str | None:
        gateway = cluster.get_json(
            "/apis/gateway.networking.k8s.io/v1/namespaces/kexpose-system/gateways/kexpose"
        )
        addresses = (gateway.get("status") or {}).get("addresses") or []
        return str(addresses[0]["value"]) if addresses else None

    return wait_until(bound, timeout=ROUTE_TIMEOUT_S, what="the Gateway's address")


def _route_accepted(
    cluster: LocalCluster, namespace: str, name: str, *, controller: str = GATEWAY_CONTROLLER
) -> None:
    def accepted() -> bool | None:
        route = cluster.get_json(
            f"/apis/gateway.networking.k8s.io/v1/namespaces/{namespace}/httproutes/{name}"
        )
        for parent in (route.get("status") or {}).get("parents") or []:
            conditions = {c["type"]: c["status"] for c in parent.get("conditions") or []}
            if (
                parent.get("controllerName") == controller
                and conditions.get("Accepted") == "True"
                and conditions.get("ResolvedRefs") == "True"
            ):
                return True
        return None

    wait_until(accepted, timeout=ROUTE_TIMEOUT_S, what=f"HTTPRoute {namespace}/{name} accepted")


def _gateway_https_traffic(
    address: str,
    kube: Client,
    host: str,
    web: set[str],
    canary: set[str],
    api: set[str],
    auth: dict[str, str],
) -> None:
    cert = secret_pem(kube, "shop", "shop-web-tls", "tls.crt").decode()
    context = trusting(cert)

    def answered() -> Any:
        reply = get(443, host=host, path="/", tls=context, address=address, headers=auth)
        return reply if reply.status == 200 else None

    wait_until(answered, timeout=ROUTE_TIMEOUT_S, what=f"a 200 for https://{host}/")
    # The HTTPS listener presents the stack's certificate for the host (SNI).
    served = peer_certificate(443, server_name=host, context=context, address=address)
    assert served == _der(cert)
    # The canary by weight (90:10): both Services answer, each from its own endpoints. 200
    # requests miss the canary with probability 0.9**200 (< 1e-9) if the split were random.
    seen: dict[str, set[str]] = {"shop-web": set(), "shop-web-canary": set()}
    for _ in range(200):
        body = get(443, host=host, path="/", tls=context, address=address, headers=auth).json()
        assert body["x-forwarded-proto"] == "https"
        seen[body["app"]].add(body["address"])
    assert seen["shop-web"] <= web
    assert seen["shop-web"]
    assert seen["shop-web-canary"] <= canary
    assert seen["shop-web-canary"]
    # The canary by header: all of it, with the response header its filter sets.
    for _ in range(5):
        reply = get(
            443,
            host=host,
            path="/",
            tls=context,
            address=address,
            headers={**auth, "X-Canary": "always"},
        )
        assert reply.json()["app"] == "shop-web-canary"
        assert reply.headers["x-served-by"] == "canary"
    body = get(443, host=host, path="/api/v1", tls=context, address=address, headers=auth).json()
    assert body["app"] == "shop-api"
    assert body["address"] in api
    # Plain HTTP only redirects (the Gateway's HTTP listener carries the redirect route alone).
    redirect = get(80, host=host, path="/api?q=1", address=address)
    assert redirect.status == 308
    assert redirect.headers["location"] == f"https://{host}/api?q=1"


def _prod_gateway_https_traffic(
    address: str, issued: certmanager.IssuedCertificate, host: str, web: set[str], api: set[str]
) -> None:
    # The only trust anchor is the CA that cert-manager's issuer signed with (`ca.crt`): the
    # handshake verifies the served chain and the hostname as any browser would.
    context = ssl.create_default_context(cadata=issued.ca_pem)

    def answered() -> Any:
        try:
            reply = get(443, host=host, path="/", tls=context, address=address)
        except OSError:  # the proxy has not seen the issued Secret yet: no certificate for host
            return None
        return reply if reply.status == 200 else None

    first = wait_until(answered, timeout=ROUTE_TIMEOUT_S, what=f"a 200 for https://{host}/")
    assert first.json()["app"] == "shop-web"
    # The leaf served is the one cert-manager wrote into the Secret the listener references.
    served = peer_certificate(443, server_name=host, context=context, address=address)
    assert served == _der(_first_pem(issued.cert_pem))
    seen_web: set[str] = set()
    for _ in range(2 * len(web)):
        body = get(443, host=host, path="/", tls=context, address=address).json()
        assert body["app"] == "shop-web"
        assert body["x-forwarded-proto"] == "https"
        seen_web.add(body["address"])
    assert seen_web == web  # every replica gets requests (round robin)
    body = get(443, host=host, path="/api/v1", tls=context, address=address).json()
    assert body["app"] == "shop-api"
    assert body["address"] in api
    # Only the issued CA vouches for it: the system trust store does not verify the chain.
    with pytest.raises(ssl.SSLCertVerificationError):
        peer_certificate(
            443, server_name=host, context=ssl.create_default_context(), address=address
        )
    # Plain HTTP only redirects (the Gateway's HTTP listener carries the redirect route alone).
    redirect = get(80, host=host, path="/", address=address)
    assert redirect.status == 308
    assert redirect.headers["location"] == f"https://{host}/"


def _first_pem(chain: str) -> str:
    """The first certificate of a PEM chain (cert-manager's `tls.crt`: the leaf, then issuers)."""
    end = "-----END CERTIFICATE-----"
    return chain[: chain.index(end) + len(end)] + "\n"


def _staging_tester(project: PulumiProject) -> tuple[str, str]:
    """Staging's basic-auth user and its password, read from the stack's secret config."""
    done = project.run("config", "get", "--stack", "staging", "shop:testerPassword")
    return "tester", done.stdout.strip()


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _der(pem: str) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem)


# ---- issue 9: a stack with `kind: traefik`, Traefik out of cluster ----------------------------

#: The test stack (tests/e2e/stacks/), copied into the project's stacks/ beside the shipped ones.
TRAEFIK_STACK = "traefik"
TRAEFIK_HOST = "shop.traefik.example.com"
#: Where Traefik's entry points listen: local on `lo` in the private network namespace, apart
#: from the proxies' addresses. Traefik serves a Gateway listener on the entry point whose port
#: is the listener's, so the entry points take the ports the stack's Gateway listens on
#: (Traefik's 8000 and 8443: kexpose.manifests.controller).
TRAEFIK_ADDRESS = "127.0.12.1"
TRAEFIK_HTTP_PORT = 8000
TRAEFIK_HTTPS_PORT = 8443
#: The Traefik stack's basic-auth user (tests/e2e/stacks/Pulumi.traefik.yaml) and the config key
#: of its password, which the journey sets as a Pulumi secret, drawn per run.
TRAEFIK_TESTER = "tester"
TRAEFIK_PASSWORD_KEY = "shop:testerPassword"
#: The stack admits only 127.0.0.1 (allowSourceRanges); a client bound to this other loopback
#: address is outside.
OUTSIDE_SOURCE = "127.0.13.7"


@dataclass
class GatewayTraefik(TraefikProcess):
    """TraefikProcess with its `web` and `websecure` entry points on the Gateway's ports."""

    def static_configuration(self) -> dict[str, Any]:
        config = super().static_configuration()
        for name, port in (("web", TRAEFIK_HTTP_PORT), ("websecure", TRAEFIK_HTTPS_PORT)):
            config["entryPoints"][name]["address"] = f"{self.status_address}:{port}"
        return config


@pytest.fixture(scope="class")
def traefik_stack(journey: Journey) -> Iterator[Deployed]:
    """`pulumi up` of the Traefik test stack, destroyed after its tests whatever happened."""
    config = REPO_ROOT / "tests" / "e2e" / "stacks" / f"Pulumi.{TRAEFIK_STACK}.yaml"
    project = journey.project
    (project.directory / "stacks" / config.name).write_text(config.read_text())
    project.init(TRAEFIK_STACK)
    password = secrets.token_urlsafe(18)
    project.run(
        "config", "set", "--secret", "--stack", TRAEFIK_STACK, TRAEFIK_PASSWORD_KEY, password
    )
    deployment: Deployed | None = None
    try:
        up = project.up(TRAEFIK_STACK)
        rendered = render(project, TRAEFIK_STACK, journey.workdir / f"render-{TRAEFIK_STACK}")
        deployment = Deployed(TRAEFIK_STACK, up, rendered)
        yield deployment
    finally:
        if deployment is None or not deployment.destroyed:
            project.run("destroy", "--stack", TRAEFIK_STACK, "--yes", "--skip-preview", check=False)
        project.run("stack", "rm", TRAEFIK_STACK, "--yes", "--force", check=False)


@pytest.fixture(scope="class")
def traefik(
    traefik_stack: Deployed,
    toolchain: Toolchain,
    cluster: LocalCluster,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayTraefik]:
    """Traefik (the toolchain's build) with its Gateway API provider and its CRD provider (the
    apps' auth Middlewares) set up as the stack's Deployment sets it up, out of cluster like
    kexpose-proxy: the stack's Deployment pods are kwok fakes. Started after `pulumi up`
    installed the Gateway API and Traefik CRDs its providers watch."""
    (deployment,) = [
        m
        for m in traefik_stack.rendered
        if m["kind"] == "Deployment" and m["metadata"]["namespace"] == "kexpose-system"
    ]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    process = GatewayTraefik(
        toolchain.tool("traefik"),
        tmp_path_factory.mktemp("traefik"),
        cluster.kubeconfig,
        providers=("kubernetesGateway", "kubernetesCRD"),
        status_address=TRAEFIK_ADDRESS,
        crd_settings=crd_settings_of(args),
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


class TestTraefikStack:
    """The journey of a stack whose controller is Traefik (`kind: traefik`, `api: gateway`)."""

    def test_up_waits_and_traefik_accepts_the_routes(
        self, traefik_stack: Deployed, journey: Journey, kube: Client, traefik: GatewayTraefik
    ) -> None:
        outputs = journey.project.outputs(TRAEFIK_STACK)
        assert outputs["ingressClass"] == "traefik"
        assert outputs["controllerAddress"] == LB_ADDRESS
        for deployment in kube.list(Deployment, namespace="*", labels=MANAGED_BY):
            assert deployment.spec is not None
            assert deployment.status is not None
            assert deployment.status.availableReplicas == deployment.spec.replicas
        # Traefik's Gateway provider programs the Gateway and accepts both routes.
        assert _gateway_address(journey.cluster) == TRAEFIK_ADDRESS
        for namespace, name in (("shop", "shop-web"), ("kexpose-system", "kexpose-https-redirect")):
            _route_accepted(journey.cluster, namespace, name, controller=TRAEFIK_GATEWAY_CONTROLLER)

    def test_objects_in_the_api_match_kexpose_render(
        self, traefik_stack: Deployed, journey: Journey
    ) -> None:
        state = journey.project.export(TRAEFIK_STACK)
        managed = {
            identity(r["outputs"])
            for r in state["deployment"]["resources"]
            if r["type"].startswith("kubernetes:")
        }
        assert managed == {identity(m) for m in traefik_stack.rendered}
        problems: dict[str, list[str]] = {}
        for manifest in traefik_stack.rendered:
            live = journey.cluster.get_json(api_path(manifest))
            found = mismatches(without_secret_data(manifest), live)
            if found:
                problems["/".join(identity(manifest)[1:])] = found
        assert problems == {}

    def test_a_second_update_under_the_policy_pack_changes_nothing(
        self, traefik_stack: Deployed, journey: Journey
    ) -> None:
        # One update does both (the shipped stacks run them apart): the pack checks every
        # resource the update registers, and nothing changes.
        again = journey.project.up(
            TRAEFIK_STACK, "--expect-no-changes", "--policy-pack", str(journey.pack.launcher)
        )
        assert "unchanged" in again.stdout
        assert f"kexpose-exposure@v0.1.0 (local: {journey.pack.launcher})" in again.stdout
        assert "[mandatory]" not in again.stdout

    def test_real_traffic_through_traefik(
        self, traefik_stack: Deployed, journey: Journey, kube: Client, traefik: GatewayTraefik
    ) -> None:
        with EchoServers().running() as echo:
            web = serve_service(kube, echo, namespace="shop", service="shop-web")
            canary = serve_service(kube, echo, namespace="shop", service="shop-web-canary")
            api = serve_service(kube, echo, namespace="shop", service="shop-api")
            assert web
            assert canary
            assert api
            tester = _basic(TRAEFIK_TESTER, _traefik_password(journey.project))
            _traefik_https_traffic(traefik, kube, web, canary, api, auth=tester)

    def test_traefik_enforces_the_basic_auth_and_allow_list_middlewares(
        self, traefik_stack: Deployed, journey: Journey, kube: Client, traefik: GatewayTraefik
    ) -> None:
        """shop-web's auth as Traefik Middlewares (an ipAllowList, then basicAuth on the
        bcrypt htpasswd Secret made at deployment) that every rule of its HTTPRoute names:
        real requests with and without credentials, and from outside the allowed range, through
        Traefik (edge-auth.md, "Source ranges", "Basic")."""
        user, password = TRAEFIK_TESTER, _traefik_password(journey.project)
        htpasswd = secret_pem(kube, "shop", "shop-web-basic-auth", "auth").decode()
        assert htpasswd.startswith(f"{user}:$2b$12$")
        rendered = json.dumps(traefik_stack.rendered)
        leaked = [
            where
            for where, text in (
                ("the Secret", htpasswd),
                ("Pulumi's state", json.dumps(journey.project.export(TRAEFIK_STACK))),
                ("the stack outputs", json.dumps(journey.project.outputs(TRAEFIK_STACK))),
                ("kexpose render", rendered),
                ("traefik's log", traefik.log_path.read_text(errors="replace")),
            )
            if password in text
        ]
        assert leaked == [], "the tester's password is in " + ", ".join(leaked)
        assert "$2b$" not in rendered  # render shows no hash either (no password offline)
        middlewares = journey.cluster.get_json(
            "/apis/traefik.io/v1alpha1/namespaces/shop/middlewares"
        )["items"]
        assert {m["metadata"]["name"]: set(m["spec"]) for m in middlewares} == {
            "shop-web-allow-list": {"ipAllowList"},
            "shop-web-auth": {"basicAuth"},
        }
        host, address, port = TRAEFIK_HOST, TRAEFIK_ADDRESS, TRAEFIK_HTTPS_PORT
        context = trusting(secret_pem(kube, "shop", "shop-web-tls", "tls.crt").decode())
        with EchoServers().running() as echo:
            for service in ("shop-web", "shop-web-canary", "shop-api"):
                assert serve_service(kube, echo, namespace="shop", service=service)

            def ask(path: str, headers: dict[str, str], source: str | None = None) -> Any:
                return get(
                    port,
                    host=host,
                    path=path,
                    tls=context,
                    address=address,
                    headers=headers,
                    source=source,
                )

            def served() -> Any:
                try:
                    reply = ask("/", _basic(user, password))
                except OSError:  # the listener's certificate is not loaded yet
                    return None
                return reply if reply.status == 200 else None

            wait_until(
                served, timeout=ROUTE_TIMEOUT_S, what=f"traefik: a 200 for {host}\n{traefik.tail()}"
            )
            refused = [
                {},
                _basic(user, password + "x"),
                _basic("someone", password),
                {"Authorization": "Bearer " + password},
                {"X-Forwarded-User": user},  # a spoofed identity is no credential
            ]
            for path in ("/", "/api/v1"):
                for headers in refused:
                    reply = ask(path, headers)
                    assert reply.status == 401, (path, headers.keys(), reply.status)
                    assert reply.headers["www-authenticate"] == 'Basic realm="shop traefik"'
                    assert b"shop-" not in reply.body  # never reached a backend
                ok = ask(path, {**_basic(user, password), "X-Forwarded-User": "admin"}).json()
                apps = {"shop-api"} if path == "/api/v1" else {"shop-web", "shop-web-canary"}
                assert ok["app"] in apps
                assert ok["x-forwarded-user"] == user  # Traefik's headerField, the client's gone
                # Outside the allowed range: 403 before any credential is looked at, also when
                # the client claims an allowed address (its X-Forwarded-For is not believed).
                for headers in (
                    _basic(user, password),
                    {**_basic(user, password), "X-Forwarded-For": "127.0.0.1"},
                    {},
                ):
                    reply = ask(path, headers, source=OUTSIDE_SOURCE)
                    assert reply.status == 403, (path, headers.keys(), reply.status)
                    assert b"shop-" not in reply.body

    def test_destroy_leaves_nothing(
        self, traefik_stack: Deployed, journey: Journey, kube: Client
    ) -> None:
        journey.project.destroy(TRAEFIK_STACK)
        traefik_stack.destroyed = True
        assert leftovers(kube, journey.baseline_namespaces) == []


def _traefik_password(project: PulumiProject) -> str:
    """The tester's password the journey set for the Traefik stack (Pulumi secret config)."""
    done = project.run("config", "get", "--stack", TRAEFIK_STACK, TRAEFIK_PASSWORD_KEY)
    return done.stdout.strip()


def _traefik_https_traffic(
    traefik: GatewayTraefik,
    kube: Client,
    web: set[str],
    canary: set[str],
    api: set[str],
    *,
    auth: dict[str, str],
) -> None:
    host, address, port = TRAEFIK_HOST, TRAEFIK_ADDRESS, TRAEFIK_HTTPS_PORT
    cert = secret_pem(kube, "shop", "shop-web-tls", "tls.crt").decode()
    context = trusting(cert)

    def answered() -> Any:
        try:
            reply = get(port, host=host, path="/", tls=context, address=address, headers=auth)
        except OSError:  # Traefik has not loaded the listener's certificate yet
            return None
        return reply if reply.status == 200 else None

    wait_until(
        answered, timeout=ROUTE_TIMEOUT_S, what=f"traefik: a 200 for {host}\n{traefik.tail()}"
    )
    # The HTTPS listener presents the stack's certificate for the host (SNI).
    served = peer_certificate(port, server_name=host, context=context, address=address)
    assert served == _der(cert)
    # The canary by weight (90:10); 200 requests all miss it with probability 0.9**200 < 1e-9.
    seen: dict[str, set[str]] = {"shop-web": set(), "shop-web-canary": set()}
    for _ in range(200):
        body = get(port, host=host, path="/", tls=context, address=address, headers=auth).json()
        assert body["host"] == host
        seen[body["app"]].add(body["address"])
    assert seen["shop-web"] <= web
    assert seen["shop-web"]
    assert seen["shop-web-canary"] <= canary
    assert seen["shop-web-canary"]
    # The canary by header: all of it, with the response header its filter sets.
    for _ in range(5):
        reply = get(
            port,
            host=host,
            path="/",
            tls=context,
            address=address,
            headers={**auth, "X-Canary": "always"},
        )
        assert reply.json()["app"] == "shop-web-canary"
        assert reply.headers["x-served-by"] == "canary"
    body = get(port, host=host, path="/api/v1", tls=context, address=address, headers=auth).json()
    assert body["app"] == "shop-api"
    assert body["address"] in api
    assert (
        get(port, host=host, path="/", tls=context, address=address, headers=auth).headers.get(
            "x-served-by"
        )
        is None
    )
    # No route for another hostname on the HTTP listener.
    assert get(TRAEFIK_HTTP_PORT, host="other.example.com", path="/", address=address).status == 404
    # Plain HTTP only redirects to HTTPS (the redirect route is the HTTP listener's only one).
    redirect = get(TRAEFIK_HTTP_PORT, host=host, path="/api?q=1", address=address)
    assert redirect.status == 308
    assert redirect.headers["location"] == f"https://{host}/api?q=1"


# ---- 4 (fail): a stack the pack refuses, and one the components refuse --------------------------

BAD_PROGRAM = textwrap.dedent(
    """\
    # Raw pulumi-kubernetes objects, which kexpose's components would never build in prod.
    import pulumi_kubernetes as k8s

    ns = k8s.core.v1.Namespace("ns", metadata={"name": "e2e-bad"})
    k8s.core.v1.Service(
        "debug",
        metadata={"name": "debug", "namespace": "e2e-bad"},
        spec={
            "type": "NodePort",
            "selector": {"app": "debug"},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
        },
    )
    k8s.networking.v1.Ingress(
        "web",
        metadata={"name": "web", "namespace": "e2e-bad"},
        spec={
            "ingressClassName": "kexpose",
            "rules": [{"host": "bad.example.com", "http": {"paths": [{
                "path": "/",
                "pathType": "Prefix",
                "backend": {"service": {"name": "missing", "port": {"number": 80}}},
            }]}}],
        },
    )
    """
)


def test_the_policy_pack_refuses_a_bad_prod_stack(journey: Journey, kube: Client) -> None:
    project = journey.program("kexpose-bad", BAD_PROGRAM)
    project.init("prod", {"kexpose:environment": "prod"})
    with pytest.raises(PulumiError) as failed:
        project.preview("prod", "--policy-pack", str(journey.pack.launcher))
    output = failed.value.stdout
    for rule in ("svc-no-nodeport", "ing-require-tls", "ing-backend-service-exists"):
        assert f"[mandatory] [severity: high]  {rule}" in output
    assert "Service/e2e-bad/debug spec.type: is NodePort" in output
    assert "names Service 'missing'" in output
    # A preview: nothing was created.
    assert "e2e-bad" not in _names(kube.list(Namespace))


def test_the_components_refuse_a_bad_stack_before_registering_anything(
    journey: Journey, kube: Client
) -> None:
    # The shipped prod stack plus a NodePort debug app (allowed in dev only).
    config = yaml.safe_load((REPO_ROOT / "stacks" / "Pulumi.prod.yaml").read_text())
    debug = len(config["config"]["kexpose:apps"])
    config["config"]["kexpose:apps"].append(
        {
            "name": "debug",
            "namespace": "tools",
            "workload": {
                "image": "example.invalid/debug:1",
                "ports": [{"name": "http", "containerPort": 8080}],
            },
            "service": {"type": "NodePort", "ports": [{"name": "http", "port": 80}]},
        }
    )
    stacks = journey.project.directory / "stacks"
    (stacks / "Pulumi.prod-debug.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    project = journey.project
    project.init("prod-debug")
    try:
        with pytest.raises(PulumiError) as failed:
            project.up("prod-debug")
        message = failed.value.stdout + failed.value.stderr
        assert "stacks/Pulumi.prod-debug.yaml" in message
        assert f"kexpose:apps[{debug}].service.type: [svc-no-nodeport]" in message
        state = project.export("prod-debug")
        assert [
            r["type"]
            for r in state["deployment"].get("resources") or []
            if not r["type"].startswith("pulumi:")
        ] == []
        assert leftovers(kube, journey.baseline_namespaces) == []
    finally:
        project.run("stack", "rm", "prod-debug", "--yes", "--force", check=False)


# ---- 5: another program deploys through the components -----------------------------------------

COMPONENT_PROGRAM = textwrap.dedent(
    """\
    import pulumi
    import pulumi_kubernetes as k8s

    from kexpose.resources import ExposedApp, IngressController

    edge = IngressController(
        "edge",
        {"kind": "kexpose", "className": "edge", "namespace": "edge-system", "name": "edge"},
        environment="staging",
    )
    ns = k8s.core.v1.Namespace("hello-ns", metadata={"name": "hello"})
    hello = ExposedApp(
        "hello",
        {
            "name": "hello",
            "namespace": "hello",
            "workload": {
                "image": "example.invalid/hello:1",
                "ports": [{"name": "http", "containerPort": 9000}],
            },
            "service": {"ports": [{"name": "http", "port": 80}]},
            "ingress": {"rules": [{"host": "hello.example.com",
                                   "paths": [{"path": "/", "port": "http"}]}]},
        },
        pulumi.ResourceOptions(depends_on=[ns, edge]),
        environment="staging",
        ingress_class="edge",
    )
    pulumi.export("urls", hello.urls)
    pulumi.export("tlsSecret", hello.tls_secret_name)
    pulumi.export("edgeAddress", edge.load_balancer_address)
    """
)


HELLO_OUTPUTS: dict[str, Any] = {
    "urls": ["https://hello.example.com/"],
    "tlsSecret": "hello-tls",
    "edgeAddress": LB_ADDRESS,
}


def _hello_answers_over_https(kube: Client, proxy: ProxyProcess) -> None:
    """hello.example.com reaches the hello Service's endpoints, with the app's own certificate."""
    with EchoServers().running() as echo:
        backends = serve_service(kube, echo, namespace="hello", service="hello")
        cert = secret_pem(kube, "hello", "hello-tls", "tls.crt").decode()
        reply = _first_answer(proxy.https_port, "hello.example.com", "/", tls=trusting(cert))
        assert reply.json()["address"] in backends


def test_another_program_deploys_through_the_components(
    journey: Journey, kube: Client, ingress_proxy: ProxyProcess
) -> None:
    project = journey.program("hello", COMPONENT_PROGRAM)
    project.init("e2e")
    try:
        project.up("e2e")
        assert project.outputs("e2e") == HELLO_OUTPUTS
        state = project.export("e2e")
        types = {r["type"] for r in state["deployment"]["resources"]}
        assert {"kexpose:index:IngressController", "kexpose:index:ExposedApp"} <= types
        edge_class = kube.get(IngressClass, "edge").spec
        assert edge_class is not None
        assert edge_class.controller == "kexpose.dev/ingress-controller"
        _hello_answers_over_https(kube, ingress_proxy)
        project.destroy("e2e")
        assert leftovers(kube, journey.baseline_namespaces) == []
    finally:
        project.run("destroy", "--stack", "e2e", "--yes", "--skip-preview", check=False)
        project.run("stack", "rm", "e2e", "--yes", "--force", check=False)


# ---- 5 (YAML): a Pulumi YAML program uses kexpose as a component package ------------------------

HELLO_APP: dict[str, Any] = {
    "name": "hello",
    "namespace": "hello",
    "workload": {
        "image": "example.invalid/hello:1",
        "replicas": 3,
        "ports": [{"name": "http", "containerPort": 9000}],
    },
    "service": {"ports": [{"name": "http", "port": 80}]},
    "ingress": {"rules": [{"host": "hello.example.com", "paths": [{"path": "/", "port": "http"}]}]},
}

YAML_PROGRAM: dict[str, Any] = {
    "name": "hello-yaml",
    "runtime": "yaml",
    # The repository's package directory, whose executable plugin serves kexpose.provider.
    "packages": {"kexpose": str(REPO_ROOT / "provider")},
    "resources": {
        "edge": {
            "type": "kexpose:index:IngressController",
            "properties": {
                "environment": "staging",
                "controller": {
                    "kind": "kexpose",
                    "className": "edge",
                    "namespace": "edge-system",
                    "name": "edge",
                    "replicas": 2,
                },
            },
        },
        "ns": {
            "type": "kubernetes:core/v1:Namespace",
            "properties": {"metadata": {"name": "hello"}},
        },
        "hello": {
            "type": "kexpose:index:ExposedApp",
            "properties": {"environment": "staging", "ingressClass": "edge", "app": HELLO_APP},
            "options": {"dependsOn": ["${ns}", "${edge}"]},
        },
    },
    "outputs": {
        "urls": "${hello.urls}",
        "tlsSecret": "${hello.tlsSecretName}",
        "edgeAddress": "${edge.loadBalancerAddress}",
    },
}


def test_a_yaml_program_deploys_through_the_component_package(
    journey: Journey, kube: Client, ingress_proxy: ProxyProcess
) -> None:
    project = write_yaml_program(
        journey.toolchain,
        journey.workdir / "hello-yaml",
        document=YAML_PROGRAM,
        state=journey.project.state,
        kubeconfig=journey.cluster.kubeconfig,
    )
    project.init("e2e")
    try:
        project.up("e2e")
        assert project.outputs("e2e") == HELLO_OUTPUTS
        resources = project.export("e2e")["deployment"]["resources"]
        # One component per declaration, with the same type tokens a Python program records,
        # and the Kubernetes objects under them.
        components = sorted(r["type"] for r in resources if r["type"].startswith("kexpose:"))
        assert components == ["kexpose:index:ExposedApp", "kexpose:index:IngressController"]
        # Whole numbers crossed the wire as doubles and arrived as ints where the model wants them.
        spec = kube.get(Deployment, "hello", namespace="hello").spec
        assert spec is not None
        assert spec.replicas == 3
        assert spec.template.spec is not None
        assert spec.template.spec.containers[0].ports == [
            ContainerPort(name="http", containerPort=9000, protocol="TCP")
        ]
        # TLS material is made once: a second update changes nothing.
        project.run("up", "--stack", "e2e", "--yes", "--skip-preview", "--expect-no-changes")
        _hello_answers_over_https(kube, ingress_proxy)
        project.destroy("e2e")
        assert leftovers(kube, journey.baseline_namespaces) == []
    finally:
        project.run("destroy", "--stack", "e2e", "--yes", "--skip-preview", check=False)
        project.run("stack", "rm", "e2e", "--yes", "--force", check=False)
