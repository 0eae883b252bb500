"""Self-signed material and reading certificates back."""

from __future__ import annotations

import datetime as dt

import pytest

from kexpose.certs import read_certificate, self_signed
from kexpose.errors import KexposeError


def test_self_signed_covers_hosts_and_validity() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    pair = self_signed(["shop.example.com", "*.api.example.com", "127.0.0.1"], days=90, now=now)
    info = read_certificate(pair.cert_pem)
    assert info.dns_names == ("shop.example.com", "*.api.example.com")
    assert info.not_after - info.not_before == dt.timedelta(days=90)
    assert info.not_before <= now
    assert "PRIVATE KEY" in pair.key_pem


def test_key_never_in_repr() -> None:
    pair = self_signed(["a.example.com"])
    assert "PRIVATE" not in repr(pair)
    assert pair.key_pem[:20] not in repr(pair)


def test_two_calls_make_two_keys() -> None:
    assert self_signed(["a.example.com"]).key_pem != self_signed(["a.example.com"]).key_pem


def test_read_rejects_garbage() -> None:
    with pytest.raises(KexposeError, match="not a PEM certificate"):
        read_certificate("hello")


def test_needs_a_host() -> None:
    with pytest.raises(KexposeError):
        self_signed([])
