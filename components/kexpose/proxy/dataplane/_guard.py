"""Edge authentication in the data plane: the filter step between a matched route and its
backend (edge-auth.md).

The decisions are the pure ``filters`` functions; this module only supplies what they cannot
have: the client's address, the clock, a thread for bcrypt, the forward-auth subrequest and
remote key sets. The fast paths stay synchronous (a cached basic credential, a cached or
locally verifiable token, an allow-list): only a cache miss for basic auth (bcrypt is slow on
purpose, so it runs in the default executor and not on the event loop), forward auth and a
remote key set that must be fetched wait on a task.

Every outcome either calls ``proceed`` (with ``Exchange.auth_headers`` set) or answers the
request; a request whose client went away meanwhile is dropped (``Exchange.finished``). Order:
configuration problem (503), allow-list (403), exempt path, then the mechanism. ``admits`` is
the first two alone: what a CORS preflight, answered before the mechanism, still goes through
(``Exchange._preflight``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from kexpose.proxy.dataplane._jwks import RemoteKeySet
from kexpose.proxy.dataplane._messages import HeadRewrite, status_line
from kexpose.proxy.dataplane._subrequest import (
    Answer,
    BadAnswerError,
    SubrequestClient,
    SubrequestError,
)
from kexpose.proxy.filters import (
    BasicAuth,
    CredentialCache,
    Denial,
    EdgeAuth,
    ForwardAuth,
    HeaderModifier,
    Jwk,
    JwtAuth,
    TokenCache,
    TokenVerdict,
    basic_credentials,
    bearer_token,
    check_password,
    claim_values,
    client_address,
    forward_outcome,
    in_ranges,
    is_exempt,
    original_url,
    subrequest_head,
    verify_token,
)
from kexpose.proxy.settings import DataPlaneSettings

if TYPE_CHECKING:
    from kexpose.proxy.dataplane._roles import Guarded

__all__ = ["EdgeGuard", "HeadRewrite"]  # HeadRewrite: re-exported from ``_messages``

log = logging.getLogger(__name__)

_AUTHORIZATION: Final = re.compile(rb"\r\nauthorization[ \t]*:[ \t]*([^\r]*)", re.IGNORECASE)
_COOKIE: Final = re.compile(rb"\r\ncookie[ \t]*:[ \t]*([^\r]*)", re.IGNORECASE)
#: The identity header basic auth sets; a client's own is removed first (edge-auth.md).
_USER_HEADER: Final = "X-Forwarded-User"
#: Forward-auth answers remembered with ``auth-cache-seconds`` (entries, not bytes).
_FORWARD_CACHE_MAX: Final = 10_000


def _authorization(fields: bytes) -> bytes | None:
    """The ``Authorization`` value; None when absent or sent more than once (ambiguous)."""
    found = _AUTHORIZATION.findall(fields)
    return found[0].rstrip(b" \t") if len(found) == 1 else None


def _identity_headers(auth: EdgeAuth) -> tuple[str, ...]:
    """Names the mechanism sets, lower case: removed from every request, exempt ones too."""
    mechanism = auth.mechanism
    if isinstance(mechanism, BasicAuth):
        return (_USER_HEADER.lower(),)
    if isinstance(mechanism, ForwardAuth):
        return mechanism.response_headers
    if isinstance(mechanism, JwtAuth):
        return tuple(h.lower() for _, h in mechanism.claim_headers)
    return ()


class EdgeGuard:
    """Owned by the data plane; one per process (its caches serve every table)."""

    def __init__(self, settings: DataPlaneSettings) -> None:
        self.trusted = settings.trusted_proxies
        self.credentials = CredentialCache()
        self.tokens = TokenCache()
        self.client = SubrequestClient()
        self._verifying: dict[bytes, asyncio.Future[bool]] = {}
        self._remote: dict[str, RemoteKeySet] = {}
        self._answers: dict[bytes, tuple[float, HeadRewrite]] = {}
        self._users: dict[str, HeadRewrite] = {}
        """User -> its ``X-Forwarded-User`` change, made once per user."""
        self.clock: Callable[[], float] = time.monotonic
        """Key-set ages and cached forward answers (tests move it instead of sleeping)."""

    def close(self) -> None:
        self.client.close()

    # --- the step -----------------------------------------------------------------------------

    def admits(self, ex: Guarded, auth: EdgeAuth) -> bool:
        """The checks that need no credentials: a configuration problem (503, fail closed:
        edge-auth.md "Bad configuration", every path answers 503) and the allow-list (403:
        an address, not a credential, checked "first" by edge-auth.md's order). False: the
        request is answered already."""
        if auth.problem:
            ex.error = auth.problem
            ex.respond(503)
            return False
        if auth.ranges:
            address = client_address(ex.client.peer, ex.req.forwarded_for, self.trusted)
            if not in_ranges(address, auth.ranges):
                ex.error = f"client {address} is outside {auth.source}'s allow-source-ranges"
                ex.respond(403)
                return False
        return True

    def check(self, ex: Guarded, auth: EdgeAuth, proceed: Callable[[], None]) -> None:
        if not self.admits(ex, auth):
            return
        req = ex.req
        mechanism = auth.mechanism
        if mechanism is None:
            proceed()
            return
        if auth.exempt and is_exempt(req.path, auth.exempt):
            names = _identity_headers(auth)
            if names:
                ex.auth_headers = HeadRewrite.of(HeaderModifier(remove=names))
            proceed()
            return
        if isinstance(mechanism, BasicAuth):
            self._basic(ex, mechanism, proceed)
        elif isinstance(mechanism, JwtAuth):
            self._jwt(ex, mechanism, proceed)
        else:
            self._forward(ex, mechanism, proceed)

    # --- basic --------------------------------------------------------------------------------

    def _basic(self, ex: Guarded, auth: BasicAuth, proceed: Callable[[], None]) -> None:
        value = _authorization(ex.req.fields)
        if value is None:
            self._challenge(ex, auth, "no credentials")
            return
        key = self.credentials.key(auth, value)
        user = self.credentials.get(key)
        if user is not None:
            self._pass_user(ex, user, proceed)
            return
        parsed = basic_credentials(value)
        if parsed is None:
            self._challenge(ex, auth, "malformed credentials")
            return
        name, password = parsed
        pending = self._verifying.get(key)
        if pending is None:
            loop = ex.client.plane.loop
            pending = loop.run_in_executor(None, check_password, auth, name, password)
            self._verifying[key] = pending
            pending.add_done_callback(lambda _: self._verifying.pop(key, None))

        def verified(future: asyncio.Future[bool]) -> None:
            if ex.finished:
                return
            if future.cancelled() or future.exception() is not None or not future.result():
                self._challenge(ex, auth, "wrong credentials")
                return
            self.credentials.put(key, name)  # only successes are remembered
            self._pass_user(ex, name, proceed)

        pending.add_done_callback(verified)

    def _pass_user(self, ex: Guarded, user: str, proceed: Callable[[], None]) -> None:
        rewrite = self._users.get(user)
        if rewrite is None:
            if len(self._users) >= _FORWARD_CACHE_MAX:
                self._users.clear()
            value = user.encode("utf-8").decode("latin-1")
            rewrite = HeadRewrite.of(HeaderModifier(set=((_USER_HEADER, value),)))
            self._users[user] = rewrite
        ex.auth_headers = rewrite
        proceed()

    def _challenge(self, ex: Guarded, auth: BasicAuth, why: str) -> None:
        ex.error = f"basic auth: {why}"
        ex.respond(401, headers=((b"www-authenticate", auth.challenge),))

    # --- JWT ----------------------------------------------------------------------------------

    def _jwt(self, ex: Guarded, auth: JwtAuth, proceed: Callable[[], None]) -> None:
        token = bearer_token(_authorization(ex.req.fields))
        if token is None:
            ex.error = "jwt: no bearer token"
            ex.respond(401, headers=((b"www-authenticate", auth.challenge(invalid=False)),))
            return
        now = time.time()
        if auth.jwks_url is None:
            self._jwt_verdict(ex, auth, self._verify(auth, auth.keys, b"", token, now), proceed)
            return
        remote = self._remote.get(auth.jwks_url)
        if remote is None:
            remote = RemoteKeySet(auth.jwks_url, self.client, clock=lambda: self.clock())
            self._remote[auth.jwks_url] = remote
        if remote.fresh(self.clock()):
            verdict = self._verify(auth, remote.keys or (), remote.fingerprint, token, now)
            if not (verdict.unknown_kid and remote.may_refetch(self.clock())):
                self._jwt_verdict(ex, auth, verdict, proceed)
                return
        plane = ex.client.plane
        plane.spawn(
            self._jwt_remote(remote, auth, token),
            lambda task: self._jwt_done(ex, auth, task, proceed),
        )

    async def _jwt_remote(self, remote: RemoteKeySet, auth: JwtAuth, token: str) -> TokenVerdict:
        keys = await remote.current()
        verdict = self._verify(auth, keys, remote.fingerprint, token, time.time())
        if verdict.unknown_kid and remote.may_refetch(self.clock()):
            await remote.refresh()  # a rotated key: fetch the set again, once
            keys = remote.keys or ()
            verdict = self._verify(auth, keys, remote.fingerprint, token, time.time())
        return verdict

    def _jwt_done(
        self,
        ex: Guarded,
        auth: JwtAuth,
        task: asyncio.Task[TokenVerdict],
        proceed: Callable[[], None],
    ) -> None:
        if ex.finished:
            return
        if task.cancelled() or task.exception() is not None:
            verdict = TokenVerdict(None, "the key set could not be read")
        else:
            verdict = task.result()
        self._jwt_verdict(ex, auth, verdict, proceed)

    def _verify(
        self, auth: JwtAuth, keys: tuple[Jwk, ...], keys_id: bytes, token: str, now: float
    ) -> TokenVerdict:
        namespace = auth.fingerprint + keys_id if keys_id else auth.fingerprint
        cached = self.tokens.get(namespace, token)
        if cached is not None:
            return cached.at(now)  # issuer and audience held; times move on: check them again
        verdict = verify_token(token, auth, keys, now=now)
        if verdict.claims is not None:
            self.tokens.put(namespace, token, verdict)
        return verdict

    def _jwt_verdict(
        self, ex: Guarded, auth: JwtAuth, verdict: TokenVerdict, proceed: Callable[[], None]
    ) -> None:
        if verdict.claims is None:
            ex.error = f"jwt: {verdict.why}"
            ex.respond(401, headers=((b"www-authenticate", auth.challenge(invalid=True)),))
            return
        names = tuple(h.lower() for _, h in auth.claim_headers)
        if names:
            modifier = HeaderModifier(set=claim_values(auth, verdict.claims), remove=names)
            ex.auth_headers = HeadRewrite.of(modifier)
        proceed()

    # --- forward ------------------------------------------------------------------------------

    def _forward(self, ex: Guarded, auth: ForwardAuth, proceed: Callable[[], None]) -> None:
        req = ex.req
        client = ex.client
        host = req.host_header or b""
        cache_key = b""
        if auth.cache_seconds:
            fields = req.fields
            cookie = b"\0".join(_COOKIE.findall(fields))
            authorization = b"\0".join(_AUTHORIZATION.findall(fields))
            # The settings that shape an outcome are part of the key: a changed list of copied
            # headers (or URL) never reuses an answer cached under the old one.
            settings = f"{auth.url}\0{','.join(auth.response_headers)}".encode()
            cache_key = hashlib.sha256(b"%b\0%b\0%b" % (settings, authorization, cookie)).digest()
            hit = self._answers.get(cache_key)
            if hit is not None:
                if hit[0] > self.clock():
                    ex.auth_headers = hit[1]
                    proceed()
                    return
                del self._answers[cache_key]
        head = subrequest_head(
            auth,
            method=req.method,
            target=req.target,
            host=host,
            scheme=client.scheme,
            fields=req.fields,
            client=client.peer_bytes,
        )
        original = original_url(scheme=client.scheme, host=host, target=req.target)

        def answered(task: asyncio.Task[Answer]) -> None:
            if ex.finished:
                return
            if task.cancelled():
                ex.error = "forward auth: cancelled"
                ex.respond(503)
                return
            exc = task.exception()
            if exc is not None:
                ex.error = f"forward auth {auth.url}: {exc or type(exc).__name__}"
                # An answer we cannot use is an answer (500); none at all, or too late, is 503.
                ex.respond(500 if isinstance(exc, BadAnswerError) else 503)
                return
            answer = task.result()
            outcome = forward_outcome(
                auth, answer.status, answer.headers, answer.body, original=original
            )
            if isinstance(outcome, Denial):
                ex.error = f"forward auth {auth.url} answered {answer.status}"
                _deny(ex, outcome, answer)
                return
            rewrite = HeadRewrite.of(outcome)
            if cache_key:
                if len(self._answers) >= _FORWARD_CACHE_MAX:
                    del self._answers[next(iter(self._answers))]
                self._answers[cache_key] = (self.clock() + auth.cache_seconds, rewrite)
            ex.auth_headers = rewrite
            proceed()

        client.plane.spawn(self._subrequest(auth, head), answered)

    async def _subrequest(self, auth: ForwardAuth, head: bytes) -> Answer:
        try:
            async with asyncio.timeout(auth.timeout):
                return await self.client.get((auth.scheme, auth.host, auth.port), head)
        except TimeoutError:
            raise SubrequestError(f"no answer within {auth.timeout:g}s") from None


def _deny(ex: Guarded, denial: Denial, answer: Answer) -> None:
    """Answer with a forward-auth denial: the auth service's body when it has one."""
    if denial.body is None:
        ex.respond(denial.status, headers=denial.headers)
        return
    if ex.req.upgrade is not None:
        ex.keep_alive = False
    ex.status = denial.status
    close = not ex.keep_alive or ex.client.closing
    parts = [status_line(denial.status)]
    parts.extend(b"%b: %b\r\n" % pair for pair in denial.headers)
    for name, value in answer.headers:
        if name.lower() == b"content-type":
            parts.append(b"content-type: %b\r\n" % value)  # it describes the body passed on
    parts.append(b"content-length: %d\r\n" % len(denial.body))
    if close:
        parts.append(b"connection: close\r\n")
    parts.append(b"\r\n")
    if ex.req.method != b"HEAD":
        parts.append(denial.body)
    ex.client.write(b"".join(parts))
    ex.response_complete()
