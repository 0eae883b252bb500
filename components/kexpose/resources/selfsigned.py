"""A self-signed certificate kept in Pulumi state, so that it is made once and stays stable.

A dynamic provider: ``create`` generates the key pair (``kexpose.certs``), ``diff`` reports no
change while the hosts and validity are the same and the certificate is not close to expiry, so
a second ``pulumi up`` shows nothing to do. The private key is a Pulumi secret.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Final

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider

from kexpose.certs import read_certificate, self_signed

__all__ = ["RENEW_BEFORE_DAYS", "SelfSignedCertificate", "SelfSignedProvider"]

#: Replace the certificate when fewer days than this remain, on the next ``pulumi up``.
RENEW_BEFORE_DAYS: Final = 30


def _material(hosts: list[str], days: int) -> dict[str, Any]:
    pair = self_signed(hosts, days=days)
    info = read_certificate(pair.cert_pem)
    return {
        "cert_pem": pair.cert_pem,
        "key_pem": pair.key_pem,
        "not_after": info.not_after.isoformat(),
    }


class SelfSignedProvider(ResourceProvider):
    """Dynamic provider behind SelfSignedCertificate."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        hosts = [str(h) for h in props["hosts"]]
        days = int(props["validity_days"])
        outs = {"hosts": hosts, "validity_days": days, **_material(hosts, days)}
        return CreateResult(id_=uuid.uuid4().hex, outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [
            key
            for key in ("hosts", "validity_days")
            if _normal(olds.get(key)) != _normal(news.get(key))
        ]
        not_after = olds.get("not_after")
        if isinstance(not_after, str):
            left = dt.datetime.fromisoformat(not_after) - dt.datetime.now(dt.UTC)
            if left < dt.timedelta(days=RENEW_BEFORE_DAYS):
                changed.append("not_after")
        return DiffResult(changes=bool(changed), replaces=changed, delete_before_replace=False)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_=id_, outs=props)


def _normal(value: object) -> object:
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class SelfSignedCertificate(Resource):
    """A self-signed serving certificate for ``hosts``; ``key_pem`` is secret."""

    cert_pem: pulumi.Output[str]
    key_pem: pulumi.Output[str]
    not_after: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        hosts: list[str],
        validity_days: int,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "hosts": hosts,
            "validity_days": validity_days,
            "cert_pem": None,
            "key_pem": None,
            "not_after": None,
        }
        secret = pulumi.ResourceOptions(additional_secret_outputs=["key_pem"])
        super().__init__(
            SelfSignedProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret)
        )
