"""Basic authentication (RFC 7617): credentials from a header, checked against a Secret.

Rules (edge-auth.md, "Basic"; ingress-nginx and Traefik ``basicAuth`` read the same files):

- An htpasswd file holds ``user:hash`` lines; blank lines and ``#`` comments are skipped.
  Accepted hashes: bcrypt (``$2y$``, ``$2b$``, ``$2a$``), Apache MD5 (``$apr1$``) and SHA-1
  (``{SHA}`` + base64). Any other line (crypt, plain text) is left out and reported.
- A ``kubernetes.io/basic-auth`` Secret holds one plain ``username`` and ``password``.
- ``Authorization: Basic <base64(user:password)>``: the scheme is case-insensitive, the user
  case-sensitive, and the password may hold ``:`` (the first colon splits).
- An unknown user costs what a known one does: its password is checked against another
  user's hash (and then refused), so the answer's timing does not tell which users exist.
  Comparisons of digests are constant-time (``hmac.compare_digest``, bcrypt's own).
- A verified credential may be remembered (:class:`CredentialCache`): by a MAC (keyed BLAKE2b)
  of the Secret's fingerprint and the header value under a key made per process, so that the
  cache holds no password, and a changed Secret (a new fingerprint) never reuses an old verdict.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

import bcrypt

__all__ = [
    "BasicAuth",
    "Credential",
    "CredentialCache",
    "apr1_hash",
    "basic_credentials",
    "parse_htpasswd",
    "password_matches",
]

Scheme = Literal["bcrypt", "apr1", "sha1", "plain"]

#: bcrypt reads at most 72 bytes of a password; Apache's ``htpasswd`` and OpenBSD truncate
#: longer ones, so we do too (the bcrypt package refuses them instead of truncating).
_BCRYPT_MAX: Final = 72
_BCRYPT_PREFIXES: Final = (b"$2y$", b"$2b$", b"$2a$")
_APR1: Final = b"$apr1$"
_ITOA64: Final = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True, slots=True)
class Credential:
    scheme: Scheme
    secret: bytes = field(repr=False)
    """The hash as written, or (``plain``) the SHA-256 of a basic-auth Secret's password."""


@dataclass(frozen=True, slots=True)
class BasicAuth:
    realm: str
    users: Mapping[str, Credential] = field(repr=False)
    fingerprint: bytes = field(repr=False)
    """SHA-256 of the Secret's content: the namespace of its cache entries."""
    secret: str = ""
    """``namespace/name`` of the Secret (for messages)."""

    @property
    def challenge(self) -> bytes:
        return b'Basic realm="%b"' % self.realm.encode("latin-1")


def parse_htpasswd(text: str) -> tuple[dict[str, Credential], list[str]]:
    """The users of an htpasswd file, and a note per line left out (never the hash itself)."""
    users: dict[str, Credential] = {}
    skipped: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user:
            skipped.append(f"line {number} is not user:hash")
            continue
        value = hashed.strip().encode("latin-1", "replace")
        scheme: Scheme
        if value.startswith(_BCRYPT_PREFIXES):
            scheme = "bcrypt"
        elif value.startswith(_APR1):
            scheme = "apr1"
        elif value.startswith(b"{SHA}"):
            scheme = "sha1"
        else:
            skipped.append(
                f"line {number} (user {user!r}) uses a hash scheme other than bcrypt, "
                "$apr1$ or {SHA}"
            )
            continue
        users.setdefault(user, Credential(scheme, value))
    return users, skipped


def plain_credential(password: str) -> Credential:
    """A basic-auth Secret's password, kept only as a digest to compare against."""
    return Credential("plain", hashlib.sha256(password.encode()).digest())


def basic_credentials(value: bytes) -> tuple[str, bytes] | None:
    """``(user, password)`` from an ``Authorization`` value, or None when it is not Basic or
    not well formed."""
    scheme, _, encoded = value.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    try:
        return user.decode("utf-8"), password
    except UnicodeDecodeError:
        return None


def _to64(value: int, count: int) -> bytes:
    out = bytearray()
    for _ in range(count):
        out.append(_ITOA64[value & 0x3F])
        value >>= 6
    return bytes(out)


def apr1_hash(password: bytes, salt: bytes) -> bytes:
    """Apache's MD5-crypt (``$apr1$``): no library in reach still implements it (passlib is no
    longer maintained), so it is written here over ``hashlib.md5``, step for step as Apache's
    ``apr_md5_encode``. Legacy: accepted for existing htpasswd files only."""
    salt = salt[:8]
    mixed = hashlib.md5(password + salt + password).digest()  # noqa: S324 - the scheme's hash
    ctx = password + _APR1 + salt
    remaining = len(password)
    while remaining > 0:
        ctx += mixed[: min(16, remaining)]
        remaining -= 16
    bits = len(password)
    while bits:
        ctx += b"\0" if bits & 1 else password[:1]
        bits >>= 1
    final = hashlib.md5(ctx).digest()  # noqa: S324
    for i in range(1000):
        step = password if i & 1 else final
        if i % 3:
            step += salt
        if i % 7:
            step += password
        step += final if i & 1 else password
        final = hashlib.md5(step).digest()  # noqa: S324
    f = final
    encoded = b"".join(
        (
            _to64((f[0] << 16) | (f[6] << 8) | f[12], 4),
            _to64((f[1] << 16) | (f[7] << 8) | f[13], 4),
            _to64((f[2] << 16) | (f[8] << 8) | f[14], 4),
            _to64((f[3] << 16) | (f[9] << 8) | f[15], 4),
            _to64((f[4] << 16) | (f[10] << 8) | f[5], 4),
            _to64(f[11], 2),
        )
    )
    return _APR1 + salt + b"$" + encoded


def password_matches(credential: Credential, password: bytes) -> bool:
    """Whether ``password`` matches ``credential``; CPU-bound (bcrypt on purpose)."""
    if credential.scheme == "bcrypt":
        try:
            return bcrypt.checkpw(password[:_BCRYPT_MAX], credential.secret)
        except ValueError:
            return False  # a malformed hash (wrong length, bad cost) matches nothing
    if credential.scheme == "apr1":
        salt = credential.secret[len(_APR1) :].split(b"$", 1)[0]
        return hmac.compare_digest(apr1_hash(password, salt), credential.secret)
    if credential.scheme == "sha1":
        digest = base64.b64encode(hashlib.sha1(password).digest())  # noqa: S324 - the scheme's
        return hmac.compare_digest(b"{SHA}" + digest, credential.secret)
    return hmac.compare_digest(hashlib.sha256(password).digest(), credential.secret)


def check_password(auth: BasicAuth, user: str, password: bytes) -> bool:
    """Whether ``user`` exists with ``password``. An unknown user's password is checked against
    some other user's hash first, so both paths cost one hash verification."""
    credential = auth.users.get(user)
    if credential is None:
        decoy = next(iter(auth.users.values()), None)
        if decoy is not None:
            password_matches(decoy, password)
        return False
    return password_matches(credential, password)


class CredentialCache:
    """Verified ``Authorization`` values -> user, bounded; failures are never stored."""

    __slots__ = ("_entries", "_key", "_limit")

    def __init__(self, limit: int = 10_000) -> None:
        self._key = os.urandom(32)
        self._limit = limit
        self._entries: dict[bytes, str] = {}

    def key(self, auth: BasicAuth, value: bytes) -> bytes:
        # Keyed BLAKE2b is a MAC (RFC 7693 §2.9) and about three times cheaper than HMAC-SHA-256
        # per request; the fingerprint has a fixed length, so the input is unambiguous.
        return hashlib.blake2b(auth.fingerprint + value, key=self._key, digest_size=32).digest()

    def get(self, key: bytes) -> str | None:
        return self._entries.get(key)

    def put(self, key: bytes, user: str) -> None:
        entries = self._entries
        if len(entries) >= self._limit:
            del entries[next(iter(entries))]  # the oldest: dicts keep insertion order
        entries[key] = user

    def __len__(self) -> int:
        return len(self._entries)
