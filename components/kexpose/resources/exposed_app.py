"""ExposedApp: one app's workload, Service, Ingress and TLS as a Pulumi component."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import pulumi
from pydantic import ValidationError

from kexpose.environment import ENVIRONMENTS, Environment
from kexpose.errors import ConfigError
from kexpose.hosts import covers
from kexpose.manifests import (
    GatewayRef,
    PortLookup,
    TlsMaterial,
    app_manifests,
    tls_hosts,
    tls_secret_name,
)
from kexpose.manifests.middleware import TraefikRef
from kexpose.model import AppSpec, Deferred
from kexpose.model.auth import auth_secret_name, edge_auth_name
from kexpose.plan import Planned, app_plan
from kexpose.policy.config import PolicyConfig
from kexpose.resources.auth import basic_auth_users
from kexpose.resources.kube import register, resource_name
from kexpose.resources.selfsigned import SelfSignedCertificate
from kexpose.validation import check_plan, config_error_for, parse_stack

__all__ = ["ExposedApp", "environment_from_config"]

TYPE: Final = "kexpose:index:ExposedApp"
#: Stands in for certificate material that only exists at deployment, while checking choices.
PLACEHOLDER_MATERIAL: Final = TlsMaterial("<made at deployment>", "<made at deployment>")


def environment_from_config() -> Environment:
    """``kexpose:environment`` from stack config, else the stack name if it is one."""
    value = pulumi.Config("kexpose").get("environment") or pulumi.get_stack()
    for env in ENVIRONMENTS:
        if value == env:
            return env
    raise ConfigError(
        f"stack {pulumi.get_stack()!r}: kexpose:environment is {value!r}; allowed: "
        f"{', '.join(ENVIRONMENTS)} (set it in the stack config, or pass environment=)",
        stack=pulumi.get_stack(),
        field="kexpose:environment",
    )


def _pem_text(pem: str) -> str:
    """PEM text ending in one line break, as PEM files and the Secrets made from them do
    (RFC 7468 section 2: every encapsulation boundary ends its line)."""
    return pem if pem.endswith("\n") else pem + "\n"


def _urls(app: AppSpec) -> list[str]:
    if app.ingress is None:
        return []
    secure = tls_hosts(app) if app.tls.mode not in (None, "none") else []
    out = []
    for rule in app.ingress.rules:
        if rule.host is None:
            continue
        scheme = "https" if any(covers(t, rule.host) for t in secure) else "http"
        out += [f"{scheme}://{rule.host}{p.path}" for p in rule.paths]
    return out


def _gateway_ref(name: str, gateway: str | None) -> GatewayRef | None:
    if gateway is None:
        return None
    namespace, _, gw_name = gateway.partition("/")
    if not namespace or not gw_name or "/" in gw_name:
        raise ConfigError(
            f"stack {pulumi.get_stack()!r}, ExposedApp {name!r}: gateway is {gateway!r}; give "
            "the Gateway the routes attach to as 'namespace/name'",
            stack=pulumi.get_stack(),
            app=name,
            field="gateway",
        )
    return GatewayRef(namespace, gw_name)


def _lb_address(status: Any) -> str | None:
    ingress = ((status or {}).get("load_balancer") or {}).get("ingress") or []
    if not ingress:
        return None
    address = ingress[0].get("ip") or ingress[0].get("hostname")
    return str(address) if address else None


class ExposedApp(pulumi.ComponentResource):
    """An app exposed the way its model says: Deployment (when kexpose creates the workload),
    Service, PodDisruptionBudget, Ingress and TLS Secret.

    ``args`` is an :class:`~kexpose.model.AppSpec` or a mapping in the same shape (camelCase or
    snake_case keys). Plain values are required wherever validation and policies need them;
    the image, annotation and env values and provided TLS material may be Outputs.

    Everything is validated before the component is registered: an invalid app raises a
    ConfigError and nothing of it is half-created. ``environment`` defaults to
    ``kexpose:environment`` (else the stack name); ``ingress_class`` is required when the app
    has an ingress without ``className``; ``policy`` tightens or widens the policy config
    (default: the project's, allowing the app's own ingress class).

    ``gateway`` (``"namespace/name"``) exposes the app through the Gateway API instead: its
    rules become HTTPRoutes attached to that Gateway's listeners (``http``, and
    ``https-<host>`` per TLS host, as ``IngressController`` names them), its TLS Secret is
    granted to the Gateway's namespace, and matches, filters and weights may be used.
    """

    service_name: pulumi.Output[str]
    cluster_ip: pulumi.Output[str]
    hosts: pulumi.Output[list[str]]
    urls: pulumi.Output[list[str]]
    ingress_class: pulumi.Output[str | None]
    gateway: pulumi.Output[str | None]
    tls_secret_name: pulumi.Output[str | None]
    load_balancer_address: pulumi.Output[str | None]

    def __init__(
        self,
        name: str,
        args: AppSpec | Mapping[str, Any],
        opts: pulumi.ResourceOptions | None = None,
        *,
        environment: Environment | None = None,
        ingress_class: str | None = None,
        policy: PolicyConfig | None = None,
        gateway: str | None = None,
        _checked: bool = False,
        _ports: PortLookup | None = None,
        _traefik_h2c: bool = False,
        _traefik: TraefikRef | None = None,
    ) -> None:
        ref = _gateway_ref(name, gateway)
        if ref is not None and ingress_class is not None and not _checked:
            raise ConfigError(
                f"stack {pulumi.get_stack()!r}, ExposedApp {name!r}: give ingress_class "
                f"({ingress_class!r}: an Ingress) or gateway ({gateway!r}: HTTPRoutes), not both",
                stack=pulumi.get_stack(),
                app=name,
                field="gateway",
            )
        if _checked and isinstance(args, AppSpec):
            # Built by Exposure, which validated and resolved the whole stack already.
            app, class_name = args, ingress_class
        else:
            app, class_name = self._validate(name, args, environment, ingress_class, policy, ref)
        super().__init__(TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        material = self._tls_material(name, app, child)
        htpasswd = basic_auth_users(app)
        made: dict[str, pulumi.CustomResource] = {}
        manifests = app_manifests(
            app,
            class_name=class_name,
            tls=material,
            htpasswd=htpasswd,
            gateway=ref,
            ports=_ports,
            traefik_h2c=_traefik_h2c,
            traefik=_traefik,
        )
        guards: list[pulumi.Resource] = []  # the Middlewares and EdgeAuths its routes name
        for manifest in manifests:
            kind = manifest["kind"]
            object_name = manifest["metadata"]["name"]
            if kind == "Secret" and object_name == auth_secret_name(app.name):
                kind = "BasicAuth"  # the app's second Secret: its own resource name
            routes = kind in ("Ingress", "HTTPRoute", "GRPCRoute", "EdgeAuth", "Middleware")
            deps: list[pulumi.Resource] = [
                made[k]
                for k in ("Service", "Secret", "BasicAuth", "ReferenceGrant")
                if routes and k in made
            ]
            if routes and kind not in ("Middleware", "EdgeAuth"):
                deps += guards
            if kind == "BasicAuth":
                resource = f"{name}-basicauth"
            elif kind == "EdgeAuth" and object_name != edge_auth_name(app.name):
                # A path's own EdgeAuth beside the app's: both cannot be <name>-edgeauth. The
                # app's keeps that name, so stacks deployed before paths had their own keep it.
                resource = f"{name}-edgeauth-{object_name}"
            else:
                resource = resource_name(name, manifest)
            made[kind] = register(
                manifest, name=resource, opts=pulumi.ResourceOptions(parent=self, depends_on=deps)
            )
            if kind in ("Middleware", "EdgeAuth"):
                guards.append(made[kind])
        svc = made["Service"]
        has_tls = app.tls.mode not in (None, "none")
        self.service_name = svc.metadata.apply(lambda m: m["name"])  # type: ignore[attr-defined]
        self.cluster_ip = svc.spec.apply(lambda s: (s or {}).get("cluster_ip"))  # type: ignore[attr-defined]
        self.hosts = pulumi.Output.from_input(list(app.ingress.hosts() if app.ingress else ()))
        self.urls = pulumi.Output.from_input(_urls(app))
        self.ingress_class = pulumi.Output.from_input(
            class_name if app.ingress and ref is None else None
        )
        self.gateway = pulumi.Output.from_input(
            f"{ref.namespace}/{ref.name}" if app.ingress and ref is not None else None
        )
        self.tls_secret_name = pulumi.Output.from_input(tls_secret_name(app) if has_tls else None)
        self.load_balancer_address = (
            svc.status.apply(_lb_address)  # type: ignore[attr-defined]
            if app.service.type == "LoadBalancer"
            else pulumi.Output.from_input(None)
        )
        self.register_outputs(
            {
                "serviceName": self.service_name,
                "clusterIp": self.cluster_ip,
                "hosts": self.hosts,
                "urls": self.urls,
                "ingressClass": self.ingress_class,
                "gateway": self.gateway,
                "tlsSecretName": self.tls_secret_name,
                "loadBalancerAddress": self.load_balancer_address,
                "serviceType": app.service.type,
            }
        )

    @staticmethod
    def _validate(
        name: str,
        args: AppSpec | Mapping[str, Any],
        environment: Environment | None,
        ingress_class: str | None,
        policy: PolicyConfig | None,
        gateway: GatewayRef | None,
    ) -> tuple[AppSpec, str | None]:
        env = environment or environment_from_config()
        where = f"stack {pulumi.get_stack()!r}, ExposedApp {name!r}"
        try:
            app = args if isinstance(args, AppSpec) else AppSpec.model_validate(args)
        except ValidationError as exc:
            raise config_error_for(exc, model=AppSpec, where=where, app=name) from None
        raw: dict[str, Any] = {"environment": env}
        if gateway is not None:
            # The Gateway belongs to another program: only its place matters here (the api
            # the app is checked against, the namespace its ReferenceGrant admits).
            raw["controller"] = {
                "api": "gateway",
                "namespace": gateway.namespace,
                "gateway": {"name": gateway.name, "installCrds": False},
            }
        elif app.ingress is not None and app.ingress.class_name is None and ingress_class:
            app = app.model_copy(
                update={"ingress": app.ingress.model_copy(update={"class_name": ingress_class})}
            )
        raw["apps"] = [app.model_dump(by_alias=True, exclude_unset=True)]
        spec = parse_stack(raw, stack_file=where)
        resolved = spec.apps[0]
        class_name = spec.class_of(resolved)
        if policy is None:
            base = PolicyConfig.project()
            policy = base.model_copy(
                update={"allowed_ingress_classes": (class_name,)} if class_name else {}
            )
        placeholder = (
            PLACEHOLDER_MATERIAL if resolved.tls.mode in ("self-signed", "secret") else None
        )
        plan = [Planned(m, ("apps", 0)) for m in app_plan(spec, resolved, placeholder)]
        check_plan(plan, spec=spec, stack_file=where, config=policy, whole_stack=False)
        return resolved, class_name

    @staticmethod
    def _tls_material(name: str, app: AppSpec, child: pulumi.ResourceOptions) -> TlsMaterial | None:
        tls = app.tls
        if tls.mode == "self-signed":
            cert = SelfSignedCertificate(
                f"{name}-cert", hosts=tls_hosts(app), validity_days=tls.validity_days, opts=child
            )
            # key_pem is secret through the resource's additional_secret_outputs.
            return TlsMaterial(Deferred(cert.cert_pem), Deferred(cert.key_pem))
        if tls.mode == "secret":
            cfg = pulumi.Config("kexpose")

            def pem(value: str | Deferred | None, key: str | None, secret: bool) -> Deferred:
                if key is not None:
                    namespace, _, short = key.rpartition(":")
                    source = pulumi.Config(namespace) if namespace else cfg
                    # `... | pulumi config set --secret KEY` (what `kexpose import` tells users
                    # to run for a Secret it keeps) drops the PEM's final newline; without it
                    # the Secret would differ by that byte from the one it takes over, and the
                    # API server refuses the server-side apply as a field conflict.
                    return Deferred(source.require_secret(short).apply(_pem_text))
                out: pulumi.Input[str] = value.value if isinstance(value, Deferred) else value  # type: ignore[assignment]
                return Deferred(
                    pulumi.Output.secret(out) if secret else pulumi.Output.from_input(out)
                )

            return TlsMaterial(
                pem(tls.certificate, tls.certificate_config, secret=False),
                pem(tls.private_key, tls.private_key_config, secret=True),
            )
        return None
