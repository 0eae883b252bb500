"""The policy configuration: the specification's keys, their two sets of defaults, and loading.

The keys and the specification's defaults are those of ``policy-rules.md`` ("Config keys and their
defaults"); ``now`` is added so that the certificate-expiry rule is reproducible. Two starting
points exist because the rule semantics are written against an ingress-nginx installation while
the project's own stacks run their own controller:

- :meth:`PolicyConfig.spec` (also plain ``PolicyConfig()``): the specification's defaults;
- :meth:`PolicyConfig.project`: the project's own stacks (IngressClass ``kexpose``, controller
  Service ``kexpose-system/kexpose-controller``, from :mod:`kexpose.defaults`). ``kexpose check``
  without ``--policy-config`` and the CrossGuard pack start from these.

A YAML file given to ``kexpose check --policy-config`` holds the specification's keys; a key it
leaves out keeps the specification's default (the file describes a policy, not a patch of the
project's own one).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
)

from kexpose import defaults
from kexpose.errors import InputError

__all__ = ["CONFIG_KEYS", "PolicyConfig", "load_policy_config"]

_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
_MINOR = re.compile(r"^\d+\.\d+$")
# namespace/name, each a DNS-1123 label as Kubernetes requires of both (RFC 1123 §2.1).
_NS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class PolicyConfig(BaseModel):
    """What the rules may be told. Frozen; unknown keys are refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    allowed_ingress_classes: tuple[str, ...] = ("nginx",)
    """``ing-class-allowed``: the IngressClass names an Ingress may use."""
    allowed_loadbalancers: tuple[str, ...] = ("ingress-nginx/ingress-nginx-controller",)
    """``svc-no-loadbalancer``: ``namespace/name`` of the Services that may be LoadBalancers."""
    public_loadbalancers: tuple[str, ...] = ("ingress-nginx/ingress-nginx-controller",)
    """``svc-lb-source-ranges``: LoadBalancers that may be open to the world."""
    allowed_external_ips: tuple[str, ...] = ()
    """``svc-no-external-ips``: IPs a Service may claim in ``spec.externalIPs``."""
    allow_default_certificate: StrictBool = False
    """``ing-require-tls``: accept a tls entry with hosts but no secretName."""
    min_cert_days_remaining: int = Field(default=30, ge=0)
    """``tls-cert-not-expiring``: whole days a certificate must still be valid for."""
    nginx_fixed_versions: Mapping[str, str] = Field(
        default_factory=lambda: {"1.11": "1.11.5", "1.12": "1.12.1"}
    )
    """``nginx-controller-patched``: first fixed release per minor line (``"1.12": "1.12.1"``)."""
    allowed_gateway_classes: tuple[str, ...] = ("kexpose",)
    """``gw-class-allowed``: the GatewayClass names a Gateway may use."""
    now: dt.datetime | None = None
    """Clock for certificate expiry (ISO-8601, UTC when no offset is given); None: the real one."""

    @classmethod
    def spec(cls) -> PolicyConfig:
        """The specification's defaults (an ingress-nginx installation)."""
        return cls()

    @classmethod
    def project(cls) -> PolicyConfig:
        """The project's own stacks: their IngressClass and controller Service."""
        controller = f"{defaults.CONTROLLER_NAMESPACE}/{defaults.CONTROLLER_SERVICE}"
        return cls(
            allowed_ingress_classes=(defaults.INGRESS_CLASS,),
            allowed_loadbalancers=(controller,),
            public_loadbalancers=(controller,),
            allowed_gateway_classes=(defaults.INGRESS_CLASS,),
        )

    @classmethod
    def for_stack(
        cls,
        controller: Mapping[str, Any] | None,
        overrides: Mapping[str, Any] | None = None,
    ) -> PolicyConfig:
        """What a kexpose stack is held to: the project's defaults aimed at the stack's own
        controller, then the stack's ``kexpose:policy`` overrides.

        ``controller`` is the ``kexpose:controller`` stack config as written (camelCase keys,
        ``className``, ``namespace``, ``name``; unset keys take the project's defaults), or None
        for a stack without a controller. The same function serves ``kexpose preview``, the
        components' early validation and the CrossGuard pack, so all three agree. Raises
        pydantic's ValidationError on a bad override.
        """
        values: dict[str, Any] = cls.project().model_dump()
        if controller is not None:
            service = "/".join(
                (
                    str(controller.get("namespace", defaults.CONTROLLER_NAMESPACE)),
                    str(controller.get("name", defaults.CONTROLLER_SERVICE)),
                )
            )
            # One class name per stack: the controller's IngressClass and, with Gateway API,
            # its GatewayClass carry the same name (``className``).
            klass = str(controller.get("className", defaults.INGRESS_CLASS))
            values.update(
                allowed_ingress_classes=(klass,),
                allowed_loadbalancers=(service,),
                public_loadbalancers=(service,),
                allowed_gateway_classes=(klass,),
            )
        values.update(overrides or {})
        return cls.model_validate(values)

    @field_validator("allowed_loadbalancers", "public_loadbalancers")
    @classmethod
    def _namespace_slash_name(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if not _NS_NAME.match(item):
                raise ValueError(
                    f"{item!r} is not 'namespace/name' (two DNS labels joined by '/', "
                    "e.g. 'ingress-nginx/ingress-nginx-controller')"
                )
        return value

    @field_validator("allowed_external_ips")
    @classmethod
    def _ip_literals(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                ipaddress.ip_address(item)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address (e.g. '203.0.113.10')") from None
        return value

    @field_validator("allowed_ingress_classes", "allowed_gateway_classes")
    @classmethod
    def _non_empty_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not item for item in value):
            raise ValueError("a class name cannot be empty")
        return value

    @field_validator("nginx_fixed_versions")
    @classmethod
    def _versions(cls, value: Mapping[str, str]) -> Mapping[str, str]:
        for minor, fixed in value.items():
            if not _MINOR.match(minor):
                raise ValueError(f"key {minor!r} is not a minor line 'X.Y' (e.g. '1.12')")
            if not isinstance(fixed, str) or not _VERSION.match(fixed):
                raise ValueError(f"{minor!r}: {fixed!r} is not a release 'X.Y.Z' (e.g. '1.12.1')")
            if not fixed.startswith(minor + "."):
                raise ValueError(f"{minor!r}: the fixed release {fixed!r} is not on that line")
        return dict(value)

    @field_validator("now")
    @classmethod
    def _utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        # The specification gives `now` in UTC; a value without an offset is read as UTC rather
        # than as the checker's local time, so the same file gives the same verdict anywhere.
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value


#: The configuration keys, in the specification's order (``now`` last).
CONFIG_KEYS: Final[tuple[str, ...]] = tuple(PolicyConfig.model_fields)


def _describe(error: Mapping[str, Any]) -> str:
    loc = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"unknown key {loc!r} (allowed keys: {', '.join(CONFIG_KEYS)})"
    given = error.get("input")
    msg = str(error["msg"]).removeprefix("Value error, ")
    return f"key {loc!r}: given {given!r}: {msg}"


def load_policy_config(path: str | Path) -> PolicyConfig:
    """Read a ``--policy-config`` YAML file; raises :class:`InputError` naming file and key."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{name}: cannot read the policy config: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{name}: the policy config is not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(
            f"{name}: the policy config must be a mapping of keys to values, "
            f"not {type(data).__name__} (allowed keys: {', '.join(CONFIG_KEYS)})"
        )
    try:
        return PolicyConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise InputError(f"{name}: invalid policy config: {problems}") from exc
