"""Application protocols of Service ports (``spec.ports[].appProtocol``).

Kubernetes validates the field as a qualified name (``[prefix/]name``) and documents three
kinds of value (Service concept, "Application protocol"): IANA service names without a prefix
(``http``, ``https``), the Kubernetes-defined ``kubernetes.io/h2c`` (HTTP/2 over cleartext
with prior knowledge, RFC 9113 §3.3), ``kubernetes.io/ws`` and ``kubernetes.io/wss``
(WebSocket, RFC 6455), and implementation-specific names with a domain prefix
(``mycompany.com/my-protocol``). The ``kubernetes.io/`` prefix is reserved, so other names under
it are refused. kexpose-proxy speaks h2c to ports marked ``kubernetes.io/h2c`` (and the Gateway
API's HTTPRouteBackendProtocolH2C reads the same value).
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from pydantic import AfterValidator

__all__ = ["APP_PROTOCOL_H2C", "KUBERNETES_APP_PROTOCOLS", "AppProtocol", "check_app_protocol"]

APP_PROTOCOL_H2C: Final = "kubernetes.io/h2c"
KUBERNETES_APP_PROTOCOLS: Final = ("kubernetes.io/h2c", "kubernetes.io/ws", "kubernetes.io/wss")

# IsQualifiedName (apimachinery validation): the name part, at most 63 characters.
_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
# The optional prefix: an RFC 1123 DNS subdomain, at most 253 characters.
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def check_app_protocol(value: str) -> str:
    allowed = (
        "allowed: an IANA service name (http, https), "
        + ", ".join(KUBERNETES_APP_PROTOCOLS)
        + ", or a domain-prefixed name (example.com/my-protocol)"
    )
    prefix, slash, name = value.rpartition("/")
    if slash and value.count("/") > 1:
        raise ValueError(f"{value!r} is not a qualified name (at most one '/'); {allowed}")
    if not name or len(name) > 63 or not _NAME.match(name):
        raise ValueError(
            f"{value!r} is not a qualified name: the name part must be 1-63 letters, digits, "
            f"'-', '_' or '.', starting and ending with a letter or digit; {allowed}"
        )
    if slash and (len(prefix) > 253 or not _SUBDOMAIN.match(prefix)):
        raise ValueError(f"{value!r}: the prefix {prefix!r} is not a DNS subdomain; {allowed}")
    if prefix in ("kubernetes.io", "k8s.io") and value not in KUBERNETES_APP_PROTOCOLS:
        raise ValueError(f"{value!r}: the {prefix}/ prefix is reserved to Kubernetes; {allowed}")
    return value


AppProtocol = Annotated[str, AfterValidator(check_app_protocol)]
