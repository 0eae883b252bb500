"""The Ingress of an app: class, rules of hosts and paths, optional default backend."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from kexpose.hosts import host_error
from kexpose.model.base import Annotations, DNSLabel, Frozen, PortName, PortNumber, Problems

__all__ = ["Backend", "Host", "IngressPath", "IngressRule", "IngressSpec", "PathType"]

PathType = Literal["Exact", "Prefix", "ImplementationSpecific"]

# The API server refuses these in Exact and Prefix paths (networking validation,
# validateIngressHTTPIngressPath), so such a path would fail at apply time, after other objects
# were already created.
_FORBIDDEN_IN_PATH = ("//", "/./", "/../", "%2f", "%2F")


def _check_host(value: str) -> str:
    why = host_error(value)
    if why is not None:
        raise ValueError(f"host {why}")
    return value


Host = Annotated[str, AfterValidator(_check_host)]


class Backend(Frozen):
    """Where matching requests go: a port of the app's own Service, or of another app's Service
    in the same namespace (``service``). ``port`` is a Service port name or number, never the
    targetPort (Ingress API: ServiceBackendPort)."""

    port: PortNumber | PortName
    service: DNSLabel | None = None


class IngressPath(Backend):
    path_type: PathType = "Prefix"
    path: str = "/"

    @field_validator("path")
    @classmethod
    def _path_shape(cls, path: str, info: ValidationInfo) -> str:
        if not path.startswith("/"):
            raise ValueError("a path must start with '/'")
        path_type = info.data.get("path_type", "Prefix")
        if path_type != "ImplementationSpecific" and (
            any(s in path for s in _FORBIDDEN_IN_PATH) or path.endswith(("/..", "/."))
        ):
            raise ValueError(
                f"contains '//', '/./', '/../' or '%2f', which the API server refuses for "
                f"pathType {path_type}"
            )
        return path


class IngressRule(Frozen):
    """``host`` unset means every host (a catch-all rule); staging and prod require one."""

    host: Host | None = None
    paths: tuple[IngressPath, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_paths(self) -> IngressRule:
        problems = Problems("IngressRule")
        seen: dict[tuple[str, str], int] = {}
        for j, p in enumerate(self.paths):
            key = (p.path_type, p.path)
            if key in seen:
                problems.add(
                    ("paths", j, "path"), f"{p.path_type} path repeats paths[{seen[key]}]", p.path
                )
            seen.setdefault(key, j)
        problems.check()
        return self


class IngressSpec(Frozen):
    """``class_name`` unset means the stack's controller class."""

    class_name: DNSLabel | None = None
    rules: tuple[IngressRule, ...] = ()
    default_backend: Backend | None = None
    annotations: Annotations = Field(default_factory=dict)

    @model_validator(mode="after")
    def _has_somewhere_to_go(self) -> IngressSpec:
        problems = Problems("IngressSpec")
        # Ingress API: "either rules or defaultBackend must be specified".
        if not self.rules and self.default_backend is None:
            problems.add(("rules",), "an ingress needs rules or a defaultBackend (or both)")
        seen: dict[str | None, int] = {}
        for i, r in enumerate(self.rules):
            if r.host in seen:
                problems.add(
                    ("rules", i, "host"),
                    f"repeats the host of rules[{seen[r.host]}]; put all paths of a host in one "
                    "rule",
                    r.host,
                )
            seen.setdefault(r.host, i)
        problems.check()
        return self

    def hosts(self) -> tuple[str, ...]:
        return tuple(r.host for r in self.rules if r.host is not None)

    def backends(self) -> list[tuple[tuple[int | str, ...], Backend]]:
        """Every backend with its location inside the ingress spec."""
        out: list[tuple[tuple[int | str, ...], Backend]] = [
            (("rules", i, "paths", j), p)
            for i, r in enumerate(self.rules)
            for j, p in enumerate(r.paths)
        ]
        if self.default_backend is not None:
            out.append((("defaultBackend",), self.default_backend))
        return out
