"""Edge auth's pure parts as case tables: credentials, hashes, client addresses, exempt paths,
token rules, forward-auth answers, and the route core's reading of the settings."""

from __future__ import annotations

import base64
from ipaddress import ip_address
from typing import Any

import bcrypt
import pytest
from tests.proxy.auth_servers import AUTH, Keys, bcrypt_line, forged, jwks, secret, sha_line

from kexpose.proxy.filters import (
    BasicAuth,
    CredentialCache,
    Denial,
    ForwardAuth,
    HeaderModifier,
    JwtAuth,
    basic_credentials,
    check_password,
    claim_values,
    client_address,
    forward_outcome,
    is_exempt,
    parse_htpasswd,
    parse_jwks,
    parse_networks,
    password_matches,
    subrequest_head,
    verify_token,
)
from kexpose.proxy.filters._basic import apr1_hash
from kexpose.proxy.routes._auth import auth_from_annotations


def _b64(text: bytes) -> bytes:
    return base64.b64encode(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"Basic " + _b64(b"alice:pw"), ("alice", b"pw")),
        (b"basic " + _b64(b"alice:pw:with:colons"), ("alice", b"pw:with:colons")),
        (b"BASIC   " + _b64(b"alice:"), ("alice", b"")),
        (b"Basic " + _b64(b"no-colon"), None),
        (b"Basic !!!", None),
        (b"Bearer " + _b64(b"alice:pw"), None),
        (b"Basic " + _b64(b"\xff:pw"), None),
    ],
)
def test_basic_credentials(value: bytes, expected: tuple[str, bytes] | None) -> None:
    assert basic_credentials(value) == expected


def test_hash_schemes() -> None:
    users, skipped = parse_htpasswd(
        "\n".join(
            [
                bcrypt_line("a", "pw"),
                sha_line("b", "pw"),
                "c:$apr1$abcdefgh$jENn7gMAVPUBTYVKBjwHl0",
                "d:$1$crypt$md5crypt-is-refused",
                "e:plaintext",
                "  # comment",
                "nocolon",
            ]
        )
    )
    assert sorted(users) == ["a", "b", "c"]
    assert len(skipped) == 3
    assert not any("plaintext" in s for s in skipped)
    assert password_matches(users["a"], b"pw")
    assert not password_matches(users["a"], b"pW")
    assert password_matches(users["b"], b"pw")
    assert not password_matches(users["b"], b"p")
    assert password_matches(users["c"], b"pa:ss")
    assert not password_matches(users["c"], b"pa:s")
    # Apache's test vector shape: openssl passwd -apr1 -salt abcdefgh 'pa:ss'
    assert apr1_hash(b"pa:ss", b"abcdefgh") == b"$apr1$abcdefgh$jENn7gMAVPUBTYVKBjwHl0"
    # bcrypt reads 72 bytes: a longer password matches as htpasswd truncates it.
    long_users, _ = parse_htpasswd(bcrypt_line("l", "x" * 72))
    assert password_matches(long_users["l"], b"x" * 80)


def test_unknown_users_cost_one_hash_check_like_known_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Timing independence of user existence, asserted by the work done rather than the clock:
    a known user and an unknown one each cost exactly one bcrypt verification."""
    users, _ = parse_htpasswd(bcrypt_line("alice", "pw") + "\n" + bcrypt_line("bob", "pw2"))
    auth = BasicAuth("r", users, b"f" * 32)
    calls: list[bytes] = []
    real = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    assert check_password(auth, "alice", b"pw")
    assert not check_password(auth, "alice", b"wrong")
    assert not check_password(auth, "mallory", b"pw")  # alice's password, unknown user
    assert not check_password(auth, "mallory", b"x")
    assert len(calls) == 4


def test_credential_cache_is_keyed_by_secret_and_bounded() -> None:
    cache = CredentialCache(limit=2)
    one = BasicAuth("r", {}, b"1" * 32)
    two = BasicAuth("r", {}, b"2" * 32)
    value = b"Basic " + _b64(b"alice:pw")
    cache.put(cache.key(one, value), "alice")
    assert cache.get(cache.key(one, value)) == "alice"
    assert cache.get(cache.key(two, value)) is None  # a changed Secret never reuses a verdict
    assert value not in cache.key(one, value)
    assert b"pw" not in cache.key(one, value)
    cache.put(cache.key(one, b"a"), "a")
    cache.put(cache.key(one, b"b"), "b")
    assert len(cache) == 2
    assert cache.get(cache.key(one, value)) is None  # the oldest went first


TRUSTED, _ = parse_networks("10.0.0.0/8, fd00::/8")


@pytest.mark.parametrize(
    ("peer", "xff", "trusted", "client"),
    [
        ("192.0.2.1", b"203.0.113.9", (), "192.0.2.1"),
        ("10.0.0.1", b"203.0.113.9", (), "10.0.0.1"),  # nothing trusted: XFF ignored
        ("10.0.0.1", b"203.0.113.9", TRUSTED, "203.0.113.9"),
        ("10.0.0.1", b"203.0.113.9, 10.9.9.9", TRUSTED, "203.0.113.9"),
        ("10.0.0.1", b"198.51.100.1, 203.0.113.9, 10.9.9.9", TRUSTED, "203.0.113.9"),
        ("10.0.0.1", b"10.1.1.1, 10.2.2.2", TRUSTED, "10.1.1.1"),  # all trusted: left-most
        ("10.0.0.1", None, TRUSTED, "10.0.0.1"),
        ("10.0.0.1", b"garbage", TRUSTED, None),
        ("192.0.2.1", b"10.1.1.1", TRUSTED, "192.0.2.1"),  # an untrusted peer's XFF is ignored
        ("::ffff:192.0.2.1", None, (), "192.0.2.1"),
        ("fd00::1", b"2001:db8::5", TRUSTED, "2001:db8::5"),
    ],
)
def test_client_address(peer: str, xff: bytes | None, trusted: Any, client: str | None) -> None:
    found = client_address(peer, xff, trusted)
    assert found == (ip_address(client) if client else None)


@pytest.mark.parametrize(
    ("path", "exempt"),
    [
        ("/healthz", True),
        ("/healthz/x", True),
        ("/healthzfoo", False),
        ("/Healthz", False),
        ("/api", False),
        ("/.well-known/acme-challenge/x", True),
    ],
)
def test_exempt_paths(path: str, exempt: bool) -> None:
    assert is_exempt(path, ("/healthz", "/.well-known")) is exempt


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys.make()


def test_token_rules(keys: Keys) -> None:
    parsed = parse_jwks(jwks(keys.jwk("rsa", "k1"), keys.jwk("oct", "h1"), keys.jwk("ec", "e1")))
    assert not isinstance(parsed, str)
    key_set, skipped = parsed
    assert not skipped
    auth = JwtAuth("r", key_set, issuer="i", audiences=("a",))
    now = 1_000_000.0
    claims = {"iss": "i", "aud": "a", "exp": now + 10}
    pem = keys.rsa_public_pem()
    table: list[tuple[str, str, float, str]] = [
        (keys.token("rsa", claims, alg="RS256"), "", now, "RS256"),
        (keys.token("rsa", claims, alg="RS256"), "", now + 69, "within the skew"),
        (keys.token("rsa", claims, alg="RS256"), "expired", now + 71, "past the skew"),
        (keys.token("rsa", {**claims, "nbf": now + 61}, alg="RS256"), "not yet valid", now, "nbf"),
        (
            keys.token("rsa", {**claims, "exp": "soon"}, alg="RS256"),
            "exp is missing",
            now,
            "exp type",
        ),
        (
            keys.token("rsa", {**claims, "exp": True}, alg="RS256"),
            "exp is missing",
            now,
            "exp bool",
        ),
        (keys.token("oct", claims, alg="HS256", kid="h1"), "", now, "HS256 with oct"),
        (forged({"alg": "HS256", "kid": "k1"}, claims, pem), "no key fits", now, "confusion"),
        (forged({"alg": "HS256", "kid": "h1"}, claims, pem), "bad signature", now, "wrong secret"),
        (forged({"alg": "none"}, claims, None), "refused", now, "none"),
        (forged({"alg": "ES256K"}, claims, None), "refused", now, "unlisted alg"),
        (keys.token("ec", claims, alg="ES256", kid="k1"), "no key fits", now, "EC alg, RSA key"),
        (keys.token("rsa", claims, alg="RS256", kid="nope"), "unknown kid", now, "kid"),
        (keys.token("rsa", {**claims, "aud": ["b", "a"]}, alg="RS256"), "", now, "aud list"),
        (keys.token("rsa", {**claims, "aud": ["b"]}, alg="RS256"), "wrong audience", now, "aud"),
        (keys.token("rsa", {**claims, "iss": "j"}, alg="RS256"), "wrong issuer", now, "iss"),
    ]
    for token, why, at, name in table:
        verdict = verify_token(token, auth, key_set, now=at)
        assert (verdict.claims is None) == bool(why), name
        assert why in verdict.why, name
    assert verify_token("x.y.z", auth, key_set, now=now).why == "malformed token"


def test_key_sets_leave_out_what_they_cannot_use(keys: Keys) -> None:
    parsed = parse_jwks(
        jwks(
            keys.jwk("rsa", "ok"),
            {"kty": "oct", "k": "c2VjcmV0", "alg": "RS256"},  # alg for another key type
            {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"},
            {"kty": "RSA", "n": "%%%", "e": "AQAB"},
            {"kty": "weird"},
        )
    )
    assert not isinstance(parsed, str)
    key_set, skipped = parsed
    assert [k.kid for k in key_set] == ["ok"]
    assert len(skipped) == 4
    assert not any("c2VjcmV0" in s for s in skipped)  # never quotes key material
    assert parse_jwks("[]") == 'is not a JWK Set (a JSON object with a "keys" list)'


def test_claim_headers_keep_header_lines_intact() -> None:
    auth = JwtAuth("r", claim_headers=(("sub", "X-User"), ("groups", "X-G"), ("n", "X-N")))
    got = claim_values(auth, {"sub": "a\r\nX-Evil: 1", "groups": ["a", "b"], "n": 3})
    assert got == (("X-G", "a,b"), ("X-N", "3"))


FORWARD = ForwardAuth("http://auth/", "http", "auth", 80, "auth", "/", response_headers=("x-user",))


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, HeaderModifier(add=(("X-User", "a"),), remove=("x-user",))),
        (204, HeaderModifier(add=(("X-User", "a"),), remove=("x-user",))),
        (401, Denial(401, ((b"www-authenticate", b"Basic"),), b"body")),
        (403, Denial(403, ((b"www-authenticate", b"Basic"),), b"body")),
        (301, Denial(500)),
        (404, Denial(500)),
        (502, Denial(500)),
    ],
)
def test_forward_outcomes(status: int, expected: object) -> None:
    headers = [(b"X-User", b"a"), (b"WWW-Authenticate", b"Basic"), (b"X-Other", b"o")]
    assert forward_outcome(FORWARD, status, headers, b"body", original=b"http://h/") == expected


def test_subrequest_head_replaces_what_the_client_could_spoof() -> None:
    fields = (
        b"\r\nhost: app\r\ncontent-length: 4\r\nx-original-url: http://evil/"
        b"\r\nX-Forwarded-Uri: /evil\r\ncookie: c=1"
    )
    head = subrequest_head(
        FORWARD,
        method=b"POST",
        target=b"/a?b",
        host=b"app",
        scheme=b"https",
        fields=fields,
        client=b"192.0.2.1",
    )
    assert head.startswith(b"GET / HTTP/1.1\r\nhost: auth\r\ncookie: c=1\r\n")
    assert b"evil" not in head
    assert b"content-length" not in head
    assert b"\r\nx-original-url: https://app/a?b\r\n" in head
    assert head.endswith(b"\r\n\r\n")


def _auth(notes: dict[str, str], secrets: dict[tuple[str, str], Any] | None = None) -> Any:
    found: list[str] = []
    made = auth_from_annotations(
        {f"{AUTH}{k}": v for k, v in notes.items()},
        namespace="ns",
        source="Ingress ns/web",
        secrets=secrets or {},
        notes=found,
    )
    return made, found


def test_settings_read_by_the_route_core() -> None:
    assert _auth({})[0] is None
    made, _ = _auth(
        {
            "auth-type": "forward",
            "auth-url": "https://user:pw@auth.example:8443/check?x=1",
            "auth-response-headers": "X-User, X-Email",
            "auth-timeout": "2.5",
            "auth-exempt-paths": "/healthz/, /",
        }
    )
    forward = made.mechanism
    assert isinstance(forward, ForwardAuth)
    assert (forward.scheme, forward.host, forward.port) == ("https", "auth.example", 8443)
    assert forward.authority == "auth.example:8443"  # the userinfo never goes on a Host line
    assert forward.target == "/check?x=1"
    assert forward.response_headers == ("x-user", "x-email")
    assert forward.timeout == 2.5
    assert made.exempt == ("/healthz", "")
    users = {
        ("other", "u"): secret(
            "u", {"username": "alice", "password": "pw"}, type_="kubernetes.io/basic-auth"
        )
    }
    made, _ = _auth({"auth-type": "basic", "auth-secret": "other/u"}, users)
    assert isinstance(made.mechanism, BasicAuth)
    assert password_matches(made.mechanism.users["alice"], b"pw")
    assert "pw" not in repr(made)
    made, _ = _auth(
        {
            "auth-type": "jwt",
            "auth-jwks-url": "https://idp/jwks",
            "auth-jwt-claim-headers": "sub:X-User",
        }
    )
    assert isinstance(made.mechanism, JwtAuth)
    assert made.mechanism.claim_headers == (("sub", "X-User"),)
    made, found = _auth(
        {"auth-type": "jwt", "auth-jwks-url": "https://idp/jwks", "auth-jwks-secret": "k"}
    )
    assert made.problem
    assert "exactly one" in made.problem
    assert found == [made.problem]
    made, found = _auth({"allow-source-ranges": "10.0.0.0/8, nope"})
    assert "annotation kexpose.dev/allow-source-ranges is 'nope'" in made.problem


def test_invalid_settings_never_quote_secret_material() -> None:
    users = {("ns", "u"): secret("u", {"auth": "alice:$1$abc$sekrit-hash"})}
    made, found = _auth({"auth-type": "basic", "auth-secret": "u"}, users)
    assert made.problem == ""
    assert found
    assert not any("sekrit" in f for f in found)


def test_route_tables_with_auth_reach_workers(keys: Keys) -> None:
    """``--workers`` get the route table pickled: every mechanism must survive the trip (the
    ``cryptography`` key objects of a JWK Set cannot be pickled themselves)."""
    import pickle

    from tests.proxy.objects import ingress, ingress_class, path, rule

    from kexpose.defaults import CONTROLLER_NAME
    from kexpose.proxy.routes import Claim, ObjectSet, build_table

    def web(name: str, notes: dict[str, str]) -> Any:
        return ingress(name, rule(f"{name}.example", path("/", "web")), annotations=notes)

    docs = [
        ingress_class(),
        web("basic", {f"{AUTH}auth-type": "basic", f"{AUTH}auth-secret": "users"}),
        web("jwt", {f"{AUTH}auth-type": "jwt", f"{AUTH}auth-jwks-secret": "keys"}),
        web("fwd", {f"{AUTH}auth-type": "forward", f"{AUTH}auth-url": "http://auth/"}),
        web("ranges", {f"{AUTH}allow-source-ranges": "10.0.0.0/8"}),
        secret("users", {"auth": bcrypt_line("alice", "pw")}),
        secret("keys", {"jwks.json": jwks(keys.jwk("rsa", "k1"), keys.jwk("oct", "h1"))}),
    ]
    objects, problems = ObjectSet.from_documents(docs)
    assert not problems
    table = build_table(objects, claim=Claim(CONTROLLER_NAME, ingress_class="kexpose"))
    copied = pickle.loads(pickle.dumps(table))  # noqa: S301 - our own bytes, as workers do
    route = copied.route("jwt.example", "/")
    assert route is not None
    assert route.auth is not None
    jwt_auth = route.auth.mechanism
    assert isinstance(jwt_auth, JwtAuth)
    token = keys.token("rsa", {"exp": 2_000_000_000}, alg="RS256")
    assert verify_token(token, jwt_auth, jwt_auth.keys, now=1_000_000_000).claims is not None
    hmac_token = keys.token("oct", {"exp": 2_000_000_000}, alg="HS256", kid="h1")
    assert verify_token(hmac_token, jwt_auth, jwt_auth.keys, now=1_000_000_000).claims
    basic_route = copied.route("basic.example", "/")
    assert basic_route is not None
    assert basic_route.auth is not None
    assert isinstance(basic_route.auth.mechanism, BasicAuth)
    assert check_password(basic_route.auth.mechanism, "alice", b"pw")


def test_a_cached_verdict_checks_the_times_again(keys: Keys) -> None:
    parsed = parse_jwks(jwks(keys.jwk("rsa", "k1")))
    assert not isinstance(parsed, str)
    key_set, _ = parsed
    auth = JwtAuth("r", key_set)
    now = 1_000_000.0
    token = keys.token("rsa", {"exp": now + 10, "nbf": now - 5}, alg="RS256")
    verdict = verify_token(token, auth, key_set, now=now)
    assert verdict.claims is not None
    assert verdict.at(now + 69) is verdict
    assert verdict.at(now + 71).why == "expired"
    assert verdict.at(now - 64) is verdict  # nbf - 5 - 60 s of skew
    assert verdict.at(now - 66).why == "not yet valid"
