"""The Service of an app: its type (ClusterIP, NodePort, LoadBalancer) and named ports."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from kexpose.model.base import (
    DeferrableAnnotations,
    Frozen,
    NodePort,
    PortName,
    PortNumber,
    Problems,
)
from kexpose.model.protocol import AppProtocol

__all__ = ["Cidr", "ServicePort", "ServiceSpec", "ServiceType"]

ServiceType = Literal["ClusterIP", "NodePort", "LoadBalancer"]


def _check_cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(
            f"not a CIDR range with its host bits clear (e.g. '203.0.113.0/24'): {exc}"
        ) from None
    return value


Cidr = Annotated[str, AfterValidator(_check_cidr)]


class ServicePort(Frozen):
    """One Service port. ``target_port`` defaults to the container port of the same name when
    kexpose creates the workload, else to ``port``. ``app_protocol`` unset is set to
    ``kubernetes.io/h2c`` where the app's gRPC routes reach the port (``kexpose.model.grpc``)."""

    name: PortName
    port: PortNumber
    target_port: PortNumber | PortName | None = None
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    node_port: NodePort | None = None
    app_protocol: AppProtocol | None = None


class ServiceSpec(Frozen):
    """``type`` left unset is ClusterIP: only ever exposed inside the cluster unless asked."""

    type: ServiceType = "ClusterIP"
    ports: tuple[ServicePort, ...] = Field(min_length=1)
    annotations: DeferrableAnnotations = Field(default_factory=dict)
    load_balancer_source_ranges: tuple[Cidr, ...] = ()
    allocate_load_balancer_node_ports: bool | None = None
    external_traffic_policy: Literal["Cluster", "Local"] | None = None
    load_balancer_class: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ServiceSpec:
        problems = Problems("ServiceSpec")
        names: dict[str, int] = {}
        numbers: dict[tuple[int, str], int] = {}
        for i, p in enumerate(self.ports):
            if p.name in names:
                problems.add(("ports", i, "name"), f"repeats ports[{names[p.name]}]", p.name)
            names.setdefault(p.name, i)
            if (p.port, p.protocol) in numbers:
                problems.add(
                    ("ports", i, "port"), f"repeats ports[{numbers[p.port, p.protocol]}]", p.port
                )
            numbers.setdefault((p.port, p.protocol), i)
            # ServiceSpec API reference: nodePort applies to NodePort and LoadBalancer only.
            if p.node_port is not None and self.type == "ClusterIP":
                problems.add(
                    ("ports", i, "nodePort"),
                    "nodePort is allowed only with type NodePort or LoadBalancer (type is "
                    "ClusterIP)",
                    p.node_port,
                )
        # The load balancer fields mean something only for type LoadBalancer (the API server
        # refuses loadBalancerSourceRanges elsewhere and ignores the rest).
        if self.type != "LoadBalancer":
            lb_only = {
                "loadBalancerSourceRanges": self.load_balancer_source_ranges or None,
                "allocateLoadBalancerNodePorts": self.allocate_load_balancer_node_ports,
                "loadBalancerClass": self.load_balancer_class,
            }
            for key, value in lb_only.items():
                if value is not None:
                    problems.add(
                        (key,), f"allowed only with type LoadBalancer (type is {self.type})", value
                    )
        if self.external_traffic_policy is not None and self.type == "ClusterIP":
            problems.add(
                ("externalTrafficPolicy",),
                "applies only to NodePort and LoadBalancer Services (type is ClusterIP)",
                self.external_traffic_policy,
            )
        problems.check()
        return self

    def port_ref(self, ref: int | str) -> ServicePort | None:
        """The port an Ingress backend refers to: by name, or by ``port`` (never targetPort)."""
        if isinstance(ref, int):
            return next((p for p in self.ports if p.port == ref), None)
        return next((p for p in self.ports if p.name == ref), None)

    def allowed_refs(self) -> str:
        return ", ".join(f"{p.name} ({p.port})" for p in self.ports)
