"""kexpose as a Pulumi component package, for programs in other languages (Pulumi YAML, ...).

A program names the package directory ``provider/`` of this repository in its ``packages``
(Pulumi YAML: ``packages: {kexpose: <repo>/provider}``); the CLI starts the executable plugin
there, ``pulumi-resource-kexpose``, which runs :func:`main`. Pulumi's component provider host
infers the schema from the annotations below, so the classes here are thin: they take the same
app and controller descriptions as a stack file and hand them to the Python components, which
validate them as they do for Python programs. The type tokens stay ``kexpose:index:ExposedApp``
and ``kexpose:index:IngressController``, so state looks the same from either language.

An executable plugin rather than ``PulumiPlugin.yaml`` with ``runtime: python``: it needs no
Python language host (and so runs with any CLI), and it runs the interpreter that has kexpose
installed instead of a virtualenv the host would make inside the package directory.
"""

# No ``from __future__ import annotations``: the provider host reads these annotations at run
# time with inspect.get_annotations, which does not evaluate strings.

from collections.abc import Mapping
from importlib.metadata import version
from typing import Any, NotRequired, TypedDict

import pulumi

from kexpose.environment import ENVIRONMENTS, Environment
from kexpose.errors import ConfigError
from kexpose.resources.exposed_app import ExposedApp as _ExposedApp
from kexpose.resources.ingress_controller import IngressController as _IngressController

__all__ = [
    "ExposedApp",
    "ExposedAppArgs",
    "IngressController",
    "IngressControllerArgs",
    "integral",
    "main",
]

NAME = "kexpose"


class ExposedAppArgs(TypedDict):
    app: dict[str, Any]
    """The app, as an entry of ``kexpose:apps`` in a stack file (camelCase or snake_case keys)."""
    environment: str
    """dev, staging or prod: the profile and policies the app is checked against."""
    ingress_class: NotRequired[str]
    """The IngressClass of an Ingress that names none (required then)."""
    gateway: NotRequired[str]
    """``namespace/name`` of a Gateway: expose the app through HTTPRoutes attached to it."""


class IngressControllerArgs(TypedDict):
    environment: str
    """dev, staging or prod."""
    controller: NotRequired[dict[str, Any]]
    """The controller, as ``kexpose:controller`` in a stack file (default: the profile's)."""
    apps: NotRequired[list[dict[str, Any]]]
    """With ``api: gateway``: the apps whose TLS hosts get a listener on the Gateway."""


def integral(value: Any) -> Any:
    """``value`` with whole-number floats turned back into ints, recursively.

    Pulumi's wire format carries every number as a double (google.protobuf.Value), so a YAML
    ``containerPort: 9000`` arrives as 9000.0, which kexpose's strict model refuses for a port.
    The model has no float fields, so this loses nothing.
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {k: integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [integral(v) for v in value]
    return value


def _environment(name: str, given: str) -> Environment:
    for env in ENVIRONMENTS:
        if given == env:
            return env
    raise ConfigError(
        f"stack {pulumi.get_stack()!r}: {name}: environment is {given!r}; "
        f"allowed: {', '.join(ENVIRONMENTS)}",
        stack=pulumi.get_stack(),
        app=name,
        field="environment",
    )


class ExposedApp(_ExposedApp):
    """An app's workload, Service, PodDisruptionBudget, Ingress and TLS Secret, validated
    against its environment's profile and policies before anything is registered."""

    # The outputs again, evaluated: the base class's annotations are strings (PEP 563), which
    # the analyzer cannot read. tests/unit/test_provider.py keeps the two lists equal.
    service_name: pulumi.Output[str]
    cluster_ip: pulumi.Output[str]
    hosts: pulumi.Output[list[str]]
    urls: pulumi.Output[list[str]]
    ingress_class: pulumi.Output[str | None]
    gateway: pulumi.Output[str | None]
    tls_secret_name: pulumi.Output[str | None]
    load_balancer_address: pulumi.Output[str | None]

    def __init__(
        self, name: str, args: ExposedAppArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            name,
            integral(args["app"]),
            opts,
            environment=_environment(name, args["environment"]),
            ingress_class=args.get("ingress_class"),
            gateway=args.get("gateway"),
        )


class IngressController(_IngressController):
    """An in-cluster Ingress controller with its IngressClass, least-privilege RBAC,
    Deployment, Service and PodDisruptionBudget."""

    class_name: pulumi.Output[str]
    api: pulumi.Output[str]
    gateway: pulumi.Output[str | None]
    controller_name: pulumi.Output[str]
    namespace: pulumi.Output[str]
    service_name: pulumi.Output[str]
    load_balancer_address: pulumi.Output[str | None]

    def __init__(
        self, name: str, args: IngressControllerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            name,
            integral(args.get("controller") or {}),
            opts,
            environment=_environment(name, args["environment"]),
            apps=[integral(a) for a in args.get("apps") or ()],
        )


def main() -> None:
    """Serve the package to the Pulumi engine (the CLI passes the engine's address)."""
    from pulumi.provider.experimental import component_provider_host

    component_provider_host([ExposedApp, IngressController], name=NAME, version=version(NAME))


if __name__ == "__main__":
    main()
