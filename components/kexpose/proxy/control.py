"""The control plane: Kubernetes objects in, route tables out, status written back.

One informer per kind lists, then watches from the list's resourceVersion; a 410 Gone means
that version is too old, so it lists again; other errors back off exponentially
(``ControlSettings``). Every change marks the object set dirty; a builder folds the changes of
``debounce`` seconds into one new route table and hands it to the data plane, which swaps it in
whole. The first table goes out only once every kind has been listed, and that is when the
proxy becomes ready.

The status writer keeps ``status.loadBalancer.ingress`` of the Ingresses we own at the
published address; with several replicas only the Lease holder writes (``lease``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from kexpose.proxy.errors import KubeError, WatchGoneError
from kexpose.proxy.kubeapi import KubeApi
from kexpose.proxy.lease import LeaderElector
from kexpose.proxy.routes import (
    KINDS,
    Claim,
    Key,
    Kind,
    LoadBalancerIngress,
    ObjectSet,
    RawObject,
    RouteTable,
    build_table,
    key_of,
    parse_addresses,
    service_addresses,
    status_updates,
)
from kexpose.proxy.settings import ControlSettings

__all__ = ["ControlPlane", "Publish"]

log = logging.getLogger(__name__)

_ALL_KINDS: Final[tuple[Kind, ...]] = tuple(KINDS)


class Publish:
    """Where status addresses come from: ``--publish-address`` or ``--publish-service``."""

    def __init__(self, *, address: str | None = None, service: str | None = None) -> None:
        self.addresses = parse_addresses(address) if address else ()
        self.service: tuple[str, str] | None = None
        if service:
            namespace, _, name = service.partition("/")
            self.service = (namespace, name)


class ControlPlane:
    def __init__(
        self,
        api: KubeApi,
        *,
        claim: Claim,
        on_table: Callable[[RouteTable], None],
        namespace: str | None = None,
        settings: ControlSettings | None = None,
        publish: Publish | None = None,
        elector: LeaderElector | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._api = api
        self._claim = claim
        self._on_table = on_table
        self._namespace = namespace
        self._settings = settings or ControlSettings()
        self._publish = publish or Publish()
        self._elector = elector
        self._sleep = sleep
        self._store: dict[Kind, dict[Key, RawObject]] = {kind: {} for kind in _ALL_KINDS}
        self._synced: set[Kind] = set()
        self._dirty = asyncio.Event()
        self._status_due = asyncio.Event()
        if elector is not None:
            # A new leader brings every status up to date at once, not at the next resync.
            elector.on_change = self._leadership_changed
        self.table: RouteTable | None = None
        self.ready = asyncio.Event()
        """Set once the first complete object set has become a table."""
        self.relists = 0

    async def run(self) -> None:
        """Informers, builder, leader election and status writer, until cancelled."""
        async with asyncio.TaskGroup() as group:
            for kind in _ALL_KINDS:
                group.create_task(self.inform(kind), name=f"inform {kind}")
            group.create_task(self._build_loop(), name="build route tables")
            if self._publish.addresses or self._publish.service:
                if self._elector is not None:
                    group.create_task(self._elector.run(), name="leader election")
                group.create_task(self._status_loop(), name="write Ingress status")

    def _leadership_changed(self, leading: bool) -> None:
        if leading:
            self._status_due.set()

    # --- informers ----------------------------------------------------------------------------

    async def inform(self, kind: Kind) -> None:
        """List, then watch from there; relist on 410, back off on errors. Never returns."""
        delay = self._settings.backoff_initial
        while True:
            try:
                await self.list_and_watch(kind)
            except WatchGoneError as exc:
                self.relists += 1
                log.info("%s watch expired (%s); listing again", kind, exc)
                continue  # no wait: the API server asked us to start over, not to back off
            except KubeError as exc:
                log.warning("%s: %s; retrying in %.1fs", kind, exc, delay)
                await self._sleep(delay)
                delay = min(delay * 2, self._settings.backoff_max)
                continue
            delay = self._settings.backoff_initial

    async def list_and_watch(self, kind: Kind) -> None:
        """One pass: list, then follow watches from the list's version until an error."""
        items, version = await self._api.list_objects(kind, self._namespace)
        self._store[kind] = {key_of(obj): obj for obj in items}
        self._synced.add(kind)
        self._changed(kind)
        while True:
            async for event, obj in self._api.watch_objects(
                kind, self._namespace, version, timeout=self._settings.watch_timeout
            ):
                version = (obj.get("metadata") or {}).get("resourceVersion") or version
                if event == "BOOKMARK":
                    continue  # only moves the version on (allowWatchBookmarks)
                if event == "DELETED":
                    self._store[kind].pop(key_of(obj), None)
                else:
                    self._store[kind][key_of(obj)] = obj
                self._changed(kind)
            # The watch ended without error (its timeout): follow on from the last version.

    def _changed(self, kind: Kind) -> None:
        self._dirty.set()
        if kind in ("Ingress", "Service"):
            self._status_due.set()

    # --- route tables -------------------------------------------------------------------------

    def snapshot(self) -> ObjectSet:
        return ObjectSet.of_kinds({kind: dict(objs) for kind, objs in self._store.items()})

    async def _build_loop(self) -> None:
        while True:
            await self._dirty.wait()
            await self._sleep(self._settings.debounce)
            self._dirty.clear()
            if len(self._synced) < len(_ALL_KINDS):
                continue  # a partial set would drop routes that exist
            self.rebuild()

    def rebuild(self) -> RouteTable:
        table = build_table(self.snapshot(), claim=self._claim)
        for problem in table.problems:
            log.info("route table: %s", problem)
        self.table = table
        self._on_table(table)
        self._status_due.set()
        self.ready.set()
        return table

    # --- status -------------------------------------------------------------------------------

    async def _status_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.status_resync):
                    await self._status_due.wait()
            self._status_due.clear()
            if self.table is None or (self._elector is not None and not self._elector.is_leader):
                continue
            try:
                await self.write_status()
            except KubeError as exc:
                log.warning("status: %s", exc)

    async def publish_addresses(self) -> tuple[LoadBalancerIngress, ...]:
        if self._publish.addresses:
            return self._publish.addresses
        if self._publish.service is None:
            return ()
        namespace, name = self._publish.service
        service = await self._api.get_service(namespace, name)
        if service is None:
            log.warning("status: publish Service %s/%s not found", namespace, name)
            return ()
        return service_addresses(service)

    async def write_status(self) -> int:
        """Bring every owned Ingress's status to the published address; returns how many."""
        if self.table is None:
            return 0
        addresses = await self.publish_addresses()
        ingresses = self.snapshot().ingresses
        updates = status_updates(ingresses, self.table.owned, addresses)
        for (namespace, name), wanted in updates:
            await self._api.patch_ingress_status(namespace, name, wanted)
            log.info("status: Ingress %s/%s -> %s", namespace, name, wanted)
        return len(updates)
