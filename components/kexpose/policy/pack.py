"""The CrossGuard pack: the rule table as pulumi_policy policies, for one environment.

``policies/__main__.py`` calls :func:`stack_environment` and :func:`build_policies` and hands the
result to ``PolicyPack``; nothing here constructs a ``PolicyPack``, because that starts a gRPC
server and never returns (pulumi-policy ``PolicyPack.__init__``), which must not happen on import.

How the pieces meet the Pulumi engine (read from pulumi-policy 1.21 ``policy.py`` and the CLI's
``analyzer_plugin.go`` / ``policy_config.go``):

- The CLI names the stack and its config, asks for the policies (``GetAnalyzerInfo``), then
  sends every policy's enforcement level back in ``Configure``. The level per environment must
  therefore be known before ``GetAnalyzerInfo``: the environment comes from the stack config
  ``kexpose:environment``, else the stack name. Older CLIs set ``PULUMI_STACK`` and
  ``PULUMI_CONFIG`` when they start the pack; newer ones (v3.274) send them in
  ``ConfigureStack`` only, which :func:`follow_stack_configuration` handles.
- A rule inactive in that environment is registered at advisory and calls ``not_applicable``.
- Per-policy config (``--policy-pack-config``) carries the ``PolicyConfig`` keys the rule reads;
  the schema defaults are the project's own (:meth:`PolicyConfig.project`), as for
  ``kexpose check`` without a config file.
- Props arrive without apiVersion/kind under a type token (``kubernetes:core/v1:Service``); both
  are rebuilt from the token. The props stay the SDK's proxy, never copied: reading a value that
  is unknown at preview raises ``UnknownValueError``, which the SDK reports as an *advisory*
  "can't run policy during preview", even for a mandatory rule. Each rule reads only the fields
  it judges, so an unknown elsewhere (a generated certificate, a status) does not disarm it; the
  components keep ``spec.type``, hosts and class names plain so those rules bite at preview.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any, Final

import pulumi
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError
from pydantic import ValidationError

from kexpose.environment import ENVIRONMENTS, Environment
from kexpose.errors import ConfigError
from kexpose.policy.config import PolicyConfig
from kexpose.policy.engine import Violation, evaluate, identify
from kexpose.policy.rules import RULES, Rule
from kexpose.policy.rules._kube import has_key

__all__ = [
    "ENVIRONMENT_CONFIG",
    "PACK_NAME",
    "build_policies",
    "environment_for",
    "follow_stack_configuration",
    "manifest_from",
    "stack_environment",
    "stack_policy_config",
]

PACK_NAME: Final = "kexpose-exposure"
ENVIRONMENT_CONFIG: Final = "kexpose:environment"

_NS_NAME: Final = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# JSON schema per config key, as the Pulumi CLI validates --policy-pack-config (gojsonschema).
_SCHEMA: Final[Mapping[str, Mapping[str, Any]]] = {
    "allowed_ingress_classes": {"type": "array", "items": {"type": "string", "minLength": 1}},
    "allowed_loadbalancers": {"type": "array", "items": {"type": "string", "pattern": _NS_NAME}},
    "public_loadbalancers": {"type": "array", "items": {"type": "string", "pattern": _NS_NAME}},
    "allowed_external_ips": {"type": "array", "items": {"type": "string"}},
    "allow_default_certificate": {"type": "boolean"},
    "min_cert_days_remaining": {"type": "integer", "minimum": 0},
    "nginx_fixed_versions": {
        "type": "object",
        "additionalProperties": {"type": "string", "pattern": r"^\d+\.\d+\.\d+$"},
    },
    "allowed_gateway_classes": {"type": "array", "items": {"type": "string", "minLength": 1}},
    "now": {"type": "string", "description": "ISO-8601 evaluation time (UTC if no offset)"},
}

# Type tokens whose module is not a Kubernetes API group/version (Helm, YAML and Kustomize
# components); their children are the objects the rules judge.
_NOT_OBJECTS: Final = ("helm.sh/", "yaml", "kustomize")


def environment_for(stack: str | None, configured: str | None) -> Environment:
    """The environment of a stack: its ``kexpose:environment`` config, else its name."""
    value = configured or stack
    for env in ENVIRONMENTS:
        if value == env:
            return env
    source = f"config {ENVIRONMENT_CONFIG}" if configured else "stack name"
    raise ConfigError(
        f"policy pack {PACK_NAME}: cannot tell the environment of stack {stack!r}: the {source} "
        f"is {value!r}, allowed: {', '.join(ENVIRONMENTS)}. Set it with "
        f"`pulumi config set {ENVIRONMENT_CONFIG} prod` (or dev, staging).",
        stack=stack,
        field=ENVIRONMENT_CONFIG,
    )


def stack_environment(stack: str | None = None) -> Environment:
    """The environment of the stack the CLI started this pack for.

    ``pulumi.policy`` has loaded ``PULUMI_CONFIG`` into the runtime config; ``PULUMI_STACK`` is
    the stack name (``stack`` wins over it: the name a ``ConfigureStack`` call gave). With
    neither (``pulumi policy publish`` reads only the metadata) the strictest levels, prod's,
    are registered.
    """
    configured = pulumi.Config("kexpose").get("environment")
    stack = stack or os.environ.get("PULUMI_STACK")
    if configured is None and stack is None:
        return "prod"
    return environment_for(stack, configured)


def stack_policy_config() -> PolicyConfig:
    """The base config of the stack the CLI started this pack for, as ``kexpose preview`` and
    the components compute it: aimed at the stack's ``kexpose:controller`` and with its
    ``kexpose:policy`` overrides. ``--policy-pack-config`` values still win, per policy.
    """
    cfg = pulumi.Config("kexpose")
    controller = cfg.get_object("controller")
    overrides = cfg.get_object("policy")
    try:
        return PolicyConfig.for_stack(
            controller if isinstance(controller, Mapping) else None,
            overrides if isinstance(overrides, Mapping) else None,
        )
    except ValidationError as exc:
        raise ConfigError(
            f"policy pack {PACK_NAME}: stack config kexpose:policy is invalid: {exc}",
            field="kexpose:policy",
        ) from None


def follow_stack_configuration(policies: list[Policy]) -> None:
    """Rebuild ``policies`` in place for the stack a ``ConfigureStack`` call names.

    Pulumi CLIs that start packs through the language host (``pkg/v3`` ``NewPolicyAnalyzer``,
    e.g. v3.274) no longer put ``PULUMI_STACK`` and ``PULUMI_CONFIG`` in the pack's environment:
    the stack name and its config arrive in ``ConfigureStack``, before ``GetAnalyzerInfo``.
    pulumi-policy 1.21 keeps only the tags of that call, so a pack that read the environment at
    start would serve every stack with prod's levels. This wraps the call: the config goes into
    the runtime config (as ``PULUMI_CONFIG`` would have), then ``policies`` (the very list the
    ``PolicyPack`` serves) is rebuilt with that stack's environment and base config. A stack
    whose environment cannot be told fails the call, and with it the CLI's preview, with the
    message of :func:`environment_for`.
    """
    from pulumi_policy import policy as sdk  # the servicer class is not part of the public API

    servicer = sdk._PolicyAnalyzerServicer  # pinned pulumi-policy (constraints.txt), see above
    plain = servicer.ConfigureStack

    def configure_stack(self: Any, request: Any, context: Any) -> Any:
        for key, value in request.config.items():
            pulumi.runtime.set_config(key, value)
        policies[:] = build_policies(
            stack_environment(request.stack or None), base=stack_policy_config()
        )
        return plain(self, request, context)

    servicer.ConfigureStack = configure_stack  # type: ignore[method-assign,assignment]


class _Overlay(Mapping[str, Any]):
    """A read-only view of ``base`` with a few keys added or replaced, copying nothing."""

    __slots__ = ("_base", "_extra")

    def __init__(self, base: Mapping[str, Any], extra: Mapping[str, Any]) -> None:
        self._base = base
        self._extra = extra

    def __getitem__(self, key: str) -> Any:
        if key in self._extra:
            return self._extra[key]
        return self._base[key]

    def __iter__(self) -> Iterator[str]:
        yield from self._extra
        yield from (k for k in self._base if k not in self._extra)

    def __len__(self) -> int:
        return len(self._extra) + sum(1 for k in self._base if k not in self._extra)


def _api_version(module: str) -> str:
    # The core group has no name in apiVersion: kubernetes:core/v1:Service is "v1".
    return module.removeprefix("core/")


def manifest_from(
    resource_type: str,
    props: Mapping[str, Any],
    *,
    name: str | None = None,
    namespace: str | None = None,
) -> Mapping[str, Any] | None:
    """The Kubernetes object a Pulumi resource declares, or None if it is not one.

    ``name`` and ``namespace`` fill ``metadata`` when the props lack them (the resource's own
    name, the provider's default namespace).
    """
    package, _, rest = resource_type.partition(":")
    module, _, kind = rest.partition(":")
    if package != "kubernetes" or "/" not in module or not kind or module.startswith(_NOT_OBJECTS):
        return None
    metadata = props.get("metadata") if has_key(props, "metadata") else None
    base = metadata if isinstance(metadata, Mapping) else {}
    fill = {}
    if name and not has_key(base, "name"):
        fill["name"] = name
    if namespace and not has_key(base, "namespace"):
        fill["namespace"] = namespace
    extra: dict[str, Any] = {"apiVersion": _api_version(module), "kind": kind}
    if fill or metadata is None:
        extra["metadata"] = _Overlay(base, fill)
    return _Overlay(props, extra)


def _provider_namespace(provider: Any) -> str | None:
    if provider is None:
        return None
    try:
        value = provider.props.get("namespace")
    except UnknownValueError:
        return None
    return value if isinstance(value, str) and value else None


def _config(rule: Rule, base: PolicyConfig, given: Mapping[str, Any]) -> PolicyConfig:
    if not given:
        return base
    try:
        return PolicyConfig.model_validate({**base.model_dump(), **dict(given)})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']} (given {e.get('input')!r})"
            for e in exc.errors()
        )
        raise ConfigError(
            f"policy pack {PACK_NAME}, policy {rule.id}: invalid config: {problems}",
            field=rule.id,
        ) from exc


def _text(violation: Violation) -> str:
    return f"{violation.message}\nFix: {violation.fix}"


def _inactive(rule: Rule, environment: Environment) -> str:
    return f"{rule.id} is not active in {environment} (active in: {', '.join(rule.active)})"


def _resource_check(rule: Rule, environment: Environment, base: PolicyConfig) -> Any:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if not rule.is_active(environment):
            args.not_applicable(_inactive(rule, environment))
        manifest = manifest_from(
            args.resource_type,
            args.props,
            name=args.name,
            namespace=_provider_namespace(args.provider),
        )
        if manifest is None or manifest["kind"] not in rule.kinds:
            return
        config = _config(rule, base, args.get_config())
        for v in evaluate([manifest], environment=environment, config=config, rules=[rule.id]):
            # The engine pins a resource policy's diagnostics to the resource anyway; the URN
            # makes the diagnostic self-contained for anything else that reads it.
            report(_text(v), args.urn)

    return validate


def _stack_check(rule: Rule, environment: Environment, base: PolicyConfig) -> Any:
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        if not rule.is_active(environment):
            args.not_applicable(_inactive(rule, environment))
        manifests: list[Mapping[str, Any]] = []
        urns: list[str] = []
        for resource in args.resources:
            manifest = manifest_from(
                resource.resource_type,
                resource.props,
                name=resource.name,
                namespace=_provider_namespace(resource.provider),
            )
            if manifest is not None:
                manifests.append(manifest)
                urns.append(resource.urn)
        urn_of: dict[str, str] = {}
        for obj in identify(manifests):
            urn_of.setdefault(obj.ref, urns[obj.index])
        config = _config(rule, base, args.get_config())
        for v in evaluate(manifests, environment=environment, config=config, rules=[rule.id]):
            report(_text(v), urn_of.get(v.resource))

    return validate


def _schema(rule: Rule, base: PolicyConfig) -> PolicyConfigSchema | None:
    if not rule.config_keys:
        return None
    defaults = base.model_dump(mode="json")
    properties: dict[str, dict[str, Any]] = {}
    for key in rule.config_keys:
        prop = dict(_SCHEMA[key])
        if defaults.get(key) is not None:
            prop["default"] = defaults[key]
        properties[key] = prop
    return PolicyConfigSchema(properties=properties)


def build_policies(environment: Environment, *, base: PolicyConfig | None = None) -> list[Policy]:
    """One policy per rule, with the enforcement level the rule has in ``environment``."""
    config = base if base is not None else PolicyConfig.project()
    policies: list[Policy] = []
    for rule in RULES.values():
        level = EnforcementLevel(rule.enforcement.get(environment, "advisory"))
        common: dict[str, Any] = {
            "name": rule.id,
            "description": rule.description,
            "enforcement_level": level,
            "config_schema": _schema(rule, config),
            "severity": Severity(rule.severity),
            "tags": ["kexpose", f"scope:{rule.scope}", *(f"env:{e}" for e in rule.active)],
        }
        if rule.scope == "R":
            policies.append(
                ResourceValidationPolicy(
                    validate=_resource_check(rule, environment, config), **common
                )
            )
        else:
            policies.append(
                StackValidationPolicy(validate=_stack_check(rule, environment, config), **common)
            )
    return policies
