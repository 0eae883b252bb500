"""Builders for an in-cluster Ingress controller: everything it needs, as plain manifests.

Namespace, ServiceAccount, least-privilege RBAC, Deployment, Service, IngressClass and
PodDisruptionBudget, for kexpose-proxy or a pinned Traefik. Written as typed objects rather than
a Helm release so that previews and policies see every one of them. With ``api: gateway`` also
the Gateway API CRDs (unless the platform owns them), the GatewayClass, the stack's Gateway
(``kexpose.manifests.gateway``) and the RBAC and arguments each controller needs to serve them.
Traefik also runs its CRD provider, with either API, to read the apps' auth Middlewares
(``kexpose.manifests.middleware``), and gets Traefik's CRDs and the RBAC to read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from kexpose.defaults import (
    CONTROLLER_NAME,
    GATEWAY_CONTROLLER_NAME,
    TRAEFIK_CONTROLLER_NAME,
    TRAEFIK_GATEWAY_CONTROLLER_NAME,
)
from kexpose.manifests.auth import edge_auth_crd
from kexpose.manifests.common import (
    MANAGED_BY,
    Manifest,
    container_security,
    exposure_fields,
    metadata,
    pod_security,
    resources,
)
from kexpose.manifests.gateway import (
    NAMESPACE_NAME_LABEL,
    PATCH_FORCE,
    crd_manifests,
    gateway_manifests,
)
from kexpose.model import AppSpec, ControllerKind, ControllerSpec
from kexpose.traefik import GROUP as TRAEFIK_GROUP
from kexpose.traefik import TRAEFIK_VERSION
from kexpose.traefik import crds as traefik_crds

__all__ = [
    "KINDS",
    "ControllerKindInfo",
    "controller_manifests",
    "served_namespaces",
    "traefik_crd_manifests",
]


@dataclass(frozen=True, slots=True)
class ControllerKindInfo:
    """What differs between the controller kinds kexpose can run."""

    image: str
    controller_string: str
    http_port: int
    https_port: int
    health_port: int
    liveness_path: str
    readiness_path: str
    run_as_user: int
    #: Cluster-wide read access the controller needs, as (apiGroup, resources, verbs).
    reads: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]
    #: Whether it elects a leader through a coordination.k8s.io Lease in its namespace.
    leader_election: bool
    #: How it writes Ingress status: kexpose-proxy merge-patches, Traefik updates.
    status_verbs: tuple[str, ...]
    #: GatewayClass ``spec.controllerName`` it claims.
    gateway_controller_string: str
    #: Ports of the Gateway's HTTP and HTTPS listeners as the controller binds them: Traefik
    #: serves a listener on the entry point with the same port; kexpose-proxy binds the
    #: listener's own port (below 1024 thanks to the pod's ip_unprivileged_port_start sysctl).
    gateway_http_port: int
    gateway_https_port: int
    #: Extra read access with ``api: gateway``, as (apiGroup, resources, verbs).
    gateway_reads: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]
    #: Status subresources it writes with ``api: gateway`` (with ``status_verbs``).
    gateway_status: tuple[str, ...]
    #: Extra read access for the custom resources it reads with either API (Traefik's
    #: Middlewares), as (apiGroup, resources, verbs).
    crd_reads: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = ()


# Both controllers watch the same objects to build routes (Ingress API: backends resolve through
# Services; EndpointSlices give the ready addresses; TLS Secrets give certificates) and write
# only Ingress status. Nothing here grants create/update/delete on workloads or Secrets.
_WATCH = ("get", "list", "watch")
_COMMON_READS: Final = (
    ("", ("services", "secrets"), _WATCH),
    ("discovery.k8s.io", ("endpointslices",), _WATCH),
    ("networking.k8s.io", ("ingresses", "ingressclasses"), _WATCH),
)

_GW: Final = "gateway.networking.k8s.io"

KINDS: Final[dict[ControllerKind, ControllerKindInfo]] = {
    "kexpose": ControllerKindInfo(
        image="ghcr.io/kexpose/kexpose-proxy:0.1.0",
        controller_string=CONTROLLER_NAME,
        http_port=8080,
        https_port=8443,
        health_port=10254,
        liveness_path="/healthz",
        readiness_path="/readyz",
        run_as_user=65532,
        reads=_COMMON_READS,
        leader_election=True,
        status_verbs=("patch",),
        gateway_controller_string=GATEWAY_CONTROLLER_NAME,
        gateway_http_port=80,
        gateway_https_port=443,
        # What kexpose-proxy watches with --gateway-addresses (proxy/routes GATEWAY_KINDS and
        # EXTENSION_KINDS): Namespaces for allowedRoutes selectors, ConfigMaps for the CA
        # bundles of client-certificate validation (Gateway spec.tls.frontend), ListenerSets,
        # GRPCRoutes (issue 11), and kexpose's EdgeAuth (an HTTPRoute's ExtensionRef auth
        # filter); it writes the status of the kinds it owns.
        gateway_reads=(
            ("", ("namespaces", "configmaps"), _WATCH),
            (
                _GW,
                (
                    "gatewayclasses",
                    "gateways",
                    "httproutes",
                    "grpcroutes",
                    "referencegrants",
                    "listenersets",
                ),
                _WATCH,
            ),
            ("kexpose.dev", ("edgeauths",), _WATCH),
        ),
        gateway_status=(
            "gatewayclasses/status",
            "gateways/status",
            "httproutes/status",
            "grpcroutes/status",
            "listenersets/status",
        ),
    ),
    # Traefik v3.7 (pinned patch: the release whose CRDs kexpose.traefik embeds and the e2e
    # tests run). Since v3.1 its Kubernetes providers read EndpointSlices and Nodes (NodePort
    # load-balancing): https://doc.traefik.io/traefik/migration/v3/
    "traefik": ControllerKindInfo(
        image=f"docker.io/library/traefik:{TRAEFIK_VERSION}",
        controller_string=TRAEFIK_CONTROLLER_NAME,
        http_port=8000,
        https_port=8443,
        health_port=9000,
        liveness_path="/ping",
        readiness_path="/ping",
        run_as_user=65532,
        reads=(*_COMMON_READS, ("", ("nodes",), _WATCH)),
        leader_election=False,
        status_verbs=("update",),
        gateway_controller_string=TRAEFIK_GATEWAY_CONTROLLER_NAME,
        gateway_http_port=8000,
        gateway_https_port=8443,
        # Traefik's documented Gateway provider RBAC (reference/dynamic-configuration/
        # kubernetes-gateway-rbac.yml), without pods (OTel attributes only) and without
        # referencegrants/status (ReferenceGrant has no status subresource).
        gateway_reads=(
            ("", ("namespaces", "configmaps"), _WATCH),
            (
                _GW,
                (
                    "gatewayclasses",
                    "gateways",
                    "httproutes",
                    "grpcroutes",
                    "tcproutes",
                    "tlsroutes",
                    "referencegrants",
                    "backendtlspolicies",
                ),
                _WATCH,
            ),
        ),
        gateway_status=(
            "gatewayclasses/status",
            "gateways/status",
            "httproutes/status",
            "grpcroutes/status",
            "tcproutes/status",
            "tlsroutes/status",
            "backendtlspolicies/status",
        ),
        # Its Kubernetes CRD provider (the apps' Middlewares: kexpose.manifests.middleware), as
        # Traefik documents its RBAC (reference/dynamic-configuration/kubernetes-crd-rbac.yml):
        # an informer per traefik.io kind (it waits for all of them, whichever it uses) and
        # ConfigMaps besides the Services, EndpointSlices, Secrets and Nodes read above.
        # Without pods (OTel attributes only).
        crd_reads=(
            ("", ("configmaps",), _WATCH),
            (
                TRAEFIK_GROUP,
                tuple(sorted(c["spec"]["names"]["plural"] for c in traefik_crds())),
                _WATCH,
            ),
        ),
    ),
}


def _labels(c: ControllerSpec) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": c.name,
        "app.kubernetes.io/instance": c.name,
        "app.kubernetes.io/component": "ingress-controller",
    }


def _selector(c: ControllerSpec) -> dict[str, str]:
    return {"app.kubernetes.io/name": c.name, "app.kubernetes.io/instance": c.name}


def served_namespaces(c: ControllerSpec, apps: Sequence[AppSpec]) -> list[str]:
    """The namespaces of the apps whose routes the controller serves (every routed app with
    ``api: gateway``, those of its class with an Ingress), sorted; the controller's own when
    there are none."""
    found = {
        a.namespace
        for a in apps
        if a.ingress is not None
        and (c.api == "gateway" or a.ingress.class_name in (None, c.class_name))
    }
    return sorted(found) or [c.namespace]


def _args(c: ControllerSpec, info: ControllerKindInfo, apps: Sequence[AppSpec]) -> list[str]:
    publish = f"{c.namespace}/{c.name}"
    if c.kind == "kexpose":
        args = [
            f"--controller-name={info.controller_string}",
            f"--publish-service={publish}",
            f"--http-port={info.http_port}",
            f"--https-port={info.https_port}",
            f"--health-port={info.health_port}",
            # The Lease the Role below lets it read and renew (resourceNames).
            f"--election-id={c.name}",
            # Keep accepting while the endpoint controllers and kube-proxy take this pod out
            # of the Service (a few seconds), then drain; both fit in the grace period below.
            "--shutdown-delay=5",
            "--drain-timeout=25",
            "--log-format=json",
        ]
        if c.api == "gateway":
            args += [
                f"--gateway-controller-name={info.gateway_controller_string}",
                f"--gateway-addresses={c.gateway.addresses}",
            ]
    else:
        args = [
            f"--entryPoints.web.address=:{info.http_port}/tcp",
            f"--entryPoints.websecure.address=:{info.https_port}/tcp",
            "--entryPoints.websecure.http.tls=true",
            f"--entryPoints.traefik.address=:{info.health_port}/tcp",
            "--ping=true",
            "--api.dashboard=false",
            "--providers.kubernetesingress=true",
            f"--providers.kubernetesingress.ingressclass={c.class_name}",
            f"--providers.kubernetesingress.ingressendpoint.publishedservice={publish}",
            # The CRD provider reads the apps' Middlewares (their edge auth), and nothing else
            # of anyone's: only in the namespaces of the apps it serves (an empty list would
            # mean all), only objects kexpose made (the label selector applies to Traefik's
            # own kinds: a tenant's IngressRoute or Middleware in an app namespace is not
            # served), and no reference across namespaces. safeNaming names a Middleware
            # <namespace>_<name>, which cannot collide (kexpose.manifests.middleware).
            "--providers.kubernetescrd=true",
            "--providers.kubernetescrd.namespaces=" + ",".join(served_namespaces(c, apps)),
            "--providers.kubernetescrd.labelSelector=app.kubernetes.io/managed-by=kexpose",
            "--providers.kubernetescrd.allowCrossNamespace=false",
            "--providers.kubernetescrd.allowExternalNameServices=false",
            "--providers.kubernetescrd.safeNaming=true",
            "--metrics.prometheus=true",
            "--log.format=json",
            "--accesslog=true",
            "--accesslog.format=json",
            "--global.checknewversion=false",
            "--global.sendanonymoususage=false",
        ]
        if c.api == "gateway":
            # Gateway listeners are served on the entry point of the same port (8000, 8443).
            args += [
                "--providers.kubernetesgateway=true",
                f"--providers.kubernetesgateway.statusaddress.service.name={c.name}",
                f"--providers.kubernetesgateway.statusaddress.service.namespace={c.namespace}",
            ]
    return [*args, *c.extra_args]


def _rbac(c: ControllerSpec, info: ControllerKindInfo) -> list[Manifest]:
    role_name = f"{c.namespace}-{c.name}"
    reads = [*info.reads, *info.crd_reads, *(info.gateway_reads if c.api == "gateway" else ())]
    rules: list[dict[str, Any]] = [
        {"apiGroups": [g], "resources": list(r), "verbs": list(v)} for g, r, v in reads
    ]
    # Status is a subresource: a write verb on ingresses/status allows writing status only,
    # never the Ingress spec
    # (https://kubernetes.io/docs/reference/access-authn-authz/rbac/#referring-to-resources).
    rules.append(
        {
            "apiGroups": ["networking.k8s.io"],
            "resources": ["ingresses/status"],
            "verbs": list(info.status_verbs),
        }
    )
    if c.api == "gateway":
        rules.append(
            {
                "apiGroups": [_GW],
                "resources": list(info.gateway_status),
                "verbs": list(info.status_verbs),
            }
        )
    subject = [{"kind": "ServiceAccount", "name": c.name, "namespace": c.namespace}]
    out: list[Manifest] = [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": metadata(role_name, labels=_labels(c)),
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": metadata(role_name, labels=_labels(c)),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role_name,
            },
            "subjects": subject,
        },
    ]
    if info.leader_election:
        # Leases live in the controller's own namespace, so a Role (not a ClusterRole) is
        # enough; "create" cannot be limited by resourceNames, the rest can be.
        out += [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": metadata(f"{c.name}-leader", c.namespace, labels=_labels(c)),
                "rules": [
                    {
                        "apiGroups": ["coordination.k8s.io"],
                        "resources": ["leases"],
                        "verbs": ["create"],
                    },
                    {
                        "apiGroups": ["coordination.k8s.io"],
                        "resources": ["leases"],
                        "resourceNames": [c.name],
                        "verbs": ["get", "update"],
                    },
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": metadata(f"{c.name}-leader", c.namespace, labels=_labels(c)),
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": f"{c.name}-leader",
                },
                "subjects": subject,
            },
        ]
    return out


def _deployment(c: ControllerSpec, info: ControllerKindInfo, apps: Sequence[AppSpec]) -> Manifest:
    replicas = c.replicas or 1
    # The controller Service's http/https target the ports the stack's door listens on: the
    # Gateway's listeners with api: gateway, the Ingress entry points otherwise.
    gateway = c.api == "gateway"
    http_port = info.gateway_http_port if gateway else info.http_port
    https_port = info.gateway_https_port if gateway else info.https_port

    def http_probe(path: str, period: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": path, "port": "health"},
            "periodSeconds": period,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        }

    container: dict[str, Any] = {
        "name": "controller",
        "image": c.image or info.image,
        "args": _args(c, info, apps),
        "ports": [
            {"name": "http", "containerPort": http_port, "protocol": "TCP"},
            {"name": "https", "containerPort": https_port, "protocol": "TCP"},
            {"name": "health", "containerPort": info.health_port, "protocol": "TCP"},
        ],
        "env": [
            # The Lease holder identity and the namespace come from the downward API.
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {
                "name": "POD_NAMESPACE",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
            },
        ],
        "resources": resources(c.resources),
        "securityContext": container_security(),
        "livenessProbe": http_probe(info.liveness_path, 10),
        "readinessProbe": http_probe(info.readiness_path, 5),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 - an emptyDir, not a shared /tmp,
    }
    security = pod_security(info.run_as_user)
    if gateway and min(http_port, https_port) < 1024:
        # Non-root listeners on 80/443: a namespaced, "safe" sysctl that the restricted Pod
        # Security Standard allows (https://kubernetes.io/docs/tasks/administer-cluster/sysctl-cluster/).
        security["sysctls"] = [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]
    pod: dict[str, Any] = {
        "serviceAccountName": c.name,
        "securityContext": security,
        "terminationGracePeriodSeconds": 60,
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    if replicas > 1:
        # Replicas on different nodes, so that one node failing never takes the door away.
        pod["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": _selector(c)},
            }
        ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(c.name, c.namespace, labels=_labels(c)),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": _selector(c)},
            "template": {"metadata": {"labels": _labels(c)}, "spec": pod},
        },
    }


def _service(c: ControllerSpec) -> Manifest:
    s = c.service
    ports: list[dict[str, Any]] = []
    for name, port, node_port in (
        ("http", 80, s.http_node_port),
        ("https", 443, s.https_node_port),
    ):
        entry: dict[str, Any] = {"name": name, "port": port, "targetPort": name, "protocol": "TCP"}
        if node_port is not None:
            entry["nodePort"] = node_port
        ports.append(entry)
    spec: dict[str, Any] = {
        "type": s.type or "LoadBalancer",
        "selector": _selector(c),
        "ports": ports,
        **exposure_fields(s),
    }
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(c.name, c.namespace, labels=_labels(c), annotations=s.annotations),
        "spec": spec,
    }


def traefik_crd_manifests() -> list[Manifest]:
    """Traefik's CRDs (kexpose.traefik), labelled as kexpose's, adopted when already there and
    retained on destroy like the Gateway API CRDs (manifests/gateway.py crd_manifests says
    why: deleting a CRD deletes every object of its kind in the cluster, anyone's)."""
    out = []
    for crd in traefik_crds():
        meta = crd.setdefault("metadata", {})
        meta["labels"] = {**meta.get("labels", {}), **MANAGED_BY}
        meta["annotations"] = {**meta.get("annotations", {}), PATCH_FORCE: "true"}
        out.append(crd)
    return out


def controller_manifests(
    c: ControllerSpec, *, apps: Sequence[AppSpec] = (), redirect_only: bool = False
) -> list[Manifest]:
    """Every object of one resolved controller, in apply order.

    With ``api: gateway``, ``apps`` (resolved) give the Gateway its listeners, and
    ``redirect_only`` (the environment's) keeps its HTTP listener to the HTTPS redirect.
    """
    info = KINDS[c.kind]
    ns: Manifest = {
        "apiVersion": "v1",
        "kind": "Namespace",
        # Enforce the restricted Pod Security Standard on the controller's namespace.
        "metadata": metadata(
            c.namespace,
            labels={
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
                # Set by the API server anyway; written out for offline readers (plan.py).
                NAMESPACE_NAME_LABEL: c.namespace,
            },
        ),
    }
    sa: Manifest = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(c.name, c.namespace, labels=_labels(c)),
    }
    ingress_class: Manifest = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": metadata(
            c.class_name,
            labels=_labels(c),
            annotations=(
                {"ingressclass.kubernetes.io/is-default-class": "true"} if c.default_class else None
            ),
        ),
        "spec": {"controller": info.controller_string},
    }
    pdb: Manifest = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(c.name, c.namespace, labels=_labels(c)),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _selector(c)}},
    }
    # Traefik's CRDs with either API: its CRD provider waits for all of them.
    traefik = traefik_crd_manifests() if c.kind == "traefik" else []
    deployment = _deployment(c, info, apps)
    if c.api != "gateway":
        return [*traefik, ns, sa, *_rbac(c, info), deployment, _service(c), ingress_class, pdb]
    crds = [*(crd_manifests() if c.gateway.install_crds else []), *traefik]
    if c.kind == "kexpose":
        # kexpose's own CRD, whoever owns the Gateway API's (installCrds: false means the
        # platform does, and it has no reason to carry ours): the apps' HTTPRoutes name
        # EdgeAuth objects for their auth, which the proxy reads (RBAC above).
        crds.append(edge_auth_crd())
    gateway = gateway_manifests(
        c,
        controller_name=info.gateway_controller_string,
        labels=_labels(c),
        apps=apps,
        http_port=info.gateway_http_port,
        https_port=info.gateway_https_port,
        redirect_only=redirect_only,
    )
    return [
        *crds,
        ns,
        sa,
        *_rbac(c, info),
        deployment,
        _service(c),
        ingress_class,
        pdb,
        *gateway,
    ]
