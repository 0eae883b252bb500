"""The TLS of an imported Ingress, as the model says it: the mode found, the Secret kept.

- a cert-manager annotation (``cert-manager.io/cluster-issuer`` or ``issuer``) with ``spec.tls``:
  ``mode: cert-manager`` with that issuer, as ingress-shim did (https://cert-manager.io/docs/
  usage/ingress/);
- ``spec.tls`` with a ``secretName``: ``mode: secret`` keeping the Secret's name; the PEM goes
  into secret stack config that the user fills from the cluster (kexpose import never reads
  Secret data);
- ``spec.tls`` without a ``secretName``: ingress-nginx served its default certificate (and still
  redirected, user guide "TLS/HTTPS"); kexpose makes a self-signed one;
- no ``spec.tls``: ``mode: none``, written explicitly, since the environment's default would
  add TLS the original did not have.

The model gives an app one certificate Secret; further Secrets are reported.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from kexpose.defaults import CONTROLLER_NAMESPACE
from kexpose.hosts import covers
from kexpose.importer.catalogue import CERT_MANAGER_ANNOTATIONS
from kexpose.importer.findings import Findings
from kexpose.importer.source import SourceIngress

__all__ = ["TLS_CONFIG", "tls_of"]

#: The stack config namespace of the PEM of imported TLS Secrets: the ``kexpose:`` namespace
#: holds the stack's four keys only, and TlsSpec's certificateConfig may be ``namespace:key``.
TLS_CONFIG: Final = "tls"
_TLS_DOC: Final = "https://kubernetes.github.io/ingress-nginx/user-guide/tls/"


def tls_of(
    ing: SourceIngress, hosts: Iterable[str | None], findings: Findings, *, gateway: bool = False
) -> tuple[dict[str, Any], str | None]:
    """The app's ``tls:`` for ``ing`` (rule ``hosts`` as converted), and the choice comment;
    ``gateway``: the stack uses ``api: gateway``."""
    rule_hosts = [h for h in hosts if h is not None]
    issuer = next(
        ((k, v) for k, v in ing.annotations.items() if k in CERT_MANAGER_ANNOTATIONS), None
    )
    if not ing.tls:
        if issuer is not None:
            findings.add(
                ing,
                issuer[0],
                "not-convertible",
                "cert-manager's ingress-shim acts only on spec.tls entries, and there are "
                "none; the app gets no TLS",
                doc="https://cert-manager.io/docs/usage/ingress/",
            )
        return {"mode": "none"}, (
            "CHOICE: the Ingress has no TLS, so tls.mode is none (the environment's default "
            "would add it)"
            if rule_hosts
            else None
        )
    first = ing.tls[0]
    tls_hosts: list[str] = []
    for entry in ing.tls:
        if entry.secret_name != first.secret_name:
            findings.add(
                ing,
                entry.field,
                "not-convertible",
                f"a second certificate Secret ({entry.secret_name}); the model gives an app "
                f"one, {first.secret_name}",
                todo="split the Ingress per certificate, or use one certificate for all hosts",
                doc=_TLS_DOC,
            )
            continue
        for h in entry.hosts:
            if any(covers(h, rh) for rh in rule_hosts):
                if h not in tls_hosts:
                    tls_hosts.append(h)
            else:
                findings.add(
                    ing,
                    f"{entry.field}.hosts",
                    "approximated",
                    f"TLS host {h!r} has no rule; left out",
                )
    if not tls_hosts and first.hosts:
        return {"mode": "none"}, None
    out: dict[str, Any] = {}
    if sorted(tls_hosts) != sorted(rule_hosts) and tls_hosts:
        out["hosts"] = tls_hosts
    if first.secret_name is not None:
        out["secretName"] = first.secret_name
    if issuer is not None:
        kind = CERT_MANAGER_ANNOTATIONS[issuer[0]]
        out = {"mode": "cert-manager", "issuer": issuer[1], "issuerKind": kind, **out}
        if not gateway:
            return out, None
        # A Gateway listener references its certificate in the Gateway's namespace, where
        # cert-manager's gateway-shim issues it (kexpose.manifests.gateway, "cert-manager
        # certificates"): the Ingress's Secret stays unused.
        secret = (
            f"Secret {CONTROLLER_NAMESPACE}/{ing.namespace}-{first.secret_name}"
            if first.secret_name
            else f"a Secret of {CONTROLLER_NAMESPACE}"
        )
        findings.add(
            ing,
            first.field,
            "approximated",
            f"api gateway: a new certificate for {', '.join(tls_hosts or rule_hosts)} is issued "
            f"by cert-manager's gateway-shim ({issuer[1]!r}) into {secret} (the "
            "Gateway's namespace by default), where the HTTPS listener references it; the "
            "Ingress's own Secret is no longer served, and until the new one is issued the "
            "listener has no certificate",
            doc="https://cert-manager.io/docs/usage/gateway/",
        )
        return out, (f"CHOICE: api gateway: cert-manager issues a new certificate into {secret}")
    if first.secret_name is None:
        findings.add(
            ing,
            first.field,
            "approximated",
            "TLS without a secretName: ingress-nginx served its default certificate; "
            "kexpose makes a self-signed one",
            todo="set tls.mode cert-manager or secret for a trusted certificate",
            doc=_TLS_DOC,
        )
        return {"mode": "self-signed", **out}, (
            "CHOICE: TLS without a Secret: tls.mode self-signed"
        )
    stem = f"{TLS_CONFIG}:{ing.namespace}-{first.secret_name}"
    out = {
        "mode": "secret",
        **out,
        "certificateConfig": f"{stem}-crt",
        "privateKeyConfig": f"{stem}-key",
    }
    findings.add(
        ing,
        first.field,
        "converted",
        f"tls.mode secret, Secret {first.secret_name}: its PEM goes into secret stack config "
        f"{stem}-crt and {stem}-key (kexpose import never reads Secret data)",
        doc=_TLS_DOC,
    )
    comment = (
        f"CHOICE: tls.mode secret keeps Secret {ing.namespace}/{first.secret_name}; copy its "
        f"PEM into secret config: kubectl -n {ing.namespace} get secret "
        f"{first.secret_name} -o jsonpath='{{.data.tls\\.crt}}' | base64 -d | pulumi "
        f"config set --secret {stem}-crt (and tls.key into {stem}-key)"
    )
    return out, comment
