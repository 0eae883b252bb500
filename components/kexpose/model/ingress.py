"""The Ingress of an app: class, rules of hosts and paths, optional default backend."""

from __future__ import annotations

import re
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from kexpose.hosts import host_error
from kexpose.model.auth import AuthSpec
from kexpose.model.backend import Backend, WeightedBackend
from kexpose.model.base import Annotations, DNSLabel, Frozen, Problems
from kexpose.model.grpc import GrpcPath
from kexpose.model.route import (
    HeaderMatch,
    HttpMethod,
    QueryParamMatch,
    RouteFilters,
    RouteTimeouts,
)

__all__ = [
    "PLAIN_HTTP_ANNOTATION",
    "Backend",
    "Host",
    "IngressPath",
    "IngressRule",
    "IngressSpec",
    "PathType",
    "WeightedBackend",
]

#: An app's opt-out of the HTTP -> HTTPS redirect of its TLS hosts: ``"false"`` serves them
#: over plain HTTP too. kexpose-proxy reads it on an Ingress (``proxy.routes._table``,
#: ``SSL_REDIRECT_ANNOTATION``); with ``api: gateway`` the app's HTTPRoutes also attach to the
#: Gateway's HTTP listener and its redirect route leaves their hosts out
#: (``kexpose.manifests.gateway``). ``kexpose import`` writes it for nginx ``ssl-redirect:
#: "false"``; the no-plain-http policy rules flag it in prod.
PLAIN_HTTP_ANNOTATION: Final = "kexpose.dev/ssl-redirect"

#: ``RegularExpression`` is ``api: gateway`` only (HTTPPathMatch type, Gateway API v1.6.3,
#: implementation-specific support): a Python ``re`` pattern that must match the whole path, the
#: dialect kexpose-proxy implements (``proxy.routes._matches``). Traefik's PathRegexp searches
#: instead, so anchor a pattern with ``^`` and end it with ``.*`` or ``$`` to mean the same in
#: both.
PathType = Literal["Exact", "Prefix", "ImplementationSpecific", "RegularExpression"]
#: The Gateway API's limit on an HTTPPathMatch value (maxLength 1024).
MAX_REGEX_PATH: Final = 1024

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


class IngressPath(Backend):
    """A path and where it goes. Beyond Ingress (``api: gateway`` only, see
    ``kexpose.model.route``): ``headers``, ``queryParams`` and ``method`` narrow the match,
    ``filters`` change the request or answer, ``backends`` share the traffic by ``weight``,
    ``timeouts`` bound the time to answer."""

    path_type: PathType = "Prefix"
    path: str = "/"
    headers: tuple[HeaderMatch, ...] | None = Field(default=None, min_length=1, max_length=16)
    query_params: tuple[QueryParamMatch, ...] | None = Field(
        default=None, min_length=1, max_length=16
    )
    method: HttpMethod | None = None
    filters: RouteFilters | None = None
    weight: int | None = Field(default=None, ge=0, le=1_000_000)
    backends: tuple[WeightedBackend, ...] | None = Field(default=None, min_length=1, max_length=15)
    auth: AuthSpec | None = None
    """This path's own edge auth, in place of the app's (``kexpose.model.auth``)."""
    timeouts: RouteTimeouts | None = None

    def match_key(self) -> tuple[object, ...]:
        """What, besides the path, a request must match: equal keys are the same route."""
        return (
            self.method,
            frozenset((h.name.lower(), h.value, h.type) for h in self.headers or ()),
            frozenset((q.name, q.value, q.type) for q in self.query_params or ()),
        )

    def all_backends(self) -> list[tuple[tuple[int | str, ...], Backend]]:
        """The path's own backend and its weighted ones, each with its location in the path."""
        out: list[tuple[tuple[int | str, ...], Backend]] = [((), self)]
        out += [(("backends", k), b) for k, b in enumerate(self.backends or ())]
        return out

    def gateway_field(self, key: str) -> object:
        """The value of a Gateway-only field by its stack-config name, None when unset."""
        value = {
            "headers": self.headers,
            "queryParams": self.query_params,
            "method": self.method,
            "filters": self.filters,
            "backends": self.backends,
            "weight": self.weight,
            "namespace": self.namespace,
            "auth": self.auth,
            "timeouts": self.timeouts,
        }[key]
        if value is None:
            return None
        if isinstance(value, tuple):
            return [v.model_dump(by_alias=True, exclude_defaults=True) for v in value]
        if isinstance(value, Frozen):
            return value.model_dump(by_alias=True, exclude_none=True)
        return value

    @field_validator("path")
    @classmethod
    def _path_shape(cls, path: str, info: ValidationInfo) -> str:
        path_type = info.data.get("path_type", "Prefix")
        if path_type == "RegularExpression":
            return _regex_path(path)
        if not path.startswith("/"):
            raise ValueError("a path must start with '/'")
        if path_type != "ImplementationSpecific" and (
            any(s in path for s in _FORBIDDEN_IN_PATH) or path.endswith(("/..", "/."))
        ):
            raise ValueError(
                f"contains '//', '/./', '/../' or '%2f', which the API server refuses for "
                f"pathType {path_type}"
            )
        return path


def _regex_path(pattern: str) -> str:
    """A RegularExpression path: it must compile, within the Gateway API's length limit."""
    if len(pattern) > MAX_REGEX_PATH:
        raise ValueError(
            f"a RegularExpression path may have at most {MAX_REGEX_PATH} characters "
            f"(it has {len(pattern)})"
        )
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"is not a valid regular expression (Python re): {exc}") from None
    return pattern


class IngressRule(Frozen):
    """``host`` unset means every host (a catch-all rule); staging and prod require one.
    ``paths`` are HTTP routes, ``grpc`` gRPC services (``kexpose.model.grpc``); a rule has at
    least one of them."""

    host: Host | None = None
    paths: tuple[IngressPath, ...] = ()
    grpc: tuple[GrpcPath, ...] = Field(default=(), max_length=64)

    @model_validator(mode="after")
    def _unique_paths(self) -> IngressRule:
        problems = Problems("IngressRule")
        if not self.paths and not self.grpc:
            problems.add(("paths",), "a rule needs paths (HTTP) or grpc entries (or both)")
        grpc_seen: dict[tuple[object, ...], int] = {}
        for k, g in enumerate(self.grpc):
            if g.match_key() in grpc_seen:
                problems.add(
                    ("grpc", k, "service"),
                    f"repeats grpc[{grpc_seen[g.match_key()]}] with the same method and headers",
                    g.service,
                )
            grpc_seen.setdefault(g.match_key(), k)
        seen: dict[tuple[object, ...], int] = {}
        for j, p in enumerate(self.paths):
            # Paths that differ only in their header, query or method matches are different
            # routes (api: gateway).
            key = (p.path_type, p.path, p.match_key())
            if key in seen:
                problems.add(
                    ("paths", j, "path"),
                    f"{p.path_type} path repeats paths[{seen[key]}] with the same matches",
                    p.path,
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

    def plain_http(self) -> bool:
        """Whether the app opts out of the HTTPS redirect (``PLAIN_HTTP_ANNOTATION``), read as
        kexpose-proxy reads it: ``"false"`` in any case, nothing else."""
        return self.annotations.get(PLAIN_HTTP_ANNOTATION, "true").lower() == "false"

    def backends(self) -> list[tuple[tuple[int | str, ...], Backend]]:
        """Every backend with its location inside the ingress spec."""
        out: list[tuple[tuple[int | str, ...], Backend]] = [
            (("rules", i, "paths", j, *at), b)
            for i, r in enumerate(self.rules)
            for j, p in enumerate(r.paths)
            for at, b in p.all_backends()
        ]
        if self.default_backend is not None:
            out.append((("defaultBackend",), self.default_backend))
        return out
