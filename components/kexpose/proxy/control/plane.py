"""The control plane: Kubernetes objects in, route tables out, status written back.

One informer per kind lists, then watches from the list's resourceVersion; a 410 Gone means
that version is too old, so it lists again; other errors back off exponentially
(``ControlSettings``). Every change marks the object set dirty; a builder folds the changes of
``debounce`` seconds into one new route table and hands it to the data plane, which swaps it in
whole. The first table goes out only once every kind has been listed, and that is when the
proxy becomes ready.

The status writer keeps ``status.loadBalancer.ingress`` of the Ingresses we own at the
published address and, when the Gateway API is served, the status of our GatewayClasses,
Gateways, ListenerSets, HTTPRoutes and GRPCRoutes as the table computed it
(``routes._gwstatus``: only what changed is written); with several replicas only the Lease holder
writes (``lease``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Final, cast

from kexpose.proxy.control.kubeapi import AnyKind, KubeApi
from kexpose.proxy.control.lease import LeaderElector
from kexpose.proxy.errors import KubeError, WatchGoneError
from kexpose.proxy.routes import (
    EXTENSION_KINDS,
    GATEWAY_KINDS,
    KINDS,
    Claim,
    GatewayKind,
    Key,
    LoadBalancerIngress,
    ObjectSet,
    RawObject,
    RouteTable,
    build_table,
    class_status_body,
    describe,
    gateway_status_body,
    listener_set_status_body,
    object_problems,
    parse_addresses,
    route_status_body,
    service_addresses,
    shown,
    status_updates,
    usable_key,
)
from kexpose.proxy.settings import ControlSettings

__all__ = ["ControlPlane", "Publish"]

log = logging.getLogger(__name__)

_INGRESS_KINDS: Final[tuple[AnyKind, ...]] = tuple(KINDS)
_GATEWAY_KINDS: Final[tuple[AnyKind, ...]] = (*GATEWAY_KINDS, *EXTENSION_KINDS)
#: Optional kinds: kexpose's own CRD (``EdgeAuth``), ListenerSet, which the standard channel
#: gained in v1.6, and GRPCRoute, standard since v1.1 (clusters whose platform owns older Gateway
#: API CRDs do not serve them).
#: An API server that does not serve them (the CRD is not installed: 404) or lets us not read
#: them (403) gives an empty set, so that readiness never waits on them; references to them then
#: do not resolve (an HTTPRoute's ExtensionRef answers 500, a parentRef to a ListenerSet is not
#: accepted). They are listed again later.
_OPTIONAL_KINDS: Final[frozenset[str]] = frozenset({*EXTENSION_KINDS, "ListenerSet", "GRPCRoute"})


def _version_of(obj: object) -> str | None:
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    version = meta.get("resourceVersion") if isinstance(meta, Mapping) else None
    return version if isinstance(version, str) and version else None


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
        self._kinds = _INGRESS_KINDS + (_GATEWAY_KINDS if claim.gateway_controller else ())
        self._store: dict[AnyKind, dict[Key, RawObject]] = {kind: {} for kind in self._kinds}
        self._synced: set[AnyKind] = set()
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
            for kind in self._kinds:
                group.create_task(self.inform(kind), name=f"inform {kind}")
            group.create_task(self._build_loop(), name="build route tables")
            gateway_api = self._claim.gateway_controller is not None
            if self._publish.addresses or self._publish.service or gateway_api:
                if self._elector is not None:
                    group.create_task(self._elector.run(), name="leader election")
                group.create_task(self._status_loop(), name="write Ingress status")

    def _leadership_changed(self, leading: bool) -> None:
        if leading:
            self._status_due.set()

    # --- informers ----------------------------------------------------------------------------

    async def inform(self, kind: AnyKind) -> None:
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
                if kind in _OPTIONAL_KINDS and exc.status in (403, 404):
                    self._not_served(kind, exc)
                    await self._sleep(self._settings.backoff_max)
                    continue
                log.warning("%s: %s; retrying in %.1fs", kind, exc, delay)
            except Exception:  # a bug or a stream we cannot read must not end the informer
                log.exception("%s: the watch failed; retrying in %.1fs", kind, delay)
            else:
                delay = self._settings.backoff_initial
                continue
            await self._sleep(delay)
            delay = min(delay * 2, self._settings.backoff_max)

    async def list_and_watch(self, kind: AnyKind) -> None:
        """One pass: list, then follow watches from the list's version until an error.

        Every object is checked (``routes.object_problems``) before it is stored: a malformed
        one is rejected alone and logged at WARNING; the version of it stored before, if any,
        stays in service, so the table never sees a field of the wrong type.
        """
        items, version = await self._api.list_objects(kind, self._namespace)
        previous = self._store[kind]
        listed: dict[Key, RawObject] = {}
        for obj in items:
            self._admit(kind, obj, listed, previous)
        self._store[kind] = listed
        self._synced.add(kind)
        self._changed(kind, listed=True)
        while True:
            async for event, obj in self._api.watch_objects(
                kind, self._namespace, version, timeout=self._settings.watch_timeout
            ):
                version = _version_of(obj) or version
                if event == "BOOKMARK":
                    continue  # only moves the version on (allowWatchBookmarks)
                store = self._store[kind]
                if event == "DELETED":
                    key = usable_key(obj, kind)
                    if key is None:
                        log.warning("%s DELETED event names no object; ignored", kind)
                        continue
                    store.pop(key, None)
                elif event in ("ADDED", "MODIFIED"):
                    self._admit(kind, obj, store, store)
                else:
                    log.warning("%s watch: unknown event type %s; ignored", kind, shown(event))
                    continue
                self._changed(kind)
            # The watch ended without error (its timeout): follow on from the last version.

    def _not_served(self, kind: AnyKind, exc: KubeError) -> None:
        """An optional kind the API server does not serve to us: an empty, synced set."""
        if kind not in self._synced:
            log.info(
                "%s is not served (%s): install kexpose's CRD to use it; HTTPRoute filters "
                "naming one do not resolve",
                kind,
                exc,
            )
        if self._store[kind] or kind not in self._synced:
            self._store[kind] = {}
            self._synced.add(kind)
            self._changed(kind)

    @staticmethod
    def _admit(
        kind: AnyKind, obj: object, into: dict[Key, RawObject], previous: dict[Key, RawObject]
    ) -> None:
        problems = object_problems(obj, kind)
        key = usable_key(obj, kind)
        if not problems and key is not None:
            into[key] = cast("RawObject", obj)
            return
        kept = previous.get(key) if key is not None else None
        if kept is not None and key is not None:
            into[key] = kept
        log.warning(
            "%s rejected: %s; %s",
            describe(obj, kind),
            "; ".join(problems),
            "its previous version stays in service" if kept is not None else "left out",
        )

    def _changed(self, kind: AnyKind, *, listed: bool = False) -> None:
        if kind == "ConfigMap" and not listed and not self._client_validation_used():
            # ConfigMaps matter only as CA bundles of Gateways' client certificate validation;
            # the store keeps them current, and a Gateway that starts using one rebuilds.
            return
        self._dirty.set()
        if kind in ("Ingress", "Service"):
            self._status_due.set()
        # Gateway API status follows every rebuild (``rebuild`` sets it due).

    def _client_validation_used(self) -> bool:
        """Whether some Gateway sets ``spec.tls.frontend`` (``routes._frontend``)."""
        for gateway in self._store.get("Gateway", {}).values():
            spec = gateway.get("spec")
            tls = spec.get("tls") if isinstance(spec, Mapping) else None
            if isinstance(tls, Mapping) and tls.get("frontend"):
                return True
        return False

    # --- route tables -------------------------------------------------------------------------

    def snapshot(self) -> ObjectSet:
        return ObjectSet.of_kinds({kind: dict(objs) for kind, objs in self._store.items()})

    async def _build_loop(self) -> None:
        while True:
            await self._dirty.wait()
            await self._sleep(self._settings.debounce)
            self._dirty.clear()
            if len(self._synced) < len(self._kinds):
                continue  # a partial set would drop routes that exist
            self.rebuild()

    def rebuild(self) -> RouteTable | None:
        """Build and publish a table; on failure the last good one stays (None is returned)."""
        try:
            table = build_table(self.snapshot(), claim=self._claim)
        except Exception:  # a bug in building must not take the serving table down with it
            log.exception("building the route table failed; keeping the current routes")
            return None
        old = set(self.table.problems) if self.table is not None else set()
        for problem in table.problems:
            # New problems at WARNING; the rest repeat at every rebuild, so only at DEBUG.
            log.log(
                logging.DEBUG if problem in old else logging.WARNING, "route table: %s", problem
            )
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
            except Exception:  # a bug must not end status writing, nor the proxy with it
                log.exception("status: writing status failed")

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
        problems = object_problems(service, "Service")
        if problems:
            log.warning(
                "status: publish Service %s/%s rejected: %s", namespace, name, "; ".join(problems)
            )
            return ()
        return service_addresses(service)

    async def write_status(self) -> int:
        """Bring every owned Ingress's status to the published address, and our Gateway API
        objects' status to what the table says; returns how many objects were written."""
        if self.table is None:
            return 0
        written = 0
        if self._claim.gateway_controller is not None:
            written += await self.write_gateway_status()
        if not (self._publish.addresses or self._publish.service):
            return written
        addresses = await self.publish_addresses()
        ingresses = self.snapshot().ingresses
        updates = status_updates(ingresses, self.table.owned, addresses)
        for (namespace, name), wanted in updates:
            await self._api.patch_ingress_status(namespace, name, wanted)
            log.info("status: Ingress %s/%s -> %s", namespace, name, wanted)
        return written + len(updates)

    async def write_gateway_status(self) -> int:
        """GatewayClasses, Gateways, ListenerSets and routes of ours: write what differs from the
        cache."""
        assert self.table is not None
        controller = self._claim.gateway_controller
        assert controller is not None
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        gateway = self.table.gateway
        store = self._store
        written = 0
        for cls in gateway.classes:
            body = class_status_body(cls, store["GatewayClass"].get(("", cls.name)), now)
            if body is not None:
                await self._api.patch_status("GatewayClass", "", cls.name, body)
                written += 1
        for gw in gateway.gateways:
            key = (gw.namespace, gw.name)
            body = gateway_status_body(gw, store["Gateway"].get(key), now)
            if body is not None:
                await self._api.patch_status("Gateway", gw.namespace, gw.name, body)
                written += 1
        for listener_set in gateway.listener_sets:
            key = (listener_set.namespace, listener_set.name)
            body = listener_set_status_body(listener_set, store["ListenerSet"].get(key), now)
            if body is not None:
                await self._api.patch_status(
                    "ListenerSet", listener_set.namespace, listener_set.name, body
                )
                written += 1
        for route in gateway.routes:
            key = (route.namespace, route.name)
            kind = cast("GatewayKind", route.kind)
            body = route_status_body(route, store[kind].get(key), controller, now)
            if body is not None:
                await self._api.patch_status(kind, route.namespace, route.name, body)
                written += 1
        if written:
            log.info("status: %d Gateway API object(s) written", written)
        return written
