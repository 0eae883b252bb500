"""Early validation: a stack's config, checked before a single resource is registered.

Three steps, each raising one ConfigError that lists every problem it found:
1. the model (pydantic): shapes, names, hosts, paths, ports, references between apps;
2. the environment profile (``kexpose.profile``): defaults filled in, replicas, PDBs;
3. the policy rules that are mandatory in the environment, run on the planned manifests, the
   same functions the CrossGuard pack and ``kexpose check`` run. A violation is reported at the
   config field it came from (``kexpose:apps[2].service.type``), with the rule id.

Rules about certificate *material* (expiry, SANs) are left to the pack and the checker: the
material of a self-signed or provided certificate is only known at deployment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from kexpose.errors import ConfigError, PolicyViolationError
from kexpose.model import AppSpec, StackSpec, config_error, format_path
from kexpose.plan import Planned
from kexpose.policy.config import PolicyConfig
from kexpose.policy.engine import Violation, evaluate
from kexpose.policy.rules import RULES
from kexpose.profile import resolve

__all__ = ["check_plan", "parse_stack", "policy_config_for", "stack_file_for"]

ROOT: Final = "kexpose:"
#: Rules about certificate material, which is unknown before deployment (see module doc).
_MATERIAL_RULES: Final = frozenset(
    {"tls-cert-not-expiring", "tls-cert-covers-hosts", "gw-tls-cert-covers-hostname"}
)

# Where a manifest field comes from in the model, per kind: (manifest prefix, config prefix).
# First match wins; "" is the fallback for the whole object.
_FIELD_ORIGIN: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "Service": (
        ("spec.type", "service.type"),
        ("spec.ports", "service.ports"),
        ("spec.loadBalancerSourceRanges", "service.loadBalancerSourceRanges"),
        ("spec.allocateLoadBalancerNodePorts", "service.allocateLoadBalancerNodePorts"),
        ("spec.externalTrafficPolicy", "service.externalTrafficPolicy"),
        ("metadata.annotations", "service.annotations"),
        ("", "service"),
    ),
    "Ingress": (
        ("spec.rules", "ingress.rules"),
        ("spec.tls", "tls"),
        ("spec.ingressClassName", "ingress.className"),
        ("spec.defaultBackend", "ingress.defaultBackend"),
        ("metadata.annotations", "ingress.annotations"),
        ("", "ingress"),
    ),
    "HTTPRoute": (
        ("spec.hostnames", "ingress.rules"),
        ("spec.rules", "ingress.rules"),
        ("metadata.annotations", "ingress.annotations"),
        ("", "ingress"),
    ),
    "ReferenceGrant": (("", "ingress"),),
    "Gateway": (("", "gateway"),),
    "GatewayClass": (("", "className"),),
    "Deployment": (("", "workload"),),
    "Secret": (("", "tls"),),
    "Certificate": (("", "tls"),),
    "PodDisruptionBudget": (("", "disruptionBudget"),),
}


def stack_file_for(stack: str) -> str:
    """The stack's config file as ``Pulumi.yaml`` places it (``stackConfigDir: stacks``)."""
    return f"stacks/Pulumi.{stack}.yaml"


def parse_stack(raw: Mapping[str, Any], *, stack_file: str) -> StackSpec:
    """Validate raw stack config into a resolved StackSpec, or raise one ConfigError."""
    try:
        return resolve(StackSpec.model_validate(raw))
    except ValidationError as exc:
        raise config_error(
            exc, model=StackSpec, root=ROOT, stack_file=stack_file, raw=raw
        ) from None


def policy_config_for(spec: StackSpec, *, stack_file: str | None = None) -> PolicyConfig:
    """The policy config a stack is held to: the project's defaults, aimed at the stack's own
    controller (its class and Service), then the stack's ``kexpose:policy`` overrides."""
    ctrl = spec.controller.model_dump(by_alias=True) if spec.controller is not None else None
    try:
        return PolicyConfig.for_stack(ctrl, spec.policy)
    except ValidationError as exc:
        raise config_error(
            exc, model=PolicyConfig, root=f"{ROOT}policy", stack_file=stack_file
        ) from None


def _value_at(obj: Any, path: str) -> object:
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            index = int(part[1:-1])
            if not isinstance(obj, list) or index >= len(obj):
                return None
            obj = obj[index]
        elif isinstance(obj, Mapping):
            obj = obj.get(part)
        else:
            return None
    return obj


def _config_field(planned: Planned, field: str) -> str:
    kind = planned.manifest["kind"]
    base = format_path(ROOT, planned.origin)
    for prefix, target in _FIELD_ORIGIN.get(kind, ()):
        if field == prefix or field.startswith(prefix) or prefix == "":
            rest = field[len(prefix) :] if prefix else ""
            # spec.rules[0].http.paths[1] is written rules[0].paths[1] in the model.
            rest = rest.replace(".http.paths", ".paths")
            return f"{base}.{target}{rest}"
    return base


def _name_of(planned: Planned, apps: Sequence[AppSpec]) -> str | None:
    if planned.origin[:1] == ("apps",) and len(planned.origin) > 1:
        index = planned.origin[1]
        return apps[index].name if isinstance(index, int) else None
    return None


def check_plan(
    plan: Sequence[Planned],
    *,
    spec: StackSpec,
    stack_file: str,
    config: PolicyConfig | None = None,
    whole_stack: bool = True,
) -> list[Violation]:
    """Run the rules over the plan; raise on mandatory violations of choices, return the rest.

    ``whole_stack=False`` runs only the per-object rules: for one component's objects, which
    are not the whole stack (an Ingress may route to a Service another program creates).
    The returned advisory violations are for the caller to show (warnings), not to fail on.
    """
    by_key = {p.key: p for p in plan}
    violations = evaluate(
        [p.manifest for p in plan],
        environment=spec.environment,
        config=config or policy_config_for(spec, stack_file=stack_file),
        rules=None if whole_stack else [r.id for r in RULES.values() if r.scope == "R"],
    )
    blocking = [
        v for v in violations if v.enforcement == "mandatory" and v.rule not in _MATERIAL_RULES
    ]
    if not blocking:
        return violations
    lines = [
        f"{stack_file}: the {spec.environment} environment forbids "
        f"{len(blocking)} choice{'s' * (len(blocking) != 1)} of this stack"
    ]
    first: tuple[str | None, str] | None = None
    located: list[tuple[object, str]] = []
    for v in blocking:
        planned = by_key.get(v.resource)
        if planned is None:
            field, app, given = v.resource, None, None
        else:
            field = _config_field(planned, v.field)
            app = _name_of(planned, spec.apps)
            given = _value_at(planned.manifest, v.field)
        first = first or (app, field)
        located.append((v, field))
        label = f"app {app!r}, " if app else ""
        shown = (
            f"; given: {given!r}" if given is not None and not isinstance(given, Mapping) else ""
        )
        message = v.message.rstrip(".")
        lines.append(f"  - {label}{field}: [{v.rule}] {message}{shown}; fix: {v.fix}")
    app, field = first or (None, ROOT)
    raise PolicyViolationError(
        "\n".join(lines), stack=stack_file, app=app, field=field, violations=located
    )


def config_error_for(
    exc: ValidationError, *, model: type[BaseModel], where: str, app: str | None = None
) -> ConfigError:
    """A ConfigError for a component's args; ``where`` names the stack and the component."""
    return config_error(exc, model=model, root="", stack_file=where, app=app)
