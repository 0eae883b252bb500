"""A JWK Set fetched from ``kexpose.dev/auth-jwks-url``, cached and refreshed (edge-auth.md).

- Fetched on first use, then kept for :data:`MAX_AGE`; an older set is fetched again when a
  token needs it (a failed fetch keeps the old set in service and says so in the log).
- A token whose ``kid`` the set lacks makes the set be fetched again at once (a rotated
  signing key), at most once every :data:`REFETCH_INTERVAL`: a stream of tokens with made-up
  ``kid`` values must not turn into a stream of fetches.
- Concurrent requests share one fetch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Final
from urllib.parse import urlsplit

from kexpose.proxy.dataplane._subrequest import SubrequestClient, SubrequestError
from kexpose.proxy.filters import Jwk, keys_fingerprint, parse_jwks

__all__ = ["FETCH_TIMEOUT", "MAX_AGE", "REFETCH_INTERVAL", "RemoteKeySet"]

log = logging.getLogger(__name__)

#: Seconds a fetched set is used before it is fetched again (edge-auth.md: 5 minutes).
MAX_AGE: Final = 300.0
#: Shortest time between two fetches of one set (edge-auth.md: at most every 10 seconds).
REFETCH_INTERVAL: Final = 10.0
#: Seconds the key server has to answer; as long as the forward-auth default.
FETCH_TIMEOUT: Final = 5.0


class RemoteKeySet:
    def __init__(
        self,
        url: str,
        client: SubrequestClient,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._clock = clock
        parts = urlsplit(url)
        scheme = "https" if parts.scheme == "https" else "http"
        self._origin = (
            scheme,
            parts.hostname or "",
            parts.port or (443 if scheme == "https" else 80),
        )
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        authority = parts.netloc.rpartition("@")[2]
        self._head = (
            f"GET {target} HTTP/1.1\r\nhost: {authority}\r\naccept: application/json\r\n"
            "user-agent: kexpose-proxy\r\n\r\n"
        ).encode("latin-1")
        self._client = client
        self.keys: tuple[Jwk, ...] | None = None
        self.fingerprint = b""
        self.fetched_at = 0.0
        self._attempted_at = -REFETCH_INTERVAL
        self._fetching: asyncio.Future[None] | None = None

    def fresh(self, now: float) -> bool:
        return self.keys is not None and now - self.fetched_at < MAX_AGE

    def may_refetch(self, now: float) -> bool:
        return now - self._attempted_at >= REFETCH_INTERVAL

    async def current(self) -> tuple[Jwk, ...]:
        """The set, fetched first when it is missing or too old."""
        now = self._clock()
        if not self.fresh(now) and (self.keys is None or self.may_refetch(now)):
            await self.refresh()
        return self.keys or ()

    async def refresh(self) -> None:
        """Fetch the set again (one fetch for all waiting callers)."""
        if self._fetching is not None:
            await asyncio.shield(self._fetching)
            return
        loop = asyncio.get_running_loop()
        self._fetching = done = loop.create_future()
        self._attempted_at = self._clock()
        try:
            await self._fetch()
        finally:
            self._fetching = None
            done.set_result(None)

    async def _fetch(self) -> None:
        try:
            async with asyncio.timeout(FETCH_TIMEOUT):
                answer = await self._client.get(self._origin, self._head)
        except (SubrequestError, TimeoutError, OSError) as exc:
            log.warning("JWKS %s: fetch failed (%s); %s", self.url, exc, self._keeping())
            return
        if answer.status != 200:
            log.warning("JWKS %s: answered %d; %s", self.url, answer.status, self._keeping())
            return
        try:
            text = answer.body.decode("utf-8")
        except UnicodeDecodeError:
            log.warning("JWKS %s: not UTF-8 text; %s", self.url, self._keeping())
            return
        parsed = parse_jwks(text)
        if isinstance(parsed, str):
            log.warning("JWKS %s: %s; %s", self.url, parsed, self._keeping())
            return
        keys, skipped = parsed
        for note in skipped:
            log.warning("JWKS %s: %s", self.url, note)
        fingerprint = keys_fingerprint(text)
        if fingerprint != self.fingerprint:
            log.info("JWKS %s: %d key(s) in use", self.url, len(keys))
        self.keys, self.fingerprint = keys, fingerprint
        self.fetched_at = self._clock()

    def _keeping(self) -> str:
        return "keeping the keys fetched before" if self.keys is not None else "no keys yet"
