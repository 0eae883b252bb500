"""TLS contexts for the HTTPS listener: the default certificate, and one context per Secret.

The route table says which certificate an SNI name gets; this module turns certificates into
``ssl.SSLContext`` objects (built when a table is swapped in, never during a handshake) and
installs the SNI callback that switches a handshake to the right one. TLS 1.2 is the minimum,
with Mozilla's "intermediate" profile: TLS 1.2 offers only ECDHE key exchange with AEAD ciphers
(no CBC, whose padding and MAC-then-encrypt design gave Lucky13 and POODLE); TLS 1.3's suites
are all AEAD and left as OpenSSL orders them. The SNI name each handshake asked for is kept on
its SSL object (``sni_of``), so a request whose Host names another certificate's host can be
answered 421 (RFC 9110 §15.5.20) instead of being routed past the certificate check.

A Gateway port with client certificate validation (``routes.ClientValidation``, the Gateway's
``spec.tls.frontend``) requires a client certificate in every handshake and verifies it against
the port's CA bundle (``AllowValidOnly``); ``AllowInsecureFallback`` accepts any client, so no
certificate is asked for (the proxy passes no client identity on, so a certificate that
verified would change nothing). OpenSSL takes the verify mode from the listener's context and
the trust store from the context the SNI callback switches to, so both are set: the listener's
mode, and a store on every context of the port (a context of the default certificate included,
for handshakes that no listener certificate matches).

``load_cert_chain`` only reads files. To keep the root filesystem read-only and keys off disk,
PEM text is handed to OpenSSL through an anonymous in-memory file (``memfd_create``), with a
private temporary directory as the fallback where that is missing.
"""

from __future__ import annotations

import logging
import os
import ssl
import tempfile
from collections.abc import Mapping
from typing import Final

from kexpose.proxy.errors import ProxyConfigError
from kexpose.proxy.routes import Certificate, CertificateMap, ClientValidation

__all__ = ["INTERMEDIATE_CIPHERS", "TlsContexts", "server_context", "sni_of"]

log = logging.getLogger(__name__)

#: Mozilla server-side TLS, "intermediate" configuration (TLS 1.2 part; version 5.7 less the
#: DHE suites, which need a DH parameter file we do not ship and so could never be chosen).
INTERMEDIATE_CIPHERS: Final = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    )
)

# The attribute of an ``ssl.SSLObject`` that holds the SNI name of its handshake.
_SNI_ATTR: Final = "kexpose_sni"


def server_context(cert_pem: str, key_pem: str) -> ssl.SSLContext:
    """A server context for one certificate; ProxyConfigError when the pair is unusable."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(INTERMEDIATE_CIPHERS)
    # HTTP/2 first, HTTP/1.1 for clients without it (RFC 9113 §3.2; RFC 7301). Every cipher
    # above is one RFC 9113 §9.2.2 allows for HTTP/2 over TLS 1.2.
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    pem = f"{cert_pem.strip()}\n{key_pem.strip()}\n".encode()
    try:
        _load(ctx, pem)
    except (ssl.SSLError, ValueError) as exc:
        raise ProxyConfigError(f"certificate and key do not form a usable pair: {exc}") from exc
    return ctx


def _load(ctx: ssl.SSLContext, pem: bytes) -> None:
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("kexpose-tls", os.MFD_CLOEXEC)
        try:
            os.write(fd, pem)
            ctx.load_cert_chain(f"/proc/self/fd/{fd}")
            return
        except FileNotFoundError:
            pass  # no /proc: fall back below
        finally:
            os.close(fd)
    with tempfile.TemporaryDirectory(prefix="kexpose-tls-") as tmp:
        path = os.path.join(tmp, "pair.pem")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
            f.write(pem)
        ctx.load_cert_chain(path)


class TlsContexts:
    """The listener's context plus a cache of per-certificate contexts, keyed by fingerprint."""

    __slots__ = ("_by_fingerprint", "_fallback", "_map", "_pair", "_validation", "default")

    def __init__(self, default_cert_pem: str, default_key_pem: str) -> None:
        self._pair = (default_cert_pem, default_key_pem)
        self.default = server_context(default_cert_pem, default_key_pem)
        self.default.sni_callback = self._select
        self._by_fingerprint: dict[str, ssl.SSLContext] = {}
        self._map = CertificateMap()
        self._validation: ClientValidation | None = None
        self._fallback: ssl.SSLContext | None = None
        """The default certificate with the port's trust store (client validation only)."""

    def update(
        self, certificates: CertificateMap, client_validation: ClientValidation | None = None
    ) -> list[str]:
        """Build contexts for new certificates, drop unused ones; returns problems to log.
        A changed ``client_validation`` rebuilds every context (a trust store only grows)."""
        problems: list[str] = []
        fresh: dict[str, ssl.SSLContext] = {}
        verifying = _verifying(client_validation)
        changed = _key(client_validation) != _key(self._validation)
        kept = {} if changed else self._by_fingerprint
        for cert in certificates.all():
            ctx = kept.get(cert.fingerprint)
            if ctx is None:
                try:
                    ctx = server_context(cert.cert_pem, cert.key_pem)
                except ProxyConfigError as exc:
                    problems.append(f"Secret {cert.secret}: {exc}; default certificate served")
                    continue
                if verifying is not None:
                    _trust(ctx, verifying)
            fresh[cert.fingerprint] = ctx
        if changed:
            self._fallback = None
            if verifying is not None:
                self._fallback = server_context(*self._pair)
                _trust(self._fallback, verifying)
            # New handshakes only: those under way keep the mode they started with.
            self.default.verify_mode = ssl.CERT_REQUIRED if verifying else ssl.CERT_NONE
            # A resumed session skips client authentication (RFC 8446 §4.6.2 allows no
            # CertificateRequest then), and the session tickets this listener issued before
            # validation was turned on would resume without a certificate. OP_NO_TICKET makes
            # OpenSSL refuse those stateless tickets (and keep its own sessions, made with
            # verification, in its cache instead).
            if verifying:
                self.default.options |= ssl.OP_NO_TICKET
            else:
                self.default.options &= ~ssl.OP_NO_TICKET
            self._validation = client_validation
        self._by_fingerprint = fresh
        self._map = certificates
        return problems

    def _select(self, sslobj: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
        setattr(sslobj, _SNI_ATTR, server_name)
        cert: Certificate | None = self._map.lookup(server_name)
        if cert is None:
            # A Gateway HTTPS listener without a hostname: its certificate, filed under "",
            # serves every name the port's other listeners do not (Ingress maps have no "").
            cert = self._map.by_name.get("")
        if cert is not None:
            ctx = self._by_fingerprint.get(cert.fingerprint)
            if ctx is not None:
                sslobj.context = ctx
                return
        if self._fallback is not None:
            sslobj.context = self._fallback  # the default certificate, and the port's CAs
        # Otherwise carry on with the current (default) certificate; never fail the handshake.

    @property
    def contexts(self) -> Mapping[str, ssl.SSLContext]:
        return self._by_fingerprint


def _verifying(validation: ClientValidation | None) -> ClientValidation | None:
    """The validation when handshakes must verify a client certificate, else None."""
    if validation is None or validation.mode == "AllowInsecureFallback":
        return None
    return validation


def _key(validation: ClientValidation | None) -> str | None:
    return validation.fingerprint if validation is not None else None


def _trust(ctx: ssl.SSLContext, validation: ClientValidation) -> None:
    # cadata: PEM text straight into the store, no file (the bundle was parsed by the route
    # core already; a bundle OpenSSL still refuses leaves the store empty: nobody verifies).
    try:
        ctx.load_verify_locations(cadata=validation.ca_pem)
    except (ssl.SSLError, ValueError) as exc:
        log.warning("client CA bundle not loaded: %s; no client certificate will verify", exc)
    ctx.verify_mode = ssl.CERT_REQUIRED


def sni_of(sslobj: object) -> str | None:
    """The SNI name the client sent in the handshake of ``sslobj`` (None: none was sent)."""
    name = getattr(sslobj, _SNI_ATTR, None)
    return name if isinstance(name, str) else None


def misdirected(certificates: CertificateMap, sni: str, host: str) -> bool:
    """Whether a request for ``host`` on a connection whose handshake named ``sni`` must be
    answered 421 Misdirected Request (RFC 9110 §15.5.20; nginx does the same for SNI/Host
    mismatches). Only when the SNI name has a certificate of its own and ``host`` would have
    been served another (or the default) one: a certificate that covers both names may carry
    both (the connection reuse RFC 9110 §4.3.3 allows), and a connection on the default
    certificate proved nothing about any host in the first place."""
    chosen = certificates.lookup(sni)
    if chosen is None:
        return False
    other = certificates.lookup(host)
    return other is None or other.fingerprint != chosen.fingerprint
