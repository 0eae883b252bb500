"""Certificate rules: what the certificate inside a ``kubernetes.io/tls`` Secret says.

The certificate is read from ``data["tls.crt"]`` (base64, as manifests and the Pulumi provider
carry it) or ``stringData["tls.crt"]`` (plain PEM). Only DNS SANs count for coverage: browsers
and Go have ignored the subject CN for host names since RFC 6125 (§6.4.4) made it a fallback.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from kexpose.certs import CertInfo, read_certificate
from kexpose.errors import KexposeError
from kexpose.hosts import covers
from kexpose.policy.rules._kube import (
    Context,
    Finding,
    Obj,
    as_map,
    as_seq,
    as_str,
    data_field,
    spec,
)
from kexpose.policy.rules._stack import Stack

__all__ = ["TLS_TYPE", "SecretCertificate", "cert_covers_hosts", "cert_not_expiring", "read_secret"]

TLS_TYPE: Final = "kubernetes.io/tls"
_DAY: Final = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class SecretCertificate:
    """The certificate of a Secret, or why it could not be read."""

    field: str
    info: CertInfo | None
    problem: str | None


@lru_cache(maxsize=4096)
def _parse(pem: bytes) -> CertInfo | str:
    # Cached by content: the same certificate is read by two rules, and often by many Secrets.
    try:
        return read_certificate(pem)
    except KexposeError as exc:
        return str(exc)


def read_secret(obj: Obj) -> SecretCertificate | None:
    """The Secret's ``tls.crt``, parsed; None when the Secret carries none."""
    encoded = as_map(obj.raw.get("data")).get("tls.crt")
    if encoded is not None:
        field = data_field("tls.crt")
        try:
            pem = base64.b64decode(str(encoded), validate=True)
        except (binascii.Error, ValueError):
            return SecretCertificate(field, None, "is not valid base64")
    else:
        plain = as_map(obj.raw.get("stringData")).get("tls.crt")
        if plain is None:
            return None
        field = 'stringData["tls.crt"]'
        pem = str(plain).encode()
    parsed = _parse(pem)
    if isinstance(parsed, str):
        return SecretCertificate(field, None, f"cannot be read as a PEM certificate ({parsed})")
    return SecretCertificate(field, parsed, None)


def cert_not_expiring(obj: Obj, ctx: Context) -> Iterator[Finding]:
    if obj.raw.get("type") != TLS_TYPE:
        return
    cert = read_secret(obj)
    if cert is None:
        return  # ing-tls-secret-provisioned reports Secrets without tls.crt
    minimum = ctx.config.min_cert_days_remaining
    fix = "Renew the certificate (or let cert-manager manage it) before it expires."
    if cert.info is None:
        # An unreadable certificate cannot be shown to last: reported rather than skipped.
        yield Finding(obj, cert.field, f"{cert.problem}.", fix)
        return
    left = (cert.info.not_after - ctx.now) // _DAY  # whole days, rounded down
    if left < minimum:
        when = cert.info.not_after.strftime("%Y-%m-%d %H:%M UTC")
        state = f"expired {-left} day(s) ago" if left < 0 else f"expires in {left} day(s)"
        yield Finding(
            obj,
            cert.field,
            f"holds a certificate that {state} (notAfter {when}); at least {minimum} whole "
            "days are required (min_cert_days_remaining).",
            fix,
        )


def cert_covers_hosts(stack: Stack, ctx: Context) -> Iterator[Finding]:
    for ingress in stack.ingresses:
        for i, entry in enumerate(as_seq(spec(ingress).get("tls"))):
            item = as_map(entry)
            secret_name = as_str(item.get("secretName"))
            hosts = [h for h in as_seq(item.get("hosts")) if isinstance(h, str) and h]
            if not secret_name or not hosts:
                continue
            secret = stack.secrets.get((ingress.namespace, secret_name))
            if secret is None:
                continue  # only Secrets in the stack can be read
            cert = read_secret(secret)
            if cert is None:
                continue
            if cert.info is None:
                yield Finding(
                    ingress,
                    f"spec.tls[{i}].secretName",
                    f"Secret {secret_name!r}: its {cert.field} {cert.problem}, so no host "
                    "can be shown covered.",
                    "Store a valid PEM certificate in the Secret.",
                )
                continue
            sans = cert.info.dns_names
            for j, host in enumerate(as_seq(item.get("hosts"))):
                if not isinstance(host, str) or not host or any(covers(p, host) for p in sans):
                    continue
                listed = ", ".join(sans) or "no DNS names"
                yield Finding(
                    ingress,
                    f"spec.tls[{i}].hosts[{j}]",
                    f"{host!r} is not covered by the certificate in Secret {secret_name!r} "
                    f"(its DNS SANs: {listed}); clients would reject the connection.",
                    f"Issue a certificate whose SANs include {host!r} (or a one-label "
                    "wildcard over it).",
                )
