"""cert-manager's controllers (built by scripts/toolchain.sh, step `certmanager`) run out of cluster
against the e2e API server, and the objects a test needs to get certificates from them.

The binary is the toolchain's `cert-manager-controller`: cert-manager's own control loops
(Certificates, CertificateRequests with the approver, the CA and SelfSigned issuers, the Ingress
and Gateway shims) from the release's module, started by a small main of the toolchain's (the
release's cmd/controller module is not served; see scripts/toolchain/cert-manager-controller.go).
No webhook runs: the API server checks the CRDs' OpenAPI schemas, and the tests write valid
objects.

`install_crds` applies the release's CRDs; `CertManagerProcess` runs the controllers;
`ca_chain` builds the usual bootstrap (a SelfSigned ClusterIssuer signs a CA Certificate whose
Secret backs a CA ClusterIssuer); `certificate` and `wait_for_certificate` issue a leaf into a
Secret and return its PEM parts.
"""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import yaml
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_global_resource, create_namespaced_resource
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.core_v1 import Secret

from .cluster import _die_with_parent, stop_process_group, wait_until
from .toolchain import Toolchain

__all__ = [
    "CertManagerProcess",
    "Certificate",
    "ClusterIssuer",
    "IssuedCertificate",
    "ca_chain",
    "certificate",
    "install_crds",
    "wait_for_certificate",
]

GROUP = "cert-manager.io"
Certificate = create_namespaced_resource(GROUP, "v1", "Certificate", "certificates")
ClusterIssuer = create_global_resource(GROUP, "v1", "ClusterIssuer", "clusterissuers")
# Establishing a CRD is one controller pass of the apiserver; generous for a loaded CI machine.
CRD_ESTABLISH_TIMEOUT_S = 60.0
# The controllers list and watch before their first sync; a second or two locally.
START_TIMEOUT_S = 60.0
# Self-signed CA, then a leaf: a handful of control-loop passes each (key, request, approval,
# signing, Secret); seconds locally, generous for a loaded CI machine.
ISSUE_TIMEOUT_S = 120.0
STOP_GRACE_S = 15.0
LOG_TAIL_LINES = 40
FIELD_MANAGER = "kexpose-e2e"


def install_crds(kube: Client, toolchain: Toolchain) -> list[str]:
    """Apply cert-manager's CRDs (server-side) and wait until each is Established; their names."""
    names: list[str] = []
    for path in sorted(toolchain.cert_manager_crds.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            crd = cast(CustomResourceDefinition, CustomResourceDefinition.from_dict(doc))
            kube.apply(crd, field_manager=FIELD_MANAGER, force=True)
            names.append(str(doc["metadata"]["name"]))
    if not names:
        raise AssertionError(f"no CRDs under {toolchain.cert_manager_crds}")
    for name in names:

        def established(crd_name: str = name) -> bool | None:
            crd = kube.get(CustomResourceDefinition, crd_name)
            conditions = (crd.status.conditions if crd.status else None) or []
            ok = any(c.type == "Established" and c.status == "True" for c in conditions)
            return True if ok else None

        wait_until(established, timeout=CRD_ESTABLISH_TIMEOUT_S, what=f"CRD {name} Established")
    return names


@dataclass
class CertManagerProcess:
    """One `cert-manager-controller` process; `start()` returns once it runs its control loops."""

    binary: Path
    workdir: Path
    kubeconfig: Path
    cluster_resource_namespace: str
    """Where the Secrets of ClusterIssuers live (a CA issuer's key pair): cert-manager's
    `--cluster-resource-namespace`."""
    gateway_shim: bool = False
    """Also turn annotated Gateways' HTTPS listeners into Certificates (needs the Gateway API
    CRDs installed first)."""
    extra_args: Sequence[str] = ()
    log_path: Path = field(init=False)
    _process: subprocess.Popen[bytes] | None = field(init=False, default=None)
    _log: IO[bytes] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / "cert-manager.log"

    def argv(self) -> list[str]:
        return [
            str(self.binary),
            f"--kubeconfig={self.kubeconfig}",
            f"--cluster-resource-namespace={self.cluster_resource_namespace}",
            f"--enable-gateway-api={'true' if self.gateway_shim else 'false'}",
            *self.extra_args,
        ]

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self._process = subprocess.Popen(
            self.argv(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        try:
            wait_until(self._started, timeout=START_TIMEOUT_S, what="cert-manager control loops")
        except BaseException:
            self.stop()
            raise

    def _started(self) -> bool | None:
        assert self._process is not None
        code = self._process.poll()
        if code is not None:
            raise AssertionError(f"cert-manager-controller exited with {code}:\n{self.tail()}")
        return True if "starting control loops" in self._text() else None

    def _text(self) -> str:
        if self._log is not None:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def tail(self) -> str:
        return "\n".join(self._text().splitlines()[-LOG_TAIL_LINES:])

    def stop(self) -> None:
        process = self._process
        stop_process_group(process, STOP_GRACE_S)
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """The PEM parts of a `kubernetes.io/tls` Secret that cert-manager wrote."""

    cert_pem: str
    key_pem: str
    ca_pem: str
    """`ca.crt`: the issuing CA's certificate, what a client verifies the chain against."""


def _issuer(name: str, spec: dict[str, Any]) -> Any:
    return ClusterIssuer.from_dict(
        {
            "apiVersion": f"{GROUP}/v1",
            "kind": "ClusterIssuer",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


def certificate(
    name: str,
    namespace: str,
    *,
    secret_name: str,
    issuer: str,
    dns_names: Sequence[str] = (),
    common_name: str | None = None,
    is_ca: bool = False,
) -> Any:
    """A Certificate issued by the ClusterIssuer `issuer` (ECDSA P-256 keys)."""
    spec: dict[str, Any] = {
        "secretName": secret_name,
        "issuerRef": {"name": issuer, "kind": "ClusterIssuer", "group": GROUP},
        "privateKey": {"algorithm": "ECDSA", "size": 256},
    }
    if dns_names:
        spec["dnsNames"] = list(dns_names)
    if common_name:
        spec["commonName"] = common_name
    if is_ca:
        spec["isCA"] = True
    return Certificate.from_dict(
        {
            "apiVersion": f"{GROUP}/v1",
            "kind": "Certificate",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


def ca_chain(kube: Client, *, prefix: str, cluster_resource_namespace: str) -> str:
    """Create the CA bootstrap and return the CA ClusterIssuer's name once it is Ready.

    `<prefix>-selfsigned` (SelfSigned) signs the Certificate `<prefix>-ca` (isCA) into the Secret
    `<prefix>-ca` in the cluster resource namespace, which backs `<prefix>-ca` (CA).
    """
    selfsigned, ca = f"{prefix}-selfsigned", f"{prefix}-ca"
    kube.apply(_issuer(selfsigned, {"selfSigned": {}}), field_manager=FIELD_MANAGER, force=True)
    kube.apply(
        certificate(
            ca,
            cluster_resource_namespace,
            secret_name=ca,
            issuer=selfsigned,
            common_name=f"{prefix} e2e CA",
            is_ca=True,
        ),
        field_manager=FIELD_MANAGER,
        force=True,
    )
    wait_for_certificate(kube, ca, cluster_resource_namespace)
    kube.apply(_issuer(ca, {"ca": {"secretName": ca}}), field_manager=FIELD_MANAGER, force=True)

    def ready() -> bool | None:
        return True if _ready(kube.get(ClusterIssuer, ca)) else None

    wait_until(ready, timeout=ISSUE_TIMEOUT_S, what=f"ClusterIssuer {ca} Ready")
    return ca


def _ready(obj: Any) -> bool:
    conditions = ((obj.get("status") or {}).get("conditions")) or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def wait_for_certificate(kube: Client, name: str, namespace: str) -> IssuedCertificate:
    """Wait until the Certificate exists and is Ready, then read its Secret's PEM parts."""

    def issued() -> IssuedCertificate | None:
        try:  # a shim's Certificate appears some time after its Ingress or Gateway
            cert = kube.get(Certificate, name, namespace=namespace)
            if not _ready(cert):
                return None
            secret = kube.get(Secret, cert["spec"]["secretName"], namespace=namespace)
        except ApiError as exc:
            if exc.status.code == 404:
                return None
            raise
        data = secret.data or {}
        if not {"tls.crt", "tls.key", "ca.crt"} <= set(data):
            return None
        pem = {k: base64.b64decode(v).decode() for k, v in data.items()}
        return IssuedCertificate(pem["tls.crt"], pem["tls.key"], pem["ca.crt"])

    return wait_until(issued, timeout=ISSUE_TIMEOUT_S, what=f"Certificate {namespace}/{name}")
