"""TLS material: self-signed certificates for dev and tests, and reading certificates back.

Pure functions over PEM text, built on ``cryptography``. Used by the self-signed TLS provider, the
proxy's default certificate, the policy rules that read a Secret's certificate, and the tests
(which generate their material per run; nothing is committed).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kexpose.errors import KexposeError

__all__ = ["CertInfo", "KeyPair", "read_certificate", "self_signed", "self_signed_certificate"]


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A certificate and its private key, both PEM. ``key_pem`` is secret material."""

    cert_pem: str
    key_pem: str

    def __repr__(self) -> str:  # never print the key, even in a traceback
        return f"KeyPair(cert_pem=<{len(self.cert_pem)} chars>, key_pem=<redacted>)"


@dataclass(frozen=True, slots=True)
class CertInfo:
    """What policies and the proxy need to know about a certificate."""

    dns_names: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime
    common_name: str | None


def self_signed(
    hosts: Sequence[str],
    *,
    days: int = 365,
    now: dt.datetime | None = None,
    common_name: str | None = None,
) -> KeyPair:
    """A self-signed serving certificate for ``hosts`` (DNS names or IP literals).

    ECDSA P-256 keeps generation fast (milliseconds) for per-test material; the certificate is a
    leaf (CA:false) with serverAuth usage, as browsers and Go's TLS stack require of a server
    certificate (RFC 5280 §4.2.1.9 and §4.2.1.12).
    """
    if not hosts:
        raise KexposeError("a self-signed certificate needs at least one host")
    start = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(minutes=5)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = self_signed_certificate(
        key,
        hosts,
        common_name=common_name or hosts[0],
        serial=x509.random_serial_number(),
        not_before=start,
        not_after=start + dt.timedelta(days=days),
    )
    return KeyPair(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    )


def self_signed_certificate(
    key: ec.EllipticCurvePrivateKey,
    hosts: Sequence[str],
    *,
    common_name: str,
    serial: int,
    not_before: dt.datetime,
    not_after: dt.datetime,
    deterministic: bool = False,
) -> x509.Certificate:
    """The leaf certificate ``self_signed`` issues, signed by ``key`` itself: CA:false,
    serverAuth, one SAN per host (an IP address for IP literals). ``deterministic`` signs with
    RFC 6979 ECDSA, so the same inputs give the same bytes."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    sans: list[x509.GeneralName] = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256(), ecdsa_deterministic=deterministic)
    )


def read_certificate(pem: str | bytes) -> CertInfo:
    """Parse the first certificate of a PEM bundle; raises KexposeError if it is not one."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise KexposeError(f"not a PEM certificate: {exc}") from exc
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = tuple(n.lower() for n in san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        dns = ()
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = cns[0].value if cns else None
    return CertInfo(
        dns_names=dns,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        common_name=cn if isinstance(cn, str) else None,
    )
