"""The in-cluster Ingress controller a stack runs: its kind, class, Service and size."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from kexpose.defaults import CONTROLLER_NAMESPACE, CONTROLLER_SERVICE, INGRESS_CLASS
from kexpose.model.base import Annotations, DNSLabel, Frozen, NodePort
from kexpose.model.gateway import ApiKind, GatewaySettings
from kexpose.model.service import Cidr
from kexpose.model.workload import ResourceAmounts, Resources

__all__ = ["ControllerKind", "ControllerService", "ControllerSpec"]

ControllerKind = Literal["kexpose", "traefik"]


class ControllerService(Frozen):
    """The controller's own Service, the one door from outside. ``type`` unset takes the
    environment's default (NodePort in dev, LoadBalancer elsewhere)."""

    type: Literal["LoadBalancer", "NodePort"] | None = None
    load_balancer_source_ranges: tuple[Cidr, ...] = ()
    allocate_load_balancer_node_ports: bool | None = None
    external_traffic_policy: Literal["Cluster", "Local"] | None = None
    load_balancer_class: str | None = None
    annotations: Annotations = Field(default_factory=dict)
    http_node_port: NodePort | None = None
    https_node_port: NodePort | None = None

    @model_validator(mode="after")
    def _lb_fields(self) -> ControllerService:
        if self.type == "NodePort" and (
            self.load_balancer_source_ranges
            or self.allocate_load_balancer_node_ports is not None
            or self.load_balancer_class is not None
        ):
            raise ValueError(
                "loadBalancerSourceRanges, allocateLoadBalancerNodePorts and loadBalancerClass "
                "apply only to type LoadBalancer"
            )
        return self


class ControllerSpec(Frozen):
    """An Ingress controller with everything it needs, claimed through one IngressClass.

    ``kind: kexpose`` runs kexpose-proxy; ``kind: traefik`` a pinned Traefik release with its
    Kubernetes Ingress provider. ``image`` unset takes the pinned image of the kind.

    ``api: gateway`` exposes the stack's apps through the Gateway API instead: a GatewayClass
    named ``className``, one Gateway (``gateway``) and an HTTPRoute per app rule.
    """

    kind: ControllerKind = "kexpose"
    name: DNSLabel = CONTROLLER_SERVICE
    namespace: DNSLabel = CONTROLLER_NAMESPACE
    class_name: DNSLabel = INGRESS_CLASS
    default_class: bool = False
    replicas: int | None = Field(default=None, ge=1)
    image: str | None = None
    resources: Resources = Resources(
        requests=ResourceAmounts(cpu="100m", memory="96Mi"),
        limits=ResourceAmounts(memory="256Mi"),
    )
    service: ControllerService = ControllerService()
    extra_args: tuple[str, ...] = ()
    api: ApiKind = "ingress"
    gateway: GatewaySettings = GatewaySettings()

    @model_validator(mode="after")
    def _gateway_needs_its_api(self) -> ControllerSpec:
        if self.api == "ingress" and "gateway" in self.model_fields_set:
            raise ValueError(
                "gateway settings apply only with api 'gateway' (api is 'ingress'); set api: "
                "gateway or drop them"
            )
        return self
