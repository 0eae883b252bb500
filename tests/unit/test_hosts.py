"""Host names: validation, normalisation and the one-label wildcard rule."""

from __future__ import annotations

import pytest

from kexpose.hosts import covers, host_error, normalize_host, wildcard_of


@pytest.mark.parametrize(
    ("pattern", "host", "expected"),
    [
        ("foo.com", "foo.com", True),
        ("FOO.com", "foo.COM", True),
        ("*.foo.com", "bar.foo.com", True),
        ("*.foo.com", "foo.com", False),
        ("*.foo.com", "baz.bar.foo.com", False),
        ("*.foo.com", "*.foo.com", True),
        ("bar.foo.com", "*.foo.com", False),
        ("foo.com.", "foo.com", True),
        ("*.foo.com", "barfoo.com", False),
    ],
)
def test_covers(pattern: str, host: str, expected: bool) -> None:
    assert covers(pattern, host) is expected


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("Foo.Example.COM", "foo.example.com"),
        ("foo.example.com:8443", "foo.example.com"),
        ("foo.example.com.", "foo.example.com"),
        ("[::1]:443", "[::1]"),
        ("  foo.com ", "foo.com"),
    ],
)
def test_normalize_host(raw: str, normal: str) -> None:
    assert normalize_host(raw) == normal


def test_wildcard_of() -> None:
    assert wildcard_of("a.b.c") == "*.b.c"
    assert wildcard_of("localhost") is None


@pytest.mark.parametrize(
    ("host", "fragment"),
    [
        ("", "empty"),
        ("10.0.0.1", "IP address"),
        ("foo.com:80", "port"),
        ("foo.*.com", "first label"),
        ("*.com", "single label"),
        ("Foo.com", "RFC 1123"),
        ("-foo.com", "RFC 1123"),
        ("a" * 64 + ".com", "RFC 1123"),
        ("a." * 127 + "com", "253"),
    ],
)
def test_host_error_explains(host: str, fragment: str) -> None:
    why = host_error(host)
    assert why is not None
    assert fragment in why


@pytest.mark.parametrize("host", ["foo.com", "*.foo.com", "a-b.c-d.example", "x1.y2"])
def test_host_error_accepts(host: str) -> None:
    assert host_error(host) is None
