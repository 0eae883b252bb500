"""JWT bearer tokens (RFC 7519, RFC 8725, RFC 6750): keys, algorithm rules, claims.

Rules (edge-auth.md, "JWT"; Envoy ``jwt_authn`` where the spec is silent):

- Keys come from a JWK Set (RFC 7517 §5). A key the JOSE library cannot read, or of a type
  we do not accept, is left out of the set (and reported); a set with no usable key still
  parses, and then refuses every token.
- Accepted algorithms: RS256/384/512 and PS256/384/512 with ``kty: RSA``, ES256 with P-256 and
  ES384 with P-384 (``kty: EC``), EdDSA (``kty: OKP``), HS256/384/512 only with ``kty: oct``.
  ``none`` and every other name are refused, and so is an algorithm that does not fit the key
  (HS256 against an RSA key: the key-confusion attack, RFC 8725 §2.1) or a key whose JWK
  ``alg`` names another algorithm (RFC 8725 §3.1).
- The key is the one with the token's ``kid``; a token without ``kid`` tries every key that
  fits its ``alg``. A ``kid`` no key has is reported as such, so that a remote set can be
  fetched again (a rotated key).
- ``exp`` is required; ``exp`` and ``nbf`` allow 60 s of clock skew. ``iss`` must equal the
  configured issuer, ``aud`` (a string or a list) must hold one of the configured audiences.
- Claims copied to headers are sent only when they hold no control character (a token's
  claims are the issuer's text, not ours to put on a header line unchecked).

Signatures are checked by PyJWT over ``cryptography``; nothing here does cryptography itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, cast

import jwt
from jwt.exceptions import InvalidKeyError, PyJWKError, PyJWTError

__all__ = [
    "ACCEPTED_ALGORITHMS",
    "CLOCK_SKEW",
    "Jwk",
    "JwtAuth",
    "TokenCache",
    "TokenVerdict",
    "bearer_token",
    "claim_values",
    "parse_jwks",
    "verify_token",
]

#: Seconds of clock skew allowed on ``exp`` and ``nbf`` (edge-auth.md; Envoy's default is 60).
CLOCK_SKEW: Final = 60

#: Algorithm -> the JWK ``kty`` it may be used with.
ACCEPTED_ALGORITHMS: Final[Mapping[str, str]] = {
    **{name: "RSA" for name in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")},
    "ES256": "EC",
    "ES384": "EC",
    "EdDSA": "OKP",
    **{name: "oct" for name in ("HS256", "HS384", "HS512")},
}
_CURVES: Final[Mapping[str, str]] = {"ES256": "P-256", "ES384": "P-384"}
_OKP_CURVES: Final = frozenset(("Ed25519", "Ed448"))
_KTYS: Final = frozenset(ACCEPTED_ALGORITHMS.values())


@dataclass(frozen=True, slots=True)
class Jwk:
    kty: str
    kid: str | None
    alg: str | None
    crv: str | None
    key: object = field(repr=False)
    """What PyJWT verifies with: a ``cryptography`` public key, or bytes for ``oct``."""
    source: str = field(default="", repr=False)
    """The JWK as JSON: ``cryptography`` keys cannot be pickled, and route tables are pickled
    to ``--workers``, so a key travels as its JWK and is read again on arrival."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (_jwk_from_source, (self.source,))


def _jwk_from_source(source: str) -> Jwk:
    made = _jwk(json.loads(source))
    if isinstance(made, str):  # it was read once already; only a changed library could fail
        raise ValueError(f"a JWK that was read before cannot be read again: {made}")
    return made


@dataclass(frozen=True, slots=True)
class JwtAuth:
    realm: str
    keys: tuple[Jwk, ...] = ()
    """From ``auth-jwks-secret``; empty when the keys come from ``jwks_url``."""
    jwks_url: str | None = None
    issuer: str | None = None
    audiences: tuple[str, ...] = ()
    claim_headers: tuple[tuple[str, str], ...] = ()
    """``(claim, header)``; header names as written."""
    fingerprint: bytes = field(default=b"", repr=False)
    """SHA-256 of the whole configuration (the key set's text or URL, issuer, audiences): the
    namespace of cached verdicts."""

    def challenge(self, *, invalid: bool) -> bytes:
        realm = b'Bearer realm="%b"' % self.realm.encode("latin-1")
        return realm + b', error="invalid_token"' if invalid else realm


def parse_jwks(text: str) -> tuple[tuple[Jwk, ...], list[str]] | str:
    """The usable keys of a JWK Set and a note per key left out; a message when ``text`` is not
    a JWK Set at all. Messages never quote key material."""
    try:
        document = json.loads(text)
    except ValueError:
        return "is not JSON"
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        return 'is not a JWK Set (a JSON object with a "keys" list)'
    keys: list[Jwk] = []
    skipped: list[str] = []
    for index, raw in enumerate(cast("list[object]", document["keys"])):
        made = _jwk(raw)
        if isinstance(made, str):
            skipped.append(f"keys[{index}] {made}; left out")
        else:
            keys.append(made)
    return tuple(keys), skipped


def _jwk(raw: object) -> Jwk | str:
    if not isinstance(raw, dict):
        return "is not an object"
    jwk_data = cast("dict[str, object]", raw)
    kty, kid, alg, crv = (jwk_data.get(k) for k in ("kty", "kid", "alg", "crv"))
    if kty not in _KTYS:
        return f"has kty {kty!r}, expected one of {', '.join(sorted(_KTYS))}"
    if kid is not None and not isinstance(kid, str):
        return "has a kid that is not a string"
    if alg is not None and ACCEPTED_ALGORITHMS.get(alg if isinstance(alg, str) else "") != kty:
        return f"has alg {alg!r}, which is not accepted for kty {kty!r}"
    if kty == "OKP" and crv not in _OKP_CURVES:
        return f"has crv {crv!r}, expected Ed25519 or Ed448"
    # PyJWK picks a default algorithm to build the key with; the key object serves every
    # algorithm of its type, which ``verify_token`` restricts itself.
    default = {"RSA": "RS256", "oct": "HS256", "OKP": "EdDSA"}.get(str(kty))
    if kty == "EC":
        default = {"P-256": "ES256", "P-384": "ES384"}.get(str(crv))
        if default is None:
            return f"has crv {crv!r}, expected P-256 or P-384"
    try:
        key = jwt.PyJWK(jwk_data, algorithm=str(alg) if alg else default).key
    except (PyJWKError, InvalidKeyError, ValueError, TypeError, KeyError):
        # The library's message may quote the key (an ``oct`` secret): say only what failed.
        return f"(kty {kty!r}) cannot be read as a key"
    return Jwk(
        str(kty),
        kid if isinstance(kid, str) else None,
        str(alg) if alg else None,
        crv if isinstance(crv, str) else None,
        key,
        json.dumps(jwk_data, sort_keys=True),
    )


def keys_fingerprint(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def bearer_token(value: bytes | None) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (scheme case-insensitive), else None."""
    if value is None:
        return None
    scheme, _, token = value.strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return None
    token = token.strip()
    if not token or not token.isascii():
        return None
    return token.decode("ascii")


@dataclass(frozen=True, slots=True)
class TokenVerdict:
    claims: Mapping[str, object] | None
    """The token's claims when it is valid; None otherwise."""
    why: str = ""
    unknown_kid: bool = False
    """The token names a ``kid`` no key has (a remote set may have rotated)."""
    valid_from: float = float("-inf")
    """``nbf`` less the clock skew: a cached verdict is checked against these two only."""
    valid_until: float = float("inf")
    """``exp`` plus the clock skew."""

    def at(self, now: float) -> TokenVerdict:
        """This (cached, valid) verdict at time ``now``: itself, or why it no longer holds."""
        if now > self.valid_until:
            return TokenVerdict(None, "expired")
        if now < self.valid_from:
            return TokenVerdict(None, "not yet valid")
        return self


def _fits(key: Jwk, alg: str) -> bool:
    if ACCEPTED_ALGORITHMS[alg] != key.kty or (key.alg is not None and key.alg != alg):
        return False
    curve = _CURVES.get(alg)
    return curve is None or key.crv == curve


_SEGMENT: Final = re.compile(r"[A-Za-z0-9_-]*")
#: PyJWT's algorithm objects by name (each wraps ``cryptography``), built once.
_ALGORITHMS: Final[Mapping[str, Any]] = {
    name: jwt.get_algorithm_by_name(name) for name in ACCEPTED_ALGORITHMS
}


def _segment(text: str) -> bytes | None:
    """One base64url segment (RFC 7515 §2: no padding), canonical, or None."""
    if not _SEGMENT.fullmatch(text) or len(text) % 4 == 1:
        return None
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if base64.urlsafe_b64encode(raw).rstrip(b"=") != text.encode():
        return None  # non-zero trailing bits: another spelling of the same bytes
    return raw


def _compact(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes] | None:
    """Header, claims, signing input and signature of a compact JWS (RFC 7515 §7.1)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    decoded = [_segment(p) for p in parts]
    if any(d is None for d in decoded):
        return None
    try:
        header = json.loads(cast("bytes", decoded[0]))
        claims = json.loads(cast("bytes", decoded[1]))
    except ValueError:
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    return header, claims, f"{parts[0]}.{parts[1]}".encode(), cast("bytes", decoded[2])


def verify_token(token: str, auth: JwtAuth, keys: Sequence[Jwk], *, now: float) -> TokenVerdict:
    """Check the token's signature with ``keys`` and its claims at time ``now``.

    The compact form is taken apart here (three base64url segments, two JSON objects): PyJWT's
    own parser checks each character in Python and costs several times the RSA verification
    itself. The signature is checked by PyJWT's algorithm object over ``cryptography``.
    """
    parsed = _compact(token)
    if parsed is None:
        return TokenVerdict(None, "malformed token")
    header, claims, signing_input, signature = parsed
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ACCEPTED_ALGORITHMS:
        return TokenVerdict(None, f"algorithm {str(alg)[:20]!r} is refused")
    if header.get("crit") is not None:
        # RFC 7515 §4.1.11: extensions we do not understand must make the token invalid.
        return TokenVerdict(None, "crit header parameters are not supported")
    kid = header.get("kid")
    if kid is not None:
        named = [k for k in keys if k.kid == kid]
        if not named:
            return TokenVerdict(None, "unknown kid", unknown_kid=True)
        candidates = [k for k in named if _fits(k, alg)]
    else:
        candidates = [k for k in keys if _fits(k, alg)]
    if not candidates:
        return TokenVerdict(None, f"no key fits algorithm {alg}")
    algorithm = _ALGORITHMS[alg]
    for key in candidates:
        try:
            if algorithm.verify(signing_input, algorithm.prepare_key(key.key), signature):
                break
        except (PyJWTError, ValueError, TypeError):
            continue
    else:
        return TokenVerdict(None, "bad signature")
    why = check_claims(claims, auth, now=now)
    if why:
        return TokenVerdict(None, why)
    nbf = claims.get("nbf")
    return TokenVerdict(
        claims,
        valid_from=float(cast("float", nbf)) - CLOCK_SKEW if nbf is not None else float("-inf"),
        valid_until=float(cast("float", claims["exp"])) + CLOCK_SKEW,
    )


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_claims(claims: Mapping[str, object], auth: JwtAuth, *, now: float) -> str:
    """Why the (verified) claims are not acceptable at ``now``; ``""`` when they are."""
    exp = claims.get("exp")
    if not _number(exp):
        return "exp is missing or not a number"
    if now > cast("float", exp) + CLOCK_SKEW:
        return "expired"
    nbf = claims.get("nbf")
    if nbf is not None and (not _number(nbf) or now + CLOCK_SKEW < cast("float", nbf)):
        return "not yet valid"
    if auth.issuer is not None and claims.get("iss") != auth.issuer:
        return "wrong issuer"
    if auth.audiences:
        aud = claims.get("aud")
        given = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not any(isinstance(a, str) and a in auth.audiences for a in given):
            return "wrong audience"
    return ""


def claim_values(auth: JwtAuth, claims: Mapping[str, object]) -> tuple[tuple[str, str], ...]:
    """``(header, value)`` for each configured claim present in ``claims``; a list claim is
    joined with ``,``; a value with a control character is left out."""
    out: list[tuple[str, str]] = []
    for claim, header in auth.claim_headers:
        value = claims.get(claim)
        if value is None:
            continue
        if isinstance(value, list):
            text = ",".join(v if isinstance(v, str) else json.dumps(v) for v in value)
        elif isinstance(value, str):
            text = value
        else:
            text = json.dumps(value, separators=(",", ":"))
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
            continue
        out.append((header, text.encode("utf-8").decode("latin-1")))
    return tuple(out)


class TokenCache:
    """Tokens whose signature and issuer/audience were verified -> their verdict, bounded.

    A signature check costs tens of microseconds; clients send the same token for minutes
    (Envoy ``jwt_authn`` caches verified tokens the same way). Entries are keyed by the key
    set's fingerprint too, so a changed set never reuses a verdict; times (``exp``, ``nbf``)
    are checked again on every hit.
    """

    __slots__ = ("_entries", "_limit")

    def __init__(self, limit: int = 10_000) -> None:
        self._limit = limit
        self._entries: dict[tuple[bytes, str], TokenVerdict] = {}

    def get(self, namespace: bytes, token: str) -> TokenVerdict | None:
        """``namespace``: the fingerprints of the configuration and of the keys checked with."""
        return self._entries.get((namespace, token))

    def put(self, namespace: bytes, token: str, verdict: TokenVerdict) -> None:
        entries = self._entries
        if len(entries) >= self._limit:
            del entries[next(iter(entries))]
        entries[(namespace, token)] = verdict

    def __len__(self) -> int:
        return len(self._entries)
