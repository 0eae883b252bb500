"""Exposure: a whole environment (controller, namespaces, apps) from one StackSpec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import pulumi

from kexpose.manifests import TlsMaterial, grpc_route_grants, route_grants
from kexpose.model import AppSpec, StackSpec
from kexpose.plan import (
    app_namespaces,
    gateway_of,
    namespace_manifest,
    plan_stack,
    port_lookup,
    traefik_h2c,
    traefik_of,
)
from kexpose.profile import PROFILES
from kexpose.resources.exposed_app import PLACEHOLDER_MATERIAL, ExposedApp
from kexpose.resources.ingress_controller import IngressController
from kexpose.resources.kube import register, resource_name
from kexpose.validation import check_plan, parse_stack

__all__ = ["Exposure"]

TYPE: Final = "kexpose:index:Exposure"


def _placeholder(app: AppSpec) -> TlsMaterial | None:
    return PLACEHOLDER_MATERIAL if app.tls.mode in ("self-signed", "secret") else None


class Exposure(pulumi.ComponentResource):
    """Every object of one environment's exposure: the Ingress controller, the apps'
    namespaces and one ExposedApp per app (with ``api: gateway``, the controller's Gateway and
    the ReferenceGrants of routes that reach into other namespaces too).

    ``args`` is the stack config (``environment``, ``controller``, ``apps``, ``policy``) or a
    StackSpec. The whole stack is validated first (model, environment profile, the mandatory
    policy rules over every planned object, stack-wide ones included); on any problem one
    ConfigError names the stack file, app, field, value and what is allowed, and nothing is
    registered.
    """

    urls: pulumi.Output[dict[str, list[str]]]
    ingress_class: pulumi.Output[str | None]
    controller_address: pulumi.Output[str | None]

    def __init__(
        self,
        name: str,
        args: StackSpec | Mapping[str, Any],
        opts: pulumi.ResourceOptions | None = None,
        *,
        stack_file: str = "stack config",
    ) -> None:
        raw = (
            args.model_dump(by_alias=True, exclude_unset=True)
            if isinstance(args, StackSpec)
            else args
        )
        spec = parse_stack(raw, stack_file=stack_file)
        check_plan(plan_stack(spec, tls=_placeholder), spec=spec, stack_file=stack_file)
        super().__init__(TYPE, name, None, opts)

        # A `selector:` app's workload exists already, so its namespace did before the stack:
        # the stack applies its labels but never deletes it (that would delete the workloads
        # and everything else in it, as `pulumi destroy` of an imported stack did).
        existing = {app.namespace for app in spec.apps if app.selector is not None}
        namespaces = {
            ns: register(
                namespace_manifest(ns),
                name=f"{name}-ns-{ns}",
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=ns in existing or None),
            )
            for ns in app_namespaces(spec)
        }
        controller = None
        traefik = spec.controller is not None and spec.controller.kind == "traefik"
        if spec.controller is not None:
            controller = IngressController(
                f"{name}-{spec.controller.name}",
                spec.controller,
                pulumi.ResourceOptions(parent=self),
                environment=spec.environment,
                apps=spec.apps,
                _checked=True,
                _redirect_only=PROFILES[spec.environment].http_redirect_only,
            )
        ref = gateway_of(spec)
        gateway = f"{ref.namespace}/{ref.name}" if ref is not None else None
        # Routes need the Gateway API CRDs, and Traefik Middlewares Traefik's, which the
        # controller may install.
        after_controller: list[pulumi.Resource] = (
            [controller] if controller is not None and (ref is not None or traefik) else []
        )
        apps: dict[str, ExposedApp] = {}
        for app in spec.apps:
            deps = [namespaces[app.namespace]] if app.namespace in namespaces else []
            apps[f"{app.namespace}/{app.name}"] = ExposedApp(
                f"{name}-{app.namespace}-{app.name}",
                app,
                pulumi.ResourceOptions(parent=self, depends_on=[*deps, *after_controller]),
                environment=spec.environment,
                ingress_class=spec.class_of(app),
                gateway=gateway,
                _checked=True,
                _ports=port_lookup(spec),
                _traefik_h2c=traefik_h2c(spec),
                _traefik=traefik_of(spec, app),
            )
        if ref is not None:
            for _, grant in [*route_grants(spec.apps), *grpc_route_grants(spec.apps)]:
                namespace = grant["metadata"]["namespace"]
                register(
                    grant,
                    name=resource_name(f"{name}-{namespace}", grant),
                    opts=pulumi.ResourceOptions(
                        parent=self,
                        depends_on=[
                            *([namespaces[namespace]] if namespace in namespaces else []),
                            *after_controller,
                        ],
                    ),
                )
        self.urls = pulumi.Output.all(**{k: a.urls for k, a in apps.items()})
        self.ingress_class = pulumi.Output.from_input(
            spec.controller.class_name if spec.controller else None
        )
        self.controller_address = (
            controller.load_balancer_address if controller else pulumi.Output.from_input(None)
        )
        self.register_outputs(
            {
                "environment": spec.environment,
                "urls": self.urls,
                "ingressClass": self.ingress_class,
                "controllerAddress": self.controller_address,
            }
        )
