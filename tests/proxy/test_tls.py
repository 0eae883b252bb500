"""TLS termination over loopback: SNI picks the certificate, Host picks the route (421 when the
Host belongs to another certificate than the SNI name's), cipher profile, redirects."""

from __future__ import annotations

import ssl
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509
from tests.proxy.backends import EchoBackend
from tests.proxy.conftest import Pki, Proxy, ProxyFactory, backend_objects
from tests.proxy.objects import ingress, path, rule, tls, tls_secret

pytestmark = pytest.mark.asyncio


async def _proxy(start_proxy: ProxyFactory, echo: Callable[..., Any], pki: Pki) -> Proxy:
    proxy, _ = await _site(start_proxy, echo, pki)
    return proxy


async def _site(
    start_proxy: ProxyFactory, echo: Callable[..., Any], pki: Pki
) -> tuple[Proxy, EchoBackend]:
    """app.example.com and *.wild.example.com with certificates of their own, plain.example.com
    without, all routed to one echo backend (returned with the proxy)."""
    web = await echo("web")
    proxy: Proxy = await start_proxy()
    proxy.load(
        ingress(
            "site",
            rule("app.example.com", path("/", "web")),
            rule("plain.example.com", path("/", "web")),
            rule("*.wild.example.com", path("/", "web")),
            tls=[tls("app-tls", "app.example.com"), tls("wild-tls", "*.wild.example.com")],
        ),
        tls_secret("app-tls", pki.pairs["app"]),
        tls_secret("wild-tls", pki.pairs["wild"]),
        *backend_objects("web", [web]),
    )
    return proxy, web


def _served_names(c: Any) -> list[str]:
    der = c.writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    cert = x509.load_der_x509_certificate(der)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return list(san.get_values_for_type(x509.DNSName))


SNI_CASES = [
    ("app.example.com", ["app.example.com"]),
    ("x.wild.example.com", ["*.wild.example.com"]),
    ("a.b.wild.example.com", ["kexpose-default.invalid"]),  # one label only
    ("unknown.example.com", ["kexpose-default.invalid"]),
    (None, ["kexpose-default.invalid"]),
]


@pytest.mark.parametrize(("sni", "names"), SNI_CASES, ids=[str(s) for s, _ in SNI_CASES])
async def test_sni_selects_the_certificate(
    start_proxy: ProxyFactory,
    echo: Callable[..., Any],
    pki: Pki,
    sni: str | None,
    names: list[str],
) -> None:
    proxy = await _proxy(start_proxy, echo, pki)
    c = await proxy.client(tls=pki.client_context(verify=False), sni=sni)
    assert _served_names(c) == names
    # A Host matching the SNI name (on the default certificate, any Host: see the 421 test).
    own = sni is not None and names != ["kexpose-default.invalid"]
    r = await c.request("GET", "/", host=sni if own else "app.example.com")
    assert r.status == 200
    assert dict(r.json()["headers"])["x-forwarded-proto"] == "https"
    await c.close()


async def test_certificate_verifies_for_its_host(
    start_proxy: ProxyFactory, echo: Callable[..., Any], pki: Pki
) -> None:
    proxy = await _proxy(start_proxy, echo, pki)
    c = await proxy.client(tls=pki.client_context(), sni="app.example.com")
    assert (await c.request("GET", "/")).status == 200
    await c.close()
    with pytest.raises(ssl.SSLCertVerificationError):
        await proxy.client(tls=pki.client_context(), sni="plain.example.com")


async def test_a_host_of_another_certificate_is_misdirected(
    start_proxy: ProxyFactory, echo: Callable[..., Any], pki: Pki
) -> None:
    # Domain fronting: a handshake for app.example.com (its own certificate) must not carry
    # requests for hosts that certificate does not serve (RFC 9110 §15.5.20).
    proxy, web = await _site(start_proxy, echo, pki)
    c = await proxy.client(tls=pki.client_context(), sni="app.example.com")
    assert (await c.request("GET", "/", host="app.example.com")).status == 200
    assert (await c.request("GET", "/", host="APP.example.com.:443")).status == 200  # same host
    for host in ("plain.example.com", "x.wild.example.com", "nowhere.example.com"):
        r = await c.request("GET", "/", host=host)
        assert r.status == 421, host
        assert not r.closed  # the client may go on with the SNI's own host
    assert web.requests == 2
    await c.close()
    c = await proxy.client(tls=pki.client_context(), sni="a.wild.example.com")
    assert (await c.request("GET", "/", host="b.wild.example.com")).status == 200  # one cert
    assert (await c.request("GET", "/", host="app.example.com")).status == 421
    await c.close()
    # A connection on the default certificate proved nothing about any host: Host routes.
    for sni in ("unknown.example.com", None):
        c = await proxy.client(tls=pki.client_context(verify=False), sni=sni)
        assert (await c.request("GET", "/", host="plain.example.com")).status == 200
        assert (await c.request("GET", "/", host="nowhere.example.com")).status == 404
        await c.close()


async def test_tls_1_2_offers_only_aead_ciphers(
    start_proxy: ProxyFactory, echo: Callable[..., Any], pki: Pki
) -> None:
    # Mozilla's "intermediate" profile: no CBC suites (Lucky13, POODLE-style padding oracles).
    proxy = await _proxy(start_proxy, echo, pki)
    cbc = pki.client_context()
    cbc.maximum_version = ssl.TLSVersion.TLSv1_2
    cbc.set_ciphers(
        "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA256"
        ":ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES128-SHA:AES128-SHA:AES256-SHA:AES128-SHA256"
    )
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await proxy.client(tls=cbc, sni="app.example.com")
    for suite in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"):
        aead = pki.client_context()
        aead.maximum_version = ssl.TLSVersion.TLSv1_2
        aead.set_ciphers(suite)
        c = await proxy.client(tls=aead, sni="app.example.com")
        assert c.writer.get_extra_info("ssl_object").cipher()[0] == suite
        assert (await c.request("GET", "/")).status == 200
        await c.close()


async def test_tls_below_1_2_is_refused(
    start_proxy: ProxyFactory, echo: Callable[..., Any], pki: Pki
) -> None:
    proxy = await _proxy(start_proxy, echo, pki)
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = pki.client_context()
        ctx.minimum_version = ctx.maximum_version = version
        c = await proxy.client(tls=ctx, sni="app.example.com")
        assert c.writer.get_extra_info("ssl_object").version() in ("TLSv1.2", "TLSv1.3")
        await c.close()
    assert proxy.plane.tls.default.minimum_version == ssl.TLSVersion.TLSv1_2
    old = pki.client_context()
    old.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # asking for old TLS on purpose
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await proxy.client(tls=old, sni="app.example.com")


async def test_plain_http_to_a_tls_host_is_redirected(
    start_proxy: ProxyFactory, echo: Callable[..., Any], pki: Pki
) -> None:
    proxy = await _proxy(start_proxy, echo, pki)
    c = await proxy.client()
    r = await c.request("GET", "/a/b?c=d", host="app.example.com:80")
    assert r.status == 308
    assert r.header("location") == "https://app.example.com/a/b?c=d"
    r = await c.request("POST", "/form", host="x.wild.example.com", body=b"keep")
    assert r.status == 308  # 308 keeps the method and body on the retry (RFC 9110 §15.4.9)
    r = await c.request("GET", "/", host="plain.example.com")
    assert r.status == 200
    await c.close()


async def test_redirect_can_be_turned_off(
    start_proxy: ProxyFactory, echo: Callable[..., Any], pki: Pki
) -> None:
    from dataclasses import replace

    from tests.proxy.conftest import FAST

    web = await echo("web")
    proxy = await start_proxy(replace(FAST, ssl_redirect=False))
    proxy.load(
        ingress("site", rule("app.example.com", path("/", "web")), tls=[tls(None)]),
        *backend_objects("web", [web]),
    )
    c = await proxy.client()
    assert (await c.request("GET", "/")).status == 200
    await c.close()
    proxy2 = await start_proxy(replace(FAST, https_redirect_port=8443))
    proxy2.load(
        ingress(
            "site", rule("app.example.com", path("/", "web")), tls=[tls(None, "app.example.com")]
        ),
        *backend_objects("web", [web]),
    )
    c = await proxy2.client()
    r = await c.request("GET", "/x")
    assert r.header("location") == "https://app.example.com:8443/x"
    await c.close()
