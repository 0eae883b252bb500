"""TLS for an app's Ingress hosts: none, self-signed, a provided PEM pair, or cert-manager."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from kexpose.model.base import Deferrable, DNSLabel, Frozen, Problems
from kexpose.model.ingress import Host

__all__ = ["TlsMode", "TlsSpec"]

TlsMode = Literal["none", "self-signed", "secret", "cert-manager"]


class TlsSpec(Frozen):
    """How the app's hosts get a certificate.

    - ``self-signed``: kexpose makes a certificate (kept stable in Pulumi state) for dev/staging.
    - ``secret``: the PEM certificate and key are given, the key as a Pulumi secret: in stack
      config by naming the secret config keys (``certificateConfig``/``privateKeyConfig``), or
      from Python as values or Outputs.
    - ``cert-manager``: an Issuer or ClusterIssuer makes it; by default through the Ingress
      annotation (cert-manager's ingress-shim), or as an explicit Certificate resource.

    ``mode`` unset takes the environment's default; ``hosts`` unset covers every rule host.
    """

    mode: TlsMode | None = None
    hosts: tuple[Host, ...] | None = None
    secret_name: DNSLabel | None = None
    validity_days: int = Field(default=365, ge=1, le=3650)
    certificate: Deferrable | None = None
    private_key: Deferrable | None = Field(default=None, repr=False)
    certificate_config: str | None = None
    private_key_config: str | None = None
    issuer: DNSLabel | None = None
    issuer_kind: Literal["ClusterIssuer", "Issuer"] = "ClusterIssuer"
    via: Literal["annotation", "certificate"] = "annotation"

    @model_validator(mode="after")
    def _mode_fields(self) -> TlsSpec:
        problems = Problems("TlsSpec")
        mode = self.mode or "<environment default>"
        belongs = {
            "certificate": "secret",
            "certificateConfig": "secret",
            "privateKey": "secret",
            "privateKeyConfig": "secret",
            "issuer": "cert-manager",
        }
        given = {
            "certificate": self.certificate,
            "certificateConfig": self.certificate_config,
            "privateKey": self.private_key,
            "privateKeyConfig": self.private_key_config,
            "issuer": self.issuer,
        }
        for key, value in given.items():
            # With the mode unset, the fields given choose it (see ``implied_mode``).
            if value is not None and self.mode is not None and belongs[key] != self.mode:
                problems.add((key,), f"belongs to TLS mode {belongs[key]!r}, not {mode!r}")
        if self.implied_mode() == "secret":
            for value_key, config_key in (
                ("certificate", "certificateConfig"),
                ("privateKey", "privateKeyConfig"),
            ):
                if given[value_key] is None and given[config_key] is None:
                    problems.add(
                        (config_key,),
                        f"TLS mode 'secret' needs {value_key} (a value) or {config_key} (the "
                        "name of a secret stack config key holding the PEM)",
                    )
                elif given[value_key] is not None and given[config_key] is not None:
                    problems.add((config_key,), f"give {value_key} or {config_key}, not both")
        if self.mode == "cert-manager" and self.issuer is None:
            problems.add(
                ("issuer",), "TLS mode 'cert-manager' needs the Issuer or ClusterIssuer name"
            )
        if self.mode is None and self.issuer is not None and given["certificate"]:
            problems.add(("issuer",), "give an issuer (cert-manager) or a certificate, not both")
        if self.mode == "none" and self.hosts:
            problems.add(("hosts",), "TLS hosts are given but TLS mode is 'none'", list(self.hosts))
        problems.check()
        return self

    def implied_mode(self) -> TlsMode | None:
        """The mode the given fields imply when ``mode`` is unset: an issuer means
        cert-manager, certificate material means secret; otherwise the environment decides."""
        if self.mode is not None:
            return self.mode
        if self.issuer is not None:
            return "cert-manager"
        if any(
            v is not None
            for v in (
                self.certificate,
                self.certificate_config,
                self.private_key,
                self.private_key_config,
            )
        ):
            return "secret"
        return None
