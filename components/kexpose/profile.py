"""Environment profiles: what each environment defaults to and what it requires of a stack.

The table below is the one place these choices live. Prohibitions that a policy rule expresses
(no NodePort in prod, TLS on every host, source ranges on a LoadBalancer, ...) are *not*
repeated here: the early validation runs those rules on the rendered manifests (see
``kexpose.validation``), so the policy pack, ``kexpose check`` and the components agree by
construction. What stays here is what no rule can see on a single manifest set:

- defaults: the TLS mode of an app with hosts, replicas, the controller's Service type;
- requirements on the model: a minimum replica count, a PodDisruptionBudget, and which
  Service types the *controller* may use (NodePort only in dev).

Why these values:
- dev runs on laptops and kind clusters without a load balancer, so the controller defaults to
  NodePort there and TLS is off unless asked for;
- staging mirrors prod's shape (a LoadBalancer controller, TLS on every host) with self-signed
  certificates, so it needs no issuer;
- prod asks for 2 replicas and a PodDisruptionBudget so that a node drain never takes an app
  down (kube-score and Polaris both flag single-replica Deployments without a PDB), and for
  certificates from cert-manager;
- with ``api: gateway``, staging and prod keep the Gateway's HTTP listener to the redirect to
  HTTPS (so an app there must have TLS), while dev lets apps without TLS attach to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from kexpose.environment import Environment
from kexpose.hosts import covers
from kexpose.model import (
    PLAIN_HTTP_ANNOTATION,
    ApiKind,
    AppSpec,
    ControllerSpec,
    StackSpec,
    TlsMode,
)
from kexpose.model.base import Problems

__all__ = ["PROFILES", "Profile", "resolve"]


@dataclass(frozen=True, slots=True)
class Profile:
    environment: Environment
    #: TLS mode of an app that has ingress hosts and does not choose one.
    tls_default: TlsMode
    default_replicas: int
    min_replicas: int
    #: Every created workload gets a PodDisruptionBudget (it can still opt in elsewhere).
    disruption_budget: bool
    controller_service_default: Literal["LoadBalancer", "NodePort"]
    controller_service_allowed: frozenset[Literal["LoadBalancer", "NodePort"]]
    controller_replicas: int
    #: With api: gateway, the HTTP listener only redirects to HTTPS.
    http_redirect_only: bool


PROFILES: Final[dict[Environment, Profile]] = {
    "dev": Profile(
        environment="dev",
        tls_default="none",
        default_replicas=1,
        min_replicas=1,
        disruption_budget=False,
        controller_service_default="NodePort",
        controller_service_allowed=frozenset({"NodePort", "LoadBalancer"}),
        controller_replicas=1,
        http_redirect_only=False,
    ),
    "staging": Profile(
        environment="staging",
        tls_default="self-signed",
        default_replicas=1,
        min_replicas=1,
        disruption_budget=False,
        controller_service_default="LoadBalancer",
        controller_service_allowed=frozenset({"LoadBalancer"}),
        controller_replicas=2,
        http_redirect_only=True,
    ),
    "prod": Profile(
        environment="prod",
        tls_default="cert-manager",
        default_replicas=2,
        min_replicas=2,
        disruption_budget=True,
        controller_service_default="LoadBalancer",
        controller_service_allowed=frozenset({"LoadBalancer"}),
        controller_replicas=2,
        http_redirect_only=True,
    ),
}


def _resolve_app(
    app: AppSpec, profile: Profile, problems: Problems, i: int, api: ApiKind
) -> AppSpec:
    update: dict[str, object] = {}
    hosts = app.ingress.hosts() if app.ingress is not None else ()
    mode: TlsMode | None = app.tls.mode
    if mode is None:
        mode = (app.tls.implied_mode() or profile.tls_default) if hosts else "none"
        if mode == "cert-manager" and app.tls.issuer is None:
            problems.add(
                ("apps", i, "tls", "issuer"),
                f"{profile.environment} defaults TLS to cert-manager, which needs an issuer; set "
                "tls.issuer, or choose tls.mode 'secret' or 'self-signed'",
            )
            mode = "none"
        update["tls"] = app.tls.model_copy(update={"mode": mode})
    if api == "gateway" and profile.http_redirect_only and hosts and mode == "none":
        problems.add(
            ("apps", i, "tls", "mode"),
            f"{profile.environment}'s Gateway serves plain HTTP only as a redirect to HTTPS, so "
            "an app with hosts needs TLS; choose tls.mode 'self-signed', 'secret' or "
            "'cert-manager'",
            "none",
        )
    elif api == "gateway" and profile.http_redirect_only and app.ingress is not None:
        # A rule's route attaches to the HTTPS listener of a TLS host covering its host, else
        # to the HTTP listener (manifests.gateway.sections), which here admits only the
        # redirect: the rule would be accepted by no listener and silently never served.
        tls_hosts = app.tls.hosts if app.tls.hosts is not None else hosts
        for j, rule in enumerate(app.ingress.rules):
            if rule.host is None:
                problems.add(
                    ("apps", i, "ingress", "rules", j, "host"),
                    f"is unset; {profile.environment}'s Gateway serves plain HTTP only as a "
                    "redirect to HTTPS and has one HTTPS listener per host, so a rule without "
                    "a host would never be served; give the rule a host",
                )
            elif not any(covers(t, rule.host) for t in tls_hosts):
                problems.add(
                    ("apps", i, "ingress", "rules", j, "host"),
                    f"is not covered by the app's TLS hosts ({', '.join(tls_hosts) or 'none'}); "
                    f"{profile.environment}'s Gateway serves plain HTTP only as a redirect to "
                    "HTTPS, so the host would never be served; add it to tls.hosts",
                    rule.host,
                )
    if (
        api == "gateway"
        and profile.http_redirect_only
        and app.ingress is not None
        and app.ingress.plain_http()
    ):
        problems.add(
            ("apps", i, "ingress", "annotations", PLAIN_HTTP_ANNOTATION),
            f"{profile.environment}'s Gateway serves plain HTTP only as a redirect to HTTPS, so "
            "the app cannot opt out of it; remove the annotation",
            app.ingress.annotations[PLAIN_HTTP_ANNOTATION],
        )
    if app.workload is not None:
        replicas = app.workload.replicas
        if replicas is None:
            update["workload"] = app.workload.model_copy(
                update={"replicas": profile.default_replicas}
            )
        elif replicas < profile.min_replicas:
            problems.add(
                ("apps", i, "workload", "replicas"),
                f"{profile.environment} needs at least {profile.min_replicas} replicas",
                replicas,
            )
        if app.disruption_budget is None:
            update["disruption_budget"] = profile.disruption_budget or (
                (replicas or profile.default_replicas) >= 2
            )
        elif profile.disruption_budget and not app.disruption_budget:
            problems.add(
                ("apps", i, "disruptionBudget"),
                f"{profile.environment} requires a PodDisruptionBudget for every workload",
                False,
            )
    return app.model_copy(update=update) if update else app


def _resolve_controller(
    ctrl: ControllerSpec, profile: Profile, problems: Problems
) -> ControllerSpec:
    svc = ctrl.service
    kind = svc.type or profile.controller_service_default
    if kind not in profile.controller_service_allowed:
        allowed = " or ".join(sorted(profile.controller_service_allowed))
        problems.add(
            ("controller", "service", "type"),
            f"the controller Service may be {allowed} in {profile.environment} (NodePort only "
            "in dev)",
            kind,
        )
    replicas = ctrl.replicas
    if replicas is None:
        replicas = profile.controller_replicas
    elif replicas < profile.min_replicas:
        problems.add(
            ("controller", "replicas"),
            f"{profile.environment} needs at least {profile.min_replicas} controller replicas",
            replicas,
        )
    return ctrl.model_copy(
        update={"replicas": replicas, "service": svc.model_copy(update={"type": kind})}
    )


def resolve(spec: StackSpec) -> StackSpec:
    """Fill every environment default in and check the profile's requirements.

    Raises a pydantic ValidationError (turned into a ConfigError by the caller) listing every
    problem; the result has no ``None`` left where the profile decides.
    """
    profile = PROFILES[spec.environment]
    problems = Problems("StackSpec")
    apps = tuple(_resolve_app(a, profile, problems, i, spec.api) for i, a in enumerate(spec.apps))
    ctrl = (
        _resolve_controller(spec.controller, profile, problems)
        if spec.controller is not None
        else None
    )
    problems.check()
    return spec.model_copy(update={"apps": apps, "controller": ctrl})
