"""A whole environment's exposure: its environment, controller and apps, as one stack reads it."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from kexpose.environment import Environment
from kexpose.model.app import AppSpec
from kexpose.model.auth import traefik_auth_problems
from kexpose.model.base import Frozen, Problems
from kexpose.model.controller import ControllerSpec
from kexpose.model.gateway import ApiKind
from kexpose.model.grpc import grpc_api_problems, grpc_stack_problems
from kexpose.model.route import api_problems, traefik_route_problems

__all__ = ["StackSpec"]


class StackSpec(Frozen):
    """``kexpose:environment``, ``kexpose:controller``, ``kexpose:apps`` and ``kexpose:policy``.

    ``policy`` holds overrides of the policy checker's config keys for this stack (for example
    an extra allowed LoadBalancer); it is validated by the policy config model.
    """

    environment: Environment
    controller: ControllerSpec | None = None
    apps: tuple[AppSpec, ...] = ()
    policy: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _cross_app(self) -> StackSpec:
        problems = Problems("StackSpec")
        seen: dict[tuple[str, str], int] = {}
        for i, app in enumerate(self.apps):
            key = (app.namespace, app.name)
            if key in seen:
                problems.add(
                    ("apps", i, "name"),
                    f"repeats app {app.namespace}/{app.name} of apps[{seen[key]}]; app names "
                    "must be unique within a namespace",
                    app.name,
                )
            seen.setdefault(key, i)
        by_key = {(a.namespace, a.name): a for a in self.apps}
        for i, app in enumerate(self.apps):
            if app.ingress is None:
                continue
            ctl = self.controller
            if ctl is not None and ctl.kind == "traefik" and self.class_of(app) == ctl.class_name:
                # Auth its Middlewares cannot carry: refused, never served without it.
                for at, message, given in traefik_auth_problems(app):
                    problems.add(("apps", i, *at), message, given)
                if self.api == "gateway":
                    traefik_route_problems(app.ingress, problems, ("apps", i, "ingress"))
            if app.ingress.class_name is None and self.controller is None and self.api == "ingress":
                problems.add(
                    ("apps", i, "ingress", "className"),
                    "is unset and the stack has no controller to take the class from",
                )
            api_problems(app.ingress, self.api, problems, ("apps", i, "ingress"))
            grpc_api_problems(app.ingress, self.api, problems, ("apps", i, "ingress"))
            for loc, backend in app.ingress.backends():
                namespace = backend.namespace or app.namespace
                if backend.service is None and namespace == app.namespace:
                    continue
                service = backend.service or app.name
                other = by_key.get((namespace, service))
                if other is None:
                    names = sorted(a.name for a in self.apps if a.namespace == namespace)
                    problems.add(
                        ("apps", i, "ingress", *loc, "service"),
                        f"is not an app in namespace {namespace!r}; allowed: "
                        + (", ".join(names) or "none"),
                        service,
                    )
                elif other.service.port_ref(backend.port) is None:
                    problems.add(
                        ("apps", i, "ingress", *loc, "port"),
                        f"is not a port of service {backend.service!r}; allowed: "
                        + other.service.allowed_refs(),
                        backend.port,
                    )
        grpc_stack_problems(self, problems)
        if self.api == "gateway":
            self._one_gateway_issuer(problems)
        problems.check()
        return self

    def _one_gateway_issuer(self, problems: Problems) -> None:
        # cert-manager's gateway-shim reads one issuer annotation per Gateway, and the stack has
        # one Gateway: apps that let it issue their certificates must share the issuer.
        first: tuple[int, tuple[str, str]] | None = None
        for i, app in enumerate(self.apps):
            tls = app.tls
            if tls.implied_mode() != "cert-manager" or tls.via != "annotation" or not tls.issuer:
                continue
            issuer = (tls.issuer_kind, tls.issuer)
            if first is None:
                first = (i, issuer)
            elif issuer != first[1]:
                problems.add(
                    ("apps", i, "tls", "issuer"),
                    f"the stack's Gateway is annotated with apps[{first[0]}]'s "
                    f"{first[1][0]} {first[1][1]!r} (cert-manager reads one issuer per "
                    "Gateway); use the same issuer, or tls.via 'certificate'",
                    tls.issuer,
                )

    @property
    def api(self) -> ApiKind:
        """The API the stack exposes HTTP through (the controller's; Ingress without one)."""
        return self.controller.api if self.controller is not None else "ingress"

    def class_of(self, app: AppSpec) -> str | None:
        if app.ingress is None:
            return None
        if app.ingress.class_name is not None:
            return app.ingress.class_name
        return self.controller.class_name if self.controller is not None else None
