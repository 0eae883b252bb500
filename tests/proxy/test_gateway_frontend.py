"""Client certificate validation on Gateway HTTPS listeners (``spec.tls.frontend``): the
listener and Gateway conditions the spec asks for, and real handshakes over loopback that need
(or, in AllowInsecureFallback mode, do not need) a client certificate from the right CA."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from tests.proxy.backends import EchoBackend
from tests.proxy.conftest import Pki, ProxyFactory, backend_objects
from tests.proxy.objects import tls_secret
from tests.proxy.test_gateway_traffic import address, free_port, gateway, get, load, route, to

from kexpose.proxy.routes import RouteTable
from kexpose.proxy.routes._frontend import FrontendCheck, frontend_validation
from kexpose.proxy.routes._grants import Grants

pytestmark = pytest.mark.asyncio

Obj = dict[str, Any]


@dataclass(frozen=True)
class ClientPki:
    ca_pem: str
    cert_pem: str
    key_pem: str


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def client_pki(cn: str) -> ClientPki:
    """A CA and a client certificate it issued (clientAuth), made for this run."""
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{cn} CA"))
        .issuer_name(_name(f"{cn} CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return ClientPki(
        ca.public_bytes(pem).decode(),
        cert.public_bytes(pem).decode(),
        key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
    )


@pytest.fixture(scope="module")
def alice() -> ClientPki:
    return client_pki("alice")


@pytest.fixture(scope="module")
def mallory() -> ClientPki:
    return client_pki("mallory")


def ca_map(name: str, pem: str | None, namespace: str = "default") -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"ca.crt": pem} if pem is not None else {"other": "x"},
    }


def ca_ref(name: str, **more: str) -> Obj:
    return {"group": "", "kind": "ConfigMap", "name": name, **more}


def https(name: str, port: int, host: str | None = None) -> Obj:
    listener: Obj = {
        "name": name,
        "port": port,
        "protocol": "HTTPS",
        "tls": {"certificateRefs": [{"name": "app-tls"}]},
    }
    if host:
        listener["hostname"] = host
    return listener


def validated(
    gw: Obj,
    default: list[Obj] | None,
    *,
    mode: str = "",
    per_port: dict[int, list[Obj]] | None = None,
) -> Obj:
    """``gw`` with ``spec.tls.frontend``: ``default`` refs, and refs per port."""
    frontend: Obj = {}
    if default is not None:
        frontend["default"] = {"validation": {"caCertificateRefs": default}}
        if mode:
            frontend["default"]["validation"]["mode"] = mode
    if per_port:
        frontend["perPort"] = [
            {"port": port, "tls": {"validation": {"caCertificateRefs": refs}}}
            for port, refs in per_port.items()
        ]
    gw["spec"]["tls"] = {"frontend": frontend}
    return gw


def listener_conditions(table: RouteTable, name: str) -> dict[str, tuple[str, str]]:
    gw = next(g for g in table.gateway.gateways if g.name == "gw")
    lst = next(lst for lst in gw.listeners if lst.name == name)
    return {c.type: (c.status, c.reason) for c in lst.conditions}


def gateway_conditions(table: RouteTable) -> dict[str, tuple[str, str]]:
    gw = next(g for g in table.gateway.gateways if g.name == "gw")
    return {c.type: (c.status, c.reason) for c in gw.conditions}


# --- the route core: conditions and what each port verifies ---------------------------------


@pytest.mark.parametrize(
    ("refs", "objects", "resolved", "accepted"),
    [
        ([ca_ref("ca")], [ca_map("ca", "PEM")], ("True", "ResolvedRefs"), ("True", "Accepted")),
        (
            [ca_ref("missing")],
            [],
            ("False", "InvalidCACertificateRef"),
            ("False", "NoValidCACertificate"),
        ),
        (
            [ca_ref("ca")],
            [ca_map("ca", None)],  # no ca.crt
            ("False", "InvalidCACertificateRef"),
            ("False", "NoValidCACertificate"),
        ),
        (
            [ca_ref("ca")],
            [ca_map("ca", "not a certificate")],
            ("False", "InvalidCACertificateRef"),
            ("False", "NoValidCACertificate"),
        ),
        (
            [{"group": "", "kind": "Service", "name": "web"}],
            [],
            ("False", "InvalidCACertificateKind"),
            ("False", "NoValidCACertificate"),
        ),
        (
            [ca_ref("ca", namespace="other")],
            [ca_map("ca", "PEM", namespace="other")],
            ("False", "RefNotPermitted"),
            ("False", "NoValidCACertificate"),
        ),
        (
            [ca_ref("ca", namespace="other")],
            [
                ca_map("ca", "PEM", namespace="other"),
                {
                    "apiVersion": "gateway.networking.k8s.io/v1beta1",
                    "kind": "ReferenceGrant",
                    "metadata": {"name": "g", "namespace": "other"},
                    "spec": {
                        "from": [
                            {
                                "group": "gateway.networking.k8s.io",
                                "kind": "Gateway",
                                "namespace": "default",
                            }
                        ],
                        "to": [{"group": "", "kind": "ConfigMap"}],
                    },
                },
            ],
            ("True", "ResolvedRefs"),
            ("True", "Accepted"),
        ),
        (
            # One good ref, one bad: not resolved (not served), but still accepted.
            [ca_ref("ca"), ca_ref("missing")],
            [ca_map("ca", "PEM")],
            ("False", "InvalidCACertificateRef"),
            ("True", "Accepted"),
        ),
    ],
)
async def test_ca_certificate_refs_give_the_listener_conditions_of_the_spec(
    start_proxy: ProxyFactory,
    pki: Pki,
    alice: ClientPki,
    refs: list[Obj],
    objects: list[Obj],
    resolved: tuple[str, str],
    accepted: tuple[str, str],
) -> None:
    objects = [
        {**o, "data": {"ca.crt": alice.ca_pem}} if o.get("data") == {"ca.crt": "PEM"} else o
        for o in objects
    ]
    proxy = await start_proxy()
    port, plain = free_port(), free_port()
    table = await load(
        proxy,
        validated(
            gateway("gw", https("tls", port), {"name": "web", "port": plain, "protocol": "HTTP"}),
            refs,
        ),
        tls_secret("app-tls", pki.pairs["app"]),
        *objects,
    )
    conditions = listener_conditions(table, "tls")
    assert conditions["ResolvedRefs"] == resolved
    assert conditions["Accepted"] == accepted
    served = {p.port: p for p in table.gateway_ports.values()}
    assert (port in served) is (resolved[0] == "True")
    if port in served:
        validation = served[port].client_validation
        assert validation is not None
        assert validation.ca_pem.strip() == alice.ca_pem.strip()
    # The HTTP listener is never affected (GatewayFrontendInvalidDefaultClientCertificate...).
    assert listener_conditions(table, "web")["Accepted"] == ("True", "Accepted")
    assert served[plain].client_validation is None
    assert "InsecureFrontendValidationMode" not in gateway_conditions(table)


async def test_a_per_port_entry_replaces_the_default_and_fallback_is_reported(
    start_proxy: ProxyFactory, pki: Pki, alice: ClientPki, mallory: ClientPki
) -> None:
    proxy = await start_proxy()
    first, second = free_port(), free_port()
    table = await load(
        proxy,
        validated(
            gateway("gw", https("a", first), https("b", second, "b.example.com")),
            [ca_ref("alice")],
            per_port={second: [ca_ref("mallory")]},
        ),
        tls_secret("app-tls", pki.pairs["app"]),
        ca_map("alice", alice.ca_pem),
        ca_map("mallory", mallory.ca_pem),
    )
    served = {
        p.port: p.client_validation.ca_pem.strip() if p.client_validation else None
        for p in table.gateway_ports.values()
    }
    assert served == {first: alice.ca_pem.strip(), second: mallory.ca_pem.strip()}
    assert "InsecureFrontendValidationMode" not in gateway_conditions(table)

    table = await load(
        proxy,
        validated(
            gateway("gw", https("a", first)), [ca_ref("alice")], mode="AllowInsecureFallback"
        ),
        tls_secret("app-tls", pki.pairs["app"]),
        ca_map("alice", alice.ca_pem),
    )
    assert gateway_conditions(table)["InsecureFrontendValidationMode"] == (
        "True",
        "ConfigurationChanged",
    )


# --- handshakes ---------------------------------------------------------------------------------


def client_context(pki: Pki, tmp_path: Path, who: ClientPki | None) -> ssl.SSLContext:
    ctx = pki.client_context()
    if who is not None:
        cert = tmp_path / "client.pem"
        cert.write_text(who.cert_pem + who.key_pem)
        ctx.load_cert_chain(str(cert))
    return ctx


def app_objects(pki: Pki, alice: ClientPki, web: EchoBackend) -> tuple[Obj, ...]:
    """What the HTTPS listeners of these tests serve: route ``r`` to the echo backend ``web``,
    the ``app`` certificate, and alice's CA in ConfigMap ``alice``."""
    return (
        route("r", {"backendRefs": [to("web")]}),
        tls_secret("app-tls", pki.pairs["app"]),
        ca_map("alice", alice.ca_pem),
        *backend_objects("web", [web]),
    )


async def answer(
    addr: tuple[str, int],
    pki: Pki,
    tmp_path: Path,
    who: ClientPki | None,
    *,
    sni: str | None = "app.example.com",
) -> int | str:
    """The status of a request over a handshake presenting ``who``'s certificate; the error's
    kind when the handshake (or the connection right after it, TLS 1.3) fails. Without ``sni``
    the proxy answers with its default certificate, which is nobody's: not verified."""
    ctx = client_context(pki, tmp_path, who)
    if sni is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    try:
        r = await get(addr, host="app.example.com", tls=ctx, sni=sni)
    except (ssl.SSLError, ConnectionError) as exc:
        return type(exc).__name__
    return r.status if r.status else "closed"


async def test_only_clients_with_a_certificate_from_the_ca_get_through(
    start_proxy: ProxyFactory,
    echo: Callable[..., Any],
    pki: Pki,
    alice: ClientPki,
    mallory: ClientPki,
    tmp_path: Path,
) -> None:
    web = await echo("web")
    proxy = await start_proxy()
    port = free_port()
    objects = app_objects(pki, alice, web)
    table = await load(
        proxy,
        validated(gateway("gw", https("tls", port, "app.example.com")), [ca_ref("alice")]),
        *objects,
    )
    addr = (address(table), port)
    assert await answer(addr, pki, tmp_path, alice) == 200
    assert await answer(addr, pki, tmp_path, None) != 200
    assert await answer(addr, pki, tmp_path, mallory) != 200

    # AllowInsecureFallback: anyone gets through, on the same (already listening) port.
    await load(
        proxy,
        validated(
            gateway("gw", https("tls", port, "app.example.com")),
            [ca_ref("alice")],
            mode="AllowInsecureFallback",
        ),
        *objects,
    )
    for who in (alice, None, mallory):
        assert await answer(addr, pki, tmp_path, who) == 200

    # Validation removed: no certificate asked for.
    await load(proxy, gateway("gw", https("tls", port, "app.example.com")), *objects)
    assert await answer(addr, pki, tmp_path, None) == 200


async def test_a_handshake_without_sni_is_verified_too(
    start_proxy: ProxyFactory,
    echo: Callable[..., Any],
    pki: Pki,
    alice: ClientPki,
    mallory: ClientPki,
    tmp_path: Path,
) -> None:
    # No SNI: no listener certificate is chosen; the default certificate's context must carry
    # the port's trust store all the same.
    web = await echo("web")
    proxy = await start_proxy()
    port = free_port()
    table = await load(
        proxy,
        validated(gateway("gw", https("tls", port, "app.example.com")), [ca_ref("alice")]),
        *app_objects(pki, alice, web),
    )
    addr = (address(table), port)
    assert await answer(addr, pki, tmp_path, alice, sni=None) == 200
    assert await answer(addr, pki, tmp_path, mallory, sni=None) != 200


# --- the pure lookup (routes._frontend) ------------------------------------------------------


def frontend(default: Obj | None, *per_port: tuple[int, Obj | None]) -> Obj:
    spec: Obj = {}
    if default is not None:
        spec["default"] = {"validation": default}
    if per_port:
        spec["perPort"] = [
            {"port": port, "tls": {"validation": v} if v is not None else {}}
            for port, v in per_port
        ]
    return {"spec": {"tls": {"frontend": spec}}}


async def test_the_port_entry_wins_and_may_turn_validation_off(alice: ClientPki) -> None:
    maps = {("default", "alice"): ca_map("alice", alice.ca_pem)}
    gw = frontend({"caCertificateRefs": [ca_ref("alice")]}, (8443, None))
    on = frontend_validation(gw, 443, namespace="default", config_maps=maps, grants=Grants([]))
    off = frontend_validation(gw, 8443, namespace="default", config_maps=maps, grants=Grants([]))
    assert on.validation is not None
    assert on.validation.mode == "AllowValidOnly"
    assert off == FrontendCheck()  # a port entry without validation: none on that port
    assert (
        frontend_validation(
            {"spec": {}}, 443, namespace="default", config_maps=maps, grants=Grants([])
        )
        == FrontendCheck()
    )


async def test_several_refs_make_one_bundle_and_the_mode_changes_the_fingerprint(
    alice: ClientPki, mallory: ClientPki
) -> None:
    maps = {
        ("default", "alice"): ca_map("alice", alice.ca_pem),
        ("default", "mallory"): ca_map("mallory", mallory.ca_pem),
    }
    refs = [ca_ref("alice"), ca_ref("mallory")]

    def check(mode: str) -> FrontendCheck:
        gw = frontend({"caCertificateRefs": refs, "mode": mode})
        return frontend_validation(
            gw, 443, namespace="default", config_maps=maps, grants=Grants([])
        )

    strict, lax = check("AllowValidOnly"), check("AllowInsecureFallback")
    assert strict.validation is not None
    assert lax.validation is not None
    assert alice.ca_pem.strip() in strict.validation.ca_pem
    assert mallory.ca_pem.strip() in strict.validation.ca_pem
    assert strict.validation.fingerprint != lax.validation.fingerprint
    bad = check("Sometimes")
    assert bad.validation is None
    assert bad.accepted is not None
    assert bad.accepted.reason == "NoValidCACertificate"


def _fetch(
    addr: tuple[str, int], ctx: ssl.SSLContext, session: ssl.SSLSession | None
) -> tuple[int | str, ssl.SSLSession | None, bool]:
    """One request on a blocking socket (a client that can resume TLS sessions): the status or
    the error's kind, the session to resume next time, and whether this one was resumed."""
    try:
        with (
            socket.create_connection(addr, timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname="app.example.com", session=session) as tls,
        ):
            tls.sendall(b"GET / HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
            status: int | str = int(data.split(b" ", 2)[1]) if data else "closed"
            return status, tls.session, bool(tls.session_reused)
    except (ssl.SSLError, OSError) as exc:
        return type(exc).__name__, None, False


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2])
async def test_a_session_from_before_validation_does_not_resume_past_it(
    start_proxy: ProxyFactory,
    echo: Callable[..., Any],
    pki: Pki,
    alice: ClientPki,
    version: ssl.TLSVersion,
) -> None:
    # A resumed TLS session skips client authentication: tickets issued while the port asked
    # for no certificate must not let a client in once it does.
    web = await echo("web")
    proxy = await start_proxy()
    port = free_port()
    objects = app_objects(pki, alice, web)
    plain = gateway("gw", https("tls", port, "app.example.com"))
    table = await load(proxy, plain, *objects)
    addr = (address(table), port)
    ctx = pki.client_context()  # no client certificate
    ctx.maximum_version = version
    status, session, _ = await asyncio.to_thread(_fetch, addr, ctx, None)
    assert status == 200
    assert session is not None
    status, session, reused = await asyncio.to_thread(_fetch, addr, ctx, session)
    assert (status, reused) == (200, True)  # resumption works here: the check below means it

    await load(proxy, validated(copy.deepcopy(plain), [ca_ref("alice")]), *objects)
    status, _, reused = await asyncio.to_thread(_fetch, addr, ctx, session)
    assert status != 200
    assert not reused
