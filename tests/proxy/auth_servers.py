"""Test material for edge authentication: a scripted HTTP server (a forward-auth service or a
JWKS endpoint), Secrets, and keys and tokens made per run."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import bcrypt
import httptools
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from tests.proxy.objects import Obj

AUTH = "kexpose.dev/"

Headers = list[tuple[str, str]]
#: (status, headers, body) of a scripted answer.
Reply = tuple[int, Headers, bytes]


@dataclass
class Seen:
    method: str
    target: str
    headers: Headers

    def get(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k == name]
        return ",".join(values) if values else None


class _Protocol(asyncio.Protocol):
    def __init__(self, server: ScriptedServer) -> None:
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.headers: Headers = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections += 1
        self.server.open.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.open.discard(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_message_complete(self) -> None:
        seen = Seen(self.parser.get_method().decode(), self.url.decode("latin-1"), self.headers)
        self.url, self.headers = b"", []
        self.server.seen.append(seen)
        status, headers, body = self.server.reply(seen)
        if self.server.delay:
            asyncio.get_running_loop().call_later(
                self.server.delay, self._write, status, headers, body
            )
        else:
            self._write(status, headers, body)

    def _write(self, status: int, headers: Headers, body: bytes) -> None:
        t = self.transport
        if t is None or t.is_closing():
            return
        lines = [f"HTTP/1.1 {status} X"]
        lines += [f"{k}: {v}" for k, v in headers]
        lines.append(f"content-length: {len(body)}")
        t.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)


@dataclass
class ScriptedServer:
    """An HTTP/1.1 server on 127.0.0.4 answering each request with ``reply(seen)``."""

    reply: Callable[[Seen], Reply] = field(default=lambda seen: (200, [], b""))
    delay: float = 0.0
    """Seconds before each answer (a slow auth service)."""
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    open: set[_Protocol] = field(default_factory=set)
    port: int = 0
    _server: asyncio.Server | None = None

    async def start(self) -> ScriptedServer:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Protocol(self), "127.0.0.4", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.4:{self.port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for proto in list(self.open):
                if proto.transport is not None:
                    proto.transport.abort()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret(name: str, data: Mapping[str, str], *, type_: str = "Opaque") -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": type_,
        "metadata": {"name": name, "namespace": "default"},
        "data": {k: _b64(v) for k, v in data.items()},
    }


def bcrypt_line(user: str, password: str, *, rounds: int = 4) -> str:
    """An htpasswd line with a ``$2y$`` hash (as Apache's htpasswd writes), low cost for speed."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()
    return f"{user}:$2y${hashed[4:]}"


def sha_line(user: str, password: str) -> str:
    digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()  # noqa: S324
    return f"{user}:{{SHA}}{digest}"


def basic(user: str, password: str, scheme: str = "Basic") -> str:
    return f"{scheme} {base64.b64encode(f'{user}:{password}'.encode()).decode()}"


@dataclass
class Keys:
    """Signing keys made for this run, with their public JWKs."""

    rsa: rsa.RSAPrivateKey
    ec: ec.EllipticCurvePrivateKey
    ed: ed25519.Ed25519PrivateKey
    hmac_secret: bytes

    @classmethod
    def make(cls) -> Keys:
        return cls(
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
            ec.generate_private_key(ec.SECP256R1()),
            ed25519.Ed25519PrivateKey.generate(),
            hashlib.sha256(str(time.time_ns()).encode()).digest(),
        )

    def rsa_public_pem(self) -> bytes:
        return self.rsa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwk(self, which: str, kid: str, **extra: str) -> dict[str, Any]:
        if which == "rsa":
            found = jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa.public_key(), as_dict=True)
        elif which == "ec":
            found = jwt.algorithms.ECAlgorithm.to_jwk(self.ec.public_key(), as_dict=True)
        elif which == "ed":
            found = jwt.algorithms.OKPAlgorithm.to_jwk(self.ed.public_key(), as_dict=True)
        else:
            found = jwt.algorithms.HMACAlgorithm.to_jwk(self.hmac_secret, as_dict=True)
        return {**found, "kid": kid, **extra}

    def token(
        self, which: str, claims: Mapping[str, Any], *, alg: str, kid: str | None = "k1"
    ) -> str:
        key: Any = {"rsa": self.rsa, "ec": self.ec, "ed": self.ed, "oct": self.hmac_secret}[which]
        headers = {"kid": kid} if kid is not None else None
        return jwt.encode(dict(claims), key, algorithm=alg, headers=headers)


def _segment(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: Mapping[str, Any], claims: Mapping[str, Any], key: bytes | None) -> str:
    """A token built by hand (what an attacker sends): HS256 over ``key``, or unsigned."""
    signing = f"{_segment(json.dumps(header).encode())}.{_segment(json.dumps(claims).encode())}"
    if key is None:
        return signing + "."
    mac = hmac.new(key, signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{_segment(mac)}"


def jwks(*keys: Mapping[str, Any]) -> str:
    return json.dumps({"keys": list(keys)})
