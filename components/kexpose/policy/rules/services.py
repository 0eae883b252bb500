"""Service rules that judge one Service at a time: how it is exposed beyond the cluster network.

Sources per rule are in ``policy-anchors.md``; the Kubernetes facts are from the Service API
reference (https://kubernetes.io/docs/reference/kubernetes-api/service-resources/service-v1/).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Final

from kexpose.policy.rules._address import address_of, is_localhost_name
from kexpose.policy.rules._kube import (
    Context,
    Finding,
    Obj,
    annotation_field,
    annotations_of,
    as_int,
    as_map,
    as_seq,
    as_str,
    spec,
)

__all__ = [
    "externalname_no_loopback",
    "lb_node_ports",
    "lb_source_ranges",
    "no_external_ips",
    "no_loadbalancer",
    "no_nodeport",
]

SOURCE_RANGES_ANNOTATION: Final = "service.beta.kubernetes.io/load-balancer-source-ranges"

# Annotations that make a cloud provision an internal (VPC-only) load balancer, with the value
# each provider documents. Compared exactly, as the specification lists them.
INTERNAL_ANNOTATIONS: Final[tuple[tuple[str, str], ...]] = (
    ("service.beta.kubernetes.io/aws-load-balancer-scheme", "internal"),
    ("service.beta.kubernetes.io/aws-load-balancer-internal", "true"),
    ("service.beta.kubernetes.io/azure-load-balancer-internal", "true"),
    ("networking.gke.io/load-balancer-type", "Internal"),
    ("cloud.google.com/load-balancer-type", "Internal"),
)


def _type(obj: Obj) -> str:
    # A missing type is ClusterIP (ServiceSpec.type default).
    return as_str(spec(obj).get("type")) or "ClusterIP"


def no_nodeport(obj: Obj, ctx: Context) -> Iterator[Finding]:
    if _type(obj) == "NodePort":
        yield Finding(
            obj,
            "spec.type",
            f"is NodePort, which opens the port on every node of the cluster; "
            f"NodePort Services are not allowed in {ctx.environment}.",
            "Use type ClusterIP and expose the app through the Ingress controller.",
        )


def lb_node_ports(obj: Obj, ctx: Context) -> Iterator[Finding]:
    if _type(obj) != "LoadBalancer":
        return
    s = spec(obj)
    # allocateLoadBalancerNodePorts defaults to true: a LoadBalancer opens node ports unless told
    # not to. Explicit nodePorts are honoured even when it is false. healthCheckNodePort (from
    # externalTrafficPolicy: Local) has its own allocator and only answers health probes.
    if s.get("allocateLoadBalancerNodePorts") is not False:
        yield Finding(
            obj,
            "spec.allocateLoadBalancerNodePorts",
            "is not false, so this LoadBalancer also opens a node port on every node "
            "(the Kubernetes default is true).",
            "Set spec.allocateLoadBalancerNodePorts: false (needs a load balancer that "
            "targets pods directly).",
        )
    for i, port in enumerate(as_seq(s.get("ports"))):
        node_port = as_int(as_map(port).get("nodePort"))
        if node_port not in (None, 0):
            yield Finding(
                obj,
                f"spec.ports[{i}].nodePort",
                f"pins node port {node_port!r}, which is opened on every node even when "
                "allocateLoadBalancerNodePorts is false.",
                "Remove the nodePort from the port.",
            )


def no_loadbalancer(obj: Obj, ctx: Context) -> Iterator[Finding]:
    if _type(obj) != "LoadBalancer":
        return
    ident = f"{obj.namespace}/{obj.name}"
    if ident not in ctx.config.allowed_loadbalancers:
        allowed = ", ".join(ctx.config.allowed_loadbalancers) or "none"
        yield Finding(
            obj,
            "spec.type",
            f"is LoadBalancer, but {ident} is not an allowed load balancer "
            f"(allowed_loadbalancers: {allowed}).",
            "Use type ClusterIP behind the Ingress controller, or add the Service to "
            "allowed_loadbalancers.",
        )


def _is_internal(obj: Obj) -> bool:
    notes = annotations_of(obj)
    return any(notes.get(key) == value for key, value in INTERNAL_ANNOTATIONS)


def _prefix_length(cidr: str) -> int | None:
    try:
        return ipaddress.ip_network(cidr.strip(), strict=False).prefixlen
    except ValueError:
        return None


def lb_source_ranges(obj: Obj, ctx: Context) -> Iterator[Finding]:
    if _type(obj) != "LoadBalancer":
        return
    if f"{obj.namespace}/{obj.name}" in ctx.config.public_loadbalancers or _is_internal(obj):
        return
    fix = (
        "Set spec.loadBalancerSourceRanges to the client networks (never /0), mark the load "
        "balancer internal, or add it to public_loadbalancers."
    )
    # Kubernetes reads the field, and only when it is empty the annotation; with neither the
    # load balancer allows every source (pkg/api/v1/service/util.go GetLoadBalancerSourceRanges).
    field_ranges = [as_str(r) or "" for r in as_seq(spec(obj).get("loadBalancerSourceRanges"))]
    if field_ranges:
        ranges = [(f"spec.loadBalancerSourceRanges[{i}]", r) for i, r in enumerate(field_ranges)]
    else:
        note = as_str(annotations_of(obj).get(SOURCE_RANGES_ANNOTATION)) or ""
        field = annotation_field(SOURCE_RANGES_ANNOTATION)
        ranges = [(field, r.strip()) for r in note.split(",") if r.strip()]
    if not ranges:
        yield Finding(
            obj,
            "spec.loadBalancerSourceRanges",
            "is empty and the source-ranges annotation is not set, so this public "
            "LoadBalancer accepts traffic from anywhere.",
            fix,
        )
        return
    for field, cidr in ranges:
        length = _prefix_length(cidr)
        if length == 0:
            yield Finding(obj, field, f"{cidr!r} allows every source address.", fix)
        elif length is None:
            # Not in the specification's list, but an entry Kubernetes cannot parse protects
            # nothing (and the cloud controller refuses the Service): reported, not skipped.
            yield Finding(obj, field, f"{cidr!r} is not a CIDR range.", fix)


def _same_ip(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a == b


def no_external_ips(obj: Obj, ctx: Context) -> Iterator[Finding]:
    allowed = ctx.config.allowed_external_ips
    for i, ip in enumerate(as_seq(spec(obj).get("externalIPs"))):
        text = str(ip)
        if not any(_same_ip(text, a) for a in allowed):
            yield Finding(
                obj,
                f"spec.externalIPs[{i}]",
                f"claims external IP {text!r}, which is not in allowed_external_ips; any "
                "Service can intercept traffic to an IP this way (CVE-2020-8554).",
                "Remove spec.externalIPs and expose the app through the Ingress controller, "
                "or add the IP to allowed_external_ips.",
            )


def _is_loopback(target: str) -> bool:
    host = target.strip().lower().rstrip(".")
    if is_localhost_name(host):
        return True
    address = address_of(host)
    return address is not None and address.is_loopback


def externalname_no_loopback(obj: Obj, ctx: Context) -> Iterator[Finding]:
    target = as_str(spec(obj).get("externalName"))
    if target is not None and _is_loopback(target):
        yield Finding(
            obj,
            "spec.externalName",
            f"points at {target!r}, a loopback name or address: whatever resolves it (the "
            "Ingress controller, a proxy) would connect to itself.",
            "Point the ExternalName at the real external DNS name.",
        )
