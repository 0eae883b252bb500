"""IngressController: an in-cluster Ingress controller and everything it needs, as a component."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import pulumi
from pydantic import ValidationError

from kexpose.environment import Environment
from kexpose.manifests import KINDS, controller_manifests
from kexpose.model import AppSpec, ControllerSpec, StackSpec
from kexpose.plan import Planned, controller_plan
from kexpose.profile import PROFILES, resolve
from kexpose.resources.exposed_app import _lb_address, environment_from_config
from kexpose.resources.kube import register, resource_name
from kexpose.validation import check_plan, config_error_for, policy_config_for

__all__ = ["IngressController"]

TYPE: Final = "kexpose:index:IngressController"


class IngressController(pulumi.ComponentResource):
    """Namespace, ServiceAccount, least-privilege ClusterRole/Binding (and a Role for its
    leader-election Lease), Deployment, Service, IngressClass and PodDisruptionBudget.

    ``args`` is a :class:`~kexpose.model.ControllerSpec` or a mapping of the same shape.
    ``kind`` picks kexpose-proxy or Traefik. The Service is a LoadBalancer, or in dev a
    NodePort; everything is validated before the component is registered.

    With ``api: gateway`` also the Gateway API CRDs (``gateway.installCrds``), a GatewayClass
    named ``className`` and the stack's Gateway: ``apps`` (the apps whose routes it serves, in
    the shape of ``ExposedApp``'s args) give it an HTTPS listener per TLS host.
    """

    class_name: pulumi.Output[str]
    api: pulumi.Output[str]
    gateway: pulumi.Output[str | None]
    controller_name: pulumi.Output[str]
    namespace: pulumi.Output[str]
    service_name: pulumi.Output[str]
    load_balancer_address: pulumi.Output[str | None]

    def __init__(
        self,
        name: str,
        args: ControllerSpec | Mapping[str, Any] | None = None,
        opts: pulumi.ResourceOptions | None = None,
        *,
        environment: Environment | None = None,
        apps: Sequence[AppSpec | Mapping[str, Any]] = (),
        _checked: bool = False,
        _redirect_only: bool = False,
    ) -> None:
        if _checked and isinstance(args, ControllerSpec):
            ctrl, resolved, redirect_only = (
                args,
                [a for a in apps if isinstance(a, AppSpec)],
                _redirect_only,
            )
        else:
            ctrl, resolved, redirect_only = self._validate(name, args, environment, apps)
        super().__init__(TYPE, name, None, opts)
        made: dict[str, pulumi.CustomResource] = {}
        crds: list[pulumi.Resource] = []
        manifests = controller_manifests(ctrl, apps=resolved, redirect_only=redirect_only)
        for manifest in manifests:
            kind = manifest["kind"]
            # Everything namespaced waits for the Namespace; Gateway API objects for their
            # CRDs when this component installs them.
            deps: list[pulumi.Resource] = [made["Namespace"]] if "Namespace" in made else []
            if manifest["apiVersion"].startswith("gateway.networking.k8s.io/"):
                deps += crds
            made[kind] = register(
                manifest,
                name=resource_name(name, manifest),
                # CRDs stay on destroy (manifests/gateway.py crd_manifests says why).
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=deps,
                    retain_on_delete=kind == "CustomResourceDefinition" or None,
                ),
            )
            if kind == "CustomResourceDefinition":
                crds.append(made[kind])
        svc = made["Service"]
        self.class_name = pulumi.Output.from_input(ctrl.class_name)
        self.api = pulumi.Output.from_input(ctrl.api)
        self.gateway = pulumi.Output.from_input(
            f"{ctrl.namespace}/{ctrl.gateway.name}" if ctrl.api == "gateway" else None
        )
        self.controller_name = pulumi.Output.from_input(KINDS[ctrl.kind].controller_string)
        self.namespace = pulumi.Output.from_input(ctrl.namespace)
        self.service_name = svc.metadata.apply(lambda m: m["name"])  # type: ignore[attr-defined]
        self.load_balancer_address = (
            svc.status.apply(_lb_address)  # type: ignore[attr-defined]
            if ctrl.service.type == "LoadBalancer"
            else pulumi.Output.from_input(None)
        )
        self.register_outputs(
            {
                "className": self.class_name,
                "api": self.api,
                "gateway": self.gateway,
                "controllerName": self.controller_name,
                "namespace": self.namespace,
                "serviceName": self.service_name,
                "serviceType": ctrl.service.type,
                "loadBalancerAddress": self.load_balancer_address,
            }
        )

    @staticmethod
    def _validate(
        name: str,
        args: ControllerSpec | Mapping[str, Any] | None,
        environment: Environment | None,
        apps: Sequence[AppSpec | Mapping[str, Any]],
    ) -> tuple[ControllerSpec, list[AppSpec], bool]:
        env = environment or environment_from_config()
        where = f"stack {pulumi.get_stack()!r}, IngressController {name!r}"
        try:
            ctrl = (
                args
                if isinstance(args, ControllerSpec)
                else ControllerSpec.model_validate(args or {})
            )
            app_specs = [a if isinstance(a, AppSpec) else AppSpec.model_validate(a) for a in apps]
        except ValidationError as exc:
            raise config_error_for(exc, model=ControllerSpec, where=where) from None
        try:
            spec = resolve(StackSpec(environment=env, controller=ctrl, apps=tuple(app_specs)))
        except ValidationError as exc:
            # Profile problems are reported under "controller." of a stack; here they are the
            # component's own args.
            raise config_error_for(exc, model=StackSpec, where=where) from None
        assert spec.controller is not None
        plan = [Planned(m, ("controller",)) for m in controller_plan(spec)]
        check_plan(
            plan, spec=spec, stack_file=where, config=policy_config_for(spec), whole_stack=False
        )
        return spec.controller, list(spec.apps), PROFILES[env].http_redirect_only
