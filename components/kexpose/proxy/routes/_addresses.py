"""Which address each Gateway gets, from the pool the proxy was given (``--gateway-addresses``).

Several Gateways may listen on the same port (the conformance suite's base Gateways all use
80), so each needs its own address: the data plane binds every Gateway's listeners on that
Gateway's addresses, and ``status.addresses`` tells clients where to go. The pool is a CIDR of
addresses the proxy can bind: a range routed to its node (or its pod's ``hostNetwork``), or, in
the end-to-end tests, a range on the network namespace's loopback.

Choice, stable across changes so that an unrelated Gateway appearing moves no one:

1. the ``IPAddress`` values the Gateway asks for in ``spec.addresses``, when all are in the pool
   and free; another address type is unsupported (the Gateway is not Accepted:
   ``UnsupportedAddress``), an address outside the pool or taken is not usable (not Programmed:
   ``AddressNotUsable``); an entry without a value asks for any address of its type
   (``GatewayAddressEmpty``): as if absent;
2. the address its status already holds, when it is in the pool and free (a restart keeps it);
3. else a slot derived from a hash of ``namespace/name``, probing onward while taken.

Gateways are served oldest first, so an older Gateway keeps its address in a clash. Pure.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping
from typing import Any

from kexpose.proxy.routes._objects import Key
from kexpose.proxy.routes._raw import entries, mapping

__all__ = ["AddressProblem", "Network", "assign_addresses"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: (the Gateway condition reason, the message): ``UnsupportedAddress``, ``AddressNotUsable`` or
#: ``AddressNotAssigned``.
AddressProblem = tuple[str, str]


def _in(pool: Network, value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    return str(address) if address in pool else None


def _usable(pool: Network) -> tuple[int, int]:
    """(first, count) of the pool's host addresses (network and broadcast left out of a v4
    range larger than /31)."""
    size = pool.num_addresses
    if pool.version == 4 and size > 2:
        return int(pool.network_address) + 1, size - 2
    return int(pool.network_address), size


def assign_addresses(
    gateways: Mapping[Key, Mapping[str, Any]], pool: Network | None
) -> tuple[dict[Key, tuple[str, ...]], dict[Key, AddressProblem]]:
    """(Gateway -> its addresses, Gateway -> why it has none)."""
    assigned: dict[Key, tuple[str, ...]] = {}
    problems: dict[Key, AddressProblem] = {}
    if pool is None:
        for key in gateways:
            problems[key] = (
                "AddressNotAssigned",
                "the proxy has no address pool (--gateway-addresses)",
            )
        return assigned, problems
    taken: set[str] = set()

    def age(item: tuple[Key, Mapping[str, Any]]) -> tuple[str, Key]:
        created = mapping(item[1].get("metadata")).get("creationTimestamp")
        return (str(created or ""), item[0])

    ordered = sorted(gateways.items(), key=age)
    waiting: list[Key] = []
    for key, gateway in ordered:
        wanted = [
            e
            for e in entries(mapping(gateway.get("spec")).get("addresses"))
            if e.get("value") not in (None, "") or (e.get("type") or "IPAddress") != "IPAddress"
        ]
        if wanted:
            kinds = {str(e.get("type") or "IPAddress") for e in wanted} - {"IPAddress"}
            if kinds:
                problems[key] = (
                    "UnsupportedAddress",
                    f"address type(s) {', '.join(sorted(kinds))} not supported: only IPAddress",
                )
                continue
            values = []
            for entry in wanted:
                value = _in(pool, entry.get("value"))
                if value is None or value in taken:
                    problems[key] = (
                        "AddressNotUsable",
                        f"address {entry.get('value')!r} is not usable: the proxy binds "
                        f"addresses from {pool} that no other Gateway holds",
                    )
                    break
                values.append(value)
            else:
                taken.update(values)
                assigned[key] = tuple(values)
            continue
        previous = [
            a
            for e in entries(mapping(gateway.get("status")).get("addresses"))
            if (a := _in(pool, e.get("value")))
        ]
        if previous and previous[0] not in taken:
            taken.add(previous[0])
            assigned[key] = (previous[0],)
        else:
            waiting.append(key)
    first, count = _usable(pool)
    for key in waiting:
        digest = hashlib.sha256(f"{key[0]}/{key[1]}".encode()).digest()
        start = int.from_bytes(digest[:8], "big") % count
        for step in range(count):
            candidate = str(ipaddress.ip_address(first + (start + step) % count))
            if candidate not in taken:
                taken.add(candidate)
                assigned[key] = (candidate,)
                break
        else:
            problems[key] = ("AddressNotAssigned", f"the address pool {pool} is exhausted")
    return assigned, problems
