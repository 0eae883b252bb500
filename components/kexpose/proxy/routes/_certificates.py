"""TLS certificates from Secrets, and which one a TLS handshake gets for its SNI name.

Rules (Ingress concept page, "TLS"; ingress-nginx where the spec is silent):

- A Secret usable for TLS holds PEM ``tls.crt`` and ``tls.key`` (type ``kubernetes.io/tls``;
  like ingress-nginx we accept any type that has both keys).
- SNI selection lower-cases the name, drops one trailing dot, tries the exact name, then
  ``*.`` + the rest (a wildcard covers exactly one label). No SNI, or a name nothing covers,
  gets the default certificate rather than a failed handshake.
- SNI picks the certificate; the Host header picks the route. When they disagree and the SNI
  name had a certificate of its own that does not serve the Host, the data plane answers 421
  Misdirected Request (``_tls.misdirected``: no domain fronting past a certificate check).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from kexpose.certs import read_certificate
from kexpose.errors import KexposeError
from kexpose.hosts import covers, normalize_host, wildcard_of
from kexpose.proxy.routes._kube import Secret

__all__ = ["Certificate", "CertificateMap", "certificate_from_secret"]


@dataclass(frozen=True, slots=True)
class Certificate:
    """A serving certificate and key from a Secret (PEM). ``key_pem`` is secret material."""

    secret: str
    """``namespace/name`` of the Secret it came from."""
    cert_pem: str
    key_pem: str = field(repr=False)
    names: tuple[str, ...]
    """DNS names the certificate is valid for (SANs, else the CN), lower case."""
    fingerprint: str
    """SHA-256 over certificate and key; the data plane caches TLS contexts by it."""


def certificate_from_secret(secret: Secret, *, label: str) -> Certificate | str:
    """The certificate in ``secret``, or a message saying why it has none."""
    data: dict[str, str] = {}
    for field_name, value in (secret.get("data") or {}).items():
        try:
            data[field_name] = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return f"Secret {label}: data.{field_name} is not base64-encoded PEM text"
    data.update(secret.get("stringData") or {})
    cert, key = data.get("tls.crt"), data.get("tls.key")
    if not cert or not key:
        return f"Secret {label} has no tls.crt and tls.key"
    try:
        info = read_certificate(cert)
    except KexposeError as exc:
        return f"Secret {label}: tls.crt: {exc}"
    names = info.dns_names or ((info.common_name.lower(),) if info.common_name else ())
    digest = hashlib.sha256(f"{cert}\0{key}".encode()).hexdigest()
    return Certificate(label, cert, key, names, digest)


def certificate_covers(cert: Certificate, host: str) -> bool:
    """Whether ``cert`` verifies ``host`` (for TLS entries that omit ``hosts``)."""
    return any(covers(name, host) for name in cert.names)


@dataclass(frozen=True, slots=True)
class CertificateMap:
    """TLS host names (exact or ``*.`` wildcard) -> certificate."""

    by_name: Mapping[str, Certificate] = field(default_factory=dict)

    def lookup(self, server_name: str | None) -> Certificate | None:
        """The certificate for an SNI name; None means "use the default certificate"."""
        if not server_name:
            return None
        name = normalize_host(server_name)
        found = self.by_name.get(name)
        if found is None:
            wildcard = wildcard_of(name)
            if wildcard is not None:
                found = self.by_name.get(wildcard)
        return found

    def all(self) -> tuple[Certificate, ...]:
        """Each distinct certificate once (for building TLS contexts ahead of handshakes)."""
        return tuple({c.fingerprint: c for c in self.by_name.values()}.values())
