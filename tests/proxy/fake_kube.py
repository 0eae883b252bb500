"""A scripted stand-in for the Kubernetes API (the ``KubeApi`` Protocol), kopf-style.

Each kind has a queue of list results and a queue of watch streams. A stream is a list of
steps: an event ``(type, object)``, an exception to raise, or ``HOLD`` (block until cancelled,
like a quiet watch). Calls are recorded so tests can assert on what the control plane asked.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

from kexpose.proxy.control.kubeapi import AnyKind, EventType, Lease
from kexpose.proxy.errors import KubeError
from kexpose.proxy.routes import GatewayKind, LoadBalancerIngress, RawObject, Service

HOLD = object()


@dataclass
class FakeKubeApi:
    lists: dict[str, list[Any]] = field(default_factory=dict)
    """kind -> [(items, resourceVersion) | Exception, ...]; the last one repeats."""
    watches: dict[str, list[list[Any]]] = field(default_factory=dict)
    """kind -> [stream, ...]; when none are left, watches hold."""
    services: dict[tuple[str, str], Service] = field(default_factory=dict)
    leases: dict[tuple[str, str], Lease] = field(default_factory=dict)
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    patched: list[tuple[str, str, list[LoadBalancerIngress]]] = field(default_factory=list)
    statuses: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)
    """(kind, namespace, name, status) of every Gateway API status patch."""
    _version: int = 100

    async def list_objects(
        self, kind: AnyKind, namespace: str | None
    ) -> tuple[list[RawObject], str]:
        self.calls.append(("list", kind, namespace))
        queue = self.lists.get(kind) or [([], "1")]
        step = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(step, Exception):
            raise step
        items, version = step
        return copy.deepcopy(items), version

    async def watch_objects(
        self, kind: AnyKind, namespace: str | None, resource_version: str, *, timeout: int
    ) -> AsyncIterator[tuple[EventType, RawObject]]:
        self.calls.append(("watch", kind, resource_version))
        streams = self.watches.get(kind) or []
        stream = streams.pop(0) if streams else [HOLD]
        for step in stream:
            await asyncio.sleep(0)
            if step is HOLD:
                await asyncio.Event().wait()
            if isinstance(step, Exception):
                raise step
            event, obj = cast("tuple[EventType, RawObject]", step)
            yield event, copy.deepcopy(obj)

    async def get_service(self, namespace: str, name: str) -> Service | None:
        return self.services.get((namespace, name))

    async def patch_ingress_status(
        self, namespace: str, name: str, addresses: list[LoadBalancerIngress]
    ) -> None:
        self.patched.append((namespace, name, addresses))

    async def patch_status(self, kind: GatewayKind, namespace: str, name: str, status: Any) -> None:
        self.statuses.append((kind, namespace, name, copy.deepcopy(dict(status))))

    # --- leases: optimistic concurrency like the API server -----------------------------------

    async def get_lease(self, namespace: str, name: str) -> Lease | None:
        found = self.leases.get((namespace, name))
        return copy.deepcopy(found) if found is not None else None

    async def create_lease(self, lease: Lease) -> Lease:
        key = (lease["metadata"]["namespace"], lease["metadata"]["name"])
        if key in self.leases:
            raise KubeError("already exists", status=409)
        return self._store(key, lease)

    async def replace_lease(self, lease: Lease) -> Lease:
        key = (lease["metadata"]["namespace"], lease["metadata"]["name"])
        current = self.leases.get(key)
        if current is None:
            raise KubeError("not found", status=404)
        if lease["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise KubeError("the object has been modified", status=409)
        return self._store(key, lease)

    def _store(self, key: tuple[str, str], lease: Lease) -> Lease:
        self._version += 1
        stored = copy.deepcopy(lease)
        stored["metadata"]["resourceVersion"] = str(self._version)
        self.leases[key] = stored
        return copy.deepcopy(stored)

    async def close(self) -> None:
        pass
