"""Client certificate validation on a Gateway's HTTPS listeners (``spec.tls.frontend``).

What the spec says (gateway-api v1.6 ``apis/v1/gateway_types.go``, ``FrontendTLSConfig`` and
``FrontendTLSValidation``; feature GatewayFrontendClientCertificateValidation, standard channel):

- ``frontend.default.validation`` applies to every listener serving HTTPS; an entry of
  ``frontend.perPort`` replaces it for the HTTPS listeners on that port. HTTP listeners are
  never affected.
- ``caCertificateRefs`` name the trust anchors. Core: a ConfigMap (``group: ""``) with the PEM
  bundle under ``ca.crt``. A ref that cannot be resolved or has no usable ``ca.crt``: the
  listener's ``ResolvedRefs`` is False with ``InvalidCACertificateRef``; another kind:
  ``InvalidCACertificateKind``; another namespace without a ReferenceGrant: ``RefNotPermitted``.
  When no ref is valid, ``Accepted`` is False too, with ``NoValidCACertificate``.
- ``mode``: ``AllowValidOnly`` (the default) accepts a connection only with a client
  certificate that verifies against the anchors; ``AllowInsecureFallback`` accepts it whatever
  the client presents, and the Gateway gets the condition ``InsecureFrontendValidationMode``
  (True, ``ConfigurationChanged``).

Choices where the spec leaves room: a listener with any invalid ref is not served (it is not
"resolved"), rather than served with the valid part of its anchors; several refs are joined
into one bundle; a Secret is not accepted as an anchor (only the Core ConfigMap).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from kexpose.certs import read_certificate
from kexpose.errors import KexposeError
from kexpose.proxy.routes._grants import Grants
from kexpose.proxy.routes._gwstatus import Condition, condition
from kexpose.proxy.routes._objects import Key
from kexpose.proxy.routes._raw import entries, mapping

__all__ = [
    "ClientValidation",
    "FrontendCheck",
    "ValidationMode",
    "frontend_validation",
    "insecure_fallback",
]

ValidationMode = Literal["AllowValidOnly", "AllowInsecureFallback"]
_MODES: Final = frozenset({"AllowValidOnly", "AllowInsecureFallback"})
_GATEWAY_GROUP: Final = "gateway.networking.k8s.io"
#: The key of a ConfigMap that holds the CA bundle (Core support).
CA_KEY: Final = "ca.crt"


@dataclass(frozen=True, slots=True)
class ClientValidation:
    """How the handshakes of one HTTPS port check client certificates."""

    ca_pem: str = field(repr=False)
    """The trust anchors, PEM (public material; ``repr`` kept short all the same)."""
    mode: ValidationMode = "AllowValidOnly"
    fingerprint: str = ""
    """SHA-256 of the anchors and the mode: the data plane rebuilds its contexts when it
    changes."""


@dataclass(frozen=True, slots=True)
class FrontendCheck:
    """The outcome for one HTTPS port: a validation to apply, or the listener conditions that
    say why it cannot be (then the port's HTTPS listeners are not served)."""

    validation: ClientValidation | None = None
    resolved: Condition | None = None
    """``ResolvedRefs`` False, when a ref is invalid."""
    accepted: Condition | None = None
    """``Accepted`` False (``NoValidCACertificate``), when no ref is valid."""


def _config(frontend: Mapping[str, Any], port: int) -> Mapping[str, Any] | None:
    """The validation block that applies to HTTPS listeners on ``port``, if any."""
    for entry in entries(frontend.get("perPort")):
        if entry.get("port") == port:
            found = mapping(mapping(entry.get("tls")).get("validation"))
            return found or None
    found = mapping(mapping(frontend.get("default")).get("validation"))
    return found or None


def frontend_validation(
    gateway: Mapping[str, Any],
    port: int,
    *,
    namespace: str,
    config_maps: Mapping[Key, Mapping[str, Any]],
    grants: Grants,
) -> FrontendCheck:
    """Client certificate validation for the HTTPS listeners of ``gateway`` (a Gateway
    object in ``namespace``) on ``port``; ``FrontendCheck()`` when none applies."""
    frontend = mapping(mapping(mapping(gateway.get("spec")).get("tls")).get("frontend"))
    validation = _config(frontend, port) if frontend else None
    if validation is None:
        return FrontendCheck()
    mode = str(validation.get("mode") or "AllowValidOnly")
    if mode not in _MODES:
        problem = condition(
            "ResolvedRefs", False, "InvalidCACertificateRef", f"validation mode {mode!r}"
        )
        return FrontendCheck(resolved=problem, accepted=_no_valid(problem.message))
    refs = entries(validation.get("caCertificateRefs"))
    bundles: list[str] = []
    problems: list[tuple[str, str]] = []
    for ref in refs:
        found = _anchor(ref, namespace, config_maps, grants)
        if isinstance(found, tuple):
            problems.append(found)
        else:
            bundles.append(found)
    if not refs:
        problems.append(("InvalidCACertificateRef", "no caCertificateRefs"))
    if problems:
        reason, _ = problems[0]
        message = "; ".join(m for _, m in problems)
        resolved = condition("ResolvedRefs", False, reason, message)
        accepted = None if bundles else _no_valid(message)
        return FrontendCheck(resolved=resolved, accepted=accepted)
    ca_pem = "\n".join(b.strip() for b in bundles) + "\n"
    digest = hashlib.sha256(f"{mode}\0{ca_pem}".encode()).hexdigest()
    return FrontendCheck(ClientValidation(ca_pem, mode, digest))  # type: ignore[arg-type]


def _no_valid(message: str) -> Condition:
    return condition(
        "Accepted", False, "NoValidCACertificate", f"no valid CA certificate: {message}"
    )


def _anchor(
    ref: Mapping[str, Any],
    namespace: str,
    config_maps: Mapping[Key, Mapping[str, Any]],
    grants: Grants,
) -> str | tuple[str, str]:
    """The PEM bundle a ref names, or (reason, message) for why it cannot be used."""
    group, kind = str(ref.get("group") or ""), str(ref.get("kind") or "")
    name = str(ref.get("name") or "")
    target_ns = str(ref.get("namespace") or namespace)
    label = f"{kind} {target_ns}/{name}"
    if (group, kind) != ("", "ConfigMap"):
        return (
            "InvalidCACertificateKind",
            f"caCertificateRef {group}/{label}: only core ConfigMaps are read",
        )
    if not grants.allows(
        from_group=_GATEWAY_GROUP,
        from_kind="Gateway",
        from_namespace=namespace,
        to_group="",
        to_kind="ConfigMap",
        to_namespace=target_ns,
        to_name=name,
    ):
        return (
            "RefNotPermitted",
            f"caCertificateRef {label}: no ReferenceGrant in {target_ns} allows it",
        )
    found = config_maps.get((target_ns, name))
    if found is None:
        return ("InvalidCACertificateRef", f"caCertificateRef {label} not found")
    pem = mapping(found.get("data")).get(CA_KEY)
    if not isinstance(pem, str) or not pem.strip():
        return ("InvalidCACertificateRef", f"caCertificateRef {label} has no {CA_KEY}")
    try:
        read_certificate(pem)
    except KexposeError as exc:
        return ("InvalidCACertificateRef", f"caCertificateRef {label}: {CA_KEY}: {exc}")
    return pem


def insecure_fallback(gateway: Mapping[str, Any]) -> bool:
    """Whether the Gateway lets any of its HTTPS ports accept clients that fail validation
    (``InsecureFrontendValidationMode``)."""
    frontend = mapping(mapping(mapping(gateway.get("spec")).get("tls")).get("frontend"))
    blocks = [mapping(mapping(frontend.get("default")).get("validation"))]
    blocks += [
        mapping(mapping(e.get("tls")).get("validation")) for e in entries(frontend.get("perPort"))
    ]
    return any(b.get("mode") == "AllowInsecureFallback" for b in blocks)
