"""One app's exposure: its workload (created or referenced), Service, Ingress and TLS."""

from __future__ import annotations

from pydantic import Field, model_validator

from kexpose.hosts import covers
from kexpose.model.auth import AuthSpec, SourceRange, path_auth_problem
from kexpose.model.base import DNSLabel, Frozen, Labels, Problems
from kexpose.model.grpc import grpc_port_problems
from kexpose.model.ingress import IngressSpec
from kexpose.model.service import ServicePort, ServiceSpec
from kexpose.model.tls import TlsSpec
from kexpose.model.workload import Workload

__all__ = ["AppSpec"]


class AppSpec(Frozen):
    """An app and how it is exposed.

    Give either ``workload`` (kexpose creates a Deployment) or ``selector`` (the pod labels of
    an existing workload the Service should select).
    """

    name: DNSLabel
    namespace: DNSLabel = "default"
    labels: Labels = Field(default_factory=dict)
    workload: Workload | None = None
    selector: Labels | None = None
    service: ServiceSpec
    ingress: IngressSpec | None = None
    tls: TlsSpec = TlsSpec()
    disruption_budget: bool | None = None
    auth: AuthSpec | None = None
    allow_source_ranges: tuple[SourceRange, ...] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AppSpec:
        problems = Problems("AppSpec")
        if (self.workload is None) == (self.selector is None):
            problems.add(
                ("workload",),
                "give exactly one of 'workload' (kexpose creates it) or 'selector' (the pod "
                "labels of an existing workload)",
            )
        elif self.selector is not None and not self.selector:
            problems.add(("selector",), "is empty; it would select no pods")
        if self.workload is not None:
            for i, sp in enumerate(self.service.ports):
                self._check_target(problems, i, sp)
        if self.ingress is not None:
            for loc, backend in self.ingress.backends():
                own = backend.service is None and backend.namespace in (None, self.namespace)
                if own and self.service.port_ref(backend.port) is None:
                    problems.add(
                        ("ingress", *loc, "port"),
                        "is not a port of the app's Service; allowed: "
                        + self.service.allowed_refs(),
                        backend.port,
                    )
        grpc_port_problems(self, problems)
        self._check_tls(problems)
        for i, rule in enumerate(self.ingress.rules if self.ingress is not None else ()):
            for j, path in enumerate(rule.paths):
                refused = path_auth_problem(path.auth) if path.auth is not None else None
                if refused is not None:
                    problems.add(
                        ("ingress", "rules", i, "paths", j, "auth", refused[0]), refused[1]
                    )
        if (self.auth is not None or self.allow_source_ranges) and self.ingress is None:
            problems.add(("auth",), "edge auth and allowSourceRanges need an ingress")
        problems.check()
        return self

    def _check_target(self, problems: Problems, i: int, sp: ServicePort) -> None:
        assert self.workload is not None
        ports = self.workload.ports
        target = sp.target_port
        if isinstance(target, str):
            if self.workload.port_named(target) is None:
                problems.add(
                    ("service", "ports", i, "targetPort"),
                    "is not a container port name of the workload; allowed: "
                    + ", ".join(p.name for p in ports),
                    target,
                )
            return
        if target is None and self.workload.port_named(sp.name) is not None:
            return
        number = sp.port if target is None else target
        if all(p.container_port != number for p in ports):
            problems.add(
                ("service", "ports", i, "targetPort" if target is not None else "port"),
                f"targets container port {number}, which the workload does not declare; set "
                "targetPort to one of: "
                + ", ".join(f"{p.name} ({p.container_port})" for p in ports),
                number,
            )

    def _check_tls(self, problems: Problems) -> None:
        hosts = self.ingress.hosts() if self.ingress is not None else ()
        if self.tls.mode not in (None, "none") and not hosts:
            problems.add(
                ("tls", "mode"), "TLS is asked for but the app has no ingress host", self.tls.mode
            )
        for k, h in enumerate(self.tls.hosts or ()):
            if not any(covers(h, rh) for rh in hosts):
                problems.add(
                    ("tls", "hosts", k),
                    "is not used by any ingress rule; rule hosts: " + (", ".join(hosts) or "none"),
                    h,
                )

    def target_port(self, sp: ServicePort) -> int | str:
        """The Service port's targetPort as it goes into the manifest."""
        if sp.target_port is not None:
            return sp.target_port
        if self.workload is not None and self.workload.port_named(sp.name) is not None:
            return sp.name
        return sp.port
