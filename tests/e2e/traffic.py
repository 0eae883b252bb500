"""Requests through kexpose-proxy as a client on the internet would send them, and the backends.

A client reaches the proxy through the load balancer, so it connects to the proxy's loopback port
but names the Ingress host: in the Host header, and over TLS in the SNI. A TLS client here trusts
exactly one certificate (the one the stack's Secret holds) and checks the host name against it.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from dataclasses import dataclass
from typing import Any

from lightkube import Client
from lightkube.resources.discovery_v1 import EndpointSlice

from .echo import EchoServers

__all__ = ["Reply", "get", "peer_certificate", "serve_service", "trusting"]

# One request to the proxy on loopback; generous for a loaded machine.
REQUEST_TIMEOUT_S = 30.0
PROXY_ADDRESS = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: dict[str, str]
    """Header names in lower case."""
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class _SniConnection(http.client.HTTPSConnection):
    """HTTPS to the proxy's address, with the Ingress host as SNI and certificate name."""

    def __init__(
        self,
        port: int,
        server_name: str,
        context: ssl.SSLContext,
        address: str = PROXY_ADDRESS,
        source: str | None = None,
    ) -> None:
        super().__init__(server_name, port, timeout=REQUEST_TIMEOUT_S, context=context)
        self._tls = context
        self._address = address
        self._source = (source, 0) if source is not None else None

    def connect(self) -> None:
        raw = socket.create_connection(
            (self._address, self.port), self.timeout, source_address=self._source
        )
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


def trusting(cert_pem: str) -> ssl.SSLContext:
    """A client context whose only trust anchor is `cert_pem` (a self-signed leaf)."""
    context = ssl.create_default_context(cadata=cert_pem)
    # The certificate is a leaf (CA:FALSE), trusted as such rather than through an issuer.
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


def get(
    port: int,
    *,
    host: str,
    path: str,
    tls: ssl.SSLContext | None = None,
    address: str = PROXY_ADDRESS,
    headers: dict[str, str] | None = None,
    source: str | None = None,
) -> Reply:
    """GET `path` for `host` through the proxy listening on `address:port` (HTTPS when `tls`
    is given), with more request `headers` if any, from the local address `source` if given
    (any of 127.0.0.0/8 on loopback: a client the proxy sees at another address)."""
    conn: http.client.HTTPConnection
    if tls is None:
        bind = (source, 0) if source is not None else None
        conn = http.client.HTTPConnection(
            address, port, timeout=REQUEST_TIMEOUT_S, source_address=bind
        )
    else:
        conn = _SniConnection(port, host, tls, address, source)
    try:
        conn.request("GET", path, headers={"Host": host, **(headers or {})})
        response = conn.getresponse()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return Reply(response.status, headers, response.read())
    finally:
        conn.close()


def peer_certificate(
    port: int, *, server_name: str, context: ssl.SSLContext, address: str = PROXY_ADDRESS
) -> bytes:
    """The DER certificate the proxy presents for `server_name` (after `context` verified it)."""
    with (
        socket.create_connection((address, port), REQUEST_TIMEOUT_S) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def serve_service(
    kube: Client, echo: EchoServers, *, namespace: str, service: str, app: str | None = None
) -> set[str]:
    """Start an echo backend on every ready endpoint of `service`, answering as `app` (default:
    the Service's name); return their `ip:port`s."""
    started: set[str] = set()
    slices = kube.list(
        EndpointSlice, namespace=namespace, labels={"kubernetes.io/service-name": service}
    )
    for endpoint_slice in slices:
        ports = [p.port for p in endpoint_slice.ports or [] if p.port is not None]
        for endpoint in endpoint_slice.endpoints or []:
            if endpoint.conditions is not None and endpoint.conditions.ready is False:
                continue
            for port in ports:
                address = f"{endpoint.addresses[0]}:{port}"
                if address not in started:
                    echo.serve(app or service, endpoint.addresses[0], port)
                    started.add(address)
    return started
