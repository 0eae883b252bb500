"""The self-signed certificate provider: made once, stable until its inputs change or it ages."""

from __future__ import annotations

import datetime as dt

from kexpose.certs import read_certificate
from kexpose.resources.selfsigned import RENEW_BEFORE_DAYS, SelfSignedProvider


def test_create_makes_a_certificate_for_the_hosts() -> None:
    created = SelfSignedProvider().create({"hosts": ["a.example.com"], "validity_days": 90})
    outs = created.outs or {}
    info = read_certificate(outs["cert_pem"])
    assert info.dns_names == ("a.example.com",)
    assert "PRIVATE KEY" in outs["key_pem"]
    assert outs["not_after"] == info.not_after.isoformat()


def test_same_inputs_mean_no_change() -> None:
    provider = SelfSignedProvider()
    outs = provider.create({"hosts": ["a.example.com"], "validity_days": 90}).outs or {}
    # the engine hands numbers back as floats; that is no change either
    diff = provider.diff("id", outs, {"hosts": ["a.example.com"], "validity_days": 90.0})
    assert diff.changes is False
    assert not diff.replaces


def test_new_hosts_or_validity_replace() -> None:
    provider = SelfSignedProvider()
    outs = provider.create({"hosts": ["a.example.com"], "validity_days": 90}).outs or {}
    diff = provider.diff("id", outs, {"hosts": ["b.example.com"], "validity_days": 90})
    assert diff.changes is True
    assert diff.replaces == ["hosts"]
    diff = provider.diff("id", outs, {"hosts": ["a.example.com"], "validity_days": 30})
    assert diff.replaces == ["validity_days"]


def test_certificate_close_to_expiry_is_renewed() -> None:
    provider = SelfSignedProvider()
    outs = dict(provider.create({"hosts": ["a.example.com"], "validity_days": 90}).outs or {})
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=RENEW_BEFORE_DAYS - 1)
    outs["not_after"] = soon.isoformat()
    diff = provider.diff("id", outs, {"hosts": ["a.example.com"], "validity_days": 90})
    assert diff.replaces == ["not_after"]
