"""``status.loadBalancer.ingress`` for the Ingresses we own: what to write, and where it differs.

The address comes from ``--publish-address`` (comma-separated IPs or host names) or from the
``--publish-service`` Service, read the way ingress-nginx reads it
(``statusAddressFromService``): ExternalName -> its ``externalName``; ClusterIP -> the cluster
IP; NodePort -> its ``externalIPs``, else the cluster IP; LoadBalancer -> the load balancer's
IPs/host names plus ``externalIPs``. Pulumi's Ingress await waits for this field, so an Ingress
we serve must get it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

from kexpose.proxy.routes._kube import Ingress, LoadBalancerIngress, Service
from kexpose.proxy.routes._objects import Key

__all__ = ["parse_addresses", "service_addresses", "status_updates"]


def _entry(value: str) -> LoadBalancerIngress:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return {"hostname": value}
    return {"ip": value}


def parse_addresses(value: str) -> tuple[LoadBalancerIngress, ...]:
    """``--publish-address``: ``"203.0.113.7,lb.example.com"`` -> status entries."""
    return _sorted(_entry(v.strip()) for v in value.split(",") if v.strip())


def service_addresses(service: Service) -> tuple[LoadBalancerIngress, ...]:
    spec = service.get("spec") or {}
    kind = spec.get("type") or "ClusterIP"
    external = [ip for ip in spec.get("externalIPs") or [] if ip]
    cluster_ip = spec.get("clusterIP")
    found: list[LoadBalancerIngress] = []
    if kind == "ExternalName":
        if spec.get("externalName"):
            found.append({"hostname": spec["externalName"]})
    elif kind == "ClusterIP":
        if cluster_ip and cluster_ip != "None":
            found.append({"ip": cluster_ip})
    elif kind == "NodePort":
        if external:
            found.extend({"ip": ip} for ip in external)
        elif cluster_ip:
            found.append({"ip": cluster_ip})
    elif kind == "LoadBalancer":
        lb = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        for entry in lb:
            if entry.get("ip"):
                found.append({"ip": entry["ip"]})
            elif entry.get("hostname"):
                found.append({"hostname": entry["hostname"]})
        seen = {e.get("ip") for e in found} | {e.get("hostname") for e in found}
        found.extend({"ip": ip} for ip in external if ip not in seen)
    return _sorted(found)


def _sorted(entries: Iterable[LoadBalancerIngress]) -> tuple[LoadBalancerIngress, ...]:
    # Host name first, then IP: the order ingress-nginx compares in, so that equal sets compare
    # equal whatever order the API returned them in.
    unique = {(e.get("hostname") or "", e.get("ip") or ""): e for e in entries}
    return tuple(unique[k] for k in sorted(unique))


def status_updates(
    ingresses: Mapping[Key, Ingress],
    owned: Iterable[Key],
    addresses: tuple[LoadBalancerIngress, ...],
) -> list[tuple[Key, list[LoadBalancerIngress]]]:
    """The owned Ingresses whose status differs from ``addresses``, with the value to write.

    An empty address list (a LoadBalancer still pending) writes nothing: clearing a status that
    another writer set would only make things worse.
    """
    if not addresses:
        return []
    wanted = list(addresses)
    updates: list[tuple[Key, list[LoadBalancerIngress]]] = []
    for key in owned:
        ingress = ingresses.get(key)
        if ingress is None:
            continue
        current = ((ingress.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        if list(_sorted(current)) != wanted:
            updates.append((key, wanted))
    return updates
