"""What `kexpose render` wrote for a stack, compared with what the API server holds after an up.

The comparison is a subset one: every field the rendered manifest sets must be in the live object
with the same value; the API server and controllers add fields of their own (uid, defaults,
status), which are not ours to check. Lists compare element by element. Secret data is never
compared as text nor printed: a TLS Secret is checked by what it means (a certificate for the
same names, with the matching private key).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

__all__ = [
    "api_path",
    "certificate_names",
    "identity",
    "load_rendered",
    "mismatches",
    "tls_pair",
    "without_secret_data",
]

#: Secret fields whose values are never compared as text (nor shown in a failure).
SECRET_DATA = ("data", "stringData")


def load_rendered(directory: Path) -> list[dict[str, Any]]:
    """The manifests `kexpose render --out directory` wrote, in its order."""
    return [yaml.safe_load(path.read_text()) for path in sorted(directory.glob("*.yaml"))]


def identity(obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
    meta = obj.get("metadata") or {}
    return (str(obj["apiVersion"]), str(obj["kind"]), meta.get("namespace") or "", meta["name"])


def api_path(obj: Mapping[str, Any]) -> str:
    """The REST path of an object (built-in kinds: the plural is the lower-case kind + s/es)."""
    api_version, kind, namespace, name = identity(obj)
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    plural = kind.lower() + ("es" if kind.lower().endswith("s") else "s")
    scope = f"/namespaces/{namespace}" if namespace else ""
    return f"{base}{scope}/{plural}/{name}"


def _same_scalar(expected: object, actual: object) -> bool:
    # YAML and JSON agree on numbers (1 == 1.0), but a bool is an int in Python: keep them apart.
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        # Pulumi carries every number as a float64 (protobuf Struct values), and so does the API
        # server for a schema's minimum and maximum: beyond 2**53 an integer arrives rounded
        # (Traefik's CRDs bound priorities by 9223372036854775000, which `kexpose render`, through
        # Pulumi, shows as 9223372036854774784, the same float64).
        return expected == actual or float(expected) == float(actual)
    return expected == actual


def _omitted_zero(value: object) -> bool:
    if isinstance(value, bool):
        return False
    return value is None or value in (0, "") or (isinstance(value, Mapping | list) and not value)


def mismatches(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where `actual` does not contain `expected`; one line per difference."""
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return [f"{path or '.'}: expected an object, found {actual!r}"]
        out: list[str] = []
        for key, value in expected.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in actual:
                # The API server's JSON drops zero values of `omitempty` fields (a probe's
                # initialDelaySeconds: 0, resources: {}): absent and zero mean the same there.
                # Booleans are kept: the ones the builders set are pointers, where false counts.
                if not _omitted_zero(value):
                    out.append(f"{where}: missing (rendered {value!r})")
                continue
            out += mismatches(value, actual[key], where)
        return out
    if isinstance(expected, Sequence) and not isinstance(expected, str):
        if not isinstance(actual, Sequence) or isinstance(actual, str):
            return [f"{path}: expected a list, found {actual!r}"]
        if len(expected) != len(actual):
            return [f"{path}: {len(expected)} items rendered, {len(actual)} live"]
        out = []
        for index, (e, a) in enumerate(zip(expected, actual, strict=True)):
            out += mismatches(e, a, f"{path}[{index}]")
        return out
    if _same_scalar(expected, actual):
        return []
    return [f"{path}: rendered {expected!r}, live {actual!r}"]


def without_secret_data(obj: Mapping[str, Any]) -> dict[str, Any]:
    if obj.get("kind") != "Secret":
        return dict(obj)
    return {k: v for k, v in obj.items() if k not in SECRET_DATA}


def tls_pair(cert_pem: bytes, key_pem: bytes) -> bool:
    """Whether the private key belongs to the certificate (compares public keys, prints nothing)."""
    certificate = x509.load_pem_x509_certificate(cert_pem)
    key = serialization.load_pem_private_key(key_pem, password=None)
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    return bool(
        certificate.public_key().public_bytes(der, fmt) == key.public_key().public_bytes(der, fmt)
    )


def certificate_names(cert_pem: bytes) -> list[str]:
    """The DNS names of a certificate's subjectAltName, sorted."""
    certificate = x509.load_pem_x509_certificate(cert_pem)
    sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return sorted(sans.value.get_values_for_type(x509.DNSName))
