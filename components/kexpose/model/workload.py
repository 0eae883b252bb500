"""The workload kexpose creates for an app: image, replicas, container ports, resources, probes."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from kexpose.model.base import Deferrable, Frozen, PortName, PortNumber, Problems

__all__ = ["ContainerPort", "Probe", "Resources", "Workload"]

# Kubernetes resource.Quantity, as the API accepts it: a signed decimal number with an optional
# binary (Ki..Ei), decimal (n, u, m, k, M..E) or exponent suffix.
_QUANTITY = re.compile(
    r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$"
)


def _check_quantity(value: str) -> str:
    if not _QUANTITY.match(value):
        raise ValueError(
            f"{value!r} is not a Kubernetes quantity (e.g. '100m', '0.5', '128Mi', '1Gi')"
        )
    return value


Quantity = Annotated[str, AfterValidator(_check_quantity)]


class ContainerPort(Frozen):
    name: PortName
    container_port: PortNumber
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"


class ResourceAmounts(Frozen):
    cpu: Quantity | None = None
    memory: Quantity | None = None


class Resources(Frozen):
    """Requests and limits. Defaults are small but present: kube-score and Polaris flag pods
    without them, and the scheduler needs requests to place pods sensibly."""

    requests: ResourceAmounts = ResourceAmounts(cpu="50m", memory="64Mi")
    limits: ResourceAmounts = ResourceAmounts(memory="256Mi")


class Probe(Frozen):
    """An HTTP GET probe when ``path`` is given, else a TCP connect to ``port``."""

    port: PortNumber | PortName
    path: str | None = None
    initial_delay_seconds: int = Field(default=0, ge=0)
    period_seconds: int = Field(default=10, ge=1)
    timeout_seconds: int = Field(default=1, ge=1)
    failure_threshold: int = Field(default=3, ge=1)

    @field_validator("path")
    @classmethod
    def _path_is_absolute(cls, path: str | None) -> str | None:
        if path is not None and not path.startswith("/"):
            raise ValueError("a probe path must start with '/'")
        return path


class Workload(Frozen):
    """A Deployment that kexpose creates and owns.

    ``replicas`` left unset takes the environment's default (prod asks for at least 2). The pod
    runs with the restricted Pod Security Standard: non-root, read-only root filesystem (with
    ``writable_paths`` mounted as emptyDirs), no capabilities, seccomp RuntimeDefault.
    """

    image: Deferrable
    replicas: int | None = Field(default=None, ge=0)
    ports: tuple[ContainerPort, ...] = Field(min_length=1)
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: dict[str, Deferrable] = Field(default_factory=dict)
    resources: Resources = Resources()
    readiness: Probe | None = None
    liveness: Probe | None = None
    run_as_user: int = Field(default=65532, ge=1)
    writable_paths: tuple[str, ...] = ("/tmp",)  # noqa: S108 - mounted as a private emptyDir

    @model_validator(mode="after")
    def _ports_unique_and_probes_resolve(self) -> Workload:
        problems = Problems("Workload")
        seen_names: dict[str, int] = {}
        seen_numbers: dict[tuple[int, str], int] = {}
        for i, p in enumerate(self.ports):
            if p.name in seen_names:
                problems.add(
                    ("ports", i, "name"),
                    f"container port name repeats ports[{seen_names[p.name]}]",
                    p.name,
                )
            seen_names.setdefault(p.name, i)
            key = (p.container_port, p.protocol)
            if key in seen_numbers:
                problems.add(
                    ("ports", i, "containerPort"),
                    f"container port repeats ports[{seen_numbers[key]}]",
                    p.container_port,
                )
            seen_numbers.setdefault(key, i)
        for kind, probe in (("readiness", self.readiness), ("liveness", self.liveness)):
            if probe is not None and isinstance(probe.port, str) and probe.port not in seen_names:
                problems.add(
                    (kind, "port"),
                    f"not a container port name; allowed: {', '.join(seen_names)}",
                    probe.port,
                )
        for i, path in enumerate(self.writable_paths):
            if not path.startswith("/"):
                problems.add(("writablePaths", i), "must be an absolute path", path)
        problems.check()
        return self

    def port_named(self, name: str) -> ContainerPort | None:
        return next((p for p in self.ports if p.name == name), None)
