"""Leader election over a ``coordination.k8s.io/v1`` Lease, so one replica writes status.

The algorithm is client-go's ``leaderelection``: the holder renews ``renewTime`` every
``lease_retry_period``; another replica takes over only after it has seen the *same* record
unchanged for ``leaseDurationSeconds`` of its own (monotonic) time, so clock skew between
nodes does not matter; every write carries the resourceVersion it read, so two candidates
cannot both win (the loser gets 409 Conflict). A leader that cannot renew for
``lease_renew_deadline`` steps down before anyone else may take over.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable

from kexpose.proxy.control.kubeapi import KubeApi, Lease
from kexpose.proxy.errors import KubeError
from kexpose.proxy.settings import ControlSettings

__all__ = ["LeaderElector"]

log = logging.getLogger(__name__)


def _micro_time(now: dt.datetime) -> str:
    # MicroTime (RFC 3339 with microseconds), as the API serialises it.
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(
        self,
        api: KubeApi,
        *,
        namespace: str,
        name: str,
        identity: str,
        settings: ControlSettings,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self._api = api
        self._namespace = namespace
        self._name = name
        self.identity = identity
        self._settings = settings
        self._clock = clock
        self._wall = wall
        self._sleep = sleep
        self.on_change = on_change
        """Called with the new state whenever leadership is won or lost."""
        self.is_leader = False
        self._observed: tuple[str | None, str | None, str | None] | None = None
        self._observed_at = 0.0
        self._renewed_at = 0.0

    async def run(self) -> None:
        """Try to acquire or renew every retry period, until cancelled (then release)."""
        try:
            while True:
                await self.step()
                await self._sleep(self._settings.lease_retry_period)
        finally:
            if self.is_leader:
                await asyncio.shield(self._release())

    async def step(self) -> bool:
        """One round: acquire, renew or observe. Returns whether we lead afterwards."""
        now = self._clock()
        try:
            lease = await self._api.get_lease(self._namespace, self._name)
            if lease is None:
                await self._api.create_lease(self._record(None, transitions=0))
                self._won(now, "created the lease")
            else:
                await self._against(lease, now)
        except KubeError as exc:
            if exc.status != 409:
                log.warning("leader election: %s", exc)
            # 409: another replica wrote first; we read again next round.
            if self.is_leader and now - self._renewed_at > self._settings.lease_renew_deadline:
                self._lost("could not renew the lease in time")
        return self.is_leader

    async def _against(self, lease: Lease, now: float) -> None:
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or None
        record = (
            holder,
            spec.get("renewTime"),
            (lease.get("metadata") or {}).get("resourceVersion"),
        )
        if record != self._observed:
            self._observed = record
            self._observed_at = now
        transitions = int(spec.get("leaseTransitions") or 0)
        if holder == self.identity:
            await self._api.replace_lease(self._record(lease, transitions=transitions))
            self._won(now, "renewed")
            return
        duration = float(spec.get("leaseDurationSeconds") or self._settings.lease_duration)
        if holder is not None and now - self._observed_at < duration:
            if self.is_leader:
                self._lost(f"{holder} holds the lease")
            return
        await self._api.replace_lease(self._record(lease, transitions=transitions + 1))
        self._won(now, f"took over from {holder or 'nobody'}")

    def _record(self, current: Lease | None, *, transitions: int) -> Lease:
        stamp = _micro_time(self._wall())
        spec = dict((current or {}).get("spec") or {})
        if spec.get("holderIdentity") != self.identity:
            spec["acquireTime"] = stamp
        spec.update(
            holderIdentity=self.identity,
            leaseDurationSeconds=int(self._settings.lease_duration),
            renewTime=stamp,
            leaseTransitions=transitions,
        )
        meta = dict((current or {}).get("metadata") or {})
        meta.update(name=self._name, namespace=self._namespace)
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": meta,  # type: ignore[typeddict-item]
            "spec": spec,  # type: ignore[typeddict-item]
        }

    def _won(self, now: float, how: str) -> None:
        self._renewed_at = now
        if not self.is_leader:
            log.info("leader election: %s leads (%s)", self.identity, how)
            self.is_leader = True
            if self.on_change:
                self.on_change(True)

    def _lost(self, why: str) -> None:
        log.warning("leader election: %s no longer leads: %s", self.identity, why)
        self.is_leader = False
        if self.on_change:
            self.on_change(False)

    async def _release(self) -> None:
        """Hand the lease back on shutdown so that a successor need not wait it out."""
        try:
            lease = await self._api.get_lease(self._namespace, self._name)
            if (
                lease is not None
                and (lease.get("spec") or {}).get("holderIdentity") == self.identity
            ):
                released = self._record(
                    lease, transitions=int(lease["spec"].get("leaseTransitions") or 0)
                )
                released["spec"]["holderIdentity"] = None
                released["spec"]["leaseDurationSeconds"] = 1
                await self._api.replace_lease(released)
        except KubeError as exc:
            log.warning("leader election: could not release the lease: %s", exc)
        self.is_leader = False
