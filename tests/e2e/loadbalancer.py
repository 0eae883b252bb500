"""A stand-in for a cloud's load-balancer controller: it gives LoadBalancer Services an address.

A real cluster gets `status.loadBalancer.ingress` from its cloud controller manager (or MetalLB,
which pulumi-kubernetes' own CI installs for the same reason); this control plane has none, and
pulumi-kubernetes' Service await waits for that address before it reports a LoadBalancer Service
created ("Service was not allocated an IP address; does your cloud provider support this?").

`LoadBalancerStandIn` polls the Services of every namespace and writes 127.0.0.1 into the status
of each LoadBalancer Service that has none, through the `status` subresource, as a load-balancer
controller does. It only writes status: it never touches a spec and never sends traffic.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from lightkube import ApiError, Client
from lightkube.resources.core_v1 import Service

__all__ = ["LB_ADDRESS", "LoadBalancerStandIn"]

#: The address written into every LoadBalancer Service's status.
LB_ADDRESS = "127.0.0.1"
# How often Services are listed; a list of a few dozen Services is cheap, and a short interval
# keeps pulumi's Service await from waiting on the stand-in.
POLL_INTERVAL_S = 0.25


@dataclass
class LoadBalancerStandIn:
    """Assigns LB_ADDRESS to LoadBalancer Services until stopped; `assigned` records what it did."""

    client: Client
    assigned: set[tuple[str, str]] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lb-stand-in", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @contextlib.contextmanager
    def running(self) -> Iterator[LoadBalancerStandIn]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync()
            except ApiError as exc:  # a Service deleted between list and patch, a conflict
                self.errors.append(str(exc))
            self._stop.wait(POLL_INTERVAL_S)

    def sync(self) -> None:
        """One pass: give every LoadBalancer Service without an address LB_ADDRESS."""
        for service in self.client.list(Service, namespace="*"):
            if service.spec is None or service.spec.type != "LoadBalancer":
                continue
            balancer = service.status.loadBalancer if service.status else None
            if balancer is not None and balancer.ingress:
                continue
            meta = service.metadata
            assert meta is not None
            assert meta.name is not None
            assert meta.namespace is not None
            self.client.patch(
                Service.Status,
                meta.name,
                {"status": {"loadBalancer": {"ingress": [{"ip": LB_ADDRESS}]}}},
                namespace=meta.namespace,
            )
            self.assigned.add((meta.namespace, meta.name))
